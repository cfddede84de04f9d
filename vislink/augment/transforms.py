"""Link-like transformations: what turns one artwork into a visually linked one (a follower's detail, a mirrored
print, a grayscale reproduction, an engraving after a painting, a colour shift, a photo of the painting on a
wall, a resized copy, a detail of it pasted into another picture, the painting beside another on a wall). Training takes them as free positives; ``vislink benchmark transforms`` measures how
robust a descriptor is to each.

Every transformation is a plain function ``(image, strength, rng) -> image`` registered by name; ``strength``
runs from 0 (barely changed) to 1 (as far as a real copy goes), and everything random comes from ``rng``, so
``transform(image, name, strength, seed)`` is reproducible.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from vislink.errors import NotFound

TransformFn = Callable[[Image.Image, float, np.random.Generator], Image.Image]


@dataclass(frozen=True)
class Transformation:
    name: str
    fn: TransformFn
    description: str


TRANSFORMS: dict[str, Transformation] = {}


def register_transform(name: str, description: str) -> Callable[[TransformFn], TransformFn]:
    def wrap(fn: TransformFn) -> TransformFn:
        TRANSFORMS[name] = Transformation(name, fn, description)
        return fn

    return wrap


def list_transforms() -> list[str]:
    return list(TRANSFORMS)


def get_transform(name: str) -> Transformation:
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise NotFound(f"unknown transformation {name!r}; valid: {', '.join(TRANSFORMS)}") from None


def transform(image: Image.Image, name: str, strength: float = 0.5, seed: int = 0) -> Image.Image:
    """``image`` transformed by the transformation ``name`` at ``strength`` (0-1), reproducibly from ``seed``."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, not {strength}")
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    return get_transform(name).fn(rgb, float(strength), np.random.default_rng(seed))


def _lerp(lo: float, hi: float, strength: float) -> float:
    return lo + (hi - lo) * strength


