"""Search latency at 40,000 images (issue #18 item 3): the CLI's cold start, and a warm upload search as the UI and
the API run it (JPEG bytes in, the first page of 20 results with thumbnails out), with its stages.

1. Cold start, each command in a fresh interpreter (wall time from the parent, peak RSS, whether torch was
   imported): `vislink --help`, `vislink search --image-id ID`, `vislink search IMAGE` on vgg16-pool5-sum and on
   sscd-distilled.
2. Warm upload search, p50 / p95 over --queries JPEGs (1200 x 900), plain and mirrored, for vgg16-pool5-sum at the
   stored query side 256 and at --sides, and for sscd-distilled: decode (``services.decode_image``), resize,
   encode (``search.encoding.encode_query``: both mirrored views in one batch), index query (the UI's block of 200),
   result building (SQL join: the rest of ``services.search_page``), thumbnails (``ui.thumbs``, cold the first time
   a result is shown); "total" is ``search_page`` + the page's SQL + thumbnails, measured as one.

The collection is ``benchmarks/ui_search.py``'s synthetic one (real SQLite rows and JPEG files, random clustered
vectors in the embedded qdrant-edge index) with both variants. VGG16 needs its real weights for a real cold start:
``--weights-dir`` names a folder holding installed ones (`vislink weights install vgg16-caffe-conv`), linked into
the data folder; without it the seeded random weights are used (same network, same forward-pass time, no file to
load). The machine's load average is printed before and after: other work on the 2 cores slows every figure.

    python benchmarks/latency.py --home /tmp/b40k --weights-dir vislink-data/weights   # build once, then reuse
    python benchmarks/latency.py --images 5000 --queries 5                             # a quick look
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

VGG, SSCD = "vgg16-pool5-sum", "sscd-distilled"

# The CLI in a fresh interpreter; reports its exit code, peak RSS and whether torch was imported.
CHILD = textwrap.dedent("""
    import json, sys
    sys.argv = ["vislink", *sys.argv[1:]]
    from vislink.cli import main
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    # VmHWM: this process's own peak (getrusage's maxrss would carry the parent's peak across the fork).
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print("CHILD " + json.dumps({"code": code, "torch": "torch" in sys.modules, "rss_mb": hwm / 1024}))
""")


def cold(args: list[str], env: dict, repeat: int) -> dict:
    walls, report = [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env)
        walls.append(time.perf_counter() - started)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("CHILD ")]
        if not lines or json.loads(lines[-1][6:])["code"] != 0:
            raise SystemExit(f"vislink {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        report = json.loads(lines[-1][6:])
    return {"wall": statistics.median(walls), **report}


STAGES = ("decode", "resize", "encode", "index", "results", "sql+thumbs", "total")


def set_query_side(side: int | None) -> None:
    from vislink.config import reset_settings

    if side is None:
        os.environ.pop("VISLINK_QUERY_SIDE", None)
    else:
        os.environ["VISLINK_QUERY_SIDE"] = str(side)
    reset_settings()


def warm_search(data: bytes, variant: str, *, side: int | None, mirrored: bool, page_size: int) -> dict[str, float]:
    """One upload search the way the Search page runs it (``ui_search.first_page``: ``services.search_page``, the
    page's SQL, thumbnails), timed as one; then its search stages timed one by one on the same bytes."""
    from PIL import ImageOps

    from ui_search import first_page
    from vislink.encoder.images import resize, resize_shorter
    from vislink.encoder.variants import parse_variant
    from vislink.search.encoding import encode_query
    from vislink.ui import services

    set_query_side(side)
    page = first_page(services.Query(image=data, label="upload"), variant=variant, page_size=page_size,
                      mirrored=mirrored)
    # The pieces, on the same bytes (decode_image is what run_search decodes an upload with).
    t0 = time.perf_counter()
    image = services.decode_image(data, "upload")
    t1 = time.perf_counter()
    spec = parse_variant(variant)
    views = [image, ImageOps.mirror(image)] if mirrored else [image]
    for view in views:
        resize_shorter(view, side) if side else resize(view, spec.resize_rule)
    t2 = time.perf_counter()
    vectors = encode_query(variant, [image], weights_name=os.environ["VISLINK_WEIGHTS"] if spec.backbone == "vgg16"
                           else None, mirrored=mirrored, side=side)
    t3 = time.perf_counter()
    qname = qdrant_collection(variant)
    index = services.index()
    if mirrored:
        index.query_multi(qname, vectors, limit=services.BLOCK)
    else:
        index.query(qname, vectors[0], limit=services.BLOCK)
    t4 = time.perf_counter()
    decode, resized, encode, query = t1 - t0, t2 - t1, (t3 - t2) - (t2 - t1), t4 - t3
    return {"decode": decode, "resize": resized, "encode": encode, "index": query,
            "results": max(0.0, page["search"] - decode - (t3 - t2) - query),
            "sql+thumbs": page["sql"] + page["thumbs"], "total": page["total"]}


def encode_ab(data: bytes, weights: str, sides: list[int], reps: int, bf16: bool) -> None:
    """The query encoding alone, configurations interleaved round-robin (so that load changing during the run
    hits them all alike): one view, both mirrored views in one batch, the same as two calls; per query side."""
    from PIL import ImageOps

    from vislink.search.encoding import encode_query
    from vislink.ui import services

    image = services.decode_image(data, "upload")
    mirror = ImageOps.mirror(image)
    configs = {}
    for side in [None, *sides]:
        label = side or 256
        configs[f"{label} one view"] = lambda side=side: encode_query(VGG, [image], weights_name=weights, side=side,
                                                                      precision="fp32")
        configs[f"{label} mirrored, one batch of 2"] = lambda side=side: encode_query(
            VGG, [image], weights_name=weights, side=side, precision="fp32", mirrored=True)
        configs[f"{label} mirrored, two calls"] = lambda side=side: [
            encode_query(VGG, [view], weights_name=weights, side=side, precision="fp32") for view in (image, mirror)]
    if bf16:
        configs["256 one view, bf16 autocast"] = lambda: encode_query(VGG, [image], weights_name=weights,
                                                                      precision="bf16")
    reference = encode_query(VGG, [image], weights_name=weights, precision="fp32")[0]
    for fn in configs.values():
        fn()  # first call: kernels chosen, encoder of that precision built
    times: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(reps):
        for key, fn in configs.items():
            started = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - started)
    print(f"\nVGG16 query encoding ({VGG}, 1200x900 JPEG, fp32 unless said), interleaved, median of {reps} "
          f"(load average now {os.getloadavg()[0]:.1f}):")
    for key, values in times.items():
        print(f"  {key:<36} {statistics.median(values) * 1000:7.0f} ms", flush=True)
    if bf16:
        cos = float(reference @ encode_query(VGG, [image], weights_name=weights, precision="bf16")[0])
        print(f"  bf16 vs fp32 descriptor cosine: {cos:.6f}")


