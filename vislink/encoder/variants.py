"""Descriptor variants by name. A name says everything needed to recompute a vector, given its backbone's
weights: the backbone, the layer and pooling, the resize rule, and an optional PCA whitening.

- VGG16 (the paper's layers, poolings and resize rules): ``vgg16-pool5-max``, ``vgg16-pool5-sum``,
  ``vgg16-pool5-sp2x2-sum``, ``vgg16-fc6-crop``, ``vgg16-fc6-warp``.
- ONNX backbones (``vislink.encoder.onnx_models``, e.g. ``sscd``, ``sscd-distilled``): ``<model>`` (input
  resized to the model's default shorter side, 288 for SSCD) or ``<model>-sNNN`` (shorter side NNN,
  64..1024), e.g. ``sscd-s320``.
- ``<any of those>-pcaN``: the base descriptor PCA-whitened to N dimensions, then l2-normalised.
- ``<a VGG16 variant>@<weights>``: the variant pinned to its weights, e.g. ``vgg16-pool5-sum@ft:wga-ss1``
  (fine-tuned by ``vislink finetune``) or ``vgg16-pool5-max@vgg16-caffe-conv``; the PCA suffix goes before the
  ``@`` (``vgg16-pool5-sp2x2-sum-pca256@ft:wga-ss1``). A pinned variant is always computed with its own
  weights, so a collection can hold base and fine-tuned variants side by side. Unpinned VGG16 variants use the
  collection's (or the given, or VISLINK_WEIGHTS) weights; ONNX variants cannot be pinned (their weights are
  their model).
- ``sift-bow`` / ``sift-bow-<N>`` / ``sift-bow-<N>k``: the paper's bag-of-words baseline (``vislink.local.bow``):
  RootSIFT descriptors (longer side 640, 1000 keypoints) quantised to a visual vocabulary of N words (``sift-bow``:
  10,000) fitted on a sample of the collection, tf-idf weighted, l2-normalised, stored as a sparse vector
  (``spec.sparse``). Neither PCA-whitened nor pinned: its fitted file is its vocabulary.
- ``<a VGG16 pool5 variant>-regions``: the same global descriptor plus regional ones (``spec.regions``): an
  R-MAC-style multi-scale grid of overlapping squares pooled from the same pool5 map (``vislink.encoder.regions``),
  stored as the point's multivector (MaxSim) for detail search (docs/detail.md), e.g. ``vgg16-pool5-sum-regions``
  or ``vgg16-pool5-sum-regions@ft:wga-ss1``. ONNX variants too (``sscd-regions``, ``sscd-s320-regions``): they have
  no feature map, so the same grid's crops are each encoded as an image. Not for fc6, bag-of-words or -pcaN
  variants yet: those names raise ``NotFound`` saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from vislink.errors import NotFound

VGG16 = "vgg16"
PIN = "@"  # variant@weights
MAX_NAME = 120  # DescriptorVariant.name and EvaluationRun.variant_name are VARCHAR(120)
MIN_SIDE, MAX_SIDE = 64, 1024  # the -sNNN range of ONNX variants
SIFT = "sift"  # the backbone of the bag-of-words variants (vislink.local)
BOW = "sift-bow"
BOW_DEFAULT_WORDS = 10_000  # sift-bow: sized for 2 cores (docs/local.md: training time and query cost measured)
BOW_MAX_WORDS = 1_000_000
REGIONS_SUFFIX = "-regions"  # <pool5 variant>-regions: regional descriptors as the point's multivector


@dataclass(frozen=True)
class VariantSpec:
    name: str
    layer: str  # pool5 | fc6 | embedding (an ONNX graph's output)
    pooling: str  # max | sum | sp2x2-sum | none | in-graph
    resize_rule: str  # shorter-256 | crop-224 | warp-224 | shorter-NNN
    pca_dim: int | None
    dim: int  # length of the stored vector (pca_dim when whitened)
    backbone: str = VGG16  # vgg16, or the name of a registered ONNX model
    base_dim: int = 0  # length before PCA (filled in by __post_init__ when 0)
    weights: str | None = None  # pinned weights (the name's "@..." suffix), None: the collection's / the default
    regions: bool = False  # also regional descriptors (the name's "-regions" suffix), stored as a multivector

    def __post_init__(self):
        if not self.base_dim:
            object.__setattr__(self, "base_dim", self.dim)

    @property
    def sparse(self) -> bool:
        """A bag of visual words, stored as the index's sparse vector (``dim``: the vocabulary size)."""
        return self.layer == "bow"

    @property
    def unpinned(self) -> str:
        """The name without its ``@weights`` suffix."""
        return self.name.partition(PIN)[0]

    @property
    def base(self) -> str:
        """Name of the variant before PCA (itself when not whitened) and without ``-regions`` (its global
        descriptor is the base's), pinned to the same weights."""
        base = self.unpinned.removesuffix(REGIONS_SUFFIX) if self.regions else self.unpinned
        base = base if self.pca_dim is None else base.rsplit("-pca", 1)[0]
        return base if self.weights is None else f"{base}{PIN}{self.weights}"


