"""What a faster query costs in recall: the `benchmark groups` protocol (every grouped image a query, the rest of
its group the targets, every image the gallery, the paper's weighted recall) with the gallery encoded as ingest
stores it (shorter side 256, fp32: ``encode_gallery``, the same cached vectors as `vislink benchmark groups`) and
each query encoded by the search's own query path (``vislink.search.encoding.encode_query``) at another shorter
side and / or precision. The first row (256, fp32) must equal `vislink benchmark groups`' figures.

    python benchmarks/query_quality.py ../shared/data/paintings_linked/manifest.csv
    python benchmarks/query_quality.py MANIFEST --sides 256,224,192 --precisions fp32,bf16 --variant vgg16-pool5-sum

Also printed: the mean cosine of each image's query vector to its own stored vector (1.0: unchanged), and the
encoding time per query (the machine's load average with it: compare runs made in the same conditions).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--variant", default="vgg16-pool5-sum")
    parser.add_argument("--weights", default="vgg16-caffe-conv")
    parser.add_argument("--sides", default="256,224,192", help="query shorter sides (256: the stored size)")
    parser.add_argument("--precisions", default="fp32", help="fp32, bf16 (bf16 is emulated, slow, on CPUs "
                                                             "without AMX / AVX512-BF16)")
    parser.add_argument("--mirrored", action="store_true", help="also rank with the query's mirror, best of both "
                                                                "(the UI's 'mirrored' search)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ.setdefault("VISLINK_THREADS", str(args.threads))

    import torch

    torch.set_num_threads(args.threads)
    from vislink.encoder.images import REDUCED_SIDE, open_rgb
    from vislink.evaluation.gallery import encode_gallery, evaluate_gallery
    from vislink.evaluation.groups import read_manifest
    from vislink.evaluation.metrics import summarize, target_ranks
    from vislink.search.encoding import encode_query

    gallery = read_manifest(args.manifest)
    encoded = encode_gallery(gallery, [args.variant], weights=args.weights, progress=False)
    [official] = evaluate_gallery(gallery, encoded)
    matrix = encoded.vectors[args.variant]
    usable = encoded.usable
    row_of = {item: row for row, item in enumerate(usable)}
    queries = gallery.queries(usable)
    print(f"{len(usable)} images, {len(queries)} queries, {args.variant}, gallery at 256 fp32 "
          f"(`benchmark groups`: R@5 {official.metrics['R@5'] * 100:.1f}, mAP {official.metrics['mAP'] * 100:.1f}); "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'query side':>10} {'precision':>9} {'R@5':>6} {'R@10':>6} {'R@20':>6} {'mAP':>6} "
          f"{'cos to stored':>13} {'encode ms':>9}")
    for precision in args.precisions.split(","):
        for side in (int(s) for s in args.sides.split(",")):
            ranks, cosines, times = [], [], []
            for q in queries:
                image = open_rgb(gallery.items[q.query_id].path, min_side=REDUCED_SIDE)  # as search decodes
                started = time.perf_counter()
                vectors = encode_query(args.variant, [image], weights_name=args.weights, mirrored=args.mirrored,
                                       side=None if side == 256 else side, precision=precision)
                times.append(time.perf_counter() - started)
                cosines.append(float(vectors[0] @ matrix[row_of[q.query_id]]))
                scores = (matrix @ vectors.T).max(axis=1)
                ranking = [usable[i] for i in np.argsort(-scores, kind="stable")]
                ranks.append(target_ranks(ranking, q.targets, query=q.query_id))
            m = summarize(ranks, (5, 10, 20))
            print(f"{side:>10} {precision:>9} {m['R@5'] * 100:6.1f} {m['R@10'] * 100:6.1f} {m['R@20'] * 100:6.1f} "
                  f"{m['mAP'] * 100:6.1f} {statistics.mean(cosines):13.5f} {statistics.median(times) * 1000:9.0f}",
                  flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
