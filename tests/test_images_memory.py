"""Memory bounds of decoding (issue #16 item 4): large images are decoded reduced to what the encoder needs
(JPEG DCT scaling, other formats box-reduced in their own mode before the RGB conversion); small ones exactly as
before; a flat 12000 x 12000 PNG is refused by the default pixel limit with the reason, and decoded reduced and
encoded within a bounded memory growth when the limit allows it (measured in a subprocess)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vislink.encoder.images import REDUCED_SIDE, decode_side, full_size, open_rgb, prepare

REPO = Path(__file__).resolve().parents[1]
POOL5 = {"shorter-256"}


def flat_png(path: Path, width: int, height: int, mode: str = "P") -> Path:
    """A mostly flat PNG (bands of two values), written row by row: a 12000 x 12000 one is ~150 KB on disk and
    never whole in this process's memory."""
    kind, channels = {"L": (0, 1), "RGB": (2, 3), "P": (3, 1)}[mode]

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    flat = b"\x00" + bytes([0 if mode == "P" else 200]) * (width * channels)
    band = bytearray(flat)
    band[1:1 + channels * width // 3] = bytes([1 if mode == "P" else 30]) * (channels * width // 3)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(bytes(band) if (y // 500) % 4 == 0 else flat) for y in range(height))
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, kind, 0, 0, 0)))
        if mode == "P":
            out.write(chunk(b"PLTE", bytes([200, 100, 55, 30, 60, 90])))
        out.write(chunk(b"IDAT", data + compressor.flush()) + chunk(b"IEND", b""))
    return path


def _textured(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth painting-like field with some texture, asymmetric (rotations show)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 64 + 2, width // 64 + 2, 3), dtype=np.uint8)
    field = Image.fromarray(small, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 12, (height, width, 1))
    ramp = np.linspace(0, 60, width)[None, :, None]
    return Image.fromarray(np.clip(np.asarray(field) + noise + ramp, 0, 255).astype(np.uint8), "RGB")


def _bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_decode_side_is_the_same_for_every_standard_variant():
    assert decode_side(POOL5) == decode_side({"shorter-288", "crop-224", "warp-224"}) == REDUCED_SIDE == 1024
    assert decode_side({"shorter-640"}) == 1280  # a larger working size decodes larger


@pytest.mark.parametrize("size,fmt,mode", [((2047, 3000), "JPEG", "RGB"), ((900, 600), "PNG", "P"),
                                           ((1100, 1400), "PNG", "RGBA"), ((640, 480), "JPEG", "L")])
def test_an_image_under_twice_the_decode_side_is_decoded_exactly_as_before(size, fmt, mode):
    image = _textured(*size).convert(mode)
    data = _bytes(image, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    before = open_rgb(data)
    after = open_rgb(data, rules={"shorter-256", "shorter-288", "crop-224"})
    assert after.size == before.size and full_size(after) == before.size
    assert np.array_equal(np.asarray(after), np.asarray(before))
    assert all(np.array_equal(prepare(after, {r})[r], prepare(before, {r})[r]) for r in ("shorter-256", "crop-224"))


def test_a_big_jpeg_is_dct_scaled_upright_with_its_full_size():
    image = _textured(4096, 3072)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    data = _bytes(image, "JPEG", quality=90, exif=exif.tobytes())
    full = open_rgb(data)
    reduced = open_rgb(data, rules=POOL5)
    assert full.size == (3072, 4096) and full_size(full) == (3072, 4096)
    assert reduced.size == (1536, 2048) and full_size(reduced) == (3072, 4096)  # 1/2 scale, upright
    a = prepare(full, POOL5)["shorter-256"].astype(np.float64)
    b = prepare(reduced, POOL5)["shorter-256"].astype(np.float64)
    assert a.shape == b.shape == (341, 256, 3)
    assert np.abs(a - b).mean() < 2.0  # grey levels out of 255: the encoder's input is nearly the same


def test_a_big_palette_png_is_reduced_strip_by_strip_to_the_same_pixels(tmp_path):
    path = flat_png(tmp_path / "wide.png", 4100, 2300, "P")
    reduced = open_rgb(path, rules=POOL5)
    assert reduced.size == (2050, 1150) and full_size(reduced) == (4100, 2300)
    whole = Image.open(path).convert("RGB").reduce(2)
    assert np.array_equal(np.asarray(reduced), np.asarray(whole))


def test_big_jpeg_descriptors_stay_close_to_a_full_decode():
    """Random-weight VGG16 (no download): the draft-decoded image's pool5 descriptors against the full decode's
    (real weights, SSCD and 1/8 scale: docs/reliability.md)."""
    from vislink.encoder import encode_variants

    data = _bytes(_textured(4608, 3456, seed=3), "JPEG", quality=90)
    images = [open_rgb(data), open_rgb(data, rules=POOL5)]
    assert images[1].size == (2304, 1728)
    vectors = encode_variants(images, ["vgg16-pool5-sum", "vgg16-pool5-max"], weights="random")
    for name, rows in vectors.items():
        assert float(rows[0] @ rows[1]) > 0.995, name


CHILD = textwrap.dedent('''
    import json, resource, sys
    from vislink.errors import BadImage
    from vislink.ingest.workers import encode_batch

    path, tiny = sys.argv[1], sys.argv[2]
    encode_batch([tiny], ["vgg16-pool5-sum"], weights="random")  # the model built: not part of the growth
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base = rss()
    refused = encode_batch([path], ["vgg16-pool5-sum"], weights="random")[0]
    after_refusal = rss()
    allowed = encode_batch([path], ["vgg16-pool5-sum"], weights="random", max_pixels=150_000_000)[0]
    print(json.dumps({"refused": [refused.reason, refused.detail], "refusal_mb": after_refusal - base,
                      "encoded": allowed.vectors is not None, "size": [allowed.width, allowed.height],
                      "decode_mb": rss() - base}))
''')


def test_a_flat_12000_png_is_refused_by_default_and_encoded_reduced_in_bounded_memory(tmp_path):
    path = flat_png(tmp_path / "flat.png", 12000, 12000, "P")
    assert path.stat().st_size < 200_000
    tiny = tmp_path / "tiny.jpg"
    _textured(64, 48).save(tiny)
    env = {"PYTHONPATH": str(REPO), "VISLINK_HOME": str(tmp_path / "home"), "VISLINK_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(tiny)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    reason, detail = out["refused"]
    assert reason == "decompression-bomb" and "12000x12000" in detail and "VISLINK_MAX_IMAGE_PIXELS" in detail
    assert out["refusal_mb"] < 30  # refused from the header: nothing decoded
    assert out["encoded"] and out["size"] == [12000, 12000]  # the image's own size is recorded
    # Decoded in full and converted, as before, this file grew the process by ~830 MB; reduced in its own
    # mode, by its 144 MB palette plane and little more.
    assert out["decode_mb"] < 300, out