BASE_VARIANTS: dict[str, VariantSpec] = {  # the VGG16 variants (ONNX ones are parsed from their models)
    spec.name: spec
    for spec in (
        VariantSpec("vgg16-pool5-max", "pool5", "max", "shorter-256", None, 512),
        VariantSpec("vgg16-pool5-sum", "pool5", "sum", "shorter-256", None, 512),
        VariantSpec("vgg16-pool5-sp2x2-sum", "pool5", "sp2x2-sum", "shorter-256", None, 2048),
        VariantSpec("vgg16-fc6-crop", "fc6", "none", "crop-224", None, 4096),
        VariantSpec("vgg16-fc6-warp", "fc6", "none", "warp-224", None, 4096),
    )
}

_PCA = re.compile(r"^(?P<base>.+)-pca(?P<dim>[1-9][0-9]*)$")
_BOW = re.compile(r"^sift-bow(?:-(?P<words>[1-9][0-9]*)(?P<k>k?))?$")
_ONNX = re.compile(r"^(?P<model>[a-z0-9][a-z0-9-]*?)(?:-s(?P<side>[1-9][0-9]*))?$")


def _base_spec(name: str) -> VariantSpec | None:
    if name in BASE_VARIANTS:
        return BASE_VARIANTS[name]
    bow = _BOW.match(name)
    if bow:
        from vislink.local.features import DEFAULT_MAX_SIDE

        words = int(bow["words"]) * (1000 if bow["k"] else 1) if bow["words"] else BOW_DEFAULT_WORDS
        if not 2 <= words <= BOW_MAX_WORDS:
            raise NotFound(f"descriptor variant {name!r}: a vocabulary of {words} words is outside 2..{BOW_MAX_WORDS}")
        return VariantSpec(name, "bow", "tf-idf", f"longer-{DEFAULT_MAX_SIDE}", None, words, SIFT)
    from vislink.encoder.onnx_models import get_onnx_model, is_onnx_model

    match = _ONNX.match(name)
    if not match or not is_onnx_model(match["model"]):
        return None
    model = get_onnx_model(match["model"])
    side = int(match["side"]) if match["side"] else model.default_side
    if not MIN_SIDE <= side <= MAX_SIDE:
        raise NotFound(f"descriptor variant {name!r}: shorter side {side} outside {MIN_SIDE}..{MAX_SIDE}")
    return VariantSpec(name, "embedding", "in-graph", f"shorter-{side}", None, model.dim, model.name)


def _check_pin(name: str, pin: str, spec: VariantSpec) -> str:
    from vislink.encoder.weights import FINETUNED_PREFIX, check_finetuned_run, resolve_source

    if spec.sparse:
        raise NotFound(f"descriptor variant {name!r}: bag-of-words variants have no weights to pin "
                       f"(their vocabulary is fitted on the collection): use {spec.name}")
    if spec.backbone != VGG16:
        raise NotFound(f"descriptor variant {name!r}: {spec.backbone} variants cannot be pinned to weights "
                       f"(the ONNX model is their weights): use {spec.name}")
    if pin.startswith(FINETUNED_PREFIX):
        check_finetuned_run(pin[len(FINETUNED_PREFIX):])
        return pin
    source, _ = resolve_source(pin) if re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", pin) else (None, None)
    if source is None or source.name == "<path>" or source.extra.get("onnx"):
        raise NotFound(f"descriptor variant {name!r}: pin VGG16 weights by name after '@' (ft:RUN, "
                       f"vgg16-caffe-conv, torchvision-imagenet, random[-SEED]), not {pin!r}")
    return pin


def _regions_spec(name: str) -> VariantSpec:
    inner = parse_variant(name.removesuffix(REGIONS_SUFFIX))
    why = None
    if inner.sparse:
        why = "a bag of visual words has no regions"
    elif inner.layer not in ("pool5", "embedding"):
        why = "fc6 has no spatial map to pool regions from"
    elif inner.pca_dim is not None:
        why = "PCA-whitened regions are not built yet"
    if why:
        raise NotFound(f"descriptor variant {name!r}: {why}; regional variants are VGG16 pool5 ones ("
                       + ", ".join(f"{v}{REGIONS_SUFFIX}" for v in BASE_VARIANTS if "pool5" in v)
                       + ") and ONNX ones (e.g. sscd-regions, sscd-s320-regions: the grid's crops encoded as images)")
    return replace(inner, name=name, regions=True)


