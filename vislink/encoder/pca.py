"""PCA whitening of descriptors (fitted with scikit-learn on a sample of a collection), then l2.

A fitted whitening is a mean, a projection and per-component variances. Its ``sha256`` hashes those
arrays (not the .npz bytes, which carry zip timestamps), so the same fit has the same hash after
save/load; ``load`` recomputes it and refuses a file whose content does not match the hash stored in it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vislink.encoder.fitted_files import read_fitted, read_once, write_fitted
from vislink.errors import ConfigError

FORMAT = "vislink-pca-1"
# Components with (numerically) no variance would blow up when divided by sqrt(variance).
MIN_VARIANCE = 1e-12


@dataclass
class PCAWhitening:
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (dim, D), rows orthonormal
    variances: np.ndarray  # (dim,)
    variant: str | None = None  # base variant it was fitted on, e.g. vgg16-pool5-sp2x2-sum

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    @property
    def input_dim(self) -> int:
        return int(self.components.shape[1])

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256(FORMAT.encode())
        for array in (self.mean, self.components, self.variances):
            digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
        return digest.hexdigest()

    @classmethod
    def fit(cls, X: np.ndarray, dim: int, *, variant: str | None = None, seed: int = 0) -> PCAWhitening:
        """Fit on rows of X (l2-normalised descriptors). Needs at least ``dim`` rows."""
        from sklearn.decomposition import PCA

        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ConfigError(f"PCA whitening needs a 2-D array of descriptors, got shape {X.shape}")
        n, d = X.shape
        if not 1 <= dim <= d:
            raise ConfigError(f"PCA dimension {dim} must be between 1 and the descriptor length {d}")
        if n < dim:
            raise ConfigError(f"PCA whitening to {dim} dimensions needs at least {dim} images in the sample, "
                              f"got {n}: encode more images or choose a smaller -pcaN")
        pca = PCA(n_components=dim, whiten=True, svd_solver="full", random_state=seed).fit(X)
        return cls(pca.mean_.astype(np.float32), pca.components_.astype(np.float32),
                   pca.explained_variance_.astype(np.float32), variant)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Project, whiten, then l2-normalise each row. float32 (N, dim)."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ConfigError(f"PCA whitening fitted on {self.input_dim}-D descriptors"
                              f"{f' ({self.variant})' if self.variant else ''} got shape {X.shape}")
        Y = (X - self.mean) @ self.components.T
        Y /= np.sqrt(np.maximum(self.variances, MIN_VARIANCE))
        norms = np.linalg.norm(Y, axis=1, keepdims=True)
        return (Y / np.maximum(norms, 1e-12)).astype(np.float32)

    def save(self, path: Path | str) -> str:
        """Write an .npz (with its hash inside) and return the sha256."""
        write_fitted(path, FORMAT, self.sha256, {"mean": self.mean, "components": self.components,
                                                 "variances": self.variances,
                                                 "variant": np.array(self.variant or "")})
        return self.sha256

    @classmethod
    def load(cls, path: Path | str) -> PCAWhitening:
        return read_fitted(path, FORMAT, "PCA whitening", lambda data: cls(
            data["mean"], data["components"], data["variances"], str(data["variant"]) or None))


def load_pca(path: str | Path) -> PCAWhitening:
    """The whitening stored at ``path``, read once per process (and again when the file is rewritten)."""
    return read_once(path, PCAWhitening.load)
