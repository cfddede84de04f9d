"""Does the ef calibration of `vislink index optimize` hold for queries it never saw? (issue #18, docs/index.md)

Fills a qdrant-edge collection (vislink's ``EdgeIndex``, the policy's HNSW m 16 / ef_construct 100 / int8) with N
real-shaped vectors (``benchmarks/real_vectors.py``'s model of a descriptor), runs ``optimize_collection`` as
`vislink index optimize` does (the build, then the recall@200 of 32 of the collection's own vectors at doubling ef
factors until ``VISLINK_INDEX_TARGET_RECALL``), and then measures what the calibrated collection answers to
**held-out queries** (sampled with another seed, never in the collection): recall@200 against numpy's exact top-200
and the p50 / p95 time of a top-200 query, next to the same queries at the policy's uncalibrated factor.

    python benchmarks/calibration.py --variant sscd-distilled --n 100000
    python benchmarks/calibration.py --n 1000000                      # vgg16-pool5-sum model
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def exact_top(data: np.ndarray, queries: np.ndarray, top: int) -> list[set[int]]:
    """numpy's exact top-``top`` ids of each query (computed once, before any search is timed)."""
    return [set(np.argpartition(-(data @ q), top)[:top].tolist()) for q in queries]


def held_out(index, collection: str, queries: np.ndarray, truths: list[set[int]],
             top: int) -> tuple[float, float, float]:
    """(recall@top against ``truths``, p50 ms, p95 ms) of ``queries`` one at a time through the approximate search;
    nothing else runs between two timed searches."""
    recalls, times = [], []
    for q, truth in zip(queries, truths):
        t0 = time.perf_counter()
        hits = index.query(collection, q, limit=top, exact=False, with_payload=False)
        times.append(1e3 * (time.perf_counter() - t0))
        recalls.append(len(truth & {h.id for h in hits}) / top)
    return float(np.mean(recalls)), float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="vgg16-pool5-sum", help="the descriptor the vector model is fitted on")
    parser.add_argument("--n", type=int, default=100_000, help="points in the collection")
    parser.add_argument("--queries", type=int, default=100, help="held-out queries")
    parser.add_argument("--recall-queries", type=int, default=32, help="own vectors the calibration measures on")
    parser.add_argument("--target", type=float, default=None, help="target recall (default: the settings')")
    parser.add_argument("--top", type=int, default=200)
    parser.add_argument("--real-npy", type=Path, help="fit the vector model on this (n, d) .npy matrix instead of "
                                                      "encoding the shared images")
    parser.add_argument("--rank", type=int, default=32, help="vector model: principal components of the mixture")
    parser.add_argument("--components", type=int, default=16, help="vector model: mixture components")
    parser.add_argument("--m", type=int, default=None, help="HNSW m (default: the settings')")
    parser.add_argument("--ef-construct", type=int, default=None, help="HNSW ef_construct (default: the settings')")
    parser.add_argument("--full-scan-kb", type=int, default=None, help="segments below this many KB of vectors are "
                                                                       "scanned (default: Qdrant's 10 MB)")
    args = parser.parse_args()

    import real_vectors as rv

    from vislink.index import Point
    from vislink.index.edge import EdgeIndex
    from vislink.index.policy import IndexPolicy, optimize_collection

    policy = IndexPolicy.from_settings()
    if args.target is not None:
        policy = dataclasses.replace(policy, target_recall=args.target)
    policy = dataclasses.replace(policy, m=args.m or policy.m, ef_construct=args.ef_construct or policy.ef_construct,
                                 full_scan_kb=args.full_scan_kb or policy.full_scan_kb)
    if args.real_npy:
        real = np.load(args.real_npy).astype(np.float32)
        model, label = rv.fit_model(real, rank=args.rank, components=args.components), f"{args.real_npy}"
    else:
        model, _, label = rv.load_model(args.variant, rank=args.rank, components=args.components)
    data, queries = model.sample(args.n, seed=0), model.sample(args.queries, seed=10_007)
    print(f"{args.n:,} x {data.shape[1]} vectors sampled from a model of {label}; {args.queries} held-out "
          f"queries; target recall@200 {policy.target_recall}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vislink-calibration-") as folder:
        index = EdgeIndex(Path(folder) / "edge", policy=policy)
        try:
            index.create_collection("c", data.shape[1])
            for start in range(0, args.n, 20_000):
                index.upsert("c", [Point(i, data[i]) for i in range(start, min(args.n, start + 20_000))])
            # mode "hnsw": the graph whatever the size (auto would scan exactly below the policy's threshold)
            report = optimize_collection(index, "c", policy, mode="hnsw", recall_queries=args.recall_queries)
            print(report.describe(), flush=True)
            calibrated = index.search_ef_factor("c")
            rows = [("policy's factor", None), ("calibrated", calibrated)] if calibrated else [("policy's", None)]
            print(f"\n| ef factor | ef for top-{args.top} | held-out recall@{args.top} | p50 ms | p95 ms |")
            print("| --- | ---: | ---: | ---: | ---: |")
            truths = exact_top(data, queries, args.top)
            for label_row, factor in rows:
                index.set_search_ef_factor("c", factor)
                recall, p50, p95 = held_out(index, "c", queries, truths, args.top)
                print(f"| {label_row} x{factor or policy.ef_factor:g} | {policy.ef_for(args.top, factor)} | "
                      f"{recall:.3f} | {p50:.2f} | {p95:.2f} |", flush=True)
            index.set_search_ef_factor("c", calibrated)
        finally:
            index.close()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
