"""The encoder backbone interface: one network (with its weights) behind some descriptor variants.

Two kinds implement it: VGG16 in torch (``model.Encoder``: pool5 / fc6 variants, one set of weights) and
ONNX graphs (``onnx_backbone.OnnxBackbone``: ``sscd``, ``sscd-distilled``, or any model registered in
``onnx_models``). ``dispatch.encode_variants`` groups variants by backbone and calls each one.

A backbone implements ``Backbone`` (``encode`` on one batch of prepared images, optional ``feature_map``)
and inherits ``BackboneBase`` for the rest: parsing and checking variants, PCA, batching images of equal
resized shape (never padding: a descriptor does not depend on its batch), and the threaded file pipeline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from vislink.encoder.variants import VariantSpec, parse_variant
from vislink.errors import BadImage, ConfigError, WeightsUnavailable

if TYPE_CHECKING:
    from PIL import Image

    from vislink.encoder.pca import PCAWhitening
    from vislink.encoder.weights import WeightsInfo


@runtime_checkable
class Backbone(Protocol):
    """One network with its weights. ``items`` are ``images.prepare`` outputs (one uint8 HxWx3 RGB array
    per resize rule of ``specs``), every item of one batch with the same shapes."""

    name: str  # "vgg16" or the ONNX model's name; DescriptorVariant.backbone
    weights_info: WeightsInfo  # name and sha256 recorded with every vector it makes
    preprocessing: str  # how the uint8 pixels become the network's input, in words

    def encode(self, items: Sequence[dict[str, np.ndarray]],
               specs: Sequence[VariantSpec]) -> dict[str, np.ndarray]:
        """{spec.base: float32 (len(items), spec.base_dim)}, rows l2-normalised, before any PCA."""
        ...

    def feature_map(self, arrays: Sequence[np.ndarray]) -> np.ndarray | None:
        """The spatial feature map (N, C, h, w) of a batch of uint8 HxWx3 arrays, or None if the network
        exposes none (ONNX graphs that end in an embedding)."""
        ...


def l2n(matrix: np.ndarray) -> np.ndarray:
    """float32 rows to unit length; an all-zero row stays zero."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def check_pca(specs: Sequence[VariantSpec], pca: dict[str, PCAWhitening] | None) -> None:
    """Every -pcaN variant has its fitted whitening, of the right shape."""
    for spec in specs:
        if spec.pca_dim is None:
            continue
        fitted = (pca or {}).get(spec.name)
        if fitted is None:
            raise ConfigError(f"variant {spec.name} needs its fitted PCA whitening: pass pca={{{spec.name!r}: "
                              f"PCAWhitening.load(path)}}")
        if fitted.dim != spec.pca_dim or fitted.input_dim != spec.base_dim:
            raise ConfigError(f"PCA for {spec.name} maps {fitted.input_dim} -> {fitted.dim} dimensions, "
                              f"the variant needs {spec.base_dim} -> {spec.pca_dim}")


def bucket_key(arrays: dict[str, np.ndarray]) -> tuple:
    """Images with equal keys can share a batch: same input shape for every resize rule."""
    return tuple(sorted((rule, array.shape) for rule, array in arrays.items()))


def encode_images_with(encoder, images: Sequence[Image.Image], specs: Sequence[VariantSpec], *,
                       pca: dict[str, PCAWhitening] | None = None, mirrored: bool = False,
                       batch_size: int = 16) -> dict[str, np.ndarray]:
    """Images -> {variant: (len(images), dim)} through ``encoder.encode_prepared`` (a backbone or a
    ``VariantSet``), in batches of equal resized shape, rows in the order of ``images``."""
    from vislink.encoder.images import prepare

    rules = {s.resize_rule for s in specs}
    prepared = [prepare(image if image.mode == "RGB" else image.convert("RGB"), rules, mirrored)
                for image in images]
    out = {s.name: np.zeros((len(images), s.dim), dtype=np.float32) for s in specs}
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, arrays in enumerate(prepared):
        buckets[bucket_key(arrays)].append(i)
    for indices in buckets.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            rows = encoder.encode_prepared([prepared[i] for i in chunk], specs, pca)
            for name, matrix in rows.items():
                out[name][chunk] = matrix
    return out


