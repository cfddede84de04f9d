"""Search speed of the index backends on random descriptors: numpy matmul (the floor), qdrant-edge
(exact scan, then HNSW after optimize), qdrant-client local mode. Prints ms/query for one query at a
time and for a batch, and checks that every exact backend finds numpy's top-k.

    python benchmarks/search.py                       # 40,000 x 2048-d, 200 queries, top 200
    python benchmarks/search.py --n 5000 --local-n 2000 --no-optimize   # a quick look

Figures depend on the machine and its load: rerun the baseline (numpy) in the same run to compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vislink.index import Point, Range  # noqa: E402

COLL = "vislink_bench_pool5"


def random_unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def numpy_topk(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ data.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def timed(fn, repeat: int = 1):
    start = time.perf_counter()
    for _ in range(repeat):
        result = fn()
    return (time.perf_counter() - start) / repeat, result


def row(name: str, seconds: float, per: int, note: str = "") -> None:
    print(f"  {name:<44} {1000 * seconds / per:9.2f} ms/query  {per / seconds:9.1f} queries/s  {note}", flush=True)


def agreement(ids: list[list[int]], want: np.ndarray) -> float:
    """Fraction of numpy's top-k that the backend found (1.0 for an exact backend)."""
    return float(np.mean([len(set(got) & set(w.tolist())) / len(w) for got, w in zip(ids, want)]))


def fill(index, data: np.ndarray, batch: int = 1000) -> float:
    index.create_collection(COLL, data.shape[1], payload_indexes={"artist": "keyword", "year_start": "integer"})
    start = time.perf_counter()
    for s in range(0, len(data), batch):
        index.upsert(COLL, [Point(i, data[i], {"artist": f"a{i % 50}", "year_start": 1300 + i % 500})
                            for i in range(s, min(s + batch, len(data)))])
    return time.perf_counter() - start


def bench_index(label: str, index, data: np.ndarray, queries: np.ndarray, want: np.ndarray, k: int,
                optimize: bool) -> None:
    fill_s = fill(index, data)
    print(f"{label}: {len(data):,} points upserted in {fill_s:.1f} s ({len(data) / fill_s:,.0f} points/s)", flush=True)
    index.query(COLL, queries[0], limit=k, exact=True)  # warm up (first touch of the files)
    one_s, hits = timed(lambda: [index.query(COLL, q, limit=k, exact=True) for q in queries])
    row("one query at a time, exact", one_s, len(queries), f"top-{k} agreement {agreement([[h.id for h in r] for r in hits], want):.4f}")
    batch_s, hits = timed(lambda: index.query_batch(COLL, queries, limit=k, exact=True))
    row(f"query_batch of {len(queries)}, exact", batch_s, len(queries),
        f"top-{k} agreement {agreement([[h.id for h in r] for r in hits], want):.4f}")
    flt = {"year_start": Range(gte=1500, lte=1599)}
    flt_s, _ = timed(lambda: index.query_batch(COLL, queries, limit=k, flt=flt, exact=True))
    row("query_batch, exact, filter year 1500-1599 (20%)", flt_s, len(queries))
    if optimize and hasattr(index, "optimize") and index.name == "qdrant-edge":
        opt_s, _ = timed(lambda: index.optimize(COLL))
        print(f"  optimize ({'merge segments, build HNSW' if index.hnsw else 'merge segments'}): {opt_s:.1f} s",
              flush=True)
        exact_s, _ = timed(lambda: index.query_batch(COLL, queries, limit=k, exact=True))
        row("query_batch, exact, after optimize", exact_s, len(queries))
        one_s, hits = timed(lambda: [index.query(COLL, q, limit=k) for q in queries])
        row("one query at a time, exact=False", one_s, len(queries),
            f"top-{k} recall {agreement([[h.id for h in r] for r in hits], want):.4f}")
        batch_s, hits = timed(lambda: index.query_batch(COLL, queries, limit=k))
        row(f"query_batch of {len(queries)}, exact=False", batch_s, len(queries),
            f"top-{k} recall {agreement([[h.id for h in r] for r in hits], want):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40_000, help="points (default 40,000)")
    parser.add_argument("--dim", type=int, default=2048, help="dimension (default 2048)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--top", type=int, default=200)
    parser.add_argument("--local-n", type=int, default=10_000,
                        help="points for qdrant-client local mode, which upserts slowly (default 10,000; 0 skips it)")
    parser.add_argument("--local-folder", type=Path, default=Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None,
                        help="where local mode's files go (default /dev/shm where it exists: it commits one SQLite "
                             "row per point, ~30 ms each on a slow disk, and searches from memory wherever its files are)")
    parser.add_argument("--folder", type=Path, default=None,
                        help="where the indexes go (default: a new folder under the system temp folder)")
    parser.add_argument("--no-optimize", dest="optimize", action="store_false", help="skip qdrant-edge's optimize()")
    parser.add_argument("--hnsw", action="store_true",
                        help="let qdrant-edge's optimize() build an HNSW graph (slow: 24 min for the defaults on 2 busy cores)")
    args = parser.parse_args()

    data = random_unit(args.n, args.dim, 0)
    queries = random_unit(args.queries, args.dim, 1)
    folder = Path(tempfile.mkdtemp(prefix="vislink-bench-", dir=args.folder))
    print(f"{args.n:,} x {args.dim}-d random unit vectors, {args.queries} queries, top {args.top}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; indexes in {folder}", flush=True)
    try:
        print("numpy matmul (float32, brute force):")
        numpy_topk(data, queries[:2], args.top)  # warm up BLAS
        one_s, _ = timed(lambda: [numpy_topk(data, q[None, :], args.top) for q in queries])
        row("one query at a time", one_s, len(queries))
        batch_s, want = timed(lambda: numpy_topk(data, queries, args.top))
        row(f"batch of {len(queries)}", batch_s, len(queries))

        from vislink.index.edge import EdgeIndex

        edge = EdgeIndex(folder / "edge", hnsw=args.hnsw)
        try:
            bench_index("qdrant-edge", edge, data, queries, want, args.top, args.optimize)
        finally:
            edge.close()
        # What a process pays to take the folder over from another one (open per call, as a shared lock
        # between processes would need): open the folder and its shard, then one query.
        def reopen_and_query():
            index = EdgeIndex(folder / "edge")
            try:
                return index.query(COLL, queries[0], limit=args.top)
            finally:
                index.close()

        reopen_s, _ = timed(reopen_and_query)
        print(f"  reopen the index and run one query: {1000 * reopen_s:.0f} ms", flush=True)

        if args.local_n:
            from vislink.index.qdrant import QdrantClientIndex

            local_data = data[:args.local_n]
            local_want = numpy_topk(local_data, queries, args.top)
            print(f"(qdrant-client local mode gets {args.local_n:,} points: it writes one SQLite row per point)")
            local_folder = Path(tempfile.mkdtemp(prefix="vislink-bench-local-", dir=args.local_folder))
            print(f"(local mode's files in {local_folder})")
            local = QdrantClientIndex(str(local_folder))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "local mode performs exact search": we know
                    bench_index("qdrant-client local mode", local, local_data, queries, local_want, args.top, False)
            finally:
                local.close()
                shutil.rmtree(local_folder, ignore_errors=True)
            numpy_small_s, _ = timed(lambda: numpy_topk(local_data, queries, args.top))
            row(f"numpy batch on the same {args.local_n:,} points", numpy_small_s, len(queries))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
