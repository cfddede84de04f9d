"""Encoder throughput: (a) the model alone on ready tensors, (b) the whole path from JPEG files on disk
(decode, EXIF, RGB, resize, batch, forward, pool), same images, batch size and threads; prints images/s
and the ratio b/a (target on CPU: >= 0.85, i.e. decoding and resizing hidden behind the network).

    python benchmarks/encode.py                      # CPU, random weights (speed does not depend on values)
    python benchmarks/encode.py --device cuda --precision bf16 --images 256 --batch-size 32
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_jpegs(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """Distinct real-photo JPEGs of one size: crops of scikit-learn's sample photographs."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photos = [Image.fromarray(load_sample_image(name)) for name in ("china.jpg", "flower.jpg")]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        photo = photos[i % 2]
        w, h = photo.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        image = photo.crop((x, y, x + cw, y + ch)).resize((width, height), Image.Resampling.BICUBIC)
        path = folder / f"img{i:04d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="random", help="weights source (default: random; same speed)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=None, choices=[None, "fp32", "bf16", "fp16"])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--width", type=int, default=640, help="JPEG width (resized to shorter side 256)")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="decode threads for (b)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--variants", default="vgg16-pool5-max,vgg16-pool5-sum,vgg16-pool5-sp2x2-sum")
    parser.add_argument("--repeats", type=int, default=3,
                        help="(a) and (b) run alternately this many times; the best of each is reported "
                             "(robust to other load on the machine)")
    args = parser.parse_args()

    import torch

    from vislink.encoder.images import open_rgb, prepare
    from vislink.encoder.model import Encoder
    from vislink.encoder.pooling import pool5_descriptors

    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = Encoder(args.weights, args.device, precision=args.precision, channels_last=args.channels_last)
    variants = args.variants.split(",")
    specs = encoder.specs(variants)
    poolings = {s.pooling for s in specs if s.layer == "pool5"}
    sync = torch.cuda.synchronize if encoder.device.type == "cuda" else (lambda: None)

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), args.images, args.width, args.height)
        # (a) ready tensors: decoded, resized and normalised before the clock starts
        arrays = [prepare(open_rgb(p), {"shorter-256"})["shorter-256"] for p in paths]
        batches = [encoder.to_input(arrays[i:i + args.batch_size]) for i in range(0, len(arrays), args.batch_size)]

        def model_alone() -> None:
            for x in batches:
                pool5_descriptors(encoder.forward_features(x), poolings)
            sync()

        def whole_path() -> None:
            for _ in encoder.encode_files(paths, variants, batch_size=args.batch_size, workers=args.workers,
                                          progress=False):
                pass
            sync()

        model_alone()  # warm-up: kernel selection, allocator, page cache
        whole_path()
        rates_a, rates_b, cpu_a, cpu_b = [], [], [], []
        for _ in range(args.repeats):
            for run, rates, cpu in ((model_alone, rates_a, cpu_a), (whole_path, rates_b, cpu_b)):
                start, start_cpu = time.perf_counter(), time.process_time()
                run()
                rates.append(len(paths) / (time.perf_counter() - start))
                cpu.append((time.process_time() - start_cpu) / len(paths))
        a, b = max(rates_a), max(rates_b)

    shape = tuple(batches[0].shape)
    print(f"device={encoder.device} precision={args.precision or 'fp32'} threads={torch.get_num_threads()} "
          f"workers={args.workers} batch={args.batch_size} channels_last={args.channels_last} "
          f"images={len(paths)} jpeg={args.width}x{args.height} input={shape[2]}x{shape[3]}")
    print(f"(a) model alone on ready tensors: {a:8.2f} images/s (best of {' '.join(f'{r:.2f}' for r in rates_a)})")
    print(f"(b) JPEG files -> descriptors:    {b:8.2f} images/s (best of {' '.join(f'{r:.2f}' for r in rates_b)})")
    print(f"ratio b/a: {b / a:.3f} (medians: {np.median(rates_b) / np.median(rates_a):.3f})")
    # On a shared machine wall time measures the neighbours; CPU time per image (all threads of this
    # process) does not. With every core busy in the network, decode CPU adds to wall time, so this is a
    # pessimistic estimate of the idle-machine ratio.
    print(f"CPU seconds per image: (a) {min(cpu_a):.3f}  (b) {min(cpu_b):.3f}  "
          f"ratio a/b: {min(cpu_a) / min(cpu_b):.3f}")


if __name__ == "__main__":
    main()
