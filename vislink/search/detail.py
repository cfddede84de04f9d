"""Detail search (docs/detail.md): a region of a query image, or the query's own regions, matched against the
regional descriptors that ``-regions`` variants store as each point's multivector (MaxSim).

```python
from vislink.search import search
search("fresco.jpg", collection="wga", variant="vgg16-pool5-sum-regions", region=(120, 40, 300, 300))
search("wall.jpg", collection="wga", variant="vgg16-pool5-sum-regions", regions="auto")
```

- ``region=(x, y, w, h)`` (pixels of the query image, or of the stored image given by ``image_id``): the crop's
  descriptor against every stored region; each result's score is its best region's cosine, ``box`` that region's
  box in the result's pixels.
- ``regions="auto"``: each of the query's own regions (the whole query first, then its grid; a stored image's
  stored regions) searched, an image keeping its best; ``query_region`` / ``query_box`` say which query region
  found it. A photo holding two paintings finds each through the region that covers it.

On a variant without regions, ``region`` crops the query and compares the crop with whole images (no ``box``),
as the UI's region search always did; ``regions="auto"`` needs a ``-regions`` variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vislink.errors import ConfigError, NotFound

AUTO = "auto"


def parse_box(text: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` (whole pixels, w and h > 0) -> a box; ``ConfigError`` saying what is wrong otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"region {text!r}: give x,y,w,h in whole pixels, e.g. 100,50,300,200") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ConfigError(f"region {text!r}: x and y must be >= 0, w and h > 0")
    return x, y, w, h


def check_box(box: Sequence[float], size: tuple[int, int], what: str) -> tuple[int, int, int, int]:
    """``box`` clipped to an image of ``size`` (width, height); ``ConfigError`` when it lies outside it."""
    x, y, w, h = (int(round(float(v))) for v in box)
    width, height = size
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if w <= 0 or h <= 0 or x1 - x0 < 1 or y1 - y0 < 1:
        raise ConfigError(f"region {x},{y},{w},{h} lies outside {what} ({width} x {height} pixels)")
    return x0, y0, x1 - x0, y1 - y0


def crop(image, box: Sequence[float], what: str):
    """The crop of a PIL image (decoded perhaps reduced, see ``images.full_size``) at ``box``, given in its full
    size's pixels."""
    from vislink.encoder.images import full_size

    width, height = full_size(image)
    x, y, w, h = check_box(box, (width, height), what)
    sx, sy = image.width / width, image.height / height
    return image.crop((round(x * sx), round(y * sy), max(round((x + w) * sx), round(x * sx) + 1),
                       max(round((y + h) * sy), round(y * sy) + 1)))


# The matched box: the score-weighted mean of the best BOX_TOP regions' boxes. Measured on 24 crops (20-40 % of a
# painting's area) pasted into other paintings, caffe VGG16 pool5 sum: IoU >= 0.5 with the true place for 21 of 24
# (the best region alone: 14 of 24; top 2: 19, top 4: 19, top 5: 19). docs/detail.md, "Localisation".
BOX_TOP = 3


def best_boxes(index, var, hits, queries: np.ndarray, matched: dict[int, int]) -> dict[int, list[int]]:
    """{image id: where in it the query vector that found it matches} (``matched``: image id -> row of
    ``queries``): the score-weighted mean box of its ``BOX_TOP`` nearest stored regions (``region_boxes``)."""
    from vislink.encoder.regions import BOXES_FIELD

    stored = index.retrieve_regions(var.qdrant_collection, [h.id for h in hits])
    out = {}
    for hit in hits:
        regions, boxes = stored.get(hit.id), hit.payload.get(BOXES_FIELD)
        if regions is None or not boxes or len(boxes) != len(regions):
            continue
        q = queries[matched[hit.id]]
        scores = regions @ (q / max(float(np.linalg.norm(q)), 1e-12))
        top = np.argsort(-scores, kind="stable")[:BOX_TOP]
        weights = np.maximum(scores[top], 1e-6)
        box = (np.asarray(boxes, dtype=np.float64)[top] * weights[:, None]).sum(axis=0) / weights.sum()
        out[hit.id] = [int(round(v)) for v in box]
    return out


def region_queries(var, image, image_id: int | None, region, regions: str | None, index, stored_file):
    """(query vectors (Q, dim), their boxes in the query's pixels or None) for a region / auto search."""
    from vislink.encoder import encode_variants
    from vislink.encoder.images import full_size
    from vislink.encoder.regions import BOXES_FIELD, encode_regions

    weights = {var.name: var.weights_name}
    if regions is not None:
        if regions != AUTO:
            raise ConfigError(f"regions={regions!r}: the only value is 'auto' (the query's own regions)")
        if region is not None:
            raise ConfigError("give a region or regions='auto', not both")
        if image is None:  # a stored image: its stored regions and boxes
            stored = index.retrieve_regions(var.qdrant_collection, [int(image_id)])
            found = index.retrieve(var.qdrant_collection, [int(image_id)])
            if not stored or not found:
                raise NotFound(f"image {image_id} has no {var.name} regions in the index")
            return stored[int(image_id)], [list(b) for b in found[0][1].get(BOXES_FIELD, [])] or None
        [found] = encode_regions([image], var.name, weights=weights)
        return found.vectors, [[int(round(float(v))) for v in b] for b in found.boxes]
    source = image if image is not None else open_stored(stored_file(image_id))
    what = "the query image" if image is not None else f"image {image_id}"
    box = list(check_box(region, full_size(source), what))
    piece = crop(source, box, what)
    vectors = encode_variants([piece], [var.name], weights=weights)[var.name]
    return np.asarray(vectors, dtype=np.float32), [box]


def open_stored(path: str):
    from vislink.encoder.images import REDUCED_SIDE, open_rgb

    return open_rgb(path, min_side=REDUCED_SIDE)


def merge_region_hits(per_query: list[list[Any]], limit: int) -> tuple[list[Any], dict[int, int]]:
    """Each image's best hit over the query vectors, best first (ties by id), and {image id: the query row
    that found it}."""
    best: dict[int, tuple[Any, int]] = {}
    for row, hits in enumerate(per_query):
        for hit in hits:
            if hit.id not in best or hit.score > best[hit.id][0].score:
                best[hit.id] = (hit, row)
    ranked = sorted(best.values(), key=lambda pair: (-pair[0].score, pair[0].id))[:limit]
    return [hit for hit, _ in ranked], {hit.id: row for hit, row in ranked}
