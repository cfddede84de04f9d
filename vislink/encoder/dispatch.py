"""The one entry point for descriptors of any backbone: a collection can hold VGG16 and SSCD variants side
by side, and callers (ingest, search, evaluation, UI) never pick a network themselves.

```python
from vislink.encoder import encode_variants, encode_variant_files, default_weights_for, describe_variant_weights

vectors = encode_variants(images, ["vgg16-pool5-sum", "sscd", "sscd-distilled-s320-pca128"],
                          weights="vgg16-caffe-conv", pca={"sscd-distilled-s320-pca128": fitted})
vectors["sscd"].shape                       # (len(images), 512) float32, rows l2-normalised

for index, result in encode_variant_files(paths, variants, weights=None, batch_size=16, workers=2):
    ...                                     # {variant: (dim,) float32} or a BadImage, in completion order

default_weights_for("sscd")                 # "sscd": an ONNX variant's weights are its model
default_weights_for("vgg16-pool5-sum")      # VISLINK_WEIGHTS, or the weights given
describe_variant_weights(variants)          # {variant: WeightsInfo(name, sha256, ...)}, loads nothing
```

- ``weights``: ``None`` (VGG16 variants use VISLINK_WEIGHTS), a name (the VGG16 weights), or a mapping
  ``{variant: weights name}`` as stored in ``DescriptorVariant.weights_name`` (so one call serves a
  collection whose variants were made with different weights). A pinned variant (``vgg16-pool5-sum@ft:run``)
  always uses its pinned weights: base and fine-tuned variants mix in one call. ONNX variants always use their own model; a
  weights name given for one must be that model's name (``ConfigError`` otherwise).
- ``pca``: ``{variant: PCAWhitening}`` for the ``-pcaN`` variants (``load_pca(path)``).
- Each backbone runs once per batch for all its variants (VGG16: one forward pass for every pool5
  variant); images are decoded and resized once per resize rule whatever the number of backbones.
- Bag-of-words variants (``sift-bow``, sparse vectors) are not computed here: ``vislink.local.bow`` counts their
  words with the collection's vocabulary; their "weights" are the local-feature extraction (``bow.EXTRACTOR``).
- Models are built once per process (``get_encoder``, ``get_onnx_backbone``). An ONNX model that is not
  installed raises ``WeightsUnavailable`` naming ``vislink weights install sscd``; VGG16 weights install
  themselves on first use as before.
- The weights actually used, per variant: ``VariantSet(variants, ...).weights`` (after loading) or
  ``describe_variant_weights`` (before, without loading): record ``.name`` and ``.sha256`` in each
  ``DescriptorVariant`` row (``variant_record(variant, info, pca, pca_path)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vislink.encoder.backbones import check_pca, encode_images_with
from vislink.encoder.onnx_models import is_onnx_model
from vislink.encoder.variants import VGG16, VariantSpec, parse_variant
from vislink.errors import BadImage, ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from vislink.encoder.pca import PCAWhitening
    from vislink.encoder.weights import WeightsInfo

Weights = str | Mapping[str, str] | None


def _settings(settings):
    if settings is None:
        from vislink.config import get_settings

        return get_settings()
    return settings


def default_weights_for(variant: str, weights: Weights = None, settings=None) -> str:
    """The weights name that computes ``variant``: an ONNX variant's own model name; a pinned variant's
    weights (``vgg16-pool5-sum@ft:run`` -> ``ft:run``, whatever ``weights`` says for the unpinned ones; a
    mapping naming other weights for it raises ``ConfigError``); for other VGG16 variants ``weights`` (a name,
    or ``weights[variant]`` for a mapping) or else VISLINK_WEIGHTS."""
    spec = parse_variant(variant)
    given = weights.get(spec.name) if isinstance(weights, Mapping) else weights
    if spec.sparse:
        from vislink.local.bow import EXTRACTOR

        if given and given != EXTRACTOR and isinstance(weights, Mapping):
            raise ConfigError(f"variant {spec.name} counts the words of {EXTRACTOR} features, not {given!r}")
        return EXTRACTOR
    if spec.weights is not None:
        if given and given != spec.weights and isinstance(weights, Mapping):
            raise ConfigError(f"variant {spec.name} is pinned to weights {spec.weights!r}, not {given!r}")
        return spec.weights
    if spec.backbone != VGG16:
        if given and given != spec.backbone and isinstance(weights, Mapping):
            raise ConfigError(f"variant {spec.name} is computed by the ONNX model {spec.backbone!r}, "
                              f"not by weights {given!r}")
        return spec.backbone
    if given and is_onnx_model(given):
        raise ConfigError(f"{given!r} is an ONNX backbone's model, not VGG16 weights: variant {spec.name} needs "
                          f"VGG16 weights (VISLINK_WEIGHTS, `vislink weights list`)")
    return given or _settings(settings).weights


def describe_variant_weights(variants: Sequence[str], weights: Weights = None,
                             settings=None) -> dict[str, WeightsInfo]:
    """{variant: WeightsInfo} of the weights each variant would use (never loads or installs anything;
    ``installed`` false and ``sha256`` None when they are not there yet)."""
    from vislink.encoder.weights import describe_weights

    settings = _settings(settings)
    names = {v: default_weights_for(v, weights, settings) for v in variants}
    sparse = {v for v in variants if parse_variant(v).sparse}
    infos = {name: describe_weights(name, settings) for name in {names[v] for v in variants if v not in sparse}}
    if sparse:
        infos[names[next(iter(sparse))]] = _extractor_info()
    return {v: infos[names[v]] for v in variants}


def _extractor_info() -> WeightsInfo:
    from vislink.encoder.weights import WeightsInfo
    from vislink.local.bow import EXTRACTOR, extractor_sha256

    return WeightsInfo(EXTRACTOR, None, extractor_sha256(), True, "OpenCV SIFT, RootSIFT descriptors (no weights)",
                       "gray, longer side 640", False)


class VariantSet:
    """Variants of one or more backbones, each with the loaded model that computes it. Implements
    ``encode_prepared`` like a backbone, so the file pipeline (``loader.encode_files``) runs it as one."""

    def __init__(self, variants: Sequence[str], *, weights: Weights = None,
                 pca: dict[str, PCAWhitening] | None = None, device: str | None = None, settings=None):
        if isinstance(variants, str):
            raise TypeError("variants must be a list of names, not one string")
        settings = _settings(settings)
        self.specs: list[VariantSpec] = [parse_variant(v) for v in variants]
        sparse = [s.name for s in self.specs if s.sparse]
        if sparse:
            raise ConfigError(f"{', '.join(sparse)}: a bag of visual words is a sparse vector, counted with a "
                              "collection's vocabulary by vislink.local.bow (bow_vector), not by a network")
        names = {s.name: default_weights_for(s.name, weights, settings) for s in self.specs}
        check_pca(self.specs, pca)  # before loading any model
        self.pca = pca
        self.groups: list[tuple[object, list[VariantSpec]]] = []  # (backbone, its variants)
        by_key: dict[tuple[str, str], list[VariantSpec]] = {}
        for spec in self.specs:
            by_key.setdefault((spec.backbone, names[spec.name]), []).append(spec)
        for (backbone, weights_name), specs in by_key.items():
            if backbone == VGG16:
                from vislink.encoder.model import get_encoder

                model = get_encoder(weights_name, device)
            else:
                from vislink.encoder.onnx_backbone import get_onnx_backbone

                model = get_onnx_backbone(backbone, settings)
            model.specs([s.name for s in specs], pca)  # fc6 without fc6 weights fails before any work
            self.groups.append((model, specs))

    @property
    def weights(self) -> dict[str, WeightsInfo]:
        """{variant: WeightsInfo of the loaded model}: the name and sha256 to record per variant."""
        return {s.name: model.weights_info for model, specs in self.groups for s in specs}

    @property
    def backbones(self) -> dict[str, str]:
        """{variant: backbone name}."""
        return {s.name: s.backbone for s in self.specs}

    def encode_prepared(self, items: Sequence[dict[str, np.ndarray]], specs: Sequence[VariantSpec],
                        pca: dict[str, PCAWhitening] | None) -> dict[str, np.ndarray]:
        wanted = {s.name for s in specs}
        out: dict[str, np.ndarray] = {}
        for model, group in self.groups:
            mine = [s for s in group if s.name in wanted]
            if mine:
                out.update(model.encode_prepared(items, mine, pca))
        return out

    def encode_images(self, images: Sequence[Image.Image], *, mirrored: bool = False,
                      batch_size: int = 16) -> dict[str, np.ndarray]:
        """{variant: float32 (len(images), dim)}, rows l2-normalised, in the order of ``images``."""
        return encode_images_with(self, images, self.specs, pca=self.pca, mirrored=mirrored, batch_size=batch_size)

    def encode_files(self, paths: Sequence[Path | str], *, batch_size: int = 16, workers: int = 2,
                     progress: bool = True,
                     max_pixels: int | None = None) -> Iterator[tuple[int, dict[str, np.ndarray] | BadImage]]:
        """Yield ``(index into paths, {variant: (dim,) float32})`` or ``(index, BadImage)`` per file, in
        completion order; decoding and resizing in ``workers`` threads while the networks compute."""
        from vislink.encoder.loader import encode_files

        yield from encode_files(self, paths, self.specs, pca=self.pca, batch_size=batch_size, workers=workers,
                                progress=progress, max_pixels=max_pixels)


def encode_bow_images(images: Sequence[Image.Image], variant: str, vocabulary_path: str | Path) -> list:
    """The tf-idf ``SparseVector`` of each image for a bag-of-words variant (``sift-bow``) with the vocabulary
    stored at ``vocabulary_path`` (its ``DescriptorVariant.pca_path``): local features extracted as ingest does
    (not cached: a query image has no place in the store)."""
    from vislink.local.bow import bow_vector, features_of_image
    from vislink.local.vocabulary import load_vocabulary

    if not parse_variant(variant).sparse:
        raise ConfigError(f"{variant} is not a bag-of-words variant: encode it with encode_variants")
    vocabulary = load_vocabulary(vocabulary_path)
    return [bow_vector(features_of_image(image), vocabulary) for image in images]


def encode_variants(images: Sequence[Image.Image], variants: Sequence[str], *, weights: Weights = None,
                    pca: dict[str, PCAWhitening] | None = None, mirrored: bool = False,
                    batch_size: int = 16) -> dict[str, np.ndarray]:
    """{variant: float32 (len(images), dim)}, rows l2-normalised, in the order of ``images``, for variants
    of any backbones (see the module docstring for ``weights`` and ``pca``). Images: RGB, from ``open_rgb``;
    ``mirrored`` encodes their left-right mirror."""
    return VariantSet(variants, weights=weights, pca=pca).encode_images(images, mirrored=mirrored,
                                                                         batch_size=batch_size)


def encode_variant_files(paths: Sequence[Path | str], variants: Sequence[str], *, weights: Weights = None,
                         pca: dict[str, PCAWhitening] | None = None, batch_size: int = 16, workers: int = 2,
                         progress: bool = True, max_pixels: int | None = None
                         ) -> Iterator[tuple[int, dict[str, np.ndarray] | BadImage]]:
    """``encode_variants`` for files: yields ``(index into paths, {variant: (dim,) float32})`` or
    ``(index, BadImage)`` per file, in completion order (a bad file does not stop the others)."""
    variant_set = VariantSet(variants, weights=weights, pca=pca)
    yield from variant_set.encode_files(paths, batch_size=batch_size, workers=workers, progress=progress,
                                        max_pixels=max_pixels)
