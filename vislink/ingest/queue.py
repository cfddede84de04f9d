"""The scaled set-up: ingestion as jobs on procrastinate, a PostgreSQL task queue.

``enqueue(...)`` creates the collection and one job per batch of source items; ``vislink worker``
processes, on any number of machines, take jobs and run the whole pipeline for their batch (fetch,
hash, dedup, decode, encode, store, upsert, mark done) against the shared SQL store and Qdrant.

Why this is safe with several workers:
- an image is one row per (collection, source_ref) and its sha256 is unique per collection, so the
  database, not the workers, decides who owns an image and which copy is the original;
- each job works in sub-batches committed one by one and skips what is done, so a retried job only
  redoes the sub-batch that was cut short (whose upserts, keyed by image id, simply overwrite);
- a worker killed mid-batch stops sending heartbeats: ``retry_stalled`` (a periodic task every worker
  runs, or ``vislink worker --retry-stalled``) puts its job back in the queue for another worker.

The index must be shared by all workers: a Qdrant server (``QDRANT_URL``) in production. With the
embedded index (a folder one process may open at a time), workers on one machine share it through
``vislink.index.LockedFolderIndex`` (``shared_index``): each index call takes an exclusive file lock, opens
the folder, acts, closes. It is correct but reopens the index per call: fine for tests and a small machine,
not for scale.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from vislink.config import Settings, get_settings
from vislink.errors import ConfigError

log = logging.getLogger(__name__)

QUEUE = "vislink-ingest"
INGEST_TASK = "vislink.ingest_batch"
RETRY_TASK = "vislink.retry_stalled"


def queue_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    url = settings.queue_url or settings.database_url
    if not url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        raise ConfigError("the distributed ingest queue needs PostgreSQL: set VISLINK_QUEUE_URL (or VISLINK_DB_URL) "
                          f"to a postgresql:// URL; it is {url.split('://')[0]}://...")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@lru_cache(maxsize=4)
def get_app(url: str):
    """The procrastinate app on ``url`` with vislink's tasks (built once per process and URL)."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    app.task(name=INGEST_TASK, queue=QUEUE, retry=procrastinate.RetryStrategy(max_attempts=3, wait=5))(run_batch)

    @app.periodic(cron="* * * * *", periodic_id="retry-stalled")
    @app.task(name=RETRY_TASK, queue=QUEUE, queueing_lock=RETRY_TASK)
    async def _retry_stalled(timestamp: int) -> None:
        n = await _retry_stalled_async(app, 30)
        if n:
            log.warning("re-queued %d ingest jobs of workers that stopped sending heartbeats", n)

    return app


def apply_schema(url: str | None = None) -> bool:
    """Create procrastinate's tables in the queue database (no-op when they exist). True if created."""
    from sqlalchemy import text

    from vislink.store.db import get_engine

    url = url or queue_url()
    with get_engine(url).connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None
    if exists:
        return False
    app = get_app(url)
    with app.open():
        app.schema_manager.apply_schema()
    return True


def _item_dict(item) -> dict[str, Any]:
    return {"source_ref": item.source_ref, "metadata": item.metadata,
            "local_path": str(item.local_path) if item.local_path else None, "url": item.url}


def enqueue(collection: str, items: Iterable, *, variants: list[str] | None = None, weights: str | None = None,
            batch_size: int = 16, source_kind: str = "items", source_ref: str | None = None,
            sub_batch: int = 4) -> tuple[int, int]:
    """Create ``collection`` (and its index collections) and queue its items in jobs of ``batch_size``.
    Local paths must be readable by the workers (a shared folder). Returns (run id, number of jobs)."""
    from vislink.index import shared_index
    from vislink.ingest.collections import ensure_collection, ensure_index_collections
    from vislink.ingest.pipeline import batches
    from vislink.store import IngestRun, RunStatus, collection_variants, session_scope

    settings = get_settings()
    url = queue_url(settings)
    apply_schema(url)
    with session_scope() as session:
        coll = ensure_collection(session, collection, variants=variants, weights=weights, source_kind=source_kind,
                                 source_ref=source_ref, settings=settings)
        rows = collection_variants(session, coll)
        ensure_index_collections(shared_index(settings), rows)
        run = IngestRun(collection_id=coll.id, source_kind=source_kind, source_ref=source_ref,
                        status=RunStatus.running, params={"queued": True, "variants": [v.name for v in rows]})
        session.add(run)
        session.flush()
        run_id = run.id
    app = get_app(url)
    n_jobs = n_items = 0
    with app.open():
        task = app.tasks[INGEST_TASK]
        for chunk in batches(items, batch_size):
            task.defer(collection=collection, items=[_item_dict(i) for i in chunk], run_id=run_id,
                       sub_batch=sub_batch)
            n_jobs += 1
            n_items += len(chunk)
    with session_scope() as session:
        run = session.get(IngestRun, run_id)
        run.params = {**run.params, "jobs": n_jobs, "items": n_items}
    return run_id, n_jobs