def parse_variant(name: str) -> VariantSpec:
    """The spec of a variant name; unknown names raise ``NotFound`` listing the valid ones. A name ending in
    ``@<weights>`` gives the spec of the name before it, pinned to those weights (``spec.weights``)."""
    if "+" in name:  # <variant>+verify[K] (vislink.local.rerank): a way to rank, not a descriptor to compute
        raise NotFound(f"{name!r} is not a stored descriptor variant: a '+verify' suffix re-ranks a variant's "
                       "results by geometric verification, in vislink evaluate, benchmark groups / replica-wga and "
                       "(as --verify) search; encode, ingest and add-variant take the variant before the '+'")
    if PIN in name:
        unpinned, _, pin = name.partition(PIN)
        spec = parse_variant(unpinned)
        if len(name) > MAX_NAME:
            raise NotFound(f"descriptor variant {name!r}: longer than {MAX_NAME} characters")
        return replace(spec, name=name, weights=_check_pin(name, pin, spec))
    if name.endswith(REGIONS_SUFFIX):
        return _regions_spec(name)
    base = _base_spec(name)
    if base is not None:
        return base
    match = _PCA.match(name)
    base = _base_spec(match["base"]) if match else None
    if base is not None and base.sparse:
        raise NotFound(f"descriptor variant {name!r}: bag-of-words variants cannot be PCA-whitened (use {base.name})")
    if base is not None:
        dim = int(match["dim"])
        if dim > base.dim:
            raise NotFound(f"descriptor variant {name!r}: PCA dimension {dim} is larger than the "
                           f"{base.dim} dimensions of {base.name}")
        return VariantSpec(name, base.layer, base.pooling, base.resize_rule, dim, dim, base.backbone, base.dim)
    raise NotFound(f"unknown descriptor variant {name!r}; valid: {', '.join(list_variants())} "
                   f"(ONNX ones also as <name>-sNNN, the input's shorter side, e.g. sscd-s320; any of them "
                   f"followed by -pcaN, e.g. vgg16-pool5-sp2x2-sum-pca1024; sift-bow-<N> or sift-bow-<N>k, a "
                   f"bag of N visual words)")


def list_variants() -> list[str]:
    """The base variant names: VGG16's, then one per registered ONNX model (installed or not), then sift-bow."""
    from vislink.encoder.onnx_models import list_onnx_models

    return list(BASE_VARIANTS) + [model.name for model in list_onnx_models()] + [BOW]


def variant_record(variant: str, weights=None, pca=None, pca_path=None) -> dict:
    """The ``DescriptorVariant`` columns (except collection and Qdrant names) for a variant computed with
    ``weights`` (a ``WeightsInfo``; None: the variant's default weights, see ``default_weights_for``, described
    without loading anything) and, for -pcaN variants, a fitted ``PCAWhitening`` saved at ``pca_path``.
    An ONNX variant's weights are its model: a ``WeightsInfo`` of other weights raises ``ConfigError``."""
    from vislink.errors import ConfigError

    spec = parse_variant(variant)
    if weights is None:
        from vislink.encoder.dispatch import describe_variant_weights

        weights = describe_variant_weights([spec.name])[spec.name]
    elif spec.sparse:
        from vislink.local.bow import EXTRACTOR

        if weights.name != EXTRACTOR:
            raise ConfigError(f"variant {spec.name} counts the words of {EXTRACTOR} features, not {weights.name!r}")
    elif spec.backbone != VGG16 and weights.name != spec.backbone:
        raise ConfigError(f"variant {spec.name} is computed by the ONNX model {spec.backbone!r}, not with weights "
                          f"{weights.name!r}: record it with describe_variant_weights([{spec.name!r}])")
    elif spec.weights is not None and weights.name != spec.weights:
        raise ConfigError(f"variant {spec.name} is pinned to weights {spec.weights!r}, not {weights.name!r}")
    return {
        "name": spec.name,
        "backbone": spec.backbone,
        "weights_name": weights.name,
        "weights_sha256": weights.sha256,
        "layer": spec.layer,
        "pooling": spec.pooling,
        "resize_rule": spec.resize_rule,
        "pca_dim": spec.pca_dim,
        "pca_path": str(pca_path) if pca_path is not None else None,
        "pca_sha256": pca.sha256 if pca is not None else None,
        "dimension": spec.dim,
    }
