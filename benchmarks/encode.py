"""Encoder throughput per backbone: (a) the model alone on ready inputs, (b) the whole path from JPEG files on
disk (decode, EXIF, RGB, resize, batch, forward, pool), same images, batch size and threads; prints images/s
and the ratio b/a (target on CPU: >= 0.85, i.e. decoding and resizing hidden behind the network).

    python benchmarks/encode.py                      # VGG16 on CPU, random weights (speed does not depend on values)
    python benchmarks/encode.py --device cuda --precision bf16 --images 256 --batch-size 32
    python benchmarks/encode.py --backbone sscd      # an ONNX backbone (needs `vislink weights install sscd`)
    python benchmarks/encode.py --backbone sscd-distilled --variants sscd-distilled-s320
    python benchmarks/encode.py --backbone all       # vgg16, sscd, sscd-distilled one after the other

For VGG16, (a) is features + pooling on normalised tensors; for an ONNX backbone, (a) is the session's
run on stacked uint8 arrays (its normalisation is inside the graph).
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


def measure(model_alone, whole_path, n: int, repeats: int) -> dict:
    """Alternate (a) and (b) ``repeats`` times after one warm-up each: best and median rates, CPU s/image."""
    model_alone()  # warm-up: kernel selection, allocator, page cache
    whole_path()
    rates_a, rates_b, cpu_a, cpu_b = [], [], [], []
    for _ in range(repeats):
        for run, rates, cpu in ((model_alone, rates_a, cpu_a), (whole_path, rates_b, cpu_b)):
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            rates.append(n / (time.perf_counter() - start))
            cpu.append((time.process_time() - start_cpu) / n)
    return {"a": max(rates_a), "b": max(rates_b), "rates_a": rates_a, "rates_b": rates_b,
            "median_ratio": float(np.median(rates_b) / np.median(rates_a)), "cpu_a": min(cpu_a), "cpu_b": min(cpu_b)}


def report(label: str, result: dict) -> None:
    a, b = result["a"], result["b"]
    print(label)
    print(f"(a) model alone on ready inputs:  {a:8.2f} images/s (best of {' '.join(f'{r:.2f}' for r in result['rates_a'])})")
    print(f"(b) JPEG files -> descriptors:    {b:8.2f} images/s (best of {' '.join(f'{r:.2f}' for r in result['rates_b'])})")
    print(f"ratio b/a: {b / a:.3f} (medians: {result['median_ratio']:.3f})")
    # On a shared machine wall time measures the neighbours; CPU time per image (all threads of this
    # process) does not. With every core busy in the network, decode CPU adds to wall time, so this is a
    # pessimistic estimate of the idle-machine ratio.
    print(f"CPU seconds per image: (a) {result['cpu_a']:.3f}  (b) {result['cpu_b']:.3f}  "
          f"ratio a/b: {result['cpu_a'] / result['cpu_b']:.3f}")


def run_vgg16(args, paths: list[Path]) -> dict:
    import torch

    from vislink.encoder.images import open_rgb, prepare
    from vislink.encoder.model import Encoder
    from vislink.encoder.pooling import pool5_descriptors

    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = Encoder(args.weights, args.device, precision=args.precision, channels_last=args.channels_last)
    variants = (args.variants or "vgg16-pool5-max,vgg16-pool5-sum,vgg16-pool5-sp2x2-sum").split(",")
    specs = encoder.specs(variants)
    poolings = {s.pooling for s in specs if s.layer == "pool5"}
    sync = torch.cuda.synchronize if encoder.device.type == "cuda" else (lambda: None)
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

    result = measure(model_alone, whole_path, len(paths), args.repeats)
    shape = tuple(batches[0].shape)
    report(f"backbone=vgg16 device={encoder.device} precision={args.precision or 'fp32'} "
           f"threads={torch.get_num_threads()} workers={args.workers} batch={args.batch_size} "
           f"channels_last={args.channels_last} images={len(paths)} jpeg={args.width}x{args.height} "
           f"input={shape[2]}x{shape[3]}", result)
    return result


def run_onnx(args, paths: list[Path], backbone_name: str) -> dict:
    from vislink.encoder.images import open_rgb, prepare
    from vislink.encoder.onnx_backbone import OnnxBackbone
    from vislink.encoder.onnx_models import get_onnx_model, model_path

    model = get_onnx_model(backbone_name)
    backbone = OnnxBackbone(model, model_path(backbone_name), threads=args.threads or 0)
    variants = [args.variants.split(",")[0]] if args.variants else [backbone_name]
    spec = backbone.specs(variants)[0]
    arrays = [prepare(open_rgb(p), {spec.resize_rule})[spec.resize_rule] for p in paths]
    batches = [np.stack(arrays[i:i + args.batch_size]) for i in range(0, len(arrays), args.batch_size)]

    def model_alone() -> None:
        for batch in batches:
            backbone.run(batch)

    def whole_path() -> None:
        for _ in backbone.encode_files(paths, variants, batch_size=args.batch_size, workers=args.workers,
                                       progress=False):
            pass

    result = measure(model_alone, whole_path, len(paths), args.repeats)
    report(f"backbone={backbone_name} variant={spec.name} providers={','.join(backbone.providers)} "
           f"threads={args.threads or 'onnxruntime default'} workers={args.workers} batch={args.batch_size} "
           f"images={len(paths)} jpeg={args.width}x{args.height} input={batches[0].shape[2]}x{batches[0].shape[1]}",
           result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="vgg16", help="vgg16, an ONNX model (sscd, sscd-distilled) or all")
    parser.add_argument("--weights", default="random", help="VGG16 weights source (default: random; same speed)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=None, choices=[None, "fp32", "bf16", "fp16"])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--width", type=int, default=640, help="JPEG width (resized to the variant's shorter side)")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="decode threads for (b)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch / onnxruntime CPU threads (default: the runtime's own choice)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--variants", default=None,
                        help="VGG16: comma-separated (default: the three pool5 ones, one pass); ONNX: the one "
                             "variant to time (default: the backbone's name, shorter side 288)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="(a) and (b) run alternately this many times; the best of each is reported "
                             "(robust to other load on the machine)")
    args = parser.parse_args()
    backbones = ["vgg16", "sscd", "sscd-distilled"] if args.backbone == "all" else [args.backbone]
    if args.backbone == "all" and args.variants:
        parser.error("--variants belongs to one backbone: leave it out with --backbone all")

    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), args.images, args.width, args.height)
        for name in backbones:
            result = run_vgg16(args, paths) if name == "vgg16" else run_onnx(args, paths, name)
            summary.append((name, result))
            print()
    if len(summary) > 1:
        print("| backbone | (a) model alone img/s | (b) whole path img/s | b/a | ms/image (b) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, r in summary:
            print(f"| {name} | {r['a']:.2f} | {r['b']:.2f} | {r['b'] / r['a']:.3f} | {1000 / r['b']:.0f} |")


if __name__ == "__main__":
    main()