def qdrant_collection(variant: str) -> str:
    from vislink.store import collection_variants, get_collection, session_scope

    with session_scope() as session:
        return next(v.qdrant_collection for v in collection_variants(session, get_collection(session, "bench"))
                    if v.name == variant)


def warm_up(data: bytes, variants: list[str]) -> None:
    """Model loads and the index's first touch, once per process (the UI preloads them when it starts)."""
    from vislink.ui import services

    started = time.perf_counter()
    for variant in variants:
        services.search_page(services.Query(image=data), collection="bench", variant=variant, flt=None,
                             mirrored=True, page=0, page_size=20, cache={})
    print(f"process warm-up (model loads, first index touch; once per process): "
          f"{time.perf_counter() - started:.1f} s", flush=True)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40_000)
    parser.add_argument("--files", type=int, default=300, help="distinct JPEG files behind the rows")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sides", default="224", help="reduced VGG16 query sides to time besides 256")
    parser.add_argument("--cold-repeat", type=int, default=3, help="runs of each cold command (median)")
    parser.add_argument("--weights-dir", type=Path, help="folder with installed VGG16 weights to link in "
                                                         "(default: random weights)")
    parser.add_argument("--home", type=Path, help="data folder to build in and keep (reused when it holds the "
                                                  "collection); default: a temporary one, removed at the end")
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--skip-warm", action="store_true")
    parser.add_argument("--encode-reps", type=int, default=5, help="interleaved rounds of the encoding A/B (0: skip)")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast (emulated, slow, without "
                                                            "AMX / AVX512-BF16)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)",
          flush=True)

    weights = "random" if args.weights_dir is None else "vgg16-caffe-conv"
    os.environ.pop("VISLINK_QUERY_SIDE", None)  # the stored side unless a row asks for another
    from data_folder import data_folder
    from ui_search import build

    with data_folder(args.home, prefix="vislink-latency-", weights=weights, threads=args.threads) as home:
        if args.weights_dir is not None:
            (home / "weights").mkdir(parents=True, exist_ok=True)
            for f in Path(args.weights_dir).iterdir():
                link = home / "weights" / f.name
                if not link.exists():
                    link.symlink_to(f.resolve())
        if (home / "vislink.db").exists():
            print(f"reusing the collection built under {home}", flush=True)
        else:
            started = time.perf_counter()
            build(args.images, [VGG, SSCD], weights, args.files, 0, True)
            print(f"built {args.images} images x 2 variants in {time.perf_counter() - started:.0f} s", flush=True)
        files = sorted((home / "bench-files").glob("*.jpg"))
        query_file = files[0]

        if not args.skip_cold:
            from vislink.index import close_all

            close_all()
            env = dict(os.environ)  # the data folder's settings included
            rows = [("vislink --help", ["--help"]),
                    ("vislink search --image-id 7", ["search", "--image-id", "7", "-c", "bench", "--variant", VGG]),
                    (f"vislink search IMAGE ({VGG})", ["search", str(query_file), "-c", "bench", "--variant", VGG]),
                    (f"vislink search IMAGE ({SSCD})", ["search", str(query_file), "-c", "bench", "--variant", SSCD])]
            print(f"\ncold start, fresh interpreter each, median of {args.cold_repeat} (weights {weights}):")
            for label, cli_args in rows:
                r = cold(cli_args, env, args.cold_repeat)
                print(f"  {label:<40} {r['wall']:6.2f} s  peak RSS {r['rss_mb']:6.0f} MB  "
                      f"torch {'imported' if r['torch'] else 'not imported'}", flush=True)

        import torch

        torch.set_num_threads(args.threads)
        uploads = []
        for path in files[1:1 + args.queries]:
            from PIL import Image

            buf = io.BytesIO()
            Image.open(path).convert("RGB").save(buf, "JPEG", quality=90)
            uploads.append(buf.getvalue())
        warm_up(uploads[0], [VGG, SSCD])
        if args.encode_reps:
            encode_ab(uploads[0], weights, [int(x) for x in args.sides.split(",") if x], args.encode_reps, args.bf16)
        if args.skip_warm:
            return
        configs = [(VGG, None)] + [(VGG, int(s)) for s in args.sides.split(",") if s] + [(SSCD, None)]
        print(f"\nwarm upload search, {args.images} images, first page of {args.page_size} "
              f"(block of 200 from the index), {len(uploads)} 1200x900 JPEGs, {args.threads} threads; "
              f"p50 / p95 ms:")
        print(f"  {'variant':<16} {'side':>4} {'mirrored':>8} " + " ".join(f"{s:>13}" for s in STAGES))
        for variant, side in configs:
            for mirrored in (False, True):
                runs = [warm_search(data, variant, side=side, mirrored=mirrored, page_size=args.page_size)
                        for data in uploads]
                cells = " ".join(f"{pct([r[s] for r in runs], 50):6.0f}/{pct([r[s] for r in runs], 95):<6.0f}"
                                 for s in STAGES)
                label = str(side or (256 if variant == VGG else "own"))
                print(f"  {variant:<16} {label:>4} {'yes' if mirrored else 'no':>8} {cells}", flush=True)
        print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
