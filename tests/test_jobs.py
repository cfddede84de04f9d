"""Jobs (issue #17, docs/jobs.md): claiming is exclusive (SQLite and PostgreSQL), a dead holder's job is taken
again, and end to end with real processes: `vislink worker --embedded` holds the embedded index while a second
process queues an ingest and follows it to the end, search and doctor answer meanwhile, and a SIGKILLed holder's
job resumes in the next holder."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, select, text

from test_ingest_support import env_for, fresh_home, make_photos, run_cli, vislink_cmd


# -- claiming ----------------------------------------------------------------------------------------------
def _claim_race(url: str, n_jobs: int = 12, n_claimers: int = 4) -> None:
    """``n_claimers`` threads, each its own connection and holder id, claim until the queue is empty: every job
    is taken exactly once."""
    from vislink.store import db, session_scope
    from vislink.store import jobs as store

    with session_scope(url) as s:
        ids = [store.submit(s, "ingest", {"i": i}) for i in range(n_jobs)]
    got: dict[int, list[int]] = {}
    lock = threading.Lock()
    start = threading.Barrier(n_claimers)

    def claimer(k: int) -> None:
        holder = store.HolderId("host-test", 100000 + k)
        start.wait()
        while True:
            with session_scope(url) as s:
                job = store.claim(s, holder, ["ingest"])
            if job is None:
                return
            with lock:
                got.setdefault(job.id, []).append(k)

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(n_claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(got) == ids and all(len(v) == 1 for v in got.values()), got
    with session_scope(url) as s:
        rows = store.list_jobs(s, limit=100)
    assert {j.state for j in rows} == {"running"} and {j.attempts for j in rows} == {1}
    assert {j.holder for j in rows} <= {f"pid {100000 + k} on host-test" for k in range(n_claimers)}
    db.dispose_engines()


def test_two_claimers_never_get_the_same_job_sqlite(tmp_path):
    from vislink.store import db

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    db.upgrade(url)
    _claim_race(url)


@pytest.mark.postgres
def test_two_claimers_never_get_the_same_job_postgresql(pg_url):
    from vislink.store import db

    db.upgrade(pg_url)
    _claim_race(pg_url)


def test_a_dead_holders_job_is_taken_again_once(db_session):
    from vislink.store import Job
    from vislink.store import jobs as store

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid of this host that no longer runs
    job_id = store.submit(db_session, "ingest", {})
    db_session.commit()
    assert store.claim(db_session, store.HolderId(store.this_host(), dead.pid), ["ingest"]).id == job_id
    alive = store.HolderId.me()
    stale = store.submit(db_session, "ingest", {})
    db_session.commit()
    assert store.claim(db_session, store.HolderId("elsewhere", 1), ["ingest"]).id == stale
    # the other host's holder beat long ago; this process still beats its own
    db_session.get(Job, stale).heartbeat_at = datetime.now(timezone.utc) - timedelta(seconds=store.STALE_AFTER + 5)
    mine = store.submit(db_session, "ingest", {})
    db_session.commit()
    assert store.claim(db_session, alive, ["ingest"]).id == mine
    assert sorted(store.requeue_stale(db_session)) == [job_id, stale]
    assert store.requeue_stale(db_session) == []  # once
    again = store.claim(db_session, alive, ["ingest"])
    assert again.id == job_id and again.attempts == 2 and "taken back" in again.message
    # cancelling: a queued job at once, a running one is asked
    assert store.cancel(db_session, stale).state == "cancelled"
    assert store.cancel(db_session, mine).cancel_requested is True
    assert store.beat(db_session, alive, mine) is True
    assert store.finish(db_session, alive, mine, "cancelled") is True
    assert store.finish(db_session, store.HolderId("elsewhere", 1), job_id, "done") is False  # not theirs
