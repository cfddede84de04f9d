"""Fine-tuning throughput: triplets/s and peak memory of the two training paths on the same images, views,
triplets and weights (random: speed does not depend on the values).

- cached: the frozen lower blocks' output stored once per view (timed separately: views/s of the cache
  build), then only the top block(s) trained on it (``--train-from conv5_1`` by default);
- full: every layer from the pixels at every step (``train_from conv1_1``), what the CUDA path does.

Each path runs in its own process, so that its peak memory (``ru_maxrss``; on CUDA also
``torch.cuda.max_memory_allocated``) is its own.

    python benchmarks/finetune.py                                   # CPU, 224 working size, batch 4
    python benchmarks/finetune.py --images 16 --steps 4 --size 160
    python benchmarks/finetune.py --device cuda --amp fp16 --batch-size 16 --steps 20
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass(frozen=True)
class File:
    image_id: int
    ref: str
    path: Path
    sha256: str


def one_path(args) -> dict:
    import torch

    from encode import make_jpegs  # benchmarks/encode.py: crops of real photos
    from vislink.hashing import sha256_file
    from vislink.training import CachedInputs, Network, PixelInputs, Triplet, ViewCatalog, batch_loss, plan_views
    from vislink.training.config import CUTS, DEFAULT_TRANSFORMS
    from vislink.training.trainer import optimizer_step

    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp(prefix="vislink-ft-bench-"))
    paths = make_jpegs(folder, args.images, 400, 300)
    files = [File(i, p.name, p, sha256_file(p)) for i, p in enumerate(paths)]
    views = [plan_views(f.sha256, DEFAULT_TRANSFORMS, args.views, (0.3, 0.8), 0) for f in files]
    catalog = ViewCatalog(files, views, size=args.size, geometry=args.geometry, max_aspect=2.0)
    cut = CUTS[args.train_from] if args.path == "cached" else 0
    network, _ = Network.from_weights("random", cut, args.device)
    out = {"path": args.path, "train_from": args.train_from if args.path == "cached" else "conv1_1"}
    if args.path == "cached":
        inputs = CachedInputs(catalog, network, folder / "cache")
        start = time.perf_counter()
        built = inputs.build(catalog.keys(), batch_size=8, progress=False)
        out["cache_views_per_s"] = built / (time.perf_counter() - start)
        out["cache_mb"] = sum(p.stat().st_size for p in (folder / "cache").rglob("*.npy")) / 2 ** 20
    else:
        inputs = PixelInputs(catalog, network)
    rng = np.random.default_rng(0)
    n = len(files)

    def triplets():
        out = []
        for _ in range(args.batch_size):
            i, j = rng.choice(n, 2, replace=False)
            out.append(Triplet((int(i), 0), (int(i), int(rng.integers(1, args.views + 1))), (int(j), 0)))
        return out

    batches = [triplets() for _ in range(args.steps + 1)]
    for b in batches:  # render (full) / read (cached) every view once: the timed steps measure the training
        for t in b:
            for key in (t.query, t.target, t.negative):
                inputs.tensor(key)
    optimizer = torch.optim.SGD(network.trainable_parameters(), lr=1e-5, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda") if args.amp == "fp16" else None

    def step(batch):
        loss, _, _ = batch_loss(network, inputs, batch, pooling="sum", margin=0.1, amp=args.amp)
        optimizer_step(loss, optimizer, scaler)  # the trainer's own step, so the figure is the trainer's

    step(batches[0])  # warm-up
    if network.device.type == "cuda":
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches[1:]:
        step(batch)
    if network.device.type == "cuda":
        torch.cuda.synchronize()
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    seconds = time.perf_counter() - start
    out["triplets_per_s"] = args.steps * args.batch_size / seconds
    out["cpu_s_per_triplet"] = (time.process_time() - cpu) / (args.steps * args.batch_size)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--views", type=int, default=2, help="transformed views per image")
    parser.add_argument("--size", type=int, default=224, help="working size (shorter side)")
    parser.add_argument("--geometry", default="keep")
    parser.add_argument("--batch-size", type=int, default=4, help="triplets per step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    parser.add_argument("--train-from", default="conv5_1", help="cached path: first trained convolution")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="off", help="off, fp16, bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--path", choices=("cached", "full", "both"), default="both")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.path != "both":
        print(json.dumps(one_path(args)))
        return
    results = []
    for path in ("cached", "full"):
        argv = [a for a in sys.argv[1:]] + ["--path", path]
        done = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{args.images} images x {args.views + 1} views, working size {args.size} ({args.geometry}), "
          f"batch {args.batch_size} triplets, {args.steps} timed steps, device {args.device}, amp {args.amp}, "
          f"{args.threads} threads")
    print(f"{'path':<8} {'trained':<9} {'triplets/s':>10} {'CPU s/triplet':>13} {'peak RSS MB':>11} "
          f"{'CUDA peak MB':>12}  cache")
    for r in results:
        cache = (f"{r['cache_views_per_s']:.2f} views/s, {r['cache_mb']:.0f} MB" if "cache_views_per_s" in r else "-")
        cuda = f"{r['cuda_peak_mb']:.0f}" if "cuda_peak_mb" in r else "-"
        print(f"{r['path']:<8} {r['train_from'] + '..':<9} {r['triplets_per_s']:>10.3f} {r['cpu_s_per_triplet']:>13.2f} "
              f"{r['peak_rss_mb']:>11.0f} {cuda:>12}  {cache}")
    print(f"speed-up cached / full: {results[0]['triplets_per_s'] / results[1]['triplets_per_s']:.1f}x")


if __name__ == "__main__":
    main()
