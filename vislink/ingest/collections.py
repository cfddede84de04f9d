"""Collections and their descriptor variants: created on first ingest, listed, shown, removed, and extended
with a new variant computed from the stored files (no new download).

A collection's variants all use the same encoder weights (name and sha256 recorded on each
``DescriptorVariant``): vectors from different weights must never share a Qdrant collection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vislink.config import Settings, get_settings
from vislink.errors import ConfigError, ConflictError, NotFound
from vislink.store import Collection, DescriptorVariant, Image, ImageDescriptor, ImageStatus, IngestRun
from vislink.store.lookup import collection_variants, find_collection, get_collection

if TYPE_CHECKING:
    from vislink.ingest.pipeline import IngestSummary

log = logging.getLogger(__name__)

# The paper's pool5 descriptors: one forward pass gives all three.
DEFAULT_VARIANTS: tuple[str, ...] = ("vgg16-pool5-sum", "vgg16-pool5-max", "vgg16-pool5-sp2x2-sum")


def _weights_info(weights: str, settings: Settings):
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
            info = _weights_info(weights, settings)
            if existing and existing[0].weights_sha256 != info.sha256:
                raise ConflictError(f"weights {weights!r} changed since collection {name!r} was encoded "
                                    f"(sha256 {existing[0].weights_sha256[:12]} then, {info.sha256[:12]} now)")
        session.add(_variant_row(coll, spec, info.name, info.sha256))
        have.add(spec.name)
    session.flush()
    return coll


def _valid_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}", name))


def _variant_row(coll: Collection, spec, weights_name: str, weights_sha: str, *, pca_path: str | None = None,
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


# -- add-variant -------------------------------------------------------------------------------------------
def add_variant(collection: str, variant: str, *, sample: int = 10_000, workers: int = 1, batch_size: int = 16,
                progress: bool = True, seed: int = 0) -> DescriptorVariant:
    """Compute a new descriptor variant for every done image of ``collection`` from its stored files
    (no new download), into a new Qdrant collection. A PCA variant first fits its PCA on up to
    ``sample`` base descriptors of the collection (read from the base variant's index when the collection
    has it, else computed from the stored files). Resumable: images already encoded are skipped."""
    from vislink.encoder.variants import parse_variant
    from vislink.index import open_index
    from vislink.store import session_scope

    settings = get_settings()
    spec = parse_variant(variant)
    with session_scope() as session:
        coll = get_collection(session, collection)
        existing = collection_variants(session, coll)
        if not existing:
            raise NotFound(f"collection {collection!r} has no variant to take the encoder weights from")
        row = next((v for v in existing if v.name == spec.name), None)
        if row is None:
            if spec.pca_dim is None:
                info = _weights_info(existing[0].weights_name, settings)
                if info.sha256 != existing[0].weights_sha256:
                    raise ConflictError(f"weights {info.name!r} changed since collection {collection!r} was encoded")
                row = _variant_row(coll, spec, existing[0].weights_name, existing[0].weights_sha256)
            else:
                pca_path, pca_sha = _fit_pca(session, coll, existing, spec, sample=sample, seed=seed,
                                             settings=settings, progress=progress)
                row = _variant_row(coll, spec, existing[0].weights_name, existing[0].weights_sha256,
                                   pca_path=str(pca_path), pca_sha=pca_sha)
            session.add(row)
            session.flush()
        variant_id, coll_id = row.id, coll.id
    index = open_index(settings)
    with session_scope() as session:
        row = session.get(DescriptorVariant, variant_id)
        ensure_index_collections(index, [row])
        base = session.scalar(select(DescriptorVariant).where(DescriptorVariant.collection_id == coll_id,
                                                              DescriptorVariant.name == spec.base))
        base_id = base.id if base is not None and spec.pca_dim is not None else None
    if base_id is not None:
        # The PCA applies to the l2-normalised base descriptor, which the base variant's index holds already:
        # no forward pass needed for the images that have it.
        _pca_from_base(coll_id, variant_id, base_id, index, progress=progress)
    encode_stored(coll_id, [variant_id], workers=workers, batch_size=batch_size, progress=progress)
    with session_scope() as session:
        return session.get(DescriptorVariant, variant_id)


def _pca_from_base(coll_id: int, variant_id: int, base_id: int, index, *, progress: bool, chunk: int = 256) -> int:
    from datetime import datetime, timezone

    from tqdm.auto import tqdm

    from vislink.index import Point
    from vislink.index.payload import image_payload
    from vislink.encoder.pca import load_pca
    from vislink.store import session_scope

    with session_scope() as session:
        var, base = session.get(DescriptorVariant, variant_id), session.get(DescriptorVariant, base_id)
        pca, target, source, name = load_pca(var.pca_path), var.qdrant_collection, base.qdrant_collection, var.name
        coll_name = session.get(Collection, coll_id).name
        have = select(ImageDescriptor.image_id).where(ImageDescriptor.variant_id == variant_id)
        ids = list(session.scalars(
            select(Image.id).join(ImageDescriptor, ImageDescriptor.image_id == Image.id)
            .where(Image.collection_id == coll_id, Image.status == ImageStatus.done,
                   ImageDescriptor.variant_id == base_id, Image.id.not_in(have)).order_by(Image.id)))
    done = 0
    for start in tqdm(range(0, len(ids), chunk), disable=not progress, desc=f"{name} from stored base"):
        found = index.retrieve(source, ids[start:start + chunk], with_vectors=True)
        if not found:
            continue
        import numpy as np

        vectors = pca.transform(np.stack([vec for _, _, vec in found]))
        with session_scope() as session:
            images = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_([f[0] for f in found])))}
            index.upsert(target, [Point(pid, vectors[k], image_payload(images[pid], coll_name))
                                  for k, (pid, _, _) in enumerate(found)])  # before the rows, as in ingest
            for pid, _, _ in found:
                session.merge(ImageDescriptor(image_id=pid, variant_id=variant_id,
                                              encoded_at=datetime.now(timezone.utc)))
        done += len(found)
    log.info("%s: %d images transformed from the stored base descriptors", name, done)
    return done


def _fit_pca(session: Session, coll: Collection, existing: list[DescriptorVariant], spec, *, sample: int, seed: int,
             settings: Settings, progress: bool) -> tuple[Path, str]:
    import numpy as np

    from vislink.encoder.pca import PCAWhitening

    ids = list(session.scalars(select(Image.id).where(Image.collection_id == coll.id,
                                                      Image.status == ImageStatus.done).order_by(Image.id)))
    if len(ids) < spec.pca_dim:
        raise ConfigError(f"PCA to {spec.pca_dim} dimensions needs at least {spec.pca_dim} images; collection "
                          f"{coll.name!r} has {len(ids)} done")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(ids, size=min(sample, len(ids)), replace=False).tolist())
    base = next((v for v in existing if v.name == spec.base), None)
    if base is not None:
        from vislink.index import open_index

        rows = open_index(settings).retrieve(base.qdrant_collection, chosen, with_vectors=True)
        X = np.stack([r[2] for r in rows]).astype(np.float32)
    else:
        X = encode_images_by_id(session, chosen, spec.base, weights=existing[0].weights_name, progress=progress)
    pca = PCAWhitening.fit(X, spec.pca_dim)
    folder = settings.models_dir / "pca" / coll.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.name}.npz"
    pca.save(path)
    log.info("fitted %s on %d base descriptors of %s", spec.name, len(X), coll.name)
    return path, pca.sha256


# -- encoding stored files again (add-variant, reconcile) -------------------------------------------------
def encode_stored(coll_id: int, variant_ids: Sequence[int], *, image_ids: Sequence[int] | None = None,
                  workers: int = 1, batch_size: int = 16, progress: bool = True,
                  source_kind: str = "add-variant") -> IngestSummary:
    """Encode done images of a collection that lack descriptors for ``variant_ids``, from their stored files
    (add-variant, reconcile): nothing is downloaded again. Runs through the ingest loop, so it is resumable and
    recorded as an ``IngestRun``."""
    from vislink.index import open_index
    from vislink.ingest.pipeline import IngestSummary, _chunks, _Ctx, _execute, _start_run, _variants
    from vislink.store import session_scope

    settings = get_settings()
    with session_scope() as session:
        coll = session.get(Collection, coll_id)
        name = coll.name
        todo = _variants(session, coll_id, variant_ids)
        weights = session.get(DescriptorVariant, todo[0].id).weights_name
        q = select(Image.id).where(Image.collection_id == coll_id, Image.status == ImageStatus.done)
        if image_ids is not None:
            q = q.where(Image.id.in_(list(image_ids)))
        ids = list(session.scalars(q.order_by(Image.id)))
    run_id = _start_run(coll_id, source_kind, None, {"variants": [v.name for v in todo]})
    ctx = _Ctx(settings, coll_id, name, todo, weights, open_index(settings), IngestSummary(name, run_id))
    return _execute(ctx, _chunks(ids, batch_size), _prepare_stored, workers=workers, total=len(ids),
                    progress=progress, desc=f"encode {name}")


def _prepare_stored(ctx, session: Session, image_ids: list[int]) -> list:
    from vislink.ingest.pipeline import _Work

    have: dict[int, set[int]] = {}
    for image_id, variant_id in session.execute(select(ImageDescriptor.image_id, ImageDescriptor.variant_id)
                                                .where(ImageDescriptor.image_id.in_(image_ids))):
        have.setdefault(image_id, set()).add(variant_id)
    works = []
    for image_id in image_ids:
        img = session.get(Image, image_id)
        missing = [v.name for v in ctx.variants if v.id not in have.get(image_id, set())]
        if not missing:
            ctx.summary._skip("already-done")
            continue
        if not img.file_path or not Path(img.file_path).is_file():
            # The stored copy is gone: back to pending, so that the next ingest of its source fetches it again.
            img.status = ImageStatus.pending
            img.sha256 = None
            ctx.summary._fail(img.source_ref, "stored-file-missing", str(img.file_path))
            continue
        works.append(_Work(img.id, img.source_ref, Path(img.file_path), img.sha256 or "", Path(img.file_path).suffix,
                           missing, stored=True))
    session.commit()
    return works


def encode_images_by_id(session: Session, image_ids: Sequence[int], variant: str, *, weights: str,
                        progress: bool = False, batch_size: int = 16):
    """Descriptors of one variant for stored images, computed in this process (PCA fits use it)."""
    import numpy as np
    from tqdm.auto import tqdm

    from vislink.ingest.workers import encode_batch

    paths = [session.get(Image, i).file_path for i in image_ids]
    rows = []
    for start in tqdm(range(0, len(paths), batch_size), disable=not progress, desc=f"encode {variant}"):
        for res in encode_batch(paths[start:start + batch_size], [variant], weights=weights):
            if res.vectors is not None:
                rows.append(res.vectors[variant])
    return np.stack(rows).astype(np.float32)


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
