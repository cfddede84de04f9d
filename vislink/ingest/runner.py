"""The local runner: ``ingest(collection, items)`` runs the pipeline (``pipeline``) on this machine, in this
process and optional worker processes; ``ingest_upload`` does it for one file uploaded in the UI.
The scaled set-up queues the same work instead (``queue``)."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from sqlalchemy import select

from vislink.config import Settings, get_settings
from vislink.errors import BadImage
from vislink.ingest.collections import ensure_collection, ensure_index_collections
from vislink.ingest.pipeline import (
    IngestContext,
    IngestSummary,
    batches,
    execute_run,
    load_targets,
    prepare_items,
    start_run,
)
from vislink.store import Image, ImageStatus, collection_variants, get_collection, session_scope

OPTIMIZE_AFTER = 1000  # new points after which an ingest asks the index to optimise its collections


def ingest(collection: str, items: Iterable, *, variants: list[str] | None = None, workers: int = 1,
           progress: bool = True, weights: str | None = None, batch_size: int = 16, source_kind: str = "items",
           source_ref: str | None = None, fetcher: Any = None, index: Any = None,
           on_batch: Callable[[IngestSummary], None] | None = None) -> IngestSummary:
    """Ingest ``items`` (``SourceItem``s) into ``collection``, creating it with ``variants`` (default: the
    three pool5 variants) and ``weights`` (default: settings) when new. Re-running skips what is done.
    The summary is also stored in an ``IngestRun`` row. ``on_batch(summary)`` is called before each batch is
    prepared (a job's progress; an exception it raises stops the run, whose row then says failed)."""
    from vislink.index import open_index

    settings = get_settings()
    settings.ensure_dirs()
    with session_scope() as session:
        coll = ensure_collection(session, collection, variants=variants, weights=weights, source_kind=source_kind,
                                 source_ref=source_ref, settings=settings)
        rows = collection_variants(session, coll)
        coll_id = coll.id
        index = index or open_index(settings)
        ensure_index_collections(index, rows)
        all_variants = load_targets(session, coll_id)
    ctx = IngestContext(settings, coll_id, collection, all_variants, index, IngestSummary(collection), fetcher)
    ctx.summary.run_id = start_run(coll_id, source_kind, source_ref,
                                   {"variants": [v.name for v in all_variants], "weights": ctx.weights,
                                    "workers": workers},
                                   embedded=settings.effective_index_backend in ("qdrant-edge", "qdrant-local"))
    total = len(items) if hasattr(items, "__len__") else None
    prepare = prepare_items
    if on_batch is not None:
        def prepare(ctx_, session, chunk):  # noqa: E306 - the hook, then the usual preparation
            on_batch(ctx_.summary)
            return prepare_items(ctx_, session, chunk)
    summary = execute_run(ctx, batches(items, batch_size), prepare, workers=workers, total=total,
                          progress=progress, desc=f"ingest {collection}")
    if summary.done >= OPTIMIZE_AFTER:
        # Embedded qdrant-edge has no background optimizer: merge segments (and index the new points of
        # HNSW collections) now; cheap next to the ingest.
        for v in all_variants:
            index.optimize(v.qdrant_collection)
    if summary.done:
        # Collections that crossed the index policy's threshold: their HNSW build is queued, not waited for.
        from vislink.ingest.index_policy import queue_index_builds

        queue_index_builds(index, [v.qdrant_collection for v in all_variants], settings)
    _add_pending_pca_variants(collection, variants, workers=workers, progress=progress)
    return summary


def _add_pending_pca_variants(collection: str, variants: list[str] | None, *, workers: int, progress: bool) -> None:
    """PCA and bag-of-words variants asked for at ingest are fitted (whitening, vocabulary) once the images are
    stored and the base descriptors exist."""
    from vislink.encoder.variants import parse_variant
    from vislink.ingest.reencode import add_variant

    for name in variants or []:
        spec = parse_variant(name)
        if spec.pca_dim is not None or spec.sparse:
            add_variant(collection, name, workers=workers, progress=progress)


# -- uploads (the UI) -------------------------------------------------------------------------------------
def ingest_upload(collection: str, filename: str, data: bytes, *, variants: list[str] | None = None) -> Image:
    """Validate, store under its hash, encode for every variant of ``collection`` and index one uploaded
    file; it is searchable when this returns. Identical bytes already in the collection give that image.
    Raises ``BadImage`` (with its reason) for files that are too big or not usable images."""
    from vislink.encoder.images import open_rgb

    settings = get_settings()
    limit = settings.max_upload_mb * 1024 * 1024
    if len(data) > limit:
        raise BadImage(filename, "too-large", f"{len(data) / 1e6:.1f} MB, the limit is {settings.max_upload_mb} MB "
                                              "(VISLINK_MAX_UPLOAD_MB)")
    open_rgb(data, name=filename)  # a clear error now, before anything is registered
    item = _upload_item(filename, data, settings)
    summary = ingest(collection, [item], variants=variants, workers=1, progress=False, source_kind="upload",
                     source_ref=filename)
    with session_scope() as session:
        img = session.scalar(select(Image).where(Image.collection_id == get_collection(session, collection).id,
                                                 Image.source_ref == item.source_ref))
        if img.status == ImageStatus.duplicate:
            img = session.get(Image, img.duplicate_of_id)
        if img.status != ImageStatus.done:
            reason, _, detail = (img.failure_reason or "unreadable").partition(": ")
            raise BadImage(filename, reason, detail or summary.format())
        session.expunge(img)
        return img


def _upload_item(filename: str, data: bytes, settings: Settings):
    from vislink.ingest.sources.upload import upload_item

    return upload_item(filename, data, cache_dir=settings.cache_dir)
