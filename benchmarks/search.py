"""Search speed and recall of the index backends on real-shaped vectors (issue #18 item 1): numpy matmul (the
floor), qdrant-edge exact scan, qdrant-edge HNSW (several m / ef_construct, several ef), each with and without
int8 scalar quantization (rescored), and qdrant-client local mode up to 100k. One Markdown table row per
configuration: p50 / p95 latency one query at a time (top 200, and top 10), batch throughput, recall@10 and
recall@200 against numpy's exact top-k, build time, RAM and disk.

    python benchmarks/search.py                                   # 10k and 100k x 512 (vgg16-pool5-sum model)
    python benchmarks/search.py --sizes 1000000 --engines numpy,hnsw --hnsw 16/100 --quant none,int8
    python benchmarks/search.py --dim 2048 --sizes 10000,100000    # vgg16-pool5-sp2x2-sum model
    python benchmarks/search.py --variant sscd-distilled           # another 512-d model
    python benchmarks/search.py --random                           # the old isotropic random unit vectors
    python benchmarks/search.py --sizes 2000 --queries 5 --real-npy X.npy   # fit the model on any (n, d) matrix

Vectors: by default sampled from ``benchmarks/real_vectors.py``'s model (PCA + full-covariance Gaussian mixture
+ diagonal tail, fitted on vislink's own descriptors of paintings_linked + 600 wga_sample images, l2-normalised);
queries are sampled from the same model with another seed. ``python benchmarks/real_vectors.py --describe``
shows how close the samples are to the real vectors.

Figures depend on the machine and its load (each row prints the 1-minute load average when it started): compare
rows of one run, with numpy as the baseline.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from vislink.index import Point  # noqa: E402

COLL = "vislink_bench"
ENGINES = ("numpy", "hnsw", "edge-exact", "edge-exact-int8", "local")


def columns(top: int) -> tuple[str, ...]:
    return ("N", "dim", "engine", "index", "quantization", "ef", f"p50 ms top-{top}", f"p95 ms top-{top}",
            "p50 ms top-10", "batch q/s", "recall@10", f"recall@{top}", "upsert s", "build s", "RAM MB", "disk MB",
            "load")


# -- measuring -------------------------------------------------------------------------------------
def numpy_topk(data: np.ndarray, queries: np.ndarray, k: int, chunk: int = 50) -> np.ndarray:
    """Exact top-k ids, best first (queries in chunks: 200 x 1M float32 scores would be 800 MB at once)."""
    out = []
    k = min(k, len(data))
    for s in range(0, len(queries), chunk):
        scores = queries[s:s + chunk] @ data.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        out.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(out)


def recall(got: list[list[int]], want: np.ndarray, k: int) -> float:
    """Mean share of the exact top-k that the backend's first k results hold."""
    k = min(k, want.shape[1])
    return float(np.mean([len(set(g[:k]) & set(w[:k].tolist())) / k for g, w in zip(got, want)]))


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def disk_mb(path: Path) -> float:
    """Allocated size of a folder's files (st_blocks: sparse preallocated files count what they use)."""
    total = 0
    for p in Path(path).rglob("*"):
        if p.is_file():
            total += p.stat().st_blocks * 512
    return total / 2**20


@dataclass
class Row:
    n: int
    dim: int
    engine: str
    index: str
    quant: str = "-"
    ef: str = "-"
    values: dict = field(default_factory=dict)
    load: float = field(default_factory=lambda: os.getloadavg()[0])

    def markdown(self) -> str:
        v = self.values

        def f(key, fmt):
            return format(v[key], fmt) if v.get(key) is not None else "-"

        cells = [f"{self.n:,}", str(self.dim), self.engine, self.index, self.quant, self.ef,
                 f("p50", ".2f"), f("p95", ".2f"), f("p50_10", ".2f"), f("qps", ",.0f"), f("r10", ".3f"),
                 f("r200", ".3f"), f("upsert", ".1f"), f("build", ".1f"), f("ram", ",.0f"), f("disk", ",.0f"),
                 f"{self.load:.1f}"]
        return "| " + " | ".join(cells) + " |"


