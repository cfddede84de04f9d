"""Jobs in the SQL store: long work (ingest, add-variant, evaluate) and short requests (a search, the index's
collections) that one process asks for and another runs: the process holding the embedded index (``vislink ui``,
``vislink worker --embedded``), or any worker when the index is a Qdrant server (docs/jobs.md).

What keeps this safe:

- **claiming is one conditional UPDATE** (``... SET state='running', holder=me WHERE id=:id AND
  state='queued'``): the database serialises it (SQLite's write lock, PostgreSQL's row lock, re-checked after the
  other transaction commits), so of two holders claiming the same job exactly one sees ``rowcount == 1``;
- **a holder beats** (``beat``) every few seconds, for itself (``job_holders``) and its running job; a running job
  whose holder stopped beating (``stale_after``), or whose holder's pid is gone on this host, is put back in the
  queue by the next holder (``requeue_stale``, conditional on the same dead holder) and runs again: the work it
  runs is resumable (an ingest skips what is done), so nothing is lost;
- **cancelling** a queued job is immediate; a running one is asked (``cancel_requested``) and its holder stops
  at the next batch.

Times are timezone-aware UTC. Rows are read back as ``JobInfo`` (plain data, safe outside a session).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from vislink.errors import ConflictError, NotFound
from vislink.store.models import Job, JobHolder, JobState

STALE_AFTER = 20.0  # seconds without a heartbeat after which a holder (and its running job) is dead
ACTIVE = (JobState.queued, JobState.running)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(t: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes for timezone-aware columns: they were written in UTC.
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: int | None) -> bool:
    """Whether a process ``pid`` exists on this host (a zombie counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class HolderId:
    host: str
    pid: int

    @classmethod
    def me(cls) -> HolderId:
        return cls(this_host(), os.getpid())

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass
class JobInfo:
    """A job as plain data."""

    id: int
    kind: str
    arguments: dict[str, Any]
    state: str
    progress_done: int
    progress_total: int | None
    counts: dict[str, Any]
    errors: list[Any]
    result: dict[str, Any] | None
    message: str | None
    requested_by: str | None
    cancel_requested: bool
    attempts: int
    holder: str | None
    heartbeat_at: datetime | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @property
    def rate(self) -> float | None:
        """Items per second since the job started (None before any)."""
        if not self.started_at or not self.progress_done:
            return None
        seconds = ((self.finished_at or _now()) - self.started_at).total_seconds()
        return self.progress_done / seconds if seconds > 0 else None

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate
        if rate is None or self.progress_total is None or self.finished:
            return None
        return max(0.0, (self.progress_total - self.progress_done) / rate)


def _info(job: Job) -> JobInfo:
    holder = f"pid {job.holder_pid} on {job.holder_host}" if job.holder_pid else None
    return JobInfo(job.id, job.kind, dict(job.arguments or {}), job.state.value, job.progress_done or 0,
                   job.progress_total, dict(job.counts or {}), list(job.errors or []), job.result, job.message,
                   job.requested_by, bool(job.cancel_requested), job.attempts or 0, holder, _aware(job.heartbeat_at),
                   _aware(job.created_at), _aware(job.started_at), _aware(job.finished_at))


def requester() -> str:
    """Who asks, as a job records it: user@host (pid)."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a uid without a name (containers)
        user = str(os.getuid())
    return f"{user}@{this_host()} (pid {os.getpid()})"


# -- asking ------------------------------------------------------------------------------------------------
def submit(session: Session, kind: str, arguments: dict[str, Any], *, requested_by: str | None = None,
           total: int | None = None) -> int:
    """Queue a job; its id (committed with the session)."""
    job = Job(kind=kind, arguments=arguments, state=JobState.queued, progress_done=0, progress_total=total,
              counts={}, errors=[], requested_by=requested_by or requester(), cancel_requested=False, attempts=0)
    session.add(job)
    session.flush()
    return job.id


def get_job(session: Session, job_id: int) -> JobInfo:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id} (see `vislink jobs`)")
    return _info(job)


def list_jobs(session: Session, *, kinds: Sequence[str] | None = None, states: Sequence[str] | None = None,
              limit: int = 50) -> list[JobInfo]:
    """Newest first."""
    q = select(Job).order_by(Job.id.desc()).limit(limit)
    if kinds:
        q = q.where(Job.kind.in_(list(kinds)))
    if states:
        q = q.where(Job.state.in_([JobState(s) for s in states]))
    return [_info(j) for j in session.scalars(q)]


def cancel(session: Session, job_id: int) -> JobInfo:
    """Cancel a queued job now; ask its holder to stop a running one (at the next batch). A finished job is
    left as it is (ConflictError)."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"no job {job_id} (see `vislink jobs`)")
    if job.state is JobState.queued:
        job.state, job.finished_at, job.message = JobState.cancelled, _now(), "cancelled before it started"
    elif job.state is JobState.running:
        job.cancel_requested = True
    else:
        raise ConflictError(f"job {job_id} is already {job.state.value}")
    session.flush()
    return _info(job)


def forget(session: Session, job_id: int) -> None:
    """Delete a job's row (a short request once its answer is read)."""
    session.execute(delete(Job).where(Job.id == job_id))


def prune(session: Session, kinds: Iterable[str], older_than: float) -> int:
    """Delete finished jobs of ``kinds`` created more than ``older_than`` seconds ago (the answers of short
    requests whose asker went away); how many. Commits."""
    n = session.execute(delete(Job).where(Job.kind.in_(list(kinds)), Job.state.notin_(ACTIVE),
                                          Job.created_at < _now() - timedelta(seconds=older_than))
                        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return n


# -- holding -------------------------------------------------------------------------------------------------
def claim(session: Session, holder: HolderId, kinds: Iterable[str]) -> JobInfo | None:
    """Take the oldest queued job of ``kinds`` for ``holder``; None when there is none. Exactly one of several
    concurrent claimers gets a given job (a conditional UPDATE; see the module docstring). Commits."""
    kinds = list(kinds)
    for _ in range(5):  # another holder may win each candidate; try the next ones
        candidates = list(session.scalars(select(Job.id).where(Job.state == JobState.queued, Job.kind.in_(kinds))
                                          .order_by(Job.id).limit(4)))
        session.commit()
        if not candidates:
            return None
        for job_id in candidates:
            now = _now()
            won = session.execute(
                update(Job).where(Job.id == job_id, Job.state == JobState.queued)
                .values(state=JobState.running, holder_host=holder.host, holder_pid=holder.pid, heartbeat_at=now,
                        started_at=now, attempts=Job.attempts + 1)
                .execution_options(synchronize_session=False)).rowcount
            session.commit()
            if won == 1:
                return get_job(session, job_id)
    return None


def _holder_dead(host: str | None, pid: int | None, heartbeat: datetime | None, stale_after: float) -> bool:
    if heartbeat is None or _now() - _aware(heartbeat) > timedelta(seconds=stale_after):
        return True
    return host == this_host() and not pid_alive(pid)


def requeue_stale(session: Session, *, kinds: Iterable[str] | None = None,
                  stale_after: float = STALE_AFTER) -> list[int]:
    """Put back in the queue the running jobs whose holder died (silent for ``stale_after`` seconds, or its pid
    gone on this host); their ids. Each is conditional on the same dead holder, so two holders doing this at
    once requeue a job once. A job asked to cancel is cancelled instead. Commits."""
    q = select(Job).where(Job.state == JobState.running)
    if kinds is not None:
        q = q.where(Job.kind.in_(list(kinds)))
    dead = [(j.id, j.holder_host, j.holder_pid, j.heartbeat_at, j.cancel_requested) for j in session.scalars(q)
            if _holder_dead(j.holder_host, j.holder_pid, j.heartbeat_at, stale_after)]
    session.commit()
    out = []
    for job_id, host, pid, beat, cancelled in dead:
        values: dict[str, Any] = dict(holder_host=None, holder_pid=None, heartbeat_at=None)
        if cancelled:
            values.update(state=JobState.cancelled, finished_at=_now(), message="cancelled (its holder died)")
        else:
            values.update(state=JobState.queued, message=f"taken back from pid {pid} on {host}, which stopped")
        n = session.execute(update(Job).where(Job.id == job_id, Job.state == JobState.running,
                                              Job.holder_host == host, Job.holder_pid == pid)
                            .values(**values).execution_options(synchronize_session=False)).rowcount
        session.commit()
        if n == 1 and not cancelled:
            out.append(job_id)
    return out


def beat(session: Session, holder: HolderId, job_id: int | None = None, **progress: Any) -> bool:
    """The holder's heartbeat (and its job's, with any of progress_done, progress_total, counts, errors,
    message); True when the job was asked to cancel. Commits."""
    now = _now()
    session.execute(update(JobHolder).where(JobHolder.host == holder.host, JobHolder.pid == holder.pid)
                    .values(heartbeat_at=now).execution_options(synchronize_session=False))
    cancelled = False
    if job_id is not None:
        values = {k: v for k, v in progress.items() if v is not None}
        session.execute(update(Job).where(Job.id == job_id, Job.holder_pid == holder.pid,
                                          Job.holder_host == holder.host)
                        .values(heartbeat_at=now, **values).execution_options(synchronize_session=False))
        cancelled = bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))
    session.commit()
    return cancelled


