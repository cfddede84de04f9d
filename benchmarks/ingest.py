"""Ingest throughput end to end, against the encoder alone at the same settings.

    python benchmarks/ingest.py [--images 500] [--workers 1] [--round 32] [--weights random] [--backend qdrant-edge]

1. Makes N real-size JPEGs on disk (long side 800-2000 px, quality 90): crops of
   ../shared/data/paintings_linked when present (upscaled where needed), else of scikit-learn's two
   sample photographs, with random crops, sizes and colour shifts so that every file is distinct.
2. Model alone: ``Encoder.encode_images`` on the same images already decoded and reduced to the network's
   input (shorter side 256), the three pool5 variants, batch 16: the forward pass and pooling only.
3. End to end: ``vislink.ingest.pipeline.ingest`` of the files into a fresh data folder (SQLite + the
   embedded index): register, hash, dedup, decode the full-size JPEG, encode, store, upsert, mark done.
2 and 3 alternate in rounds of ``--round`` images, so that both see the same machine load, and the CPU time
of each is printed too (CPU seconds per image do not depend on other tenants of a shared machine).

Prints images/s of both and their ratio (target on CPU: >= 0.8). The weights do not change the
compute: ``random`` (default) needs no download; pass ``--weights vgg16-caffe-conv`` when installed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAINTINGS = REPO.parent / "shared" / "data" / "paintings_linked"


def base_images():
    from PIL import Image

    files = sorted(PAINTINGS.glob("**/*.jpg")) if PAINTINGS.is_dir() else []
    if files:
        return [Image.open(f).convert("RGB") for f in files[:40]], f"{min(40, len(files))} images of {PAINTINGS}"
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(a) for a in load_sample_images().images], "scikit-learn's sample photographs"


def make_jpegs(folder: Path, n: int, seed: int = 0) -> str:
    from PIL import ImageEnhance

    rng = random.Random(seed)
    bases, origin = base_images()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = bases[i % len(bases)]
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = im.crop((x, y, x + cw, y + ch))
        long_side = rng.randint(800, 2000)
        scale = long_side / max(crop.size)
        crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
        crop = ImageEnhance.Color(crop).enhance(rng.uniform(0.8, 1.2))
        crop.save(folder / f"img{i:04d}.jpg", quality=90)
    return origin


def reduce_to_input(paths: list[Path]) -> list:
    """The images decoded and reduced to the network's input (shorter side 256), outside any timing."""
    from vislink.encoder.images import open_rgb

    out = []
    for p in paths:
        im = open_rgb(p)
        s = 256 / min(im.size)
        out.append(im.resize((round(im.width * s), round(im.height * s))))
    return out


def model_alone(images: list, encoder, variants: list[str], batch: int) -> tuple[float, float]:
    """(wall s, CPU s) of the encoder alone on ready images: the forward pass and pooling only."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(images), batch):
        encoder.encode_images(images[i:i + batch], variants)
    return time.perf_counter() - wall, time.process_time() - cpu


def _cpu_all() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--round", type=int, default=32, help="images per alternating round")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--backend", default="qdrant-edge", help="index backend (qdrant-edge: the embedded default)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here (default: a temporary folder)")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="vislink-bench-"))
    home = work / "home"
    for old in (home, work / "rounds"):
        shutil.rmtree(old, ignore_errors=True)  # a fresh data folder: the run must ingest, not skip
    sys.path.insert(0, str(REPO))
    from data_folder import use_data_folder

    use_data_folder(home, backend=args.backend, weights=args.weights, threads=args.threads or None)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from vislink.config import get_settings
    from vislink.ingest.collections import DEFAULT_VARIANTS
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources import folder_items
    from vislink.store import db

    src = work / "jpegs"
    t0 = time.perf_counter()
    origin = make_jpegs(src, args.images)
    paths = sorted(src.glob("*.jpg"))
    mb = sum(p.stat().st_size for p in paths) / 1e6
    print(f"{len(paths)} JPEGs (800-2000 px long side, {mb:.0f} MB) from {origin} in {time.perf_counter() - t0:.0f} s; "
          f"{os.cpu_count()} CPUs", flush=True)
    settings = get_settings()
    settings.ensure_dirs()
    db.upgrade(settings.database_url)
    variants = list(DEFAULT_VARIANTS)

    # A shared machine's load changes during a run, so the two are measured in alternating rounds on the same
    # images (each round: the encoder alone on the round's images, then the pipeline on their files), and
    # the CPU time of each is reported too: CPU seconds per image do not depend on the other tenants.
    from vislink.encoder import get_encoder

    encoder = get_encoder(args.weights)
    encoder.encode_images(reduce_to_input(paths[:2]), variants)  # warm-up: model built, first batch done
    rounds = [paths[i:i + args.round] for i in range(0, len(paths), args.round)]
    alone_wall = alone_cpu = e2e_wall = e2e_cpu = 0.0
    done = failed = 0
    for k, files in enumerate(rounds):
        wall, cpu = model_alone(reduce_to_input(files), encoder, variants, args.batch_size)
        alone_wall, alone_cpu = alone_wall + wall, alone_cpu + cpu
        round_dir = work / "rounds" / f"{k:03d}"
        round_dir.mkdir(parents=True, exist_ok=True)
        for f in files:
            target = round_dir / f.name
            if not target.exists():
                os.link(f, target)
        wall, cpu = time.perf_counter(), _cpu_all()
        summary = ingest("bench", folder_items(round_dir), variants=variants, weights=args.weights,
                         workers=args.workers, batch_size=args.batch_size, progress=False)
        e2e_wall, e2e_cpu = e2e_wall + time.perf_counter() - wall, e2e_cpu + _cpu_all() - cpu
        done, failed = done + summary.done, failed + summary.failed
        print(f"round {k + 1}/{len(rounds)}: {len(files)} images; load {_load()}", flush=True)
    n = len(paths)
    print(f"model alone: {n / alone_wall:.2f} images/s, {alone_cpu / n:.2f} CPU s/image ({', '.join(variants)}, batch "
          f"{args.batch_size}, {torch.get_num_threads()} threads, weights {args.weights})")
    print(f"end to end:  {done / e2e_wall:.2f} images/s, {e2e_cpu / n:.2f} CPU s/image ({done} done, {failed} failed, "
          f"{args.workers} worker(s), index {args.backend})")
    print(f"ratio end-to-end / model-alone: {(done / e2e_wall) / (n / alone_wall):.2f} by wall time, "
          f"{alone_cpu / e2e_cpu:.2f} by CPU time (target >= 0.8 on CPU)")


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
