"""The views of a training image: the original and its link-like transformations (``vislink.augment``), each
fixed by (transformation, strength, seed) so that a view is the same in every epoch, in both training paths
and after a resume; and the working geometry that turns a view into the network's input.

Geometry (``TrainConfig.geometry``):

- ``keep`` (default): shorter side ``size``, aspect kept (the encoder's own resize rule, at ``size`` instead of
  256), the longer side centre-cropped to at most ``max_aspect x size``. Views differ in shape; a batch is
  computed shape by shape (``trainer``), which gives exactly the gradient of one batch because VGG16 has no
  batch normalisation.
- ``crop``: shorter side ``size``, then the centre ``size x size`` square: every view has one shape.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class View:
    transform: str | None  # None: the original image
    strength: float = 0.0
    seed: int = 0

    @property
    def key(self) -> str:
        """A file-name-safe identifier of the view (cache files, logs)."""
        return "orig" if self.transform is None else f"{self.transform}-{self.strength:.3f}-{self.seed}"


ORIGINAL = View(None)


def _seed(*parts) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def plan_views(image_sha: str, transforms, n_views: int, strength: tuple[float, float], seed: int) -> list[View]:
    """The original, then ``n_views`` transformed views of one image. The transformations are taken in turn
    from ``transforms`` starting at an offset drawn from the image's sha256 (so that a small ``n_views`` still
    covers every transformation across images); strengths and seeds are drawn from (sha256, seed)."""
    views = [ORIGINAL]
    if not transforms:
        return views
    rng = np.random.default_rng(_seed("views", image_sha, seed))
    start = int(rng.integers(len(transforms)))
    low, high = strength
    for k in range(n_views):
        name = transforms[(start + k) % len(transforms)]
        views.append(View(name, round(float(rng.uniform(low, high)), 3), _seed(image_sha, seed, k)))
    return views


def render(image: Image.Image, view: View) -> Image.Image:
    """The view of an RGB image at full resolution."""
    if view.transform is None:
        return image
    from vislink.augment import transform

    return transform(image, view.transform, view.strength, view.seed)


def to_working(image: Image.Image, size: int, geometry: str = "keep", max_aspect: float = 2.0) -> np.ndarray:
    """uint8 HxWx3 input of the working geometry (see the module docstring)."""
    from vislink.encoder.images import resize_shorter

    resized = resize_shorter(image.convert("RGB") if image.mode != "RGB" else image, size)
    width, height = resized.size
    if geometry == "crop":
        limit_w = limit_h = min(width, height)
    else:
        longest = int(round(max_aspect * min(width, height)))
        limit_w, limit_h = min(width, longest), min(height, longest)
    if (limit_w, limit_h) != (width, height):
        left, top = (width - limit_w) // 2, (height - limit_h) // 2
        resized = resized.crop((left, top, left + limit_w, top + limit_h))
    return np.asarray(resized, dtype=np.uint8)


def view_array(path, view: View, size: int, geometry: str, max_aspect: float) -> np.ndarray:
    """Decode ``path`` (``open_rgb``, as everywhere in vislink), render the view, resize to the working
    geometry."""
    from vislink.encoder.images import open_rgb

    return to_working(render(open_rgb(path), view), size, geometry, max_aspect)
