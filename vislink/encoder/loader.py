"""``Encoder.encode_files``: decode and resize in worker threads, bucket by shape, forward full buckets.

Threads rather than processes: Pillow releases the GIL while decoding and resizing, nothing needs
pickling, and it behaves the same under fork, spawn, Streamlit and task-queue workers. Files are decoded
with ``open_rgb`` for the variants' resize rules (a big one reduced, ``images.decode_side``), as ingest and
search decode them, so a file gives exactly the descriptor that a search with the same file as query gives.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vislink.encoder.images import open_rgb, prepare
from vislink.errors import BadImage

log = logging.getLogger(__name__)


def _load(path, rules: set[str], max_pixels: int | None):
    try:
        return prepare(open_rgb(path, max_pixels=max_pixels, rules=rules), rules)
    except BadImage as exc:
        return exc
    except MemoryError as exc:
        return BadImage(path, "too-large", "out of memory while decoding")


def encode_files(encoder, paths: Sequence[Path | str], specs, *, pca=None, batch_size: int = 16,
                 workers: int = 2, progress: bool = True,
                 max_pixels: int | None = None) -> Iterator[tuple[int, dict[str, np.ndarray] | BadImage]]:
    from tqdm.auto import tqdm

    from vislink.encoder.backbones import bucket_key

    rules = {s.resize_rule for s in specs}
    # Enough decoded images in flight to fill a batch while the previous one computes, bounded in memory.
    window = max(2 * batch_size, 2 * workers)
    max_pending = 4 * batch_size
    buckets: dict[tuple, list[tuple[int, dict]]] = defaultdict(list)
    pending = 0
    bar = tqdm(total=len(paths), disable=not progress, unit="img", desc="encoding")

    def run(bucket: list[tuple[int, dict]]):
        rows = encoder.encode_prepared([arrays for _, arrays in bucket], specs, pca)
        bar.update(len(bucket))
        for j, (index, _) in enumerate(bucket):
            yield index, {name: matrix[j] for name, matrix in rows.items()}

    def results() -> Iterator[tuple[int, dict | BadImage]]:
        if workers <= 0:
            for i, path in enumerate(paths):
                yield i, _load(path, rules, max_pixels)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vislink-decode") as pool:
            queue: deque[tuple[int, Future]] = deque()
            todo = iter(enumerate(paths))
            try:
                for i, path in todo:
                    queue.append((i, pool.submit(_load, path, rules, max_pixels)))
                    if len(queue) >= window:
                        break
                while queue:
                    i, future = queue.popleft()
                    for j, path in todo:  # keep the window full before waiting
                        queue.append((j, pool.submit(_load, path, rules, max_pixels)))
                        break
                    yield i, future.result()
            finally:
                for _, future in queue:  # the consumer stopped early: drop what was not started
                    future.cancel()

    try:
        for index, item in results():
            if isinstance(item, BadImage):
                bar.update(1)
                yield index, item
                continue
            key = bucket_key(item)
            buckets[key].append((index, item))
            pending += 1
            if len(buckets[key]) >= batch_size:
                pending -= len(buckets[key])
                yield from run(buckets.pop(key))
            elif pending > max_pending:
                # Many shapes, few of each: run the largest bucket rather than hold images indefinitely.
                largest = max(buckets, key=lambda k: len(buckets[k]))
                pending -= len(buckets[largest])
                yield from run(buckets.pop(largest))
        for key in list(buckets):
            yield from run(buckets.pop(key))
    finally:
        bar.close()
