"""Collections and their descriptor variants: created on first ingest, listed, shown and removed. Adding a
variant to an existing collection (computed from the stored files) is ``reencode.add_variant``.

A collection's variants all use the same encoder weights (name and sha256 recorded on each
``DescriptorVariant``): vectors from different weights must never share a Qdrant collection.
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


def installed_weights(weights: str, settings: Settings):
    """The ``WeightsInfo`` of installed ``weights``; ``WeightsUnavailable`` saying how to install them otherwise."""
    from vislink.encoder.weights import describe_weights

    info = describe_weights(weights, settings)
    if not info.sha256:
        from vislink.errors import WeightsUnavailable

        raise WeightsUnavailable(f"encoder weights {weights!r} are not installed: {info.message}")
    return info


def ensure_collection(session: Session, name: str, *, variants: list[str] | None = None, weights: str | None = None,
                      source_kind: str | None = None, source_ref: str | None = None,
                      settings: Settings | None = None) -> Collection:
    """The collection named ``name``, created with its variants when new. Variants named here that the
    collection lacks are added (non-PCA ones only: a PCA variant needs a fit, see ``add_variant``).
    Raises ``ConflictError`` when ``weights`` differ from those the collection was built with."""
    from vislink.encoder.variants import parse_variant

    settings = settings or get_settings()
    coll = find_collection(session, name)
    existing = collection_variants(session, coll) if coll is not None else []
    if coll is not None and existing:
        recorded = existing[0].weights_name
        if weights is not None and weights != recorded:
            raise ConflictError(f"collection {name!r} was encoded with weights {recorded!r}, not {weights!r}; "
                                "use another collection name to try other weights")
        weights = recorded
    weights = weights or settings.weights
    wanted = list(variants) if variants else ([] if existing else list(DEFAULT_VARIANTS))
    specs = [parse_variant(v) for v in wanted]  # unknown names fail before anything is written
    if coll is None:
        if not _valid_name(name):
            raise ConfigError(f"collection name {name!r}: use letters, digits, '-', '_' or '.' (max 200)")
        coll = Collection(name=name, source_kind=source_kind, source_ref=source_ref)
        session.add(coll)
        session.flush()
    have = {v.name for v in existing}
    info = None
    for spec in specs:
        if spec.name in have:
            continue
        if spec.pca_dim is not None:
            log.info("variant %s needs a PCA fit: it is added after the base descriptors exist", spec.name)
            continue
        if info is None:
            info = installed_weights(weights, settings)
            if existing and existing[0].weights_sha256 != info.sha256:
                raise ConflictError(f"weights {weights!r} changed since collection {name!r} was encoded "
                                    f"(sha256 {existing[0].weights_sha256[:12]} then, {info.sha256[:12]} now)")
        session.add(variant_row(coll, spec, info.name, info.sha256))
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
    from vislink.index.payload import PAYLOAD_INDEXES

    for v in variants:
        index.create_collection(v.qdrant_collection, v.dimension, payload_indexes=PAYLOAD_INDEXES)


def pca_dict(variants: list[DescriptorVariant]) -> dict[str, str]:
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
