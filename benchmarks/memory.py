"""Peak memory of decoding, ingesting and searching large images (issue #16 item 4). Each measurement runs in
its own subprocess and reports the growth of its peak resident set (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
over the same process's peak just before the measured step (imports done, the random-weight VGG16 built and used
once on a tiny image), so the figures are what the step itself costs.

    python benchmarks/memory.py            # 12000 x 12000 flat PNGs (palette, RGB) and a 12000 x 9000 JPEG
    python benchmarks/memory.py --quick    # 6000 px sides

Cases: ``decode-full`` (open_rgb without rules: every pixel, as before), ``decode-reduced`` (open_rgb for the
pool5 rule: JPEG DCT scaling, others box-reduced in their own mode), ``ingest`` (the runner's ``ingest`` of one
file into a fresh collection with the memory index: decode, encode, store), ``search`` (the UI's path: the
upload read and searched in a collection). The limit ``VISLINK_MAX_IMAGE_PIXELS`` is raised for the
measurement, and the default's refusal is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent('''
    import json, resource, sys
    case, path, tiny, home = sys.argv[1:5]
    import torch
    torch.set_num_threads(1)
    from vislink.encoder.images import full_size, open_rgb, prepare
    from vislink.ingest.workers import encode_batch
    encode_batch([tiny], ["vgg16-pool5-sum"], weights="random")   # model built and run once
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {}
    if case in ("ingest", "search"):
        from vislink.ingest.runner import ingest
        from vislink.ingest.sources import folder_items
        import shutil, pathlib
        src = pathlib.Path(home) / "src"
        src.mkdir(exist_ok=True)
        shutil.copy(tiny, src / "tiny.jpg")
        if case == "search":
            ingest("bench", folder_items(src), variants=["vgg16-pool5-sum"], progress=False)
        else:
            shutil.copy(path, src / pathlib.Path(path).name)
    base = rss()
    if case == "decode-full":
        image = open_rgb(path)
        out["decoded"] = list(image.size)
        prepare(image, {"shorter-256"})
    elif case == "decode-reduced":
        image = open_rgb(path, rules={"shorter-256"})
        out["decoded"] = list(image.size)
        prepare(image, {"shorter-256"})
    elif case == "refused":
        from vislink.errors import BadImage
        try:
            open_rgb(path, max_pixels=64_000_000, rules={"shorter-256"})
        except BadImage as exc:
            out["refused"] = exc.reason
    elif case == "ingest":
        summary = ingest("bench", folder_items(src), variants=["vgg16-pool5-sum"], progress=False)
        out["done"] = summary.done
    elif case == "search":
        from vislink.ui import services
        data = open(path, "rb").read()
        services.read_upload(pathlib.Path(path).name, data)
        query = services.Query(image=data)
        out["results"] = len(services.run_search(query, collection="bench", variant=None, flt=None,
                                                 mirrored=False, offset=0, limit=5))
    out["growth_mb"] = round(rss() - base, 1)
    print(json.dumps(out))
''')


def flat_png(path: Path, width: int, height: int, mode: str) -> Path:
    """A mostly flat PNG written row by row (bands of two values): small on disk, huge decoded."""
    kind, channels = {"RGB": (2, 3), "P": (3, 1)}[mode]

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    flat = b"\x00" + bytes([0 if mode == "P" else 200]) * (width * channels)
    band = bytearray(flat)
    band[1:1 + channels * width // 3] = bytes([1 if mode == "P" else 30]) * (channels * width // 3)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(bytes(band) if (y // 500) % 4 == 0 else flat) for y in range(height))
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, kind, 0, 0, 0)))
        if mode == "P":
            out.write(chunk(b"PLTE", bytes([200, 100, 55, 30, 60, 90])))
        out.write(chunk(b"IDAT", data + comp.flush()) + chunk(b"IEND", b""))
    return path


def big_jpeg(path: Path, width: int, height: int) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 256, (height // 100 + 2, width // 100 + 2, 3), dtype=np.uint8), "RGB")
    small.resize((width, height), Image.Resampling.BILINEAR).save(path, "JPEG", quality=90)
    return path


def measure(case: str, path: Path, tiny: Path, work: Path) -> dict:
    home = Path(tempfile.mkdtemp(dir=work))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VISLINK_")},
           "PYTHONPATH": str(REPO), "VISLINK_HOME": str(home), "VISLINK_THREADS": "1", "VISLINK_WEIGHTS": "random",
           "VISLINK_INDEX_BACKEND": "memory", "VISLINK_MAX_IMAGE_PIXELS": "200000000"}
    done = subprocess.run([sys.executable, "-c", CHILD, case, str(path), str(tiny), str(home)], env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"rc {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6000 px sides instead of 12000")
    args = parser.parse_args()
    side = 6000 if args.quick else 12000
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tiny = work / "tiny.jpg"
        Image.linear_gradient("L").convert("RGB").resize((64, 48)).save(tiny)
        files = {f"png-P {side}x{side}": flat_png(work / "flat_p.png", side, side, "P"),
                 f"png-RGB {side}x{side}": flat_png(work / "flat_rgb.png", side, side, "RGB"),
                 f"jpeg {side}x{side * 3 // 4}": big_jpeg(work / "big.jpg", side, side * 3 // 4)}
        print(f"{'file':22} {'on disk':>9}  {'case':15} {'peak RSS growth':>16}  detail")
        for label, path in files.items():
            for case in ("refused", "decode-full", "decode-reduced", "ingest", "search"):
                out = measure(case, path, tiny, work)
                growth = out.pop("growth_mb", None)
                shown = f"{growth:.0f} MB" if growth is not None else "-"
                print(f"{label:22} {path.stat().st_size / 1e3:7.0f} kB  {case:15} {shown:>16}  {out}", flush=True)


if __name__ == "__main__":
    main()
