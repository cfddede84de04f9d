"""Descriptors for visual link retrieval: VGG16 (Seguin et al. 2016: pool5 max / sum / 2x2 sum-pool, fc6)
and ONNX backbones (SSCD copy-detection embeddings, full and distilled), weights sources by name, PCA
whitening, and ``open_rgb``, the one way images are decoded.

The entry point for any mix of backbones is ``encode_variants`` / ``encode_variant_files`` (see
``vislink.encoder.dispatch``); ``get_encoder(weights)`` still gives one backbone's encoder.

Names are re-exported lazily: ``import vislink.encoder`` does not import torch or onnxruntime.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "get_encoder": "vislink.encoder.model",
    "Encoder": "vislink.encoder.model",
    "open_rgb": "vislink.encoder.images",
    "parse_variant": "vislink.encoder.variants",
    "list_variants": "vislink.encoder.variants",
    "VariantSpec": "vislink.encoder.variants",
    "BASE_VARIANTS": "vislink.encoder.variants",
    "variant_record": "vislink.encoder.variants",
    "PCAWhitening": "vislink.encoder.pca",
    "load_pca": "vislink.encoder.pca",
    "WeightsInfo": "vislink.encoder.weights",
    "describe_weights": "vislink.encoder.weights",
    "install_weights": "vislink.encoder.weights",
    "Backbone": "vislink.encoder.backbones",
    "encode_variants": "vislink.encoder.dispatch",
    "encode_variant_files": "vislink.encoder.dispatch",
    "default_weights_for": "vislink.encoder.dispatch",
    "describe_variant_weights": "vislink.encoder.dispatch",
    "VariantSet": "vislink.encoder.dispatch",
    "OnnxModel": "vislink.encoder.onnx_models",
    "register_onnx_model": "vislink.encoder.onnx_models",
    "get_onnx_backbone": "vislink.encoder.onnx_backbone",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vislink.encoder' has no attribute {name!r}")