def measure(row: Row, search_one, search_batch, queries: np.ndarray, want: np.ndarray, top: int) -> Row:
    """p50 / p95 of one query at a time (top ``top`` and top 10), batch throughput, recall@10 / @top."""
    search_one(queries[0], top)  # warm-up: first touch of files, BLAS start-up
    lat, got = [], []
    for q in queries:
        start = time.perf_counter()
        got.append(search_one(q, top))
        lat.append(time.perf_counter() - start)
    lat10, got10 = [], []
    for q in queries:
        start = time.perf_counter()
        got10.append(search_one(q, 10))
        lat10.append(time.perf_counter() - start)
    start = time.perf_counter()
    batch = search_batch(queries, top)
    batch_s = time.perf_counter() - start
    row.values.update(p50=1000 * float(np.percentile(lat, 50)), p95=1000 * float(np.percentile(lat, 95)),
                      p50_10=1000 * float(np.percentile(lat10, 50)), qps=len(queries) / batch_s,
                      r10=recall(got10, want, 10), r200=recall(got, want, top))
    if recall(batch, want, top) < row.values["r200"] - 0.05:  # the batch path must find what single queries do
        row.index += f" (batch recall {recall(batch, want, top):.3f})"
    return row


def emit(row: Row) -> None:
    print(row.markdown(), flush=True)


# -- qdrant-edge through vislink's EdgeIndex (HNSW via the index policy, 22b0916) ----------------------
def bench_edge_hnsw(rows_out, n, dim, data, queries, want, top, folder: Path, *, hnsw: tuple[int, int], int8: bool,
                    efs: list[int], oversampling: float) -> None:
    """What vislink runs: EdgeIndex, a collection created exact, filled, then ``optimize(collection, mode)`` with
    an HNSW mode (the build); each ef is the policy's ef for a query (``ef_min=ef``, ``ef_for(limit)`` then gives
    ``max(limit, ef)``, the same clamp as Qdrant's own); full_scan_kb the policy's default (segments under 10 MB
    are scanned, as in vislink)."""
    from dataclasses import replace

    from vislink.index.edge import EdgeIndex
    from vislink.index.policy import IndexMode, IndexPolicy

    root = folder / f"edge-hnsw-{hnsw[0]}-{hnsw[1]}-{'int8' if int8 else 'f32'}"
    gc.collect()
    before = rss_mb()
    base = IndexPolicy(oversampling=oversampling)
    index = EdgeIndex(root, policy=base)
    try:
        index.create_collection(COLL, dim)
        upsert_s = upsert_all(index, data, 20_000)
        mode = IndexMode("hnsw", hnsw[0], hnsw[1], "int8" if int8 else None)
        start = time.perf_counter()
        index.optimize(COLL, mode)
        build_s = time.perf_counter() - start
        label = f"HNSW m {hnsw[0]}, ef_construct {hnsw[1]}"
        quant = f"int8, rescore, oversampling {oversampling:g}" if int8 else "none"
        for ef in efs:
            # ef_factor tiny: ef_for(limit) = max(limit, ef) for every limit (the sweep's ef, not the policy's rule)
            index.policy = replace(base, ef_min=int(ef), ef_factor=1e-9)

            def one(q, k):
                return [h.id for h in index.query(COLL, q, limit=k, exact=False)]

            def many(qs, k):
                return [[h.id for h in hits] for hits in index.query_batch(COLL, qs, limit=k, exact=False)]

            row = Row(n, dim, "qdrant-edge", label, quant, str(ef))
            measure(row, one, many, queries, want, top)
            row.values.update(upsert=upsert_s, build=build_s, ram=rss_mb() - before, disk=disk_mb(root / COLL))
            rows_out.append(row)
            emit(row)
    finally:
        index.delete_collection(COLL)
        index.close()
        shutil.rmtree(root, ignore_errors=True)