@register_transform("detail", "a crop of the work (a detail reused or copied): the area kept shrinks with strength")
def detail_crop(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    area = _lerp(0.8, 0.2, strength)  # fraction of the image kept
    aspect = float(np.exp(rng.uniform(-0.3, 0.3)))
    cw = int(round(min(w, w * np.sqrt(area * aspect))))
    ch = int(round(min(h, h * np.sqrt(area / aspect))))
    cw, ch = max(cw, 8), max(ch, 8)
    x = int(rng.integers(0, max(1, w - cw + 1)))
    y = int(rng.integers(0, max(1, h - ch + 1)))
    return image.crop((x, y, x + cw, y + ch))


@register_transform("mirror", "the horizontal mirror (a print reverses its model)")
def mirror(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    return ImageOps.mirror(image)


@register_transform("grayscale", "a black-and-white reproduction, contrast changed with strength")
def grayscale(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    gray = ImageOps.grayscale(image)
    gamma = float(np.exp(rng.uniform(-1, 1) * 0.5 * strength))
    lut = [int(round(255 * (i / 255) ** gamma)) for i in range(256)]
    return gray.point(lut).convert("RGB")


@register_transform("engraving", "a line rendering: edges and hatching whose density follows the tones")
def engraving(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    # Tones stretched first: a print's inks span paper to black whatever the painting's varnish did.
    gray = np.asarray(ImageOps.autocontrast(ImageOps.grayscale(image), cutoff=2), dtype=np.float32) / 255.0
    h, w = gray.shape
    edges = np.asarray(ImageOps.grayscale(image).filter(ImageFilter.FIND_EDGES), dtype=np.float32) / 255.0
    # Hatching: parallel lines at an angle, a line drawn where the tone is darker than the line's threshold.
    period = max(3, int(round(_lerp(2, 4, strength) * max(h, w) / 256)))
    angle = float(rng.uniform(0, np.pi))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = ((xx * np.cos(angle) + yy * np.sin(angle)) % period) / period  # 0..1 across a line
    line = np.abs(phase - 0.5) * 2  # 0 at the line's centre, 1 between lines
    darkness = np.clip(1.0 - gray, 0, 1) ** 1.5  # light tones get no hatching, as in a print
    ink = (line < darkness * _lerp(0.7, 1.0, strength)) | (edges > _lerp(0.35, 0.15, strength))
    paper = np.array([242, 236, 222], dtype=np.float32)
    out = np.where(ink[..., None], paper * 0.15, paper)
    return Image.fromarray(out.astype(np.uint8))


@register_transform("colour", "a colour shift: hue, saturation and brightness as a faded or retouched copy")
def colour_shift(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    hsv = np.asarray(image.convert("HSV"), dtype=np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-1, 1) * 40 * strength) % 256
    hsv[..., 1] = np.clip(hsv[..., 1] * float(np.exp(rng.uniform(-1, 1) * strength)), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * float(np.exp(rng.uniform(-1, 1) * 0.5 * strength)), 0, 255)
    return Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")


@register_transform("resize", "a smaller copy, resized back (lost detail), then JPEG-compressed")
def resize(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    scale = _lerp(0.7, 0.15, strength) * float(rng.uniform(0.9, 1.1))
    small = image.resize((max(8, int(w * scale)), max(8, int(h * scale))), Image.Resampling.BILINEAR)
    return _jpeg(small.resize((w, h), Image.Resampling.BILINEAR), int(_lerp(85, 30, strength)))


@register_transform("photo", "a photo of the work on a wall: perspective, frame, wall, glare and JPEG")
def photo_on_wall(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    frame = max(2, int(min(w, h) * rng.uniform(0.03, 0.08)))
    framed = ImageOps.expand(image, border=frame, fill=tuple(int(c) for c in rng.integers(40, 160, 3)))
    fw, fh = framed.size
    margin = _lerp(0.1, 0.35, strength)  # wall around the painting, as a fraction of the picture
    W, H = int(fw * (1 + 2 * margin)), int(fh * (1 + 2 * margin))
    wall = np.full((H, W, 3), rng.integers(150, 235, 3), dtype=np.float32)
    wall += rng.normal(0, 6, (H, W, 1))  # plaster texture
    photo = Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8))
    photo.paste(framed, ((W - fw) // 2, (H - fh) // 2))
    # Perspective: each corner of the picture moves inwards by up to `skew` of its size.
    skew = _lerp(0.02, 0.12, strength)
    jitter = rng.uniform(0, skew, 8) * np.array([W, H] * 4)
    quad = (jitter[0], jitter[1], jitter[2], H - jitter[3], W - jitter[4], H - jitter[5], W - jitter[6], jitter[7])
    photo = photo.transform((W, H), Image.Transform.QUAD, tuple(float(q) for q in quad),
                            Image.Resampling.BILINEAR)
    # Glare: a soft bright disc somewhere on the picture.
    glare = Image.new("L", (W, H), 0)
    cx, cy, r = rng.uniform(0.2, 0.8) * W, rng.uniform(0.2, 0.8) * H, rng.uniform(0.1, 0.3) * min(W, H)
    ImageDraw.Draw(glare).ellipse((cx - r, cy - r, cx + r, cy + r), fill=int(_lerp(40, 140, strength)))
    glare = glare.filter(ImageFilter.GaussianBlur(r / 2))
    photo = Image.composite(Image.new("RGB", (W, H), (255, 255, 250)), photo, glare)
    return _jpeg(photo, int(_lerp(85, 50, strength)))


def _other_picture(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A stand-in for another artwork (the transformations see one image): a smooth colour field at a few cells'
    resolution, with a few dark and light strokes, so it has edges and tones of its own."""
    w, h = size
    cells = rng.uniform(30, 220, (int(rng.integers(3, 6)), int(rng.integers(3, 6)), 3)).astype(np.uint8)
    picture = Image.fromarray(cells).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(4, 9))):
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(0, 1, 4) * np.array([w, h, w, h]))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.line((x0, y0, x1, y1), fill=colour, width=max(1, int(min(w, h) * rng.uniform(0.01, 0.04))))
    return picture.filter(ImageFilter.GaussianBlur(max(1, min(w, h) / 150)))


@register_transform("context", "detail in context: a 40 % (strength 0) to 20 % (1) crop pasted into another "
                               "picture, resized and re-compressed")
def detail_in_context(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    side = float(np.sqrt(_lerp(0.4, 0.2, strength)))  # the crop's side, as a fraction of the image's
    cw, ch = max(8, int(round(w * side))), max(8, int(round(h * side)))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    piece = image.crop((x, y, x + cw, y + ch))
    canvas = _other_picture((w, h), rng)  # another picture of the same size: the crop keeps its scale
    canvas.paste(piece, (int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))))
    scale = _lerp(0.9, 0.6, strength)
    small = canvas.resize((max(8, int(w * scale)), max(8, int(h * scale))), Image.Resampling.BILINEAR)
    return _jpeg(small, int(_lerp(85, 55, strength)))


@register_transform("wall2", "two paintings on a wall: the work and another picture side by side, framed, on a "
                             "wall above a floor; the work's side random, the wall's share grows with strength")
def two_on_a_wall(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    other = _other_picture((int(w * rng.uniform(0.7, 1.2)), int(h * rng.uniform(0.8, 1.1))), rng)
    frame = max(2, int(min(w, h) * 0.04))
    framed = [ImageOps.expand(p, border=frame, fill=tuple(int(c) for c in rng.integers(40, 160, 3)))
              for p in ((image, other) if rng.random() < 0.5 else (other, image))]
    gap = int(w * _lerp(0.1, 0.3, strength))
    margin = _lerp(0.08, 0.3, strength)
    inner_w = framed[0].width + gap + framed[1].width
    inner_h = max(f.height for f in framed)
    W, H = int(inner_w * (1 + 2 * margin)), int(inner_h * (1 + 3 * margin))
    wall = np.full((H, W, 3), rng.integers(150, 235, 3), dtype=np.float32) + rng.normal(0, 6, (H, W, 1))
    photo = Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8))
    floor = int(H * (1 - margin * 0.8))
    ImageDraw.Draw(photo).rectangle((0, floor, W, H), fill=tuple(int(c) for c in rng.integers(50, 120, 3)))
    x = (W - inner_w) // 2
    for f in framed:
        photo.paste(f, (x, int(H * margin)))
        x += f.width + gap
    return _jpeg(photo, int(_lerp(85, 55, strength)))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=max(5, min(95, quality)))
    buf.seek(0)
    return Image.open(buf).convert("RGB")
