"""Where decoding and encoding run, and the ingest loop around them: in the calling process (a background
thread, so that fetching, hashing and SQL/index writes overlap with the forward pass) or in N worker
processes on this machine.

Workers only decode and encode. The parent process writes to SQL and to the vector index, because the
embedded index (qdrant-client local mode, qdrant-edge) is a folder that one process at a time may open.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

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


def encode_batch(paths: list[str], variants: list[str], *, weights: str | Mapping[str, str] | None,
                 pca_paths: dict[str, str] | None = None, max_pixels: int | None = None,
                 decode_threads: int = 2) -> list[EncodeResult]:
    """Decode ``paths`` with the encoder's ``open_rgb`` (one thread per file, Pillow releases the GIL) and
    encode the good ones, each backbone once for all its variants (``encode_variants``; ``weights``: the VGG16
    weights name, or ``{variant: weights name}`` as the collection's variant rows record them). Bad files get
    their ``BadImage`` reason. ``pca_paths``: each variant's fitted file, a PCA whitening or, for a bag-of-words
    variant (``sift-bow``), its vocabulary: its vector is then a ``SparseVector`` counted from the image's local
    features (read from, or extracted into, the data folder's feature cache, which verification reads too)."""
    from vislink.encoder.images import full_size, open_rgb
    from vislink.encoder.variants import parse_variant
    from vislink.errors import BadImage

    rules = {parse_variant(v).resize_rule for v in variants}  # a big image is decoded reduced to what they need

    def decode(path: str):
        try:
            return open_rgb(path, max_pixels=max_pixels, rules=rules)
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
               else EncodeResult(None, *full_size(d)) for d in decoded]
    good = [i for i, d in enumerate(decoded) if not isinstance(d, BadImage)]
    if good:
        from vislink.encoder.variants import parse_variant

        bow = [v for v in variants if parse_variant(v).sparse]
        regional = [v for v in variants if parse_variant(v).regions]
        dense = [v for v in variants if v not in bow and v not in regional]
        for i in good:
            results[i].vectors = {}
        if regional:  # -regions variants: a ``Regions`` (global and regional descriptors of one pool5 pass)
            from vislink.encoder.pca import load_pca
            from vislink.encoder.regions import encode_regions, shares_map

            for v in regional:
                # The plain pool5 variants of the same weights come from the same forward pass.
                also = [d for d in dense if shares_map(v, d, weights)]
                dense = [d for d in dense if d not in also]
                pca = {name: load_pca(path) for name, path in (pca_paths or {}).items() if name in also} or None
                found = encode_regions([decoded[i] for i in good], v, weights=weights, also=also, pca=pca)
                for row, i in enumerate(good):
                    results[i].vectors[v] = found[row]
                    results[i].vectors.update(found[row].others)
        if dense:
            from vislink.encoder import encode_variants  # torch / onnxruntime: only when there is work
            from vislink.encoder.pca import load_pca

            pca = {name: load_pca(path) for name, path in (pca_paths or {}).items() if name in dense} or None
            vectors = encode_variants([decoded[i] for i in good], dense, weights=weights, pca=pca)
            for row, i in enumerate(good):
                results[i].vectors.update({name: np.asarray(v[row], dtype=np.float32) for name, v in vectors.items()})
        if bow:
            _encode_bow([paths[i] for i in good], [decoded[i] for i in good], [results[i] for i in good], bow,
                        pca_paths or {})  # results carry each file's full size: keypoints are kept in its pixels
    return results


def _encode_bow(paths: list[str], images: list, results: list[EncodeResult], variants: list[str],
                vocabulary_paths: dict[str, str]) -> None:
    from vislink.errors import ConfigError
    from vislink.hashing import sha256_file
    from vislink.local import feature_cache
    from vislink.local.bow import bow_vector, cached_features
    from vislink.local.vocabulary import load_vocabulary

    missing = [v for v in variants if not vocabulary_paths.get(v)]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: no vocabulary recorded for the variant (run `vislink collection "
                          f"add-variant COLLECTION {missing[0]}`, which fits it)")
    vocabularies = {v: load_vocabulary(vocabulary_paths[v]) for v in variants}
    cache = feature_cache()
    for path, image, result in zip(paths, images, results):
        features = cached_features(cache, sha256_file(path), image, (result.width, result.height))
        for v in variants:
            result.vectors[v] = bow_vector(features, vocabularies[v])


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


def submit(executor: Executor, paths: list[str], variants: list[str], *, weights: str | Mapping[str, str] | None,
           pca_paths: dict[str, str] | None, max_pixels: int | None) -> Future:
    # Threads in the parent already decode in parallel inside encode_batch; processes decode one file
    # at a time each, the parallelism being the processes themselves.
    threads = 1 if isinstance(executor, ProcessPoolExecutor) else 2
    return executor.submit(encode_batch, paths, variants, weights=weights, pca_paths=pca_paths,
                           max_pixels=max_pixels, decode_threads=threads)


def run_batches(ctx, chunks: Iterator[list], prepare: Callable, finish: Callable, *, workers: int,
                total: int | None, progress: bool, desc: str) -> None:
    """The ingest loop: ``prepare`` chunks in this process while earlier ones are encoded (bounded
    look-ahead: two batches per worker), then ``finish`` them in order (store, upsert, mark done). Encoding
    runs in a background thread (``workers <= 1``) or in worker processes."""
    from tqdm.auto import tqdm

    from vislink.store import session_scope

    pca = {v.name: v.pca_path for v in ctx.variants if v.pca_path}
    bar = tqdm(total=total, disable=not progress, unit="img", desc=desc, dynamic_ncols=True)
    executor = make_executor(workers)
    inflight: deque = deque()
    limit = max(2, 2 * workers)
    exhausted = False
    try:
        while True:
            while not exhausted and len(inflight) < limit:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                    break
                with session_scope() as session:
                    works = prepare(ctx, session, chunk)
                bar.update(len(chunk) - len(works))
                if works:
                    names = sorted({n for w in works for n in w.variants})
                    fut = submit(executor, [str(w.path) for w in works], names, weights=ctx.weights,
                                 pca_paths={n: p for n, p in pca.items() if n in names},
                                 max_pixels=ctx.settings.max_image_pixels)
                    inflight.append((works, fut))
            if not inflight:
                break
            works, fut = inflight.popleft()
            finish(ctx, works, _results(ctx, executor, works, fut, pca))
            bar.update(len(works))
            bar.set_postfix(done=ctx.summary.done, failed=ctx.summary.failed, refresh=False)
    finally:
        for _, fut in inflight:
            fut.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
        bar.close()


def _results(ctx, executor, works: list, fut, pca: dict[str, str]) -> list:
    """The batch's results; if encoding the batch raised (not a bad image: a bug or an input the model chokes
    on), its images are encoded one by one so that only the culprit fails (``encode-error``) and the run goes on.
    A dead worker process (``BrokenProcessPool``) stops the run: re-running resumes it."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return fut.result()
    except BrokenProcessPool:
        raise
    except Exception as exc:  # noqa: BLE001 - isolated below, reported per image
        log.warning("encoding a batch of %d failed (%s: %s); retrying its images one by one", len(works),
                    type(exc).__name__, exc)
    out = []
    for w in works:
        try:
            out.extend(submit(executor, [str(w.path)], sorted(w.variants), weights=ctx.weights,
                              pca_paths={n: p for n, p in pca.items() if n in w.variants},
                              max_pixels=ctx.settings.max_image_pixels).result())
        except BrokenProcessPool:
            raise
        except Exception as exc:  # noqa: BLE001
            out.append(EncodeResult(None, reason="encode-error", detail=f"{type(exc).__name__}: {exc}"))
    return out
