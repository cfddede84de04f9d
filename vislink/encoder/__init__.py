"""VGG16 descriptors for visual link retrieval (Seguin et al. 2016): pool5 max / sum / 2x2 sum-pool and
fc6 variants, weights sources by name, PCA whitening, and ``open_rgb``, the one way images are decoded.

Names are re-exported lazily: ``import vislink.encoder`` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "get_encoder": "vislink.encoder.model",
    "Encoder": "vislink.encoder.model",
    "open_rgb": "vislink.encoder.images",
    "parse_variant": "vislink.encoder.variants",
    "VariantSpec": "vislink.encoder.variants",
    "BASE_VARIANTS": "vislink.encoder.variants",
    "PCAWhitening": "vislink.encoder.pca",
    "load_pca": "vislink.encoder.pca",
    "WeightsInfo": "vislink.encoder.weights",
    "describe_weights": "vislink.encoder.weights",
    "install_weights": "vislink.encoder.weights",
    "variant_record": "vislink.encoder.variants",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vislink.encoder' has no attribute {name!r}")
