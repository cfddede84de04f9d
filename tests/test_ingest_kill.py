"""A real crash: `vislink ingest folder` in a subprocess, killed with SIGKILL mid-run, then run again. The
end state must have every image done and encoded once: one descriptor row per variant, one point per
variant, no orphan point, no lost point (SQLite + qdrant-edge, the embedded default). The killed run's
record says what it did (issue #16 item 5): its count is written batch by batch, `vislink reconcile` marks
it interrupted and brings a record that says "0 done" (as older versions left them) up to date."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from sqlalchemy import create_engine, func, select, update

from test_ingest_support import env_for, fresh_home, make_photos, run_cli, vislink_cmd

N = 8


def _done(url: str) -> int:
    from vislink.store import Image

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(Image).where(Image.status == "done")).scalar()
    except Exception:  # noqa: BLE001 - the table may be locked or not yet written: poll again
        return 0
    finally:
        engine.dispose()


def _runs(url: str) -> list[tuple[str, int]]:
    from vislink.store import IngestRun

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [(getattr(status, "value", status), n) for status, n in
                    conn.execute(select(IngestRun.status, IngestRun.n_done).order_by(IngestRun.id))]
    finally:
        engine.dispose()


def test_sigkill_mid_run_then_rerun_ends_consistent(tmp_path, migrated_sqlite_template, monkeypatch):
    home = fresh_home(tmp_path, migrated_sqlite_template)
    src = tmp_path / "src"
    make_photos(src, N)
    env = env_for(home, backend="qdrant-edge")  # the embedded default (its writes are flushed before returning)
    url = env["VISLINK_DB_URL"]
    args = ["ingest", "folder", str(src), "-c", "crash", "--batch-size", "2", "--no-progress"]
    proc = subprocess.Popen(vislink_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    done_at_kill = 0
    while time.monotonic() < deadline and proc.poll() is None:
        done_at_kill = _done(url)
        if done_at_kill >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()[-3000:]
    assert 2 <= done_at_kill < N, "the run must be killed in the middle"
    done = _done(url)
    assert _runs(url) == [("running", done)]  # the record kept up with every committed batch
    from vislink.store import IngestRun

    engine = create_engine(url)
    with engine.begin() as conn:  # the record as versions before batch-by-batch counts left it
        conn.execute(update(IngestRun).values(n_done=0))
    engine.dispose()
    fixed = run_cli(["reconcile", "-c", "crash"], env)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert f"run 1 (crash, folder) was killed: interrupted, {done} done (its record said 0)" in fixed.stdout
    assert _runs(url) == [("interrupted", done)]

    rerun = run_cli(args, env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "failed" in rerun.stdout and " 0 failed" in rerun.stdout
    assert "already-done" in rerun.stdout  # what the killed run finished is not encoded again
    assert _runs(url) == [("interrupted", done), ("finished", N - done)]  # together: every image once

    # the end state, read in this process (the subprocesses are gone, so the index folder is free)
    for key, value in env.items():
        if key.startswith("VISLINK_"):
            monkeypatch.setenv(key, value)
    from vislink.config import get_settings, reset_settings
    from vislink.index import close_all, open_index
    from vislink.ingest.reconcile import check
    from vislink.store import DescriptorVariant, Image, ImageDescriptor, IngestRun, session_scope

    reset_settings()
    try:
        with session_scope(url) as s:
            statuses = s.execute(select(Image.status, func.count()).group_by(Image.status)).all()
            assert [(st.value, n) for st, n in statuses] == [("done", N)]
            done_ids = set(s.scalars(select(Image.id)))
            variants = s.scalars(select(DescriptorVariant)).all()
            runs = s.scalars(select(IngestRun).order_by(IngestRun.id)).all()
            assert [r.status.value for r in runs] == ["interrupted", "finished"]  # the killed run is told apart
            assert len(variants) == 3
            assert s.scalar(select(func.count()).select_from(ImageDescriptor)) == N * 3
        index = open_index(get_settings())
        for v in variants:
            points, offset = index.scroll(v.qdrant_collection, limit=100)
            assert offset is None and {p[0] for p in points} == done_ids and len(points) == N
        assert all(r.ok for r in check("crash"))
    finally:
        close_all()
        reset_settings()
