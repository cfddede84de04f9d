"""Regional descriptors for detail search (docs/detail.md): ``<pool5 variant>-regions``.

One forward pass per image gives its pool5 map; the global descriptor is pooled from the whole map exactly as
the base variant's (``pooling.POOLINGS``), and each region of an R-MAC-style grid (Tolias et al. 2016) is pooled
the same way from its part of the map and l2-normalised on its own. The first region is the whole image (its
row is the global descriptor), so a query region showing a whole painting matches that painting's global view.

The grid: ``LEVELS`` scales of overlapping squares; at level ``l`` (1..LEVELS) the side is ``2 * m / (l + 1)``
cells (``m``: the map's shorter side; level 1 is the largest centred square), placed evenly along each axis with
at least ``OVERLAP`` overlap between neighbours. A 256 x 384 input (8 x 12 map) gets 26 regions (the whole image
included), a square one 14.
Boxes are ``(x, y, w, h)`` in the pixels of the image as stored (its full size, also when it was decoded
reduced), so that they can be drawn on it.

```python
from vislink.encoder.regions import encode_regions
[r] = encode_regions([image], "vgg16-pool5-sum-regions", weights="vgg16-caffe-conv")
r.vector.shape, r.vectors.shape, r.boxes.shape     # (512,), (R, 512), (R, 4)
```

ONNX backbones (``sscd-regions``, ``sscd-distilled-regions``, ``sscd-sNNN-regions``) have no feature map: the same
grid of boxes (that of the pool5 map the image would have) is cropped from the image and each crop encoded as an
image (``encode_crop_regions``), one forward pass per region.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from vislink.encoder.variants import VariantSpec, parse_variant
from vislink.errors import ConfigError

LEVELS = 3
OVERLAP = 0.4
# sp2x2-sum regions need 2 cells a side to cut in quadrants.
MIN_CELLS = {"max": 1, "sum": 1, "sp2x2-sum": 2}


@dataclass(frozen=True)
class Regions:
    """An image's descriptors for a ``-regions`` variant: the global one and one per grid region."""

    vector: np.ndarray  # (dim,) float32: the base variant's global descriptor
    vectors: np.ndarray  # (R, dim) float32, rows l2-normalised
    boxes: np.ndarray  # (R, 4) float32: x, y, w, h in the stored image's pixels
    others: dict[str, np.ndarray] = field(default_factory=dict)  # {variant: (dim,)}: ``also``'s, same map

    def __len__(self) -> int:
        return len(self.vectors)


def region_grid(height: int, width: int, *, levels: int = LEVELS, overlap: float = OVERLAP,
                min_cells: int = 1) -> list[tuple[int, int, int, int]]:
    """The regions of a ``height`` x ``width`` feature map as cell boxes ``(y0, x0, y1, x1)``, end exclusive,
    largest first (the whole map, then the grid), without duplicates."""
    if height < 1 or width < 1:
        raise ConfigError(f"a feature map of {height} x {width} cells has no regions")
    shorter = min(height, width)
    boxes: list[tuple[int, int, int, int]] = [(0, 0, height, width)]
    for level in range(1, levels + 1):
        side = max(min_cells, min(shorter, round(2 * shorter / (level + 1))))

        def starts(length: int) -> list[int]:
            if length <= side:
                return [0]
            count = math.ceil((length - side) / (side * (1 - overlap))) + 1
            return sorted({round(i * (length - side) / (count - 1)) for i in range(count)})

        for y in starts(height):
            for x in starts(width):
                box = (y, x, min(height, y + side), min(width, x + side))
                if box not in boxes:
                    boxes.append(box)
    return boxes