def upsert_all(index, data: np.ndarray, batch: int) -> float:
    start = time.perf_counter()
    for s in range(0, len(data), batch):
        index.upsert(COLL, [Point(i, data[i], {}) for i in range(s, min(s + batch, len(data)))])
    return time.perf_counter() - start


# -- qdrant-edge built directly: the one configuration EdgeIndex does not express -----------------
def bench_edge_exact_int8(rows_out, n, dim, data, queries, want, top, folder: Path, *, oversampling: float) -> None:
    """A full scan over int8-quantized vectors, the best candidates rescored with float32: EdgeIndex has no such
    mode (its exact collections keep no quantized vectors, and exact=True scans the originals), so the shard is
    built with qdrant_edge itself, with EdgeIndex's vector parameters (one unnamed cosine vector)."""
    import qdrant_edge as qe

    path = folder / "shard-exact-int8"
    gc.collect()
    before = rss_mb()
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=int(dim), distance=qe.Distance.Cosine, quantization_config=(
            qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True)),
            # m=0: Qdrant's "no graph"; indexing_threshold 1 KB so that optimize() turns every segment into an
            # indexed one, which is where the quantized vectors are built (indexing_threshold=0 never builds them).
            hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000)),
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1))
    shard = qe.EdgeShard.create(str(path), config)
    try:
        start = time.perf_counter()
        for s in range(0, len(data), 5000):
            shard.update(qe.UpdateOperation.upsert_points(
                [qe.Point(i, data[i], None) for i in range(s, min(s + 5000, len(data)))]))
        shard.flush()
        upsert_s = time.perf_counter() - start
        start = time.perf_counter()
        shard.optimize()
        build_s = time.perf_counter() - start
        # exact=False on a graph-less (m=0) segment is a full scan of the int8 vectors; exact=True would scan the
        # float32 originals whatever the quantization (Edge 0.9: its scores with rescore off are the float ones).
        params = qe.SearchParams(exact=False, quantization=qe.QuantizationSearchParams(rescore=True,
                                                                                     oversampling=oversampling))

        def request(q, k):
            return qe.QueryRequest(limit=int(k), query=qe.Query.Nearest(q.tolist()), params=params)

        def one(q, k):
            return [p.id for p in shard.query(request(q, k))]

        def many(qs, k):
            return [[p.id for p in hits] for hits in shard.query_batch(qe.QueryBatchRequest([request(q, k) for q in qs]))]

        # Does the exact scan read the int8 vectors at all? Without rescoring, int8 scores differ from float32 ones.
        raw = qe.SearchParams(exact=False, quantization=qe.QuantizationSearchParams(rescore=False))
        hits = shard.query(qe.QueryRequest(limit=10, query=qe.Query.Nearest(queries[0].tolist()), params=raw))
        diff = max(abs(p.score - float(data[p.id] @ queries[0] / np.linalg.norm(queries[0]))) for p in hits)
        print(f"<!-- exact int8 scan, N {n:,}: scores with rescore off differ from float32 by at most {diff:.1e}"
              f"{' (the scan read the original vectors, not int8)' if diff < 1e-6 else ' (the scan read int8 vectors)'} -->", flush=True)
        row = Row(n, dim, "qdrant-edge", "int8 scan, no graph (qdrant_edge shard, m 0)", f"int8, rescore, oversampling {oversampling:g}")
        measure(row, one, many, queries, want, top)
        row.values.update(upsert=upsert_s, build=build_s, ram=rss_mb() - before, disk=disk_mb(path))
        rows_out.append(row)
        emit(row)
    finally:
        shard.close()
        shutil.rmtree(path, ignore_errors=True)


