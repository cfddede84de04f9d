"""Helpers shared by the ingest, pipeline, search and worker tests (no tests here).

Images are small but real: made with Pillow, decoded by Pillow. The encoder uses the ``random`` weights
(a seeded VGG16), so no download is needed; the encoder is cached per process and data folder, so tests
that encode share one module-scoped data folder."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def photo(seed: int, size=(72, 56)) -> Image.Image:
    """A smooth, distinct, photo-like RGB image (gradients and blobs, not noise)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-3, 3, 3)
        cx, cy = rng.uniform(0, 1, 2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) * rng.uniform(5, 30))
        channels.append(np.sin(a * x + b * y + c) * 0.5 + 0.5 * blob)
    arr = np.stack(channels, -1)
    arr = (arr - arr.min()) / (np.ptp(arr) + 1e-9) * 255
    return Image.fromarray(arr.astype("uint8"), "RGB")


def make_photos(folder: Path, n: int, *, start: int = 0, size=(72, 56)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        path = folder / f"photo{i:03d}.jpg"
        photo(i, size).save(path, quality=90)
        paths.append(path)
    return paths


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` (8-bit grey) with almost no pixel data: what a decompression
    bomb or an absurd size looks like to a reader of headers."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def make_bad_and_odd(folder: Path) -> dict[str, str]:
    """Files of every awkward kind; returns name -> expected outcome ('done' or a failure reason)."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    (folder / "zero.jpg").write_bytes(b"")
    expected["zero.jpg"] = "empty-file"
    full = folder / "_full.jpg"
    photo(101, (120, 90)).save(full, quality=95)
    data = full.read_bytes()
    full.unlink()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    expected["truncated.jpg"] = "truncated"
    (folder / "text.jpg").write_text("this is a text file, not a JPEG\n" * 10)
    expected["text.jpg"] = "not-an-image"
    (folder / "bomb.png").write_bytes(png_header_only(30_000, 30_000))  # 900 Mpx: over twice Pillow's limit
    expected["bomb.png"] = "decompression-bomb"
    (folder / "strip.png").write_bytes(png_header_only(70_000, 2))  # a side over 65535
    expected["strip.png"] = "too-large"
    frames = [photo(102 + i, (48, 40)).convert("P") for i in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    expected["animated.gif"] = "done"
    photo(105, (48, 40)).convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    expected["cmyk.jpg"] = "done"
    grey16 = (np.linspace(0, 65535, 48 * 40).reshape(40, 48)).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "grey16.png")
    expected["grey16.png"] = "done"
    pal = photo(106, (48, 40)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(folder / "palette_alpha.png", transparency=0)
    expected["palette_alpha.png"] = "done"
    return expected


def env_for(home: Path, db_url: str | None = None, backend: str = "qdrant-local") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISLINK_", "QDRANT_"))}
    env.update(VISLINK_HOME=str(home), VISLINK_DB_URL=db_url or f"sqlite:///{home / 'vislink.db'}",
               VISLINK_INDEX_BACKEND=backend, VISLINK_THREADS="1", VISLINK_WEIGHTS="random",
               VISLINK_DEFAULT_VARIANTS="vgg16-pool5-sum,vgg16-pool5-max,vgg16-pool5-sp2x2-sum",
               PYTHONPATH=str(REPO))
    return env


def vislink_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vislink.cli", *args]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(vislink_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout)


def fresh_home(tmp: Path, template_db: Path) -> Path:
    home = tmp / "vislink-data"
    home.mkdir(parents=True)
    shutil.copy(template_db, home / "vislink.db")
    return home
