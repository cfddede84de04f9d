"""Image loading and the encoder's geometric preprocessing.

``open_rgb`` is the one way vislink turns a file into pixels (ingest, upload, search, thumbnails), so a
query image and a stored image always go through the same decoding and colour conversion.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vislink.errors import BadImage

log = logging.getLogger(__name__)

# A side this long is refused whatever the pixel count (a 100000 x 10 strip is no artwork photo, and the
# pool5 resize would blow it up to 256 x 2.5 million).
MAX_SIDE = 65_535
WHITE = (255, 255, 255)

POOL5_SHORTER_SIDE = 256
# Extreme aspect ratios: the longer side is capped so a 1:40 strip does not become a 256 x 10240 input.
# Past the cap the shorter side shrinks below 256 (never below MIN_SHORTER_SIDE, so pool5 keeps >= 2 cells).
POOL5_MAX_LONGER_SIDE = 4096
MIN_SHORTER_SIDE = 64
FC6_SIZE = 224


def open_rgb(source: Path | str | bytes | IO[bytes], *, name: str | None = None,
             max_pixels: int | None = None) -> Image.Image:
    """Decode an image fully and return it as an 8-bit RGB Pillow image.

    EXIF orientation is applied; animated images give their first frame; every mode becomes RGB the
    same way (transparency composited on white, 16-bit scaled to 8-bit). ``max_pixels`` defaults to the
    ``VISLINK_MAX_IMAGE_PIXELS`` setting. Raises ``BadImage`` with reason ``empty-file``, ``not-an-image``,
    ``truncated``, ``decompression-bomb``, ``too-large`` or ``unreadable``.
    """
    label = name or (str(source) if isinstance(source, (str, Path)) else "<image data>")
    data = _read_bytes(source, label)
    if not data:
        raise BadImage(label, "empty-file", "the file has 0 bytes")
    if max_pixels is None:
        from vislink.config import get_settings

        max_pixels = get_settings().max_image_pixels
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise BadImage(label, "decompression-bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise BadImage(label, "not-an-image", "Pillow does not recognise the content as an image") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadImage(label, "unreadable", f"{type(exc).__name__}: {exc}") from exc

    width, height = image.size
    if width > MAX_SIDE or height > MAX_SIDE:
        raise BadImage(label, "too-large", f"{width}x{height} pixels, a side over {MAX_SIDE}")
    if width * height > max_pixels:
        raise BadImage(label, "decompression-bomb",
                       f"{width}x{height} = {width * height} pixels, more than the limit {max_pixels} "
                       f"(VISLINK_MAX_IMAGE_PIXELS)")
    if width == 0 or height == 0:
        raise BadImage(label, "unreadable", f"{width}x{height} pixels")
    try:
        if getattr(image, "is_animated", False):
            image.seek(0)  # first frame, explicitly
        image.load()
    except OSError as exc:
        reason = "truncated" if "truncat" in str(exc).lower() or "broken data stream" in str(exc) else "unreadable"
        raise BadImage(label, reason, str(exc)) from exc
    except (ValueError, SyntaxError, EOFError) as exc:
        raise BadImage(label, "unreadable", f"{type(exc).__name__}: {exc}") from exc
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception as exc:  # a malformed EXIF block must not cost the image: keep it unrotated
        log.warning("%s: EXIF orientation ignored (%s)", label, exc)
        oriented = image
    return to_rgb(oriented if oriented is not None else image)


def _read_bytes(source, label: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise BadImage(label, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    try:
        return source.read()
    except OSError as exc:
        raise BadImage(label, "unreadable", f"{type(exc).__name__}: {exc}") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """Every Pillow mode to 8-bit RGB, one rule per family of modes."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode.startswith("I;16") or mode == "I":
        # Pillow's own I->L conversion clips at 255 (a 16-bit photo comes out white): scale 0..65535 instead.
        array = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.rint(array / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 if array.size and np.nanmax(array) <= 1.0 else 1.0
        gray = np.clip(np.rint(np.nan_to_num(array) * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX: Pillow's conversion (CMYK: the naive formula, no ICC profile).
    return image.convert("RGB")


def shorter_side_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``side``, aspect kept (longer side capped at 4096, the
    shorter one then shrinking, never below 64)."""
    shorter, longer = min(width, height), max(width, height)
    new_short, new_long = side, round(longer * side / shorter)
    if new_long > POOL5_MAX_LONGER_SIDE:
        new_long = POOL5_MAX_LONGER_SIDE
        new_short = max(MIN_SHORTER_SIDE, round(shorter * POOL5_MAX_LONGER_SIDE / longer))
    return (new_short, new_long) if width <= height else (new_long, new_short)


def pool5_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the pool5 input: shorter side 256, aspect kept (longer side capped)."""
    return shorter_side_size(width, height, POOL5_SHORTER_SIDE)


def resize_shorter(image: Image.Image, side: int) -> Image.Image:
    """Isotropic resize to shorter side ``side``, no crop (Pillow bilinear, which antialiases on downscale)."""
    size = shorter_side_size(*image.size, side)
    return image if size == image.size else image.resize(size, Image.Resampling.BILINEAR)


def resize_pool5(image: Image.Image) -> Image.Image:
    """Isotropic resize to shorter side 256, no crop (Pillow bilinear, which antialiases on downscale)."""
    return resize_shorter(image, POOL5_SHORTER_SIDE)


def resize(image: Image.Image, rule: str) -> Image.Image:
    """The input of one resize rule: ``shorter-256`` (pool5), ``shorter-NNN`` (ONNX backbones: shorter side
    NNN, same rule), ``crop-224`` / ``warp-224`` (fc6)."""
    if rule == "shorter-256":
        return resize_pool5(image)  # reads POOL5_SHORTER_SIDE at call time (tests shrink it)
    if rule.startswith("shorter-") and rule[8:].isdigit():
        return resize_shorter(image, int(rule[8:]))
    return resize_fc6(image, rule)


def resize_fc6(image: Image.Image, rule: str) -> Image.Image:
    """224x224 input of fc6: ``crop-224`` = shorter side to 224 then the centre square; ``warp-224`` =
    both sides to 224 (aspect not kept)."""
    if rule == "warp-224":
        return image.resize((FC6_SIZE, FC6_SIZE), Image.Resampling.BILINEAR)
    if rule != "crop-224":
        raise ValueError(f"unknown fc6 resize rule {rule!r}")
    width, height = image.size
    scale = FC6_SIZE / min(width, height)
    size = (max(FC6_SIZE, round(width * scale)), max(FC6_SIZE, round(height * scale)))
    resized = image if size == image.size else image.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - FC6_SIZE) // 2, (size[1] - FC6_SIZE) // 2
    return resized.crop((left, top, left + FC6_SIZE, top + FC6_SIZE))


def prepare(image: Image.Image, rules: set[str], mirrored: bool = False) -> dict[str, np.ndarray]:
    """The uint8 HxWx3 arrays the networks need for each resize rule (``shorter-256``, ``shorter-NNN``,
    ``crop-224``, ``warp-224``). Mirroring happens before resizing, as if the mirrored image had been given."""
    if mirrored:
        image = ImageOps.mirror(image)
    return {rule: np.asarray(resize(image, rule), dtype=np.uint8) for rule in rules}
