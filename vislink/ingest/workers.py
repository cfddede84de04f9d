"""Where decoding and encoding run: in the calling process (a background thread, so that fetching, hashing
and SQL/index writes overlap with the forward pass) or in N worker processes on this machine.

Workers only decode and encode. The parent process writes to SQL and to the vector index, because the
embedded index (qdrant-client local mode, qdrant-edge) is a folder that one process at a time may open.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class EncodeResult:
    """The outcome for one file: vectors per variant, or the reason it is not a usable image."""

    vectors: dict[str, np.ndarray] | None
    width: int | None = None
    height: int | None = None
    reason: str | None = None
    detail: str = ""


@lru_cache(maxsize=16)
def _load_pca(path: str):
    from vislink.encoder.pca import PCAWhitening

    return PCAWhitening.load(path)


def encode_batch(paths: list[str], variants: list[str], *, weights: str, pca_paths: dict[str, str] | None = None,
                 max_pixels: int | None = None, decode_threads: int = 2) -> list[EncodeResult]:
    """Decode ``paths`` with the encoder's ``open_rgb`` (one thread per file, Pillow releases the GIL) and
    encode the good ones in one forward pass for all variants. Bad files get their ``BadImage`` reason."""
    from vislink.encoder.images import open_rgb
    from vislink.errors import BadImage

    def decode(path: str):
        try:
            return open_rgb(path, max_pixels=max_pixels)
        except BadImage as exc:
            return exc
        except MemoryError as exc:  # a huge image that passed the pixel limit still must not stop the run
            return BadImage(path, "too-large", f"out of memory while decoding: {exc}")

    if decode_threads > 1 and len(paths) > 1:
        with ThreadPoolExecutor(decode_threads) as pool:
            decoded = list(pool.map(decode, paths))
    else:
        decoded = [decode(p) for p in paths]
    results = [EncodeResult(None, reason=d.reason, detail=d.detail) if isinstance(d, BadImage)
               else EncodeResult(None, width=d.width, height=d.height) for d in decoded]
    good = [i for i, d in enumerate(decoded) if not isinstance(d, BadImage)]
    if good:
        from vislink.encoder import get_encoder  # torch: imported only when there is something to encode

        encoder = get_encoder(weights)
        pca = {name: _load_pca(path) for name, path in (pca_paths or {}).items()} or None
        vectors = encoder.encode_images([decoded[i] for i in good], list(variants), pca=pca)
        for row, i in enumerate(good):
            results[i].vectors = {name: np.asarray(v[row], dtype=np.float32) for name, v in vectors.items()}
    return results


def _init_worker(threads: int, env: dict[str, str]) -> None:
    # Spawned workers start from a clean interpreter: give them the parent's settings and a fair
    # share of the cores, so N workers do not each start as many threads as there are cores.
    os.environ.update(env)
    try:
        import torch

        torch.set_num_threads(max(1, threads))
    except ImportError:
        pass


def make_executor(workers: int) -> Executor:
    """One background thread (model in this process) for ``workers <= 1``; else ``workers`` spawned
    processes, each loading the model once. Spawn, not fork: torch and open SQL/index handles must
    not be copied into children."""
    if workers <= 1:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="vislink-encode")
    import multiprocessing

    cores = os.cpu_count() or 1
    env = {k: v for k, v in os.environ.items() if k.startswith(("VISLINK_", "QDRANT_"))}
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(max(1, cores // workers), env))


def submit(executor: Executor, paths: list[str], variants: list[str], *, weights: str,
           pca_paths: dict[str, str] | None, max_pixels: int | None) -> Future:
    # Threads in the parent already decode in parallel inside encode_batch; processes decode one file
    # at a time each, the parallelism being the processes themselves.
    threads = 1 if isinstance(executor, ProcessPoolExecutor) else 2
    return executor.submit(encode_batch, paths, variants, weights=weights, pca_paths=pca_paths,
                           max_pixels=max_pixels, decode_threads=threads)
