"""Descriptor variants by name: the paper's VGG16 layers, poolings and resize rules, plus PCA-whitened
versions (``<base>-pcaN``). A name says everything needed to recompute a vector, given the weights."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vislink.errors import NotFound


@dataclass(frozen=True)
class VariantSpec:
    name: str
    layer: str  # pool5 | fc6
    pooling: str  # max | sum | sp2x2-sum | none
    resize_rule: str  # shorter-256 | crop-224 | warp-224
    pca_dim: int | None
    dim: int  # length of the stored vector (pca_dim when whitened)

    @property
    def base(self) -> str:
        """Name of the variant before PCA (itself when not whitened)."""
        return self.name if self.pca_dim is None else self.name.rsplit("-pca", 1)[0]

    @property
    def base_dim(self) -> int:
        return BASE_VARIANTS[self.base].dim


BASE_VARIANTS: dict[str, VariantSpec] = {
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


def parse_variant(name: str) -> VariantSpec:
    """The spec of a variant name; unknown names raise ``NotFound`` listing the valid ones."""
    if name in BASE_VARIANTS:
        return BASE_VARIANTS[name]
    match = _PCA.match(name)
    if match and match["base"] in BASE_VARIANTS:
        base = BASE_VARIANTS[match["base"]]
        dim = int(match["dim"])
        if dim > base.dim:
            raise NotFound(f"descriptor variant {name!r}: PCA dimension {dim} is larger than the "
                           f"{base.dim} dimensions of {base.name}")
        return VariantSpec(name, base.layer, base.pooling, base.resize_rule, dim, dim)
    raise NotFound(f"unknown descriptor variant {name!r}; valid: {', '.join(BASE_VARIANTS)} "
                   f"(or one of them followed by -pcaN, e.g. vgg16-pool5-sp2x2-sum-pca1024)")


def list_variants() -> list[str]:
    return list(BASE_VARIANTS)


def variant_record(variant: str, weights, pca=None, pca_path=None) -> dict:
    """The ``DescriptorVariant`` columns (except collection and Qdrant names) for a variant computed with
    ``weights`` (a ``WeightsInfo``) and, for -pcaN variants, a fitted ``PCAWhitening`` saved at ``pca_path``."""
    spec = parse_variant(variant)
    return {
        "name": spec.name,
        "backbone": "vgg16",
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
