"""The holder: the process that opened the index runs queued jobs in background threads.

Three daemon threads: one runs long jobs one at a time (ingest, add-variant, evaluate), one answers short
requests (search, index-info) so that a search is answered while an ingest runs, and one beats every
``beat_every`` seconds for the holder and its running job (writing the job's progress). ``vislink worker
--embedded`` runs one in the foreground; the UI starts one per server process (``start_holder``)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from vislink.config import Settings, get_settings
from vislink.errors import VislinkError
from vislink.jobs.kinds import JobCancelled, JobContext, get_kind, list_kinds, quick_kinds
from vislink.store import session_scope
from vislink.store import jobs as store

log = logging.getLogger(__name__)

PRUNE_EVERY = 600.0  # seconds: how often (and after how long) unread answers to short requests are deleted


class Holder:
    """Runs the store's jobs with this process's index. ``start()`` opens the index (raising
    ``IndexUnavailable`` when another process holds it), registers the holder and starts the threads."""

    def __init__(self, settings: Settings | None = None, role: str = "worker", *, poll: float = 0.5,
                 quick_poll: float = 0.2, beat_every: float = 1.0, stale_after: float = store.STALE_AFTER,
                 exit_when_idle: bool = False):
        self.settings = settings or get_settings()
        self.url = self.settings.database_url
        self.role = role
        self.poll, self.quick_poll, self.beat_every, self.stale_after = poll, quick_poll, beat_every, stale_after
        self.exit_when_idle = exit_when_idle
        self.me = store.HolderId.me()
        self.index: Any = None
        self.stop_event = threading.Event()
        self.current: JobContext | None = None
        self.threads: list[threading.Thread] = []
        self.jobs_run = 0

    @property
    def long_kinds(self) -> list[str]:
        quick = set(quick_kinds())
        return [k for k in list_kinds() if k not in quick]

    @property
    def index_location(self) -> str:
        return str(self.settings.qdrant_url or self.settings.qdrant_path)

    def start(self) -> Holder:
        from vislink.index import open_index

        self.index = open_index(self.settings)
        with session_scope(self.url) as s:
            store.register_holder(s, self.me, self.role, self.index_location)
        for name, target in (("beat", self._beat_loop), ("jobs", self._long_loop), ("requests", self._quick_loop)):
            t = threading.Thread(target=target, name=f"vislink-holder-{name}", daemon=True)
            t.start()
            self.threads.append(t)
        log.info("holding %s as %s: running jobs", self.index_location, self.me)
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking jobs; a running long job stops at its next batch and goes back to the queue. True when
        every thread ended within ``timeout``."""
        self.stop_event.set()
        if self.current is not None:
            self.current.stopping.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self.threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        alive = any(t.is_alive() for t in self.threads)
        if not alive:
            try:
                with session_scope(self.url) as s:
                    store.drop_holder(s, self.me)
            except VislinkError as exc:  # the database went away: its heartbeat stops all the same
                log.warning("could not unregister the job holder: %s", exc)
        return not alive

    def wait(self) -> None:
        """Block until the job thread ends (``exit_when_idle``: the queue is empty; else ``stop()``)."""
        jobs_thread = self.threads[1]
        while jobs_thread.is_alive():
            jobs_thread.join(0.5)
        self.stop(timeout=10)

    def serving(self) -> bool:
        """Still running jobs: not stopped, and the process's settings are the ones it started with (tests
        reset them between data folders; a holder serves the data folder it holds, never the next one)."""
        if get_settings() is not self.settings:
            self.stop_event.set()
        return not self.stop_event.is_set()

    # -- threads ---------------------------------------------------------------------------------------------
    def _beat_loop(self) -> None:
        while not self.stop_event.wait(self.beat_every) and self.serving():
            self._beat()

    def _beat(self) -> None:
        ctx = self.current
        try:
            with session_scope(self.url) as s:
                progress = ctx.take_progress() if ctx else {}
                if store.beat(s, self.me, ctx.job_id if ctx else None, **progress) and ctx:
                    ctx.cancel.set()
        except Exception as exc:  # noqa: BLE001 - a locked or lost database: beat again next time
            log.warning("job holder heartbeat failed: %s", exc)

    def _long_loop(self) -> None:
        while self.serving():
            try:
                with session_scope(self.url) as s:
                    for job_id in store.requeue_stale(s, kinds=self.long_kinds, stale_after=self.stale_after):
                        log.warning("job %d: its holder died; it runs again here", job_id)
                    job = store.claim(s, self.me, self.long_kinds)
            except Exception as exc:  # noqa: BLE001 - a locked database: try again
                log.warning("claiming a job failed: %s", exc)
                job = None
            if job is None:
                if self.exit_when_idle:
                    return
                self.stop_event.wait(self.poll)
                continue
            self._run(job)

    def _quick_loop(self) -> None:
        kinds = quick_kinds()
        pruned = 0.0
        while self.serving():
            try:
                with session_scope(self.url) as s:
                    if time.monotonic() - pruned > PRUNE_EVERY:  # answers nobody read (the asker went away)
                        store.prune(s, kinds, older_than=PRUNE_EVERY)
                        pruned = time.monotonic()
                    store.requeue_stale(s, kinds=kinds, stale_after=self.stale_after)
                    job = store.claim(s, self.me, kinds)
            except Exception as exc:  # noqa: BLE001
                log.warning("claiming a request failed: %s", exc)
                job = None
            if job is None:
                self.stop_event.wait(self.quick_poll)
                continue
            self._run(job, quick=True)

    def _run(self, job: store.JobInfo, *, quick: bool = False) -> None:
        ctx = JobContext(job.id, self.index)
        if not quick:
            self.current = ctx
            if self.stop_event.is_set():
                ctx.stopping.set()
        state, result, message = "failed", None, None
        try:
            result = get_kind(job.kind).fn(ctx, job.arguments)
            state = "done"
        except JobCancelled as exc:
            if exc.requeue:
                self._requeue(job.id)
                return
            state, message = "cancelled", "cancelled while running"
        except VislinkError as exc:
            message = str(exc)
        except Exception as exc:  # noqa: BLE001 - the job fails with its reason; the holder goes on
            log.exception("job %d (%s) failed", job.id, job.kind)
            message = f"{type(exc).__name__}: {exc}"
        finally:
            if not quick:
                self.current = None
        self.jobs_run += 1
        progress = ctx.take_progress()
        message = message or progress.pop("message", None)
        progress.pop("message", None)
        try:
            with session_scope(self.url) as s:
                if not store.finish(s, self.me, job.id, state, result=result, message=message,
                                    **progress) and not quick:
                    log.warning("job %d was taken back from this holder before it finished", job.id)
        except Exception as exc:  # noqa: BLE001
            log.error("could not record the end of job %d: %s", job.id, exc)

    def _requeue(self, job_id: int) -> None:
        with session_scope(self.url) as s:
            store.release(s, self.me, job_id, f"put back in the queue: {self.me} stopped")


_STARTED: dict[str, Holder] = {}
_STARTED_LOCK = threading.Lock()


def start_holder(settings: Settings | None = None, role: str = "ui") -> Holder:
    """One background holder per process and index (the UI calls this once per server process)."""
    settings = settings or get_settings()
    key = str(settings.qdrant_url or settings.qdrant_path)
    with _STARTED_LOCK:
        holder = _STARTED.get(key)
        if holder is None or not holder.serving():
            holder = _STARTED[key] = Holder(settings, role).start()
        return holder