def finish(session: Session, holder: HolderId, job_id: int, state: str, *, result: dict[str, Any] | None = None,
           message: str | None = None, **progress: Any) -> bool:
    """End a job this holder runs (done, failed or cancelled); False when it is no longer ours (taken back from
    us as stale). Commits."""
    values = {k: v for k, v in progress.items() if v is not None}
    values["message"] = message if message is not None else values.get("message")
    n = session.execute(update(Job).where(Job.id == job_id, Job.state == JobState.running,
                                          Job.holder_pid == holder.pid, Job.holder_host == holder.host)
                        .values(state=JobState(state), result=result, finished_at=_now(),
                                heartbeat_at=_now(), **values)
                        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return n == 1


def release(session: Session, holder: HolderId, job_id: int, message: str) -> bool:
    """Put a job this holder runs back in the queue (the holder stops); False when it is not ours. Commits."""
    n = session.execute(update(Job).where(Job.id == job_id, Job.state == JobState.running,
                                          Job.holder_pid == holder.pid, Job.holder_host == holder.host)
                        .values(state=JobState.queued, holder_pid=None, holder_host=None, heartbeat_at=None,
                                message=message).execution_options(synchronize_session=False)).rowcount
    session.commit()
    return n == 1


def register_holder(session: Session, holder: HolderId, role: str, index_location: str | None) -> None:
    """Say that ``holder`` runs jobs (replacing a dead row of the same host and pid). Commits."""
    session.execute(delete(JobHolder).where(JobHolder.host == holder.host, JobHolder.pid == holder.pid))
    session.add(JobHolder(host=holder.host, pid=holder.pid, role=role, index_location=index_location,
                          started_at=_now(), heartbeat_at=_now()))
    session.commit()


def drop_holder(session: Session, holder: HolderId) -> None:
    session.execute(delete(JobHolder).where(JobHolder.host == holder.host, JobHolder.pid == holder.pid))
    session.commit()


@dataclass
class HolderInfo:
    host: str
    pid: int
    role: str
    index_location: str | None
    heartbeat_at: datetime

    def __str__(self) -> str:
        what = "vislink ui" if self.role == "ui" else "vislink worker --embedded"
        return f"{what} (pid {self.pid} on {self.host})"


def live_holders(session: Session, *, index_location: str | None = None,
                 stale_after: float = STALE_AFTER) -> list[HolderInfo]:
    """Holders that beat within ``stale_after`` seconds (and whose pid lives, on this host), newest first;
    ``index_location``: only those holding that index."""
    q = select(JobHolder).order_by(JobHolder.heartbeat_at.desc())
    if index_location is not None:
        q = q.where(JobHolder.index_location == index_location)
    return [HolderInfo(h.host, h.pid, h.role, h.index_location, _aware(h.heartbeat_at)) for h in session.scalars(q)
            if not _holder_dead(h.host, h.pid, h.heartbeat_at, stale_after)]