def bench_vislink_index(rows_out, n, dim, data, queries, want, top, index, engine: str, label: str,
                        folder: Path | None, batch: int) -> None:
    """An index through vislink's VectorIndex interface (EdgeIndex, QdrantClientIndex)."""
    gc.collect()
    before = rss_mb()
    index.create_collection(COLL, dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # local mode: "not recommended for more than 20,000 points", we know
        upsert_s = upsert_all(index, data, batch)
    build_s = None
    if engine == "qdrant-edge":
        start = time.perf_counter()
        index.optimize(COLL)  # merge segments only: EdgeIndex's collections have no graph
        build_s = time.perf_counter() - start

    def one(q, k):
        return [h.id for h in index.query(COLL, q, limit=k, exact=True)]

    def many(qs, k):
        return [[h.id for h in hits] for hits in index.query_batch(COLL, qs, limit=k, exact=True)]

    row = Row(n, dim, engine, label, "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # local mode: "performs exact search", we know
        measure(row, one, many, queries, want, top)
    row.values.update(upsert=upsert_s, build=build_s, ram=rss_mb() - before,
                      disk=disk_mb(folder) if folder else None)
    rows_out.append(row)
    emit(row)


def bench_numpy(rows_out, n, dim, data, queries, want, top) -> None:
    row = Row(n, dim, "numpy", "exact matmul (float32)", "none")

    def one(q, k):
        return numpy_topk(data, q[None, :], k)[0].tolist()

    def many(qs, k):
        return numpy_topk(data, qs, k).tolist()

    measure(row, one, many, queries, want, top)
    row.values.update(ram=data.nbytes / 2**20)
    rows_out.append(row)
    emit(row)


# -- the run ---------------------------------------------------------------------------------------
def parse_hnsw(text: str) -> list[tuple[int, int]]:
    out = []
    for part in filter(None, text.split(",")):
        m, _, efc = part.partition("/")
        out.append((int(m), int(efc or 100)))
    return out


def ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="points, comma-separated (default 10000,100000)")
    parser.add_argument("--n", type=int, default=None, help="one size (the old option; same as --sizes N)")
    parser.add_argument("--dim", type=int, default=512, choices=(512, 2048),
                        help="512 (vgg16-pool5-sum model) or 2048 (vgg16-pool5-sp2x2-sum model); any with --random")
    parser.add_argument("--variant", default=None, help="the descriptor the vector model is fitted on")
    parser.add_argument("--random", action="store_true", help="isotropic random unit vectors (HNSW's worst case)")
    parser.add_argument("--random-dim", type=int, default=None, help="dimension with --random (default --dim)")
    parser.add_argument("--real-npy", type=Path, default=None,
                        help="fit the vector model on this (n, d) .npy matrix instead of encoding the shared images")
    parser.add_argument("--rank", type=int, default=32, help="vector model: principal components of the mixture")
    parser.add_argument("--components", type=int, default=16, help="vector model: mixture components")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--top", type=int, default=200, help="k of the top-k queries (recall@10 is also reported)")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"any of {','.join(ENGINES)}")
    parser.add_argument("--hnsw", default="16/100,32/200", help="HNSW builds as m/ef_construct (default 16/100,32/200)")
    parser.add_argument("--hnsw-min", type=int, default=0, help="build HNSW only from this N on (default: all sizes)")
    parser.add_argument("--ef", default="64,128,256,512,1024", help="HNSW search ef values (default 64,...,1024)")
    parser.add_argument("--quant", default="none,int8", help="none, int8 or both (default none,int8)")
    parser.add_argument("--oversampling", type=float, default=2.0,
                        help="int8: candidates fetched per result before rescoring with float32 (default 2)")
    parser.add_argument("--local-max", "--local-n", dest="local_max", type=int, default=100_000,
                        help="qdrant-client local mode only up to this N (default 100,000; 0 skips it)")
    parser.add_argument("--local-folder", type=Path, default=None,
                        help="local mode's files there (default :memory:, its search is the same numpy scan)")
    parser.add_argument("--folder", type=Path, default=None, help="where the shards go (default: system temp)")
    args = parser.parse_args(argv)
    # A benchmark stopped with kill (SIGTERM) still removes its shards (GBs at 1M): SystemExit runs the finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sizes = [args.n] if args.n else ints(args.sizes)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engines {unknown}: use {','.join(ENGINES)}")
    quants = [q.strip() for q in args.quant.split(",") if q.strip()]
    if set(quants) - {"none", "int8"}:
        parser.error("--quant takes none and/or int8")
    efs = ints(args.ef)

    if args.random:
        dim = args.random_dim or args.dim
        what = f"isotropic random unit vectors ({dim}-d)"
        sample = None
    else:
        import real_vectors as rv

        if args.real_npy:
            real = np.load(args.real_npy).astype(np.float32)
            label = f"{len(real)} vectors of {args.real_npy}"
        else:
            variant = args.variant or ("vgg16-pool5-sp2x2-sum" if args.dim == 2048 else "vgg16-pool5-sum")
            _, real, label = rv.load_model(variant, rank=args.rank, components=args.components)
        model = rv.fit_model(real, rank=args.rank, components=args.components)
        dim = model.dim
        what = f"sampled from a model of {label}: {model.describe_model()}"
        sample = model.sample

    folder = Path(tempfile.mkdtemp(prefix="vislink-bench-", dir=args.folder))
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"# benchmarks/search.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"vectors: {what}; queries from the same model, another seed; {args.queries} queries, top {args.top}")
    print(f"machine: {os.cpu_count()} CPUs, {mem_gb:.0f} GiB RAM, load average at start "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; shards in {folder}")
    print("RAM MB: the process's RSS growth from before the upsert to after the queries (numpy: the matrix); "
          "disk MB: allocated size of the collection folder; build s: optimize() (HNSW graph, quantized vectors)")
    print()
    header = columns(args.top)
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " if i < 6 else " ---: " for i in range(len(header))) + "|", flush=True)
    rows: list[Row] = []
    try:
        for n in sizes:
            if sample is None:
                data = rv_random(n, dim, 0)
                queries = rv_random(args.queries, dim, 1)
            else:
                data, queries = sample(n, seed=0), sample(args.queries, seed=10_007)
            want = numpy_topk(data, queries, args.top)
            if "numpy" in engines:
                bench_numpy(rows, n, dim, data, queries, want, args.top)
            if "hnsw" in engines and n >= args.hnsw_min:
                for hnsw in parse_hnsw(args.hnsw):
                    for quant in quants:
                        bench_edge_hnsw(rows, n, dim, data, queries, want, args.top, folder, hnsw=hnsw,
                                        int8=quant == "int8", efs=efs, oversampling=args.oversampling)
            if "edge-exact" in engines:
                from vislink.index.edge import EdgeIndex

                edge = EdgeIndex(folder / "edge")  # the default policy: collections are created exact
                try:
                    bench_vislink_index(rows, n, dim, data, queries, want, args.top, edge, "qdrant-edge",
                                        "exact scan", folder / "edge" / COLL, 20_000)
                finally:
                    edge.delete_collection(COLL)
                    edge.close()
            if "edge-exact-int8" in engines:
                bench_edge_exact_int8(rows, n, dim, data, queries, want, args.top, folder,
                                      oversampling=args.oversampling)
            if "local" in engines and n <= args.local_max:
                from vislink.index.qdrant import QdrantClientIndex

                local_folder = (Path(tempfile.mkdtemp(prefix="vislink-bench-local-", dir=args.local_folder))
                                if args.local_folder else None)
                local = QdrantClientIndex(str(local_folder) if local_folder else ":memory:")
                try:
                    bench_vislink_index(rows, n, dim, data, queries, want, args.top, local, "qdrant-client local",
                                        "exact (numpy in Python)" + ("" if local_folder else ", :memory:"),
                                        local_folder, 1000)
                finally:
                    local.close()
                    if local_folder:
                        shutil.rmtree(local_folder, ignore_errors=True)
            del data
            gc.collect()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)


def rv_random(n: int, dim: int, seed: int) -> np.ndarray:
    from real_vectors import random_unit

    return random_unit(n, dim, seed)


if __name__ == "__main__":
    main()