def pool_regions(fmap: np.ndarray, pooling: str, *, levels: int = LEVELS,
                 overlap: float = OVERLAP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pool5 map (C, h, w) -> (global (D,), regions (R, D), cell boxes as fractions (R, 4) x, y, w, h),
    every descriptor pooled as ``pooling`` (max / sum / sp2x2-sum) and l2-normalised."""
    import torch

    from vislink.encoder.pooling import POOLINGS, l2n

    if pooling not in POOLINGS:
        raise ConfigError(f"no regional pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    tensor = torch.from_numpy(np.ascontiguousarray(fmap, dtype=np.float32))[None]
    _, _, height, width = tensor.shape
    grid = region_grid(height, width, levels=levels, overlap=overlap, min_cells=MIN_CELLS[pooling])
    whole = l2n(POOLINGS[pooling](tensor))[0]
    pooled = torch.cat([POOLINGS[pooling](tensor[:, :, y0:y1, x0:x1]) for y0, x0, y1, x1 in grid])
    fractions = np.array([(x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height)
                          for y0, x0, y1, x1 in grid], dtype=np.float32)
    return whole.numpy(), l2n(pooled).numpy(), fractions


def _regional_spec(variant: str) -> VariantSpec:
    spec = parse_variant(variant)
    if not spec.regions:
        raise ConfigError(f"variant {spec.name} stores no regions: regional descriptors are the '-regions' "
                          f"variants' (e.g. {spec.name}-regions)")
    return spec


def shares_map(variant: str, other: str, weights: str | Mapping[str, str] | None = None) -> bool:
    """Whether ``other`` (a plain variant) is pooled from the same pool5 map as the ``-regions`` ``variant``: a
    VGG16 pool5 variant computed with the same weights (then ``encode_regions(..., also=[other])`` gives it from
    the same forward pass)."""
    from vislink.encoder.dispatch import default_weights_for

    spec = parse_variant(other)
    return (not spec.regions and spec.layer == "pool5" and spec.backbone == parse_variant(variant).backbone
            and spec.resize_rule == parse_variant(variant).resize_rule
            and default_weights_for(other, weights) == default_weights_for(variant, weights))


def encode_regions(images: Sequence, variant: str, *, weights: str | Mapping[str, str] | None = None,
                   sizes: Sequence[tuple[int, int]] | None = None, mirrored: bool = False,
                   also: Sequence[str] = (), pca: Mapping | None = None) -> list[Regions]:
    """``Regions`` of each image (RGB PIL images, from ``open_rgb``) for a ``-regions`` variant, one pool5 forward
    pass per image. ``weights``: as ``encode_variants`` takes them. ``sizes``: each image's full (width, height),
    the frame of its boxes (default: ``images.full_size``, right for ``open_rgb`` decodes). ``also``: plain pool5
    variants of the same weights (``shares_map``) computed from the same map, in ``Regions.others`` (``pca``:
    their fitted whitenings, as ``encode_variants`` takes them)."""
    import torch

    from vislink.encoder.backbones import apply_pca, check_pca
    from vislink.encoder.dispatch import default_weights_for
    from vislink.encoder.images import prepare
    from vislink.encoder.model import get_encoder
    from vislink.encoder.pooling import pool5_descriptors

    spec = _regional_spec(variant)
    if spec.layer == "embedding":  # an ONNX backbone: no feature map, the grid's crops encoded as images
        if also or pca:
            raise ConfigError(f"{spec.name}: an ONNX backbone's regions are crops encoded as images; encode plain "
                              "variants with encode_variants")
        return encode_crop_regions(images, spec.name, weights=weights, sizes=sizes, mirrored=mirrored)
    others = [parse_variant(v) for v in also]
    wrong = [o.name for o in others if not shares_map(spec.name, o.name, weights)]
    if wrong:
        raise ConfigError(f"{', '.join(wrong)}: not pooled from {spec.name}'s pool5 map (another layer, backbone or "
                          "weights): encode with encode_variants")
    check_pca(others, dict(pca) if pca else None)
    encoder = get_encoder(default_weights_for(spec.name, weights))
    encoder.check(spec)
    out = []
    for i, image in enumerate(images):
        image, (width, height) = as_stored(image, sizes[i] if sizes is not None else None, mirrored)
        array = prepare(image, {spec.resize_rule})[spec.resize_rule]
        fmap = encoder.feature_map([array])[0]
        whole, vectors, fractions = pool_regions(fmap, spec.pooling)
        boxes = fractions * np.array([width, height, width, height], dtype=np.float32)
        extra = {}
        if others:
            pooled = pool5_descriptors(torch.from_numpy(fmap[None]), {o.pooling for o in others})
            base = {o.base: pooled[o.pooling].numpy() for o in others}
            extra = {name: matrix[0].astype(np.float32) for name, matrix in apply_pca(others, base, pca).items()}
        out.append(Regions(whole.astype(np.float32), vectors.astype(np.float32), boxes.astype(np.float32), extra))
    return out


def as_stored(image, size: tuple[int, int] | None, mirrored: bool):
    """``(RGB image, (width, height))``: the image as the encoder takes it (mirrored when asked) and the size of the
    stored file its boxes are in (``size``, or the image's full size: ``full_size`` sees through reduced decodes)."""
    from PIL import ImageOps

    from vislink.encoder.images import full_size

    width, height = size if size is not None else full_size(image)
    image = image if image.mode == "RGB" else image.convert("RGB")
    return (ImageOps.mirror(image) if mirrored else image), (width, height)


POOL5_STRIDE = 32  # VGG16 pool5: one cell per 32 x 32 input pixels


def crop_fractions(width: int, height: int, *, levels: int = LEVELS, overlap: float = OVERLAP) -> np.ndarray:
    """The grid of an image of ``width`` x ``height`` pixels for backbones without a feature map, as fractions
    (R, 4) x, y, w, h: ``region_grid`` of the cells VGG16's pool5 map would have (the pool5 input, shorter side
    256, in 32-pixel cells), so the boxes are those of the pool5 ``-regions`` variants."""
    from vislink.encoder.images import pool5_size

    map_w, map_h = (max(1, side // POOL5_STRIDE) for side in pool5_size(width, height))
    grid = region_grid(map_h, map_w, levels=levels, overlap=overlap)
    return np.array([(x0 / map_w, y0 / map_h, (x1 - x0) / map_w, (y1 - y0) / map_h) for y0, x0, y1, x1 in grid],
                    dtype=np.float32)


def encode_crop_regions(images: Sequence, variant: str, *, weights: str | Mapping[str, str] | None = None,
                        sizes: Sequence[tuple[int, int]] | None = None, mirrored: bool = False) -> list[Regions]:
    """``Regions`` of each image for an ONNX ``-regions`` variant (``sscd-regions``, ``sscd-distilled-s224-regions``):
    the grid of ``crop_fractions``, each box cropped from the image and encoded as an image by the backbone (resized
    to the variant's rule, crops of equal resized shape batched), l2-normalised. The first region is the whole
    image, whose vector is also the global descriptor (the base variant's). One forward pass per region (14 for a
    square image, 26 for 2:3): docs/detail.md gives the cost."""
    from vislink.encoder.backbones import l2n
    from vislink.encoder.dispatch import default_weights_for
    from vislink.encoder.images import resize
    from vislink.encoder.model import get_encoder

    spec = _regional_spec(variant)
    encoder = get_encoder(default_weights_for(spec.name, weights))
    encoder.check(spec)
    out = []
    for i, image in enumerate(images):
        image, (width, height) = as_stored(image, sizes[i] if sizes is not None else None, mirrored)
        fractions = crop_fractions(width, height)
        iw, ih = image.size
        arrays = []
        for fx, fy, fw, fh in fractions:
            x0, y0 = round(fx * iw), round(fy * ih)
            x1, y1 = max(x0 + 1, round((fx + fw) * iw)), max(y0 + 1, round((fy + fh) * ih))
            crop = image if (x0, y0, x1, y1) == (0, 0, iw, ih) else image.crop((x0, y0, x1, y1))
            arrays.append(np.asarray(resize(crop, spec.resize_rule), dtype=np.uint8))
        vectors = np.zeros((len(arrays), spec.dim), dtype=np.float32)
        shapes: dict[tuple, list[int]] = {}
        for row, array in enumerate(arrays):
            shapes.setdefault(array.shape, []).append(row)
        for rows in shapes.values():  # equal shapes in one batch
            vectors[rows] = encoder.run(np.stack([arrays[r] for r in rows]))
        vectors = l2n(vectors).astype(np.float32)
        boxes = fractions * np.array([width, height, width, height], dtype=np.float32)
        out.append(Regions(vectors[0].copy(), vectors, boxes.astype(np.float32)))
    return out


BOXES_FIELD = "region_boxes"  # payload field: the boxes of the point's regions, in the order of its multivector


def region_payload(regions: Regions) -> dict:
    """The payload fields of a point with regions: ``region_boxes``, ``[x, y, w, h]`` per region (whole pixels)."""
    return {BOXES_FIELD: [[int(round(float(v))) for v in box] for box in regions.boxes]}


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0
