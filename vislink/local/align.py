"""Pictures of a verification: image B warped onto image A's canvas, the matched regions outlined on both, and
one comparison sheet (what ``vislink compare --out`` writes and the compare page shows).

A ``Verification`` is in the pixels of the images its features were extracted from (usually the full files);
these functions take the images as shown (thumbnails, any size) and rescale the transform to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from vislink.local.matching import Verification

OUTLINE_B = (255, 64, 64)  # where B lies on A (its frame mapped by the transform)
OUTLINE_MATCH = (40, 220, 90)  # the inliers' bounding box, on both images
NOT_ALIGNED = (230, 150, 0)


def _scale_matrix(shown: tuple[int, int], original: tuple[int, int]) -> np.ndarray:
    """Maps original pixel coordinates to those of the image as shown (pixel centres at integers)."""
    sx = shown[0] / max(original[0], 1)
    sy = shown[1] / max(original[1], 1)
    return np.array([[sx, 0, 0.5 * (sx - 1)], [0, sy, 0.5 * (sy - 1)], [0, 0, 1.0]])


def shown_transform(v: Verification, size_a: tuple[int, int], size_b: tuple[int, int]) -> np.ndarray:
    """``v.transform`` for A shown at ``size_a`` and B at ``size_b`` (3x3, B shown -> A shown)."""
    if v.transform is None:
        raise ValueError("no transform was estimated between these images")
    to_a = _scale_matrix(size_a, v.size_a)
    from_b = np.linalg.inv(_scale_matrix(size_b, v.size_b))
    return to_a @ v.transform @ from_b


def warp_onto(a: Image.Image, b: Image.Image, v: Verification) -> tuple[Image.Image, Image.Image]:
    """B warped onto A's canvas (RGB, A's size) and the mask of the pixels B covers (mode L, 255 inside)."""
    import cv2

    m = shown_transform(v, a.size, b.size)
    rgb = np.asarray(b.convert("RGB"))
    full = np.full(rgb.shape[:2], 255, np.uint8)
    if v.model == "homography":
        warped = cv2.warpPerspective(rgb, m, a.size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(full, m, a.size, flags=cv2.INTER_NEAREST)
    else:
        warped = cv2.warpAffine(rgb, m[:2], a.size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(full, m[:2], a.size, flags=cv2.INTER_NEAREST)
    return Image.fromarray(warped), Image.fromarray(mask)


def _box_points(box, m: np.ndarray) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = box
    pts = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], dtype=np.float64) @ m.T
    return [(float(x), float(y)) for x, y in pts[:, :2] / pts[:, 2:]]


def _width(img: Image.Image) -> int:
    return max(2, round(max(img.size) / 200))


def outline_a(a: Image.Image, v: Verification) -> Image.Image:
    """A with B's frame drawn where the transform puts it (red) and the matched region (green)."""
    out = a.convert("RGB").copy()
    if v.transform is None:
        return out
    draw = ImageDraw.Draw(out)
    to_a = _scale_matrix(a.size, v.size_a)
    frame = [tuple(p) for p in (np.c_[v.outline_b_in_a(), np.ones(4)] @ to_a.T)[:, :2]]
    draw.polygon(frame, outline=OUTLINE_B if v.verified else NOT_ALIGNED, width=_width(out))
    if v.verified and v.box_a is not None:
        draw.polygon(_box_points(v.box_a, to_a), outline=OUTLINE_MATCH, width=_width(out))
    return out


def outline_b(b: Image.Image, v: Verification) -> Image.Image:
    """B with its matched region (green) outlined."""
    out = b.convert("RGB").copy()
    if v.verified and v.box_b is not None:
        ImageDraw.Draw(out).polygon(_box_points(v.box_b, _scale_matrix(b.size, v.size_b)), outline=OUTLINE_MATCH,
                                    width=_width(out))
    return out


def blend(a: Image.Image, warped: Image.Image, mask: Image.Image, alpha: float = 0.5) -> Image.Image:
    """A with warped B blended in at ``alpha`` where B covers it."""
    mixed = Image.blend(a.convert("RGB"), warped, alpha)
    return Image.composite(mixed, a.convert("RGB"), mask)


def swipe(a: Image.Image, warped: Image.Image, mask: Image.Image, position: float = 0.5) -> Image.Image:
    """A left of ``position`` (0-1 of the width), warped B right of it (where B covers A), a line between."""
    out = a.convert("RGB").copy()
    x = int(round(position * a.width))
    right = Image.composite(warped, out, mask).crop((x, 0, a.width, a.height))
    out.paste(right, (x, 0))
    ImageDraw.Draw(out).line([(x, 0), (x, a.height)], fill=(255, 255, 255), width=_width(out))
    return out


def flicker_gif(a: Image.Image, warped: Image.Image, mask: Image.Image, duration_ms: int = 600) -> bytes:
    """An animated GIF alternating A and warped B (on A's canvas)."""
    import io

    second = Image.composite(warped, a.convert("RGB"), mask)
    buffer = io.BytesIO()
    a.convert("RGB").save(buffer, "GIF", save_all=True, append_images=[second], duration=duration_ms, loop=0)
    return buffer.getvalue()


@dataclass(frozen=True)
class AlignedViews:
    """What the compare view shows: A and B outlined, and B warped onto A (None when not verified)."""

    a: Image.Image
    b: Image.Image
    warped: Image.Image | None
    mask: Image.Image | None


def aligned_views(a: Image.Image, b: Image.Image, v: Verification) -> AlignedViews:
    if not v.verified:
        return AlignedViews(outline_a(a, v), outline_b(b, v), None, None)
    warped, mask = warp_onto(a, b, v)
    return AlignedViews(outline_a(a, v), outline_b(b, v), warped, mask)


def comparison_sheet(a: Image.Image, b: Image.Image, v: Verification, *, height: int = 420,
                     labels: tuple[str, str] = ("A", "B")) -> Image.Image:
    """One picture: A outlined | B outlined | B warped onto A and blended (or a 'not aligned' panel), a caption
    line below with ``v.summary()``."""
    views = aligned_views(a, b, v)
    panels = [views.a, views.b]
    if views.warped is not None:
        panels.append(outline_a(blend(a, views.warped, views.mask), v))
    panels = [ImageOps.contain(p, (10 * height, height)) for p in panels]
    caption_h = 28
    width = sum(p.width for p in panels) + 10 * (len(panels) + 1)
    sheet = Image.new("RGB", (width, height + caption_h + 20), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    x = 10
    names = [labels[0], labels[1], f"{labels[1]} warped onto {labels[0]}"]
    for panel, name in zip(panels, names):
        sheet.paste(panel, (x, 10))
        draw.text((x + 4, 12), name, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
        x += panel.width + 10
    draw.text((10, height + 18), v.summary(), fill=(0, 0, 0) if v.verified else (170, 90, 0))
    return sheet
