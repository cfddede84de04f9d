"""Parallel ingestion: N worker processes on one machine, and the distributed queue (procrastinate on the
PostgreSQL here) with two concurrent `vislink worker` processes, one of them killed mid-batch.

There is no Qdrant server here, so the queued workers share the embedded index folder through
``LockedFolderIndex`` (an exclusive file lock around each index call): real processes, a real shared
index, real PostgreSQL; only the Qdrant server of the production set-up is replaced."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from test_ingest_support import env_for, make_photos, vislink_cmd


def _use_env(monkeypatch, env: dict[str, str]) -> None:
    from vislink.config import reset_settings

    for key in [k for k in os.environ if k.startswith(("VISLINK_", "QDRANT_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("VISLINK_"):
            monkeypatch.setenv(key, value)
    reset_settings()


def _check_end_state(collection: str, n: int) -> set[int]:
    from vislink.config import get_settings
    from vislink.index import open_index
    from vislink.store import Collection, DescriptorVariant, Image, ImageDescriptor, session_scope

    with session_scope() as s:
        cid = s.scalar(select(Collection.id).where(Collection.name == collection))
        statuses = s.execute(select(Image.status, func.count()).where(Image.collection_id == cid)
                             .group_by(Image.status)).all()
        assert [(st.value, k) for st, k in statuses] == [("done", n)]
        ids = set(s.scalars(select(Image.id).where(Image.collection_id == cid)))
        variants = s.scalars(select(DescriptorVariant).where(DescriptorVariant.collection_id == cid)).all()
        assert s.scalar(select(func.count()).select_from(ImageDescriptor)
                        .where(ImageDescriptor.image_id.in_(ids))) == n * len(variants)
    index = open_index(get_settings())
    for v in variants:
        points, offset = index.scroll(v.qdrant_collection, limit=1000)
        assert offset is None and sorted(p[0] for p in points) == sorted(ids)
    return ids


def test_local_worker_processes(vislink_env, tmp_path, monkeypatch):
    """--workers 2: two spawned processes decode and encode, this process writes SQL and the index."""
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items

    make_photos(tmp_path / "src", 4)
    summary = ingest("par", folder_items(tmp_path / "src"), variants=["vgg16-pool5-sum"], weights="random", workers=2,
                     batch_size=2, progress=False)
    assert (summary.done, summary.failed) == (4, 0)
    _check_end_state("par", 4)
    # the encoding happened in the worker processes: this process never built an encoder for this data folder
    from vislink.encoder import model

    assert not [key for key in model._ENCODERS if key[-1] == str(vislink_env.weights_dir)]


ENCODED = re.compile(r"encoded image (\d+) ")


def _encoded(log: Path) -> list[int]:
    return [int(m) for m in ENCODED.findall(log.read_text(errors="replace"))] if log.exists() else []


@pytest.mark.postgres
def test_two_queue_workers_one_killed_mid_batch(pg_url, tmp_path, monkeypatch):
    from vislink.index import close_all
    from vislink.ingest import queue
    from vislink.ingest.sources.folder import folder_items
    from vislink.store import db

    db.upgrade(pg_url)
    home = tmp_path / "vislink-data"
    home.mkdir()
    env = env_for(home, db_url=pg_url)
    _use_env(monkeypatch, env)
    n = 8
    make_photos(tmp_path / "src", n)
    run_id, jobs = queue.enqueue("q", folder_items(tmp_path / "src"), variants=["vgg16-pool5-sum"], batch_size=4,
                                 sub_batch=2)
    assert jobs == 2

    worker = vislink_cmd("-v", "worker", "--no-wait", "--heartbeat", "1")
    logs = {name: tmp_path / f"{name}.log" for name in "ABC"}
    procs = {name: subprocess.Popen(worker, env=env, stdout=subprocess.DEVNULL, stderr=open(logs[name], "w"))
             for name in "AB"}
    # Kill A once it has committed part of its batch: it is then in the middle of its job.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and procs["A"].poll() is None and not _encoded(logs["A"]):
        time.sleep(0.05)
    assert procs["A"].poll() is None, "worker A ended by itself:\n" + logs["A"].read_text()[-3000:]
    os.kill(procs["A"].pid, signal.SIGKILL)
    procs["A"].wait(timeout=30)
    killed_at = time.monotonic()
    assert procs["B"].wait(timeout=300) == 0, logs["B"].read_text()[-3000:]
    a, b = _encoded(logs["A"]), _encoded(logs["B"])
    assert 1 <= len(a) < 4, "A must die in the middle of its 4-image job"
    assert not set(a) & set(b), "two workers encoded the same image"

    # A's job is still 'doing': nobody else may take it until it is declared stalled, then it is retried.
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'")).scalar() == 1
    time.sleep(max(0.0, 3 - (time.monotonic() - killed_at)))
    assert queue.retry_stalled(seconds_since_heartbeat=2, url=pg_url) == 1
    procs["C"] = subprocess.run(worker, env=env, stdout=subprocess.DEVNULL, stderr=open(logs["C"], "w"), timeout=300)
    assert procs["C"].returncode == 0, logs["C"].read_text()[-3000:]
    c = _encoded(logs["C"])
    with engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")).scalar()
    engine.dispose()
    assert left == 0
    # Every image encoded exactly once: what A committed is skipped by the retry, the rest done by B or C.
    assert len(a) + len(b) + len(c) == n and len(set(a) | set(b) | set(c)) == n
    try:
        ids = _check_end_state("q", n)
        assert set(a) | set(b) | set(c) == ids
        from vislink.store import IngestRun, session_scope

        with session_scope() as s:
            run = s.get(IngestRun, run_id)
            assert (run.status.value, run.n_done + run.n_skipped) == ("finished", n)
    finally:
        close_all()
