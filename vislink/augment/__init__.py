"""Link-like transformations of images (detail, mirror, grayscale, engraving, colour, resize, photo on a wall),
seeded and reproducible: positives for training and queries for ``vislink benchmark transforms``."""

from vislink.augment.transforms import (
    TRANSFORMS,
    Transformation,
    get_transform,
    list_transforms,
    register_transform,
    transform,
)

__all__ = ["TRANSFORMS", "Transformation", "get_transform", "list_transforms", "register_transform", "transform"]
