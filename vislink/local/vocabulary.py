"""A visual vocabulary: k-means centres of RootSIFT descriptors (scikit-learn MiniBatchKMeans on a sample of a
collection's descriptors) and the inverse document frequency of each word in the images of that sample.

Like a PCA whitening (``vislink.encoder.pca``), a fitted vocabulary is an .npz whose ``sha256`` hashes its arrays
(not the zip bytes), recomputed on load: a file whose content does not match the hash stored in it is refused.
It also records where it came from (``provenance``: the variant, the collection, how many images and descriptors,
the seed, the extraction setting, the training time), which ``vislink collection show`` and the docs cite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from vislink.encoder.fitted_files import read_fitted, read_once, write_fitted
from vislink.errors import ConfigError

log = logging.getLogger(__name__)

FORMAT = "vislink-vocabulary-1"
# MiniBatchKMeans on 2 cores: epochs over the sample (early stopping usually ends sooner) and the mini-batch.
MAX_EPOCHS = 10
BATCH_SIZE = 4096
# Descriptors a vocabulary is trained on, at most (drawn uniformly from the sample's images).
DEFAULT_MAX_DESCRIPTORS = 200_000
# Descriptors quantised per matrix product (bounds memory: chunk x words floats).
QUANTISE_CHUNK = 512


@dataclass
class Vocabulary:
    centers: np.ndarray  # (words, 128) float32
    idf: np.ndarray  # (words,) float32: log(images / images containing the word) in the training sample
    provenance: dict = field(default_factory=dict)  # variant, collection, n_images, n_descriptors, seed, seconds...

    @property
    def size(self) -> int:
        return int(self.centers.shape[0])

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256(FORMAT.encode())
        for array in (self.centers, self.idf):
            digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
        return digest.hexdigest()

    @classmethod
    def fit(cls, descriptors: Sequence[np.ndarray], words: int, *, max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
            seed: int = 0,
            provenance: dict | None = None) -> Vocabulary:
        """Train on the descriptors of a sample of images (one (n_i, 128) array per image): at most
        ``max_descriptors`` of them, drawn uniformly, are clustered into ``words`` centres; the idf counts
        every image of the sample (all its descriptors quantised)."""
        from sklearn.cluster import MiniBatchKMeans

        per_image = [np.asarray(d, dtype=np.float32) for d in descriptors]
        per_image = [d for d in per_image if len(d)]
        if not per_image:
            raise ConfigError("a visual vocabulary needs images with SIFT keypoints; the sample has none")
        X = np.concatenate(per_image)
        if X.ndim != 2:
            raise ConfigError(f"descriptors of shape {X.shape}: expected (n, 128) per image")
        if words < 2:
            raise ConfigError(f"a visual vocabulary needs at least 2 words, not {words}")
        rng = np.random.default_rng(seed)
        if len(X) > max_descriptors:
            X = X[np.sort(rng.choice(len(X), size=max_descriptors, replace=False))]
        if len(X) < words:
            raise ConfigError(f"a vocabulary of {words} words needs at least {words} descriptors; the sample of "
                              f"{len(per_image)} images has {len(X)}: add images or choose fewer words "
                              f"(e.g. sift-bow-{max(2, len(X) // 20)})")
        started = time.perf_counter()
        # init="random": k-means++ costs words x trials x init_size x 128 and takes hours at 20,000 words.
        kmeans = MiniBatchKMeans(n_clusters=words, init="random", batch_size=min(BATCH_SIZE, len(X)),
                                 max_iter=MAX_EPOCHS, n_init=1, random_state=seed, compute_labels=False,
                                 reassignment_ratio=0.0)
        kmeans.fit(X)
        vocabulary = cls(kmeans.cluster_centers_.astype(np.float32), np.zeros(words, np.float32))
        df = np.zeros(words, np.int64)
        for d in per_image:
            df[np.unique(vocabulary.quantise(d))] += 1
        vocabulary.idf = np.log(len(per_image) / np.maximum(df, 1)).astype(np.float32)
        seconds = time.perf_counter() - started
        vocabulary.provenance = {**(provenance or {}), "words": words, "n_images": len(per_image),
                                 "n_descriptors": int(len(X)), "seed": seed, "epochs": int(kmeans.n_iter_),
                                 "train_seconds": round(seconds, 2), "sklearn": _sklearn_version()}
        log.info("visual vocabulary of %d words from %d descriptors of %d images in %.1f s", words, len(X),
                 len(per_image), seconds)
        return vocabulary

    def quantise(self, descriptors: np.ndarray) -> np.ndarray:
        """The nearest word (Euclidean) of each descriptor: (n,) int64."""
        X = np.asarray(descriptors, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.centers.shape[1]:
            raise ConfigError(f"a vocabulary of {self.centers.shape[1]}-d words got descriptors of shape {X.shape}")
        # argmin_w |x - c_w|^2 = argmin_w |c_w|^2 - 2 x.c_w, one matrix product per chunk, in place.
        half_norms = 0.5 * np.einsum("ij,ij->i", self.centers, self.centers)
        centers_t = np.ascontiguousarray(self.centers.T)
        out = np.empty(len(X), np.int64)
        for start in range(0, len(X), QUANTISE_CHUNK):
            scores = X[start:start + QUANTISE_CHUNK] @ centers_t
            scores -= half_norms
            out[start:start + len(scores)] = np.argmax(scores, axis=1)
        return out

    def save(self, path: Path | str) -> str:
        """Write an .npz (with its hash and provenance inside) and return the sha256."""
        write_fitted(path, FORMAT, self.sha256, {"centers": self.centers, "idf": self.idf, "provenance": np.array(
            json.dumps(self.provenance, sort_keys=True))})
        return self.sha256

    @classmethod
    def load(cls, path: Path | str) -> Vocabulary:
        return read_fitted(path, FORMAT, "visual vocabulary", lambda data: cls(
            data["centers"], data["idf"], json.loads(str(data["provenance"]))))


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def load_vocabulary(path: str | Path) -> Vocabulary:
    """The vocabulary stored at ``path``, read once per process (and again when the file is rewritten)."""
    return read_once(path, Vocabulary.load)
