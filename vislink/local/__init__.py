"""Local features: SIFT keypoints and RootSIFT descriptors of an image, the piece that geometric verification,
the bag-of-words baseline and the aligned compare view are built on (docs/local.md)."""

from vislink.local.cache import FeatureCache, feature_cache
from vislink.local.features import LocalFeatures, extract, rootsift

__all__ = ["FeatureCache", "LocalFeatures", "extract", "feature_cache", "rootsift"]