def apply_pca(specs: Sequence[VariantSpec], base: dict[str, np.ndarray],
              pca: dict[str, PCAWhitening] | None) -> dict[str, np.ndarray]:
    """{variant: float32 matrix} from the base descriptors: whitened for -pcaN variants."""
    out = {}
    for spec in specs:
        matrix = np.asarray(base[spec.base], dtype=np.float32)
        out[spec.name] = pca[spec.name].transform(matrix) if spec.pca_dim is not None else matrix
    return out


class BackboneBase:
    """What every backbone does the same way, on top of its ``encode`` (and ``check``)."""

    name: str = ""
    weights_info: WeightsInfo
    preprocessing: str = ""

    def encode(self, items, specs) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def feature_map(self, arrays: Sequence[np.ndarray]) -> np.ndarray | None:
        return None

    def check(self, spec: VariantSpec) -> None:
        """Raise ``WeightsUnavailable`` when these weights cannot compute ``spec`` (default: they can)."""

    # -- public API ------------------------------------------------------------------------------------

    def supports(self, variant: str) -> bool:
        spec = parse_variant(variant)
        if spec.backbone != self.name:
            return False
        try:
            self.check(spec)
        except WeightsUnavailable:
            return False
        return True

    def specs(self, variants: Sequence[str], pca: dict[str, PCAWhitening] | None = None) -> list[VariantSpec]:
        """Parse and check variants against this backbone, its weights and the PCA fits given."""
        if isinstance(variants, str):
            raise TypeError("variants must be a list of names, not one string")
        specs = [parse_variant(v) for v in variants]
        for spec in specs:
            if spec.backbone != self.name:
                raise ConfigError(f"variant {spec.name} is computed by the {spec.backbone} backbone, not {self.name}: "
                                  f"use vislink.encoder.encode_variants for variants of several backbones")
            self.check(spec)
        check_pca(specs, pca)
        return specs

    def encode_prepared(self, items: Sequence[dict[str, np.ndarray]], specs: Sequence[VariantSpec],
                        pca: dict[str, PCAWhitening] | None) -> dict[str, np.ndarray]:
        """One batch of prepared images (``images.prepare`` output, all of one shape per rule)."""
        return apply_pca(specs, self.encode(items, specs), pca)

    def encode_images(self, images: Sequence[Image.Image], variants: Sequence[str], *,
                      pca: dict[str, PCAWhitening] | None = None, mirrored: bool = False,
                      batch_size: int = 16) -> dict[str, np.ndarray]:
        """{variant: float32 (len(images), dim)}, rows l2-normalised, in the order of ``images``.
        Images should come from ``open_rgb`` (RGB); ``mirrored`` encodes their left-right mirror."""
        return encode_images_with(self, images, self.specs(variants, pca), pca=pca, mirrored=mirrored,
                                  batch_size=batch_size)

    def encode_files(self, paths: Sequence[Path | str], variants: Sequence[str], *, batch_size: int = 16,
                     workers: int = 2, progress: bool = True, pca: dict[str, PCAWhitening] | None = None,
                     max_pixels: int | None = None) -> Iterator[tuple[int, dict[str, np.ndarray] | BadImage]]:
        """Yield ``(index into paths, {variant: (dim,) float32})`` or ``(index, BadImage)`` per file, in
        completion order. Decoding and resizing run in ``workers`` threads while the network computes."""
        from vislink.encoder.loader import encode_files

        yield from encode_files(self, paths, self.specs(variants, pca), pca=pca, batch_size=batch_size,
                                workers=workers, progress=progress, max_pixels=max_pixels)
