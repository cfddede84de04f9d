"""How a search encodes its query images: the stored images' descriptors are never re-computed, so everything
here only has to stay close to them (docs/search.md gives the figures).

- **Mirrored in one batch**: a query and its left-right mirror have the same size, so they go through the
  network as one batch of two (one forward pass, not two calls).
- **Query side** (``VISLINK_QUERY_SIDE``): a VGG16 pool5 query can be resized to a shorter side under the stored
  256 (sum / max pooling are averages over the map, so the descriptor moves little); ``None`` keeps 256. ONNX
  variants (SSCD) keep their own side: they are fast already.
- **Precision** (``VISLINK_QUERY_PRECISION``): ``auto`` runs the VGG16 forward pass of a query in bf16 autocast
  only on CPUs whose instruction set has bf16 (AMX or AVX512-BF16, read from /proc/cpuinfo) or on a GPU; elsewhere
  bf16 is emulated and several times slower than fp32 (measured, docs/search.md), so ``auto`` means fp32 there.

Nothing here imports torch unless the variant is a VGG16 one: an ONNX variant's query needs onnxruntime only.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from functools import lru_cache
from typing import Sequence

import numpy as np

from vislink.errors import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
# Below this the pool5 map of a landscape query is 6 x 8 cells or less: too coarse to compare with 8 x 10.
MIN_QUERY_SIDE = 128
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16 in the kernel's flags). Without /proc/cpuinfo
    (not Linux): torch's own view of the instruction set (``AVX512_BF16`` / ``AMX``-era capabilities)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(flag in flags for flag in BF16_FLAGS)
    except OSError:
        pass
    import torch

    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    return "AMX" in capability or "BF16" in capability


def resolve_precision(precision: str | None, device_type: str = "cpu") -> str | None:
    """``auto`` / ``fp32`` / ``bf16`` -> the encoder's precision (None: fp32). ``auto`` is bf16 on a GPU or on a CPU
    with native bf16, fp32 elsewhere."""
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown query precision {precision!r} (VISLINK_QUERY_PRECISION): use one of "
                          f"{', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device_type == "cuda" or cpu_has_bf16() else None
    return None if precision == "fp32" else precision


def check_side(side: int | None) -> int | None:
    if side is None or side == 0:
        return None
    if not isinstance(side, (int, np.integer)) or isinstance(side, bool) or side < MIN_QUERY_SIDE:
        raise ConfigError(f"query side must be a whole number of pixels, at least {MIN_QUERY_SIDE} "
                          f"(VISLINK_QUERY_SIDE), not {side!r}")
    return int(side)


def query_encoder(weights_name: str | None = None, precision: str | None = None):
    """The encoder a query with these weights runs on: for VGG16 weights, ``get_encoder`` at ``precision`` (None:
    the setting ``encode_query`` resolves, so a server preloading it preloads the one its searches use); for an
    ONNX model's name, its backbone. Built once per process."""
    from vislink.config import get_settings
    from vislink.encoder.model import get_encoder, resolve_device
    from vislink.encoder.onnx_models import is_onnx_model

    settings = get_settings()
    weights_name = weights_name or settings.weights
    if is_onnx_model(weights_name):
        return get_encoder(weights_name)
    resolved = resolve_precision(precision if precision is not None else settings.query_precision,
                                 resolve_device(settings.device).type)
    return get_encoder(weights_name, settings.device, precision=resolved)


def _query_backbone(variant_name: str, weights_name: str | None, pca, precision: str | None):
    """(backbone, specs): what computes ``variant_name`` for a query. VGG16 variants get the process's encoder of
    that precision (``get_encoder``, cached); any other backbone goes through ``VariantSet`` as ingest does."""
    from vislink.encoder.dispatch import VariantSet, default_weights_for
    from vislink.encoder.variants import VGG16, parse_variant

    spec = parse_variant(variant_name)
    weights = {variant_name: weights_name} if weights_name else None
    if spec.backbone == VGG16:
        from vislink.config import get_settings

        model = query_encoder(default_weights_for(variant_name, weights, get_settings()), precision)
        return model, model.specs([variant_name], pca)
    variant_set = VariantSet([variant_name], weights=weights, pca=pca)
    return variant_set, variant_set.specs


def encode_query(variant_name: str, images: Sequence, *, weights_name: str | None = None, pca=None,
                 mirrored: bool = False, side: int | None = None, precision: str | None = None) -> np.ndarray:
    """float32 (n, dim) rows l2-normalised: the descriptors of ``images`` (RGB PIL images) for one variant, then,
    with ``mirrored``, those of their left-right mirrors (rows n..2n-1), each image and its mirror in one batch.
    ``pca``: ``{variant: PCAWhitening}`` for a -pcaN variant. ``side``: the shorter side of a VGG16 pool5 query
    (None: the stored 256). ``precision``: ``auto`` / ``fp32`` / ``bf16`` (None: VISLINK_QUERY_PRECISION)."""
    from PIL import ImageOps

    from vislink.encoder.backbones import bucket_key
    from vislink.encoder.images import resize, resize_shorter

    side = check_side(side)
    backbone, specs = _query_backbone(variant_name, weights_name, pca, precision)
    rules = {s.resize_rule for s in specs}
    pool5 = {s.resize_rule for s in specs if s.layer == "pool5"}
    views = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
    if mirrored:
        views = views + [ImageOps.mirror(im) for im in views]  # mirrored before resizing, as ingest would
    items = [{rule: np.asarray(resize_shorter(im, side) if side and rule in pool5 else resize(im, rule),
                               dtype=np.uint8) for rule in rules} for im in views]
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, arrays in enumerate(items):
        buckets[bucket_key(arrays)].append(i)
    out = np.zeros((len(items), specs[0].dim), dtype=np.float32)
    for chunk in buckets.values():  # one batch per shape: a query and its mirror share one
        rows = backbone.encode_prepared([items[i] for i in chunk], specs, pca)
        out[chunk] = rows[specs[0].name]
    return out
