"""Encoding a collection's stored files again, with no new download: ``add_variant`` (a new descriptor variant,
PCA variants fitted on the collection's own base descriptors, bag-of-words variants on a vocabulary trained on a
sample of its images) and ``encode_stored`` (also used by reconcile).
Both run through the pipeline's loop, so they are resumable and recorded as ``IngestRun``s."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm.auto import tqdm

from vislink.config import Settings, get_settings
from vislink.encoder.pca import PCAWhitening, load_pca
from vislink.encoder.variants import parse_variant
from vislink.errors import ConfigError, NotFound, VislinkError
from vislink.index import Point, open_index
from vislink.index.payload import image_payload
from vislink.local.vocabulary import DEFAULT_MAX_DESCRIPTORS
from vislink.ingest.collections import ensure_index_collections, variant_row, variant_weights
from vislink.ingest.pipeline import (
    IngestContext,
    IngestSummary,
    WorkItem,
    batches,
    execute_run,
    load_targets,
    start_run,
)
from vislink.ingest.workers import encode_batch
from vislink.store import (
    Collection,
    DescriptorVariant,
    Image,
    ImageDescriptor,
    ImageStatus,
    collection_variants,
    get_collection,
    session_scope,
)

log = logging.getLogger(__name__)


# -- add-variant -------------------------------------------------------------------------------------------
PCA_SAMPLE = 10_000  # base descriptors a PCA whitening is fitted on (at most)
BOW_SAMPLE = 1_000  # images whose RootSIFT descriptors train a vocabulary (at most BOW_MAX_DESCRIPTORS of them)
BOW_MAX_DESCRIPTORS = DEFAULT_MAX_DESCRIPTORS


def add_variant(collection: str, variant: str, *, sample: int | None = None, workers: int = 1, batch_size: int = 16,
                progress: bool = True, seed: int = 0) -> DescriptorVariant:
    """Compute a new descriptor variant for every done image of ``collection`` from its stored files
    (no new download), into a new Qdrant collection. A PCA variant first fits its PCA on up to
    ``sample`` (default ``PCA_SAMPLE``) base descriptors of the collection (read from the base variant's index
    when the collection has it, else computed from the stored files). A bag-of-words variant (``sift-bow``) first
    trains its vocabulary on the local features of up to ``sample`` (default ``BOW_SAMPLE``) of its images
    (``BOW_MAX_DESCRIPTORS`` descriptors at most; features cached for the encoding and for verification).
    Resumable: images already encoded are skipped."""
    settings = get_settings()
    spec = parse_variant(variant)
    with session_scope() as session:
        coll = get_collection(session, collection)
        existing = collection_variants(session, coll)
        if not existing and not spec.sparse:  # a vocabulary needs stored images only (checked by its fit)
            raise NotFound(f"collection {collection!r} has no images encoded yet: ingest some first")
        row = next((v for v in existing if v.name == spec.name), None)
        if row is None:
            info = variant_weights(spec, existing, None, settings, collection)
            if spec.sparse:
                vocab_path, vocab_sha = _fit_vocabulary(session, coll, spec, sample=sample or BOW_SAMPLE, seed=seed,
                                                        settings=settings, progress=progress)
                row = variant_row(coll, spec, info.name, info.sha256, pca_path=str(vocab_path), pca_sha=vocab_sha)
            elif spec.pca_dim is None:
                row = variant_row(coll, spec, info.name, info.sha256)
            else:
                pca_path, pca_sha = _fit_pca(session, coll, existing, spec, weights=info.name,
                                             sample=sample or PCA_SAMPLE, seed=seed, settings=settings,
                                             progress=progress)
                row = variant_row(coll, spec, info.name, info.sha256, pca_path=str(pca_path), pca_sha=pca_sha)
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


def _fit_pca(session: Session, coll: Collection, existing: list[DescriptorVariant], spec, *, weights: str,
             sample: int, seed: int, settings: Settings, progress: bool) -> tuple[Path, str]:
    ids = list(session.scalars(select(Image.id).where(Image.collection_id == coll.id,
                                                      Image.status == ImageStatus.done).order_by(Image.id)))
    if len(ids) < spec.pca_dim:
        raise ConfigError(f"PCA to {spec.pca_dim} dimensions needs at least {spec.pca_dim} images; collection "
                          f"{coll.name!r} has {len(ids)} done")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(ids, size=min(sample, len(ids)), replace=False).tolist())
    base = next((v for v in existing if v.name == spec.base), None)
    if base is not None:
        rows = open_index(settings).retrieve(base.qdrant_collection, chosen, with_vectors=True)
        X = np.stack([r[2] for r in rows]).astype(np.float32)
    else:
        X = encode_images_by_id(session, chosen, spec.base, weights=weights, progress=progress)
    pca = PCAWhitening.fit(X, spec.pca_dim)
    folder = settings.models_dir / "pca" / coll.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.name}.npz"
    pca.save(path)
    log.info("fitted %s on %d base descriptors of %s", spec.name, len(X), coll.name)
    return path, pca.sha256


def _fit_vocabulary(session: Session, coll: Collection, spec, *, sample: int, seed: int, settings: Settings,
                    progress: bool) -> tuple[Path, str]:
    from vislink.local import feature_cache
    from vislink.local.bow import features_of, fit_vocabulary

    rows = list(session.execute(select(Image.id, Image.file_path, Image.sha256).where(
        Image.collection_id == coll.id, Image.status == ImageStatus.done).order_by(Image.id)))
    rows = [r for r in rows if r.file_path and Path(r.file_path).is_file()]
    if not rows:
        raise ConfigError(f"a vocabulary for {spec.name} needs stored images; collection {coll.name!r} has none "
                          "(run `vislink reconcile` if its files were moved)")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(rows), size=min(sample, len(rows)), replace=False).tolist())
    cache = feature_cache(settings)
    features = []
    for k in tqdm(chosen, disable=not progress, desc=f"{spec.name}: local features of the sample"):
        try:
            features.append(features_of(rows[k].file_path, rows[k].sha256, cache=cache,
                                        max_pixels=settings.max_image_pixels))
        except VislinkError as exc:  # a stored file that no longer decodes: left out of the sample
            log.warning("%s: left out of the vocabulary sample (%s)", rows[k].file_path, exc)
    vocabulary = fit_vocabulary(features, spec.dim, max_descriptors=BOW_MAX_DESCRIPTORS, seed=seed,
                                provenance={"variant": spec.name, "collection": coll.name})
    folder = settings.models_dir / "vocabulary" / coll.name
    path = folder / f"{spec.name}.npz"
    vocabulary.save(path)
    log.info("trained %s on %d descriptors of %d images of %s in %.1f s", spec.name,
             vocabulary.provenance["n_descriptors"], vocabulary.provenance["n_images"], coll.name,
             vocabulary.provenance["train_seconds"])
    return path, vocabulary.sha256


# -- encoding stored files again (add-variant, reconcile) -------------------------------------------------
def encode_stored(coll_id: int, variant_ids: Sequence[int], *, image_ids: Sequence[int] | None = None,
                  workers: int = 1, batch_size: int = 16, progress: bool = True,
                  source_kind: str = "add-variant") -> IngestSummary:
    """Encode done images of a collection that lack descriptors for ``variant_ids``, from their stored files
    (add-variant, reconcile): nothing is downloaded again. Runs through the ingest loop, so it is resumable and
    recorded as an ``IngestRun``."""
    settings = get_settings()
    with session_scope() as session:
        coll = session.get(Collection, coll_id)
        name = coll.name
        todo = load_targets(session, coll_id, variant_ids)
        q = select(Image.id).where(Image.collection_id == coll_id, Image.status == ImageStatus.done)
        if image_ids is not None:
            q = q.where(Image.id.in_(list(image_ids)))
        ids = list(session.scalars(q.order_by(Image.id)))
    run_id = start_run(coll_id, source_kind, None, {"variants": [v.name for v in todo]})
    ctx = IngestContext(settings, coll_id, name, todo, open_index(settings), IngestSummary(name, run_id))
    return execute_run(ctx, batches(ids, batch_size), _prepare_stored, workers=workers, total=len(ids),
                       progress=progress, desc=f"encode {name}")


def _prepare_stored(ctx, session: Session, image_ids: list[int]) -> list:
    have: dict[int, set[int]] = {}
    for image_id, variant_id in session.execute(select(ImageDescriptor.image_id, ImageDescriptor.variant_id)
                                                .where(ImageDescriptor.image_id.in_(image_ids))):
        have.setdefault(image_id, set()).add(variant_id)
    works = []
    for image_id in image_ids:
        img = session.get(Image, image_id)
        missing = [v.name for v in ctx.variants if v.id not in have.get(image_id, set())]
        if not missing:
            ctx.summary.record_skip("already-done")
            continue
        if not img.file_path or not Path(img.file_path).is_file():
            # The stored copy is gone: back to pending, so that the next ingest of its source fetches it again.
            img.status = ImageStatus.pending
            img.sha256 = None
            ctx.summary.record_failure(img.source_ref, "stored-file-missing", str(img.file_path))
            continue
        works.append(WorkItem(img.id, img.source_ref, Path(img.file_path), img.sha256 or "", Path(img.file_path).suffix,
                           missing, stored=True))
    session.commit()
    return works


def encode_images_by_id(session: Session, image_ids: Sequence[int], variant: str, *, weights: str,
                        progress: bool = False, batch_size: int = 16):
    """Descriptors of one variant for stored images, computed in this process (PCA fits use it)."""
    paths = [session.get(Image, i).file_path for i in image_ids]
    rows = []
    for start in tqdm(range(0, len(paths), batch_size), disable=not progress, desc=f"encode {variant}"):
        for res in encode_batch(paths[start:start + batch_size], [variant], weights=weights):
            if res.vectors is not None:
                rows.append(res.vectors[variant])
    return np.stack(rows).astype(np.float32)
