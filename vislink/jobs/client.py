"""What a process that wants work done does: run it here when the index is free (``index_holder`` returns
None), else queue it for the holder (``submit``) and ``follow`` it, or ``ask`` a short request and wait for its
answer."""

from __future__ import annotations

import time
from typing import Any, Iterator

from vislink.config import Settings, get_settings
from vislink.errors import IndexUnavailable, VislinkError
from vislink.store import session_scope
from vislink.store import jobs as store

# What the embedded backends say when another process holds their folder (qdrant-edge, qdrant-local).
HELD_MARKER = "open in another process"


def held_elsewhere(exc: BaseException) -> bool:
    """Whether ``exc`` says the embedded index is held by another process."""
    return isinstance(exc, IndexUnavailable) and HELD_MARKER in str(exc)


def index_holder(settings: Settings | None = None) -> store.HolderInfo | None:
    """None when this process may use the index (it is opened here, as the command would anyway); the live
    holder when another vislink process holds it and runs jobs. Held by a process that runs no jobs (a plain
    `vislink ingest`), the index's error is raised, saying what to do."""
    from vislink.index import open_index

    settings = settings or get_settings()
    try:
        open_index(settings)
        return None
    except IndexUnavailable as exc:
        if not held_elsewhere(exc):
            raise
        with session_scope() as s:
            holders = store.live_holders(s, index_location=str(settings.qdrant_url or settings.qdrant_path))
        if not holders:
            raise IndexUnavailable(f"{exc}. That process runs no jobs: wait for it to end, or stop it and "
                                   "run `vislink worker --embedded` (or `vislink ui`) to queue work for the "
                                   "index") from None
        return holders[0]


def submit(kind: str, arguments: dict[str, Any], *, total: int | None = None,
           requested_by: str | None = None) -> int:
    """Queue a job of ``kind`` (checked against the registry); its id. ``requested_by``: default user@host."""
    from vislink.jobs.kinds import get_kind

    get_kind(kind)
    with session_scope() as s:
        return store.submit(s, kind, arguments, total=total, requested_by=requested_by)


def get(job_id: int) -> store.JobInfo:
    with session_scope() as s:
        return store.get_job(s, job_id)


def follow(job_id: int, *, poll: float = 0.5) -> Iterator[store.JobInfo]:
    """The job each time it changes (state, progress, counts, message), until it is finished."""
    last = None
    while True:
        job = get(job_id)
        key = (job.state, job.progress_done, job.progress_total, repr(job.counts), job.message, job.attempts)
        if key != last:
            last = key
            yield job
        if job.finished:
            return
        time.sleep(poll)


def ask(kind: str, arguments: dict[str, Any], *, timeout: float = 120.0, poll: float = 0.1) -> dict[str, Any]:
    """A short request answered by the holder: its result. Raises the holder's error (VislinkError) when it
    failed, IndexUnavailable when no answer came within ``timeout`` seconds. The request's row is deleted."""
    job_id = submit(kind, arguments)
    deadline = time.monotonic() + timeout
    try:
        while True:
            job = get(job_id)
            if job.finished:
                if job.state != "done":
                    raise VislinkError(job.message or f"the holder's {kind} request {job.state}")
                return job.result or {}
            if time.monotonic() > deadline:
                raise IndexUnavailable(f"the index's holder did not answer the {kind} request within {timeout:.0f} s")
            time.sleep(poll)
    finally:
        with session_scope() as s:
            store.forget(s, job_id)
