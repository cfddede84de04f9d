"""Detail search cost (issue #15 item 6, docs/detail.md): what a -regions variant stores per image, what its
regions cost at ingest, and how long a region query takes on the qdrant-edge index (exact MaxSim scan) at N images.

    python benchmarks/detail.py                            # 10,000 synthetic images, 26 regions each, 512-d
    python benchmarks/detail.py --n 2000 --encode 0        # a quick look, no model
    VISLINK_HOME=... python benchmarks/detail.py --weights vgg16-caffe-conv --encode 20   # also the encoding cost

- bytes: the global vector, the regions (float32) and the region_boxes payload, per image as sent to the index;
  the index folder's size on disk after the upsert is printed too.
- ingest: the index upsert time per image; with ``--encode K``, the time to encode K real-size random images
  (shorter side 256 input) as vgg16-pool5-sum and as vgg16-pool5-sum-regions (the regions share the forward pass).
- query: one region vector (``--region``) and one auto query (the query's 26 regions), both exact, median of
  ``--queries`` runs; numpy's brute force MaxSim beside it as the floor, with its top-10 checked against Edge's.

Synthetic regions are random unit vectors: the timing of an exact scan does not depend on the values.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vislink.index import Point  # noqa: E402

COLL = "vislink_bench_regions"


def unit(rng, shape) -> np.ndarray:
    x = rng.standard_normal(shape, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def encode_cost(weights: str, k: int) -> dict:
    from PIL import Image

    from vislink.encoder import encode_variants
    from vislink.encoder.regions import encode_regions

    rng = np.random.default_rng(1)
    images = [Image.fromarray((rng.random((256, 384, 3)) * 255).astype("uint8")) for _ in range(k)]
    encode_variants(images[:1], ["vgg16-pool5-sum"], weights=weights)  # load the model first
    t = time.perf_counter()
    encode_variants(images, ["vgg16-pool5-sum"], weights=weights, batch_size=1)
    plain = (time.perf_counter() - t) / k
    t = time.perf_counter()
    found = encode_regions(images, "vgg16-pool5-sum-regions", weights=weights)
    regional = (time.perf_counter() - t) / k
    return {"encode_ms_plain": round(plain * 1000, 1), "encode_ms_regions": round(regional * 1000, 1),
            "regions_per_image": len(found[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="images in the index")
    parser.add_argument("--regions", type=int, default=26, help="regions per image (26: a 256 x 384 input)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--encode", type=int, default=0, help="also time encoding this many images (needs weights)")
    parser.add_argument("--weights", default="vgg16-caffe-conv")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from vislink.encoder.regions import BOXES_FIELD
    from vislink.index.edge import EdgeIndex

    rng = np.random.default_rng(0)
    boxes = [[i * 7, i * 5, 160, 160] for i in range(args.regions)]
    payload_bytes = len(json.dumps({BOXES_FIELD: boxes}))
    out: dict = {"n": args.n, "regions": args.regions, "dim": args.dim,
                 "bytes_per_image": {"global": 4 * args.dim, "regions": 4 * args.dim * args.regions,
                                     "boxes_payload_json": payload_bytes,
                                     "total": 4 * args.dim * (args.regions + 1) + payload_bytes}}
    root = Path(tempfile.mkdtemp(prefix="vislink-bench-detail-"))
    try:
        index = EdgeIndex(root, search_threads=args.threads)
        index.create_collection(COLL, args.dim, payload_indexes={"image_id": "integer"}, regions=True)
        chunk, upsert_s = 500, 0.0
        referee = np.empty((args.n, args.regions, args.dim), dtype=np.float32) if args.n * args.regions <= 6e6 else None
        for start in range(0, args.n, chunk):
            ids = range(start, min(args.n, start + chunk))
            regions = unit(rng, (len(ids), args.regions, args.dim))
            if referee is not None:
                referee[start:start + len(ids)] = regions
            points = [Point(i, regions[k, 0], {"image_id": i, BOXES_FIELD: boxes}) for k, i in enumerate(ids)]
            t = time.perf_counter()
            index.upsert(COLL, points, regions=list(regions))
            upsert_s += time.perf_counter() - t
        out["upsert_ms_per_image"] = round(1000 * upsert_s / args.n, 2)
        out["index_folder_bytes_per_image"] = round(folder_bytes(root) / args.n)
        queries = unit(rng, (args.queries, args.regions, args.dim))
        one, auto, floor = [], [], []
        for q in queries:
            t = time.perf_counter()
            hits = index.query_regions(COLL, q[:1], limit=args.limit)[0]
            one.append(time.perf_counter() - t)
            t = time.perf_counter()
            index.query_regions(COLL, q, limit=args.limit)
            auto.append(time.perf_counter() - t)
            if referee is not None:
                t = time.perf_counter()
                scores = (referee @ q[0]).max(axis=1)
                top = np.argsort(-scores)[:10]
                floor.append(time.perf_counter() - t)
                if [h.id for h in hits[:10]] != [int(i) for i in top]:
                    out["edge_top10_matches_numpy"] = False
        out.setdefault("edge_top10_matches_numpy", True if floor else None)
        out["query_ms_one_region"] = round(1000 * statistics.median(one), 1)
        out["query_ms_auto"] = round(1000 * statistics.median(auto), 1)
        out["numpy_ms_one_region"] = round(1000 * statistics.median(floor), 1) if floor else None
        index.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.encode:
        out.update(encode_cost(args.weights, args.encode))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