def run_batch(collection: str, items: list[dict], run_id: int | None = None, sub_batch: int = 4) -> dict:
    """One queued job: the whole pipeline for ``items``, in sub-batches committed one by one."""
    from vislink.index import shared_index
    from vislink.ingest.pipeline import (
        IngestContext,
        IngestSummary,
        batches,
        finish_batch,
        load_targets,
        prepare_items,
    )
    from vislink.ingest.sources.base import SourceItem
    from vislink.ingest.workers import encode_batch
    from vislink.store import get_collection, session_scope

    settings = get_settings()
    with session_scope() as session:
        coll = get_collection(session, collection)
        variants = load_targets(session, coll.id)
        coll_id = coll.id
    ctx = IngestContext(settings, coll_id, collection, variants, shared_index(settings), IngestSummary(collection))
    pca = {v.name: v.pca_path for v in variants if v.pca_path}
    source_items = [SourceItem(d["source_ref"], d.get("metadata") or {},
                               local_path=Path(d["local_path"]) if d.get("local_path") else None, url=d.get("url"))
                    for d in items]
    for chunk in batches(source_items, sub_batch):
        with session_scope() as session:
            works = prepare_items(ctx, session, chunk)
        if works:
            names = sorted({n for w in works for n in w.variants})
            results = encode_batch([str(w.path) for w in works], names, weights=ctx.weights,
                                   pca_paths={n: p for n, p in pca.items() if n in names},
                                   max_pixels=settings.max_image_pixels)
            finish_batch(ctx, works, results)
    if run_id is not None:
        _add_to_run(run_id, ctx.summary)
    return ctx.summary.as_dict()


def _add_to_run(run_id: int, summary) -> None:
    """Add a job's counts to its run (row lock: jobs finish concurrently); finished when all items are."""
    from datetime import datetime, timezone

    from vislink.store import IngestRun, RunStatus, session_scope

    with session_scope() as session:
        run = session.get(IngestRun, run_id, with_for_update=True)
        if run is None:
            return
        run.n_done += summary.done
        run.n_skipped += summary.skipped
        run.n_failed += summary.failed
        reasons = dict(run.failures_by_reason or {})
        for reason, n in summary.failures_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
        run.failures_by_reason = reasons
        if run.n_done + run.n_skipped + run.n_failed >= (run.params or {}).get("items", float("inf")):
            run.status = RunStatus.finished
            run.finished_at = datetime.now(timezone.utc)


async def _retry_stalled_async(app, seconds_since_heartbeat: float) -> int:
    n = 0
    for job in await app.job_manager.get_stalled_jobs(queue=QUEUE, task_name=INGEST_TASK,
                                                      seconds_since_heartbeat=seconds_since_heartbeat):
        await app.job_manager.retry_job(job)
        n += 1
    return n


def retry_stalled(seconds_since_heartbeat: float = 30, url: str | None = None) -> int:
    """Put back in the queue the jobs of workers silent for ``seconds_since_heartbeat``; their number."""
    app = get_app(url or queue_url())

    async def main() -> int:
        async with app.open_async():
            return await _retry_stalled_async(app, seconds_since_heartbeat)

    return asyncio.run(main())


def run_worker(*, wait: bool = True, concurrency: int = 1, heartbeat: float = 10.0, stalled_after: float = 30.0,
               url: str | None = None) -> None:
    """Run a worker until stopped (``wait=False``: until the queue is empty)."""
    url = url or queue_url()
    apply_schema(url)
    app = get_app(url)
    with app.open():
        app.run_worker(queues=[QUEUE], wait=wait, concurrency=concurrency, name="vislink-ingest",
                       update_heartbeat_interval=heartbeat, stalled_worker_timeout=stalled_after,
                       listen_notify=wait, delete_jobs="successful")
