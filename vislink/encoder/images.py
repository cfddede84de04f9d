"""Image loading and the encoder's geometric preprocessing.

``open_rgb`` is the one way vislink turns a file into pixels (ingest, upload, search, thumbnails), so a
query image and a stored image always go through the same decoding and colour conversion.

Large images are decoded reduced when the caller says what the pixels are for (``rules``: the encoder's resize
rules, or ``min_side``): a JPEG through DCT scaling before anything is decoded (``Image.draft``, 1/2 to 1/8),
other formats decoded then box-reduced by an integer factor in their own mode, before the RGB conversion, so a
flat 12000 x 12000 PNG costs its 144 MB palette plane, not 720 MB of planes and RGB copies. The shorter side stays
at least ``decode_side(rules)`` (``REDUCED_SIDE``, 1024: four times pool5's 256), so an image whose shorter side
is under twice that is decoded exactly as without ``rules``, and the same file gives the same pixels to ingest
and to search whatever variants they ask for. ``full_size(image)`` is the size of the file's image (oriented).
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
# Reduced decoding keeps the shorter side at least this (and at least twice any rule's own side): the resize to
# the working size then starts from 4x as many pixels as it keeps, and descriptors stay within ~0.999 cosine of
# a full decode (docs/reliability.md).
REDUCED_SIDE = 1024
FULL_SIZE = "vislink.full_size"  # Image.info key: (width, height) of the file's image when decoded reduced


def rule_side(rule: str) -> int:
    """The shorter side a resize rule works at (``shorter-NNN``: NNN; ``crop-224`` / ``warp-224``: 224; 0 for
    rules that say nothing, such as local features)."""
    if rule.startswith("shorter-") and rule[8:].isdigit():
        return int(rule[8:])
    if rule in ("crop-224", "warp-224"):
        return FC6_SIZE
    return 0


def decode_side(rules) -> int:
    """The shorter side a reduced decode keeps for these resize rules: ``REDUCED_SIDE``, or twice the largest
    rule's side when that is more."""
    return max([REDUCED_SIDE, *(2 * rule_side(r) for r in rules)])


def full_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of the image in its file, EXIF orientation applied, even when ``open_rgb`` decoded it
    reduced (what ingest records as the image's size)."""
    return tuple(image.info.get(FULL_SIZE, image.size))


def open_rgb(source: Path | str | bytes | IO[bytes], *, name: str | None = None,
             max_pixels: int | None = None, rules=None, min_side: int | None = None) -> Image.Image:
    """Decode an image and return it as an 8-bit RGB Pillow image.

    EXIF orientation is applied; animated images give their first frame; every mode becomes RGB the
    same way (transparency composited on white, 16-bit scaled to 8-bit). ``max_pixels`` (the image's width x
    height) defaults to the ``VISLINK_MAX_IMAGE_PIXELS`` setting. ``rules`` (the resize rules the pixels are
    for) or ``min_side``: an image whose shorter side is at least twice ``decode_side(rules)`` (or
    ``min_side``) is decoded reduced, its shorter side kept at least that (see the module docstring;
    ``full_size`` gives the file's size); without either, the image is decoded in full. Raises ``BadImage``
    with reason ``empty-file``, ``not-an-image``, ``truncated``, ``decompression-bomb``, ``too-large`` or
    ``unreadable``.
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
    if min_side is None and rules is not None:
        min_side = decode_side(rules)
    reduce_to = min_side if min_side and min(width, height) >= 2 * min_side else None
    try:
        if getattr(image, "is_animated", False):
            image.seek(0)  # first frame, explicitly
        elif reduce_to:
            image.draft(image.mode, (reduce_to, reduce_to))  # JPEG: DCT scaling by 1/2..1/8; others: nothing
        image.load()
    except OSError as exc:
        reason = "truncated" if "truncat" in str(exc).lower() or "broken data stream" in str(exc) else "unreadable"
        raise BadImage(label, reason, str(exc)) from exc
    except (ValueError, SyntaxError, EOFError) as exc:
        raise BadImage(label, "unreadable", f"{type(exc).__name__}: {exc}") from exc
    if reduce_to:
        return _reduced_rgb(image, reduce_to, (width, height), label)
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception as exc:  # a malformed EXIF block must not cost the image: keep it unrotated
        log.warning("%s: EXIF orientation ignored (%s)", label, exc)
        oriented = image
    return to_rgb(oriented if oriented is not None else image)


# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose does).
_ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                 8: Image.Transpose.ROTATE_90}
STRIP_PIXELS = 4_000_000  # the rows converted to RGB at once by a reduced decode of a non-RGB image


def _reduced_rgb(image: Image.Image, side: int, size: tuple[int, int], label: str) -> Image.Image:
    """A loaded (maybe already DCT-scaled) image box-reduced by the largest integer factor that keeps its
    shorter side >= ``side``, in RGB, upright; ``info[FULL_SIZE]`` = the file's oriented size."""
    try:
        transpose = _ORIENTATIONS.get(image.getexif().get(0x0112))
    except Exception as exc:  # a malformed EXIF block must not cost the image: keep it unrotated
        log.warning("%s: EXIF orientation ignored (%s)", label, exc)
        transpose = None
    factor = min(image.size) // side
    if factor < 2:
        rgb = to_rgb(image)
    elif image.mode in ("RGB", "L") and "transparency" not in image.info:
        rgb = to_rgb(image.reduce(factor))  # in its own mode: no full-size RGB copy
    elif image.mode == "F":
        rgb = to_rgb(image).reduce(factor)  # its scaling looks at the whole image at once
    else:
        # Palette, 16-bit, CMYK, alpha...: converted strip by strip (each a multiple of the factor high), so
        # the full-size RGB copy never exists; same pixels as reducing the whole converted image.
        width, height = image.size
        rows = factor * max(1, STRIP_PIXELS // (width * factor))
        rgb = Image.new("RGB", (-(-width // factor), -(-height // factor)))
        for top in range(0, height, rows):
            strip = image.crop((0, top, width, min(height, top + rows)))
            rgb.paste(to_rgb(strip).reduce(factor), (0, top // factor))
    if transpose is not None:
        rgb = rgb.transpose(transpose)
    width, height = size
    rgb.info[FULL_SIZE] = (height, width) if transpose in (Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270,
                                                           Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90) \
        else (width, height)
    return rgb


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
