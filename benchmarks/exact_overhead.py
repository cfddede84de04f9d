"""Where the time of one exact query goes (issue #18 item 2): ``EdgeIndex.query`` against the raw qdrant-edge
call and a numpy matmul, at 40,000 x 2048 by default (the vgg16-pool5-sp2x2-sum shape), top 200, one query at a
time. Prints the median (p50) of each step over ``--queries`` queries:

- numpy: ``X @ q`` and an argpartition for the top 200 (the floor of a brute-force scan);
- qdrant-edge raw: ``shard.query`` with a ready Python list, without payloads (the engine alone), with payloads,
  through ``query_batch``, and with ``exact=False`` (on a collection without a graph: also a scan);
- vislink's steps: the query vector to a list, the request objects, the engine call, the hits built;
- ``EdgeIndex.query`` as stages call it, and ``query_batch`` of all the queries at once.

    python benchmarks/exact_overhead.py                         # 40,000 x 2048, 30 queries
    python benchmarks/exact_overhead.py --n 10000 --dim 512     # smaller
    python benchmarks/exact_overhead.py --folder /dev/shm/x     # the collection in RAM (tmpfs)

Figures depend on the machine and its load (printed): compare the rows of one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NAME = "vislink_bench_v"


def _payload(i: int) -> dict:
    """A payload shaped like an ingested image's (vislink.ingest.pipeline writes these fields)."""
    return {"image_id": i, "collection": "bench", "artist": f"Artist {i % 997}", "title": f"Painting number {i}",
            "year_start": 1400 + i % 400, "year_end": 1400 + i % 400 + 5, "school": ("Italian", "Flemish")[i % 2],
            "source_ref": f"/data/images/{i:08d}.jpg"}


def _p50(fn, queries) -> tuple[float, float]:
    """(wall p50, CPU per query) in ms. The CPU time (every thread of this process) hardly depends on how many
    other jobs share the cores; the wall time does."""
    times = []
    c0 = time.process_time()
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), 1e3 * (time.process_time() - c0) / len(queries)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40_000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None, help="Edge's search threads (default: its own, per core)")
    ap.add_argument("--folder", type=Path, default=None, help="Where to build the collection (default: a temp dir)")
    args = ap.parse_args(argv)

    import qdrant_edge as qe
    from threadpoolctl import threadpool_limits

    from vislink.index import Hit, Point
    from vislink.index.edge import EdgeIndex
    from vislink.index.payload import PAYLOAD_INDEXES
    from vislink.index.policy import IndexPolicy

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    batch = queries
    queries = list(queries)  # one array object per query (the lists below are keyed by it)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="vislink-overhead-"))
    print(f"{args.n} x {args.dim}, top {args.limit}, {args.queries} queries one at a time; folder {folder}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    index = EdgeIndex(folder, search_threads=args.threads, policy=IndexPolicy())
    try:
        t0 = time.perf_counter()
        if not index.collection_exists(NAME) or index.count(NAME) != args.n:  # --folder kept from an earlier run
            index.delete_collection(NAME)
            index.create_collection(NAME, args.dim, payload_indexes=PAYLOAD_INDEXES)
            for start in range(0, args.n, 1000):
                index.upsert(NAME, [Point(i + 1, x[i], _payload(i + 1))
                                    for i in range(start, min(start + 1000, args.n))])
            index.optimize(NAME)
        shard = index._shard(NAME).shard  # the raw engine, for the comparison only
        print(f"built in {time.perf_counter() - t0:.0f} s; {shard.info().segments_count} segments")
        limit = args.limit
        lists = {id(q): q.tolist() for q in queries}
        exact = qe.SearchParams(exact=True)
        exact_ignore = qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))

        def raw(q, payload=False, params=exact, batch=False):
            req = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(lists[id(q)]), params=params,
                                  with_payload=payload)
            return shard.query_batch(qe.QueryBatchRequest([req]))[0] if batch else shard.query(req)

        def numpy_top(q):
            s = x @ q
            top = np.argpartition(-s, limit)[:limit]
            return top[np.argsort(-s[top])]

        # Warm up (page cache, thread pools) before measuring.
        for q in queries[:3]:
            raw(q, payload=True)
            numpy_top(q)
            index.query(NAME, q, limit=limit)
        rows: list[tuple[str, tuple[float, float]]] = []
        for _round in range(2):  # two interleaved rounds: load changes between rows show as a spread
            with threadpool_limits(1):  # the engine scans one segment on one thread: the same work on one core
                one_thread = _p50(numpy_top, queries)
            rows += [
                ("numpy matmul + argpartition", _p50(numpy_top, queries)),
                ("numpy, one BLAS thread", one_thread),
                ("edge raw: query, no payload (the engine)", _p50(raw, queries)),
                ("edge raw: query, with payload", _p50(lambda q: raw(q, payload=True), queries)),
                ("edge raw: query_batch of 1, with payload", _p50(lambda q: raw(q, payload=True, batch=True), queries)),
                ("edge raw: exact=False (no graph), with payload",
                 _p50(lambda q: raw(q, payload=True, params=qe.SearchParams()), queries)),
                ("edge raw: exact=False (no graph), no payload", _p50(lambda q: raw(q, params=qe.SearchParams()),
                                                                       queries)),
                ("edge raw: exact=True + quantization ignore, with payload",
                 _p50(lambda q: raw(q, payload=True, params=exact_ignore), queries)),
                ("vislink step: vector to list", _p50(lambda q: np.asarray(q, dtype=np.float32).tolist(), queries)),
                ("vislink step: request objects", _p50(lambda q: qe.QueryBatchRequest([qe.QueryRequest(
                    limit=limit, offset=0, query=qe.Query.Nearest(lists[id(q)]), filter=None, params=exact,
                    with_payload=True)]), queries)),
            ]
            points = raw(queries[0], payload=True)
            rows.append(("vislink step: 200 hits built (payload dicts)",
                         _p50(lambda q: [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in points],
                              queries)))
            rows.append(("EdgeIndex.query, with_payload=False (ids and scores)",
                         _p50(lambda q: index.query(NAME, q, limit=limit, with_payload=False), queries)))
            rows.append(("EdgeIndex.query (all of it)", _p50(lambda q: index.query(NAME, q, limit=limit), queries)))
            t0, c0 = time.perf_counter(), time.process_time()
            index.query_batch(NAME, batch, limit=limit)
            rows.append((f"EdgeIndex.query_batch of {len(queries)}, per query",
                         (1e3 * (time.perf_counter() - t0) / len(queries),
                          1e3 * (time.process_time() - c0) / len(queries))))
        half = len(rows) // 2
        print("| step | wall p50 ms, round 1 / 2 | CPU ms per query, round 1 / 2 |\n| --- | ---: | ---: |")
        for (what, a), (_, b) in zip(rows[:half], rows[half:]):
            print(f"| {what} | {a[0]:.2f} / {b[0]:.2f} | {a[1]:.2f} / {b[1]:.2f} |")
        for k, unit in ((0, "wall p50"), (1, "CPU")):
            floor = min(rows[0][1][k], rows[half][1][k])
            ours = min(rows[half - 2][1][k], rows[-2][1][k])
            print(f"EdgeIndex.query / numpy ({unit}, best round): {ours / floor:.2f}x")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        index.close()
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
