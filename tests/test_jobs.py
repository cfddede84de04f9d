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
from sqlalchemy import create_engine, text

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


# -- end to end: a holder process and the commands of another ------------------------------------------------
def _scalar(url: str, sql: str):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    except Exception:  # noqa: BLE001 - locked or not yet written: poll again
        return None
    finally:
        engine.dispose()


def _wait_for(predicate, what: str, timeout: float = 120, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the holder ended ({proc.returncode}) before {what}: {proc.stdout.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _start_holder(env, url, *args):
    proc = subprocess.Popen(vislink_cmd("worker", "--embedded", *args), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    _wait_for(lambda: _scalar(url, f"SELECT count(*) FROM job_holders WHERE pid = {proc.pid}"), "the holder",
              proc=proc)
    return proc


@pytest.fixture
def holder_env(tmp_path, migrated_sqlite_template):
    home = fresh_home(tmp_path, migrated_sqlite_template)
    env = env_for(home, backend="qdrant-edge")
    env["VISLINK_DEFAULT_VARIANTS"] = "vgg16-pool5-sum"  # one variant: the least work per image
    procs: list[subprocess.Popen] = []
    yield env, env["VISLINK_DB_URL"], procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_commands_queue_for_the_holder_and_search_and_doctor_answer(tmp_path, holder_env):
    env, url, procs = holder_env
    make_photos(tmp_path / "a", 4)
    make_photos(tmp_path / "b", 6, start=10)
    procs.append(_start_holder(env, url))

    first = run_cli(["ingest", "folder", str(tmp_path / "a"), "-c", "a", "--batch-size", "2", "--no-progress"], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "held by vislink worker --embedded" in first.stderr and "queued job 1" in first.stderr
    assert "job 1 ingest done: 4/4" in first.stderr
    assert "collection a: 4 done, 0 skipped, 0 failed" in first.stdout

    second = run_cli(["ingest", "folder", str(tmp_path / "b"), "-c", "b", "--batch-size", "1", "--no-progress",
                      "--detach"], env)
    assert second.returncode == 0 and second.stdout.strip().splitlines()[-1] == "2", second.stderr[-3000:]

    # while the holder holds the index (and runs job 2): search and doctor are answered by it
    found = run_cli(["search", str(tmp_path / "a" / "photo001.jpg"), "-c", "a", "-k", "2"], env)
    assert found.returncode == 0, found.stderr[-3000:]
    assert found.stdout.splitlines()[0].split()[3] == "photo001.jpg"
    doctor = run_cli(["doctor"], env)
    assert "[ok  ] vector index: qdrant-edge" in doctor.stdout and "answered for it" in doctor.stdout, doctor.stdout
    listed = run_cli(["jobs"], env)
    assert listed.returncode == 0 and " done " in listed.stdout and "search" not in listed.stdout, listed.stdout

    followed = run_cli(["jobs", "follow", "2"], env)
    assert followed.returncode == 0, followed.stderr[-3000:]
    assert "collection b: 6 done, 0 skipped, 0 failed" in followed.stdout
    assert _scalar(url, "SELECT count(*) FROM images WHERE status = 'done'") == 10
    assert _scalar(url, "SELECT count(*) FROM jobs") == 2  # the answered requests are deleted

    cancelled = run_cli(["jobs", "cancel", "2"], env)
    assert cancelled.returncode == 1 and "already done" in cancelled.stderr

    # add-variant and evaluate are queued the same way; a failing job says why and exits 1
    added = run_cli(["collection", "add-variant", "a", "vgg16-pool5-max", "--no-progress"], env)
    assert added.returncode == 0, added.stderr[-3000:]
    assert "job 3 add-variant done" in added.stderr and "variant vgg16-pool5-max of a: 512-d" in added.stdout
    evaluated = run_cli(["evaluate", "-c", "a", "--split", "none", "--no-progress"], env)
    assert evaluated.returncode == 1 and "queued job 4" in evaluated.stderr
    assert "error: job 4 failed: nothing to evaluate in 'a'" in evaluated.stderr, evaluated.stderr[-3000:]


def test_a_sigkilled_holders_job_resumes_in_the_next_holder(tmp_path, holder_env):
    env, url, procs = holder_env
    n = 12
    make_photos(tmp_path / "src", n)
    first = _start_holder(env, url)
    procs.append(first)
    queued = run_cli(["ingest", "folder", str(tmp_path / "src"), "-c", "k", "--batch-size", "1", "--no-progress",
                      "--detach"], env)
    assert queued.returncode == 0, queued.stderr[-3000:]
    follower = subprocess.Popen(vislink_cmd("jobs", "follow", "1"), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    assert follower.stderr.readline().startswith("job 1 ingest")  # following (its signal handling is set up)
    _wait_for(lambda: _scalar(url, "SELECT count(*) FROM images WHERE status = 'done'") or 0, "the first image",
              proc=first)
    follower.send_signal(signal.SIGINT)  # Ctrl-C stops following, not the job
    _, followed = follower.communicate(timeout=60)
    assert follower.returncode == 130 and "stopped following job 1; it goes on" in followed, followed[-3000:]
    assert _scalar(url, "SELECT state FROM jobs WHERE id = 1") == "running"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    done_at_kill = _scalar(url, "SELECT count(*) FROM images WHERE status = 'done'")
    assert 1 <= done_at_kill < n, "the holder must be killed in the middle of the job"
    assert _scalar(url, "SELECT state FROM jobs WHERE id = 1") == "running"  # as the dead holder left it

    second = subprocess.run(vislink_cmd("worker", "--embedded", "--no-wait"), env=env, capture_output=True,
                            text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert _scalar(url, "SELECT state FROM jobs WHERE id = 1") == "done"
    assert _scalar(url, "SELECT attempts FROM jobs WHERE id = 1") == 2
    assert _scalar(url, "SELECT count(*) FROM images WHERE status = 'done'") == n
    assert _scalar(url, "SELECT count(*) FROM image_descriptors") == n  # each image encoded once
    followed = run_cli(["jobs", "follow", "1"], env)
    assert followed.returncode == 0
    assert f"{n - done_at_kill} done" in followed.stdout and "already-done" in followed.stdout, followed.stdout


# -- the UI's process holds the index and runs the Ingest page's job ------------------------------------------
def test_the_ingest_page_queues_a_job_the_ui_process_runs(tmp_path, monkeypatch, migrated_sqlite_template):
    import streamlit as st

    import test_ui_support as support
    from vislink.index import close_all
    from vislink.store import session_scope
    from vislink.store.jobs import get_job

    home = fresh_home(tmp_path, migrated_sqlite_template)
    support.point_settings(monkeypatch, home)
    monkeypatch.setenv("VISLINK_DEFAULT_VARIANTS", "vgg16-pool5-sum")
    support.reset()
    src = tmp_path / "src"
    make_photos(src, 3)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    try:
        at = support.app().run()
        support.ok(at)
        at.switch_page("views/ingest.py").run()
        support.ok(at)
        assert any("Sign in (sidebar) to ingest" in i.value for i in at.info)
        assert at.button(key="ing_go").disabled  # anonymous visitors do not read the server's folders
        from vislink.ui.services import SignedIn

        at.session_state["annotator"] = SignedIn(1, "curator")
        at.text_input(key="ing_collection").set_value("fromui").run()
        at.text_input(key="ing_folder").set_value(str(src)).run()
        at.button(key="ing_go").click().run()
        support.ok(at)
        job_id = at.session_state["ing_job"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with session_scope() as s:
                job = get_job(s, job_id)
            if job.finished:
                break
            time.sleep(0.2)
        assert job.state == "done", job
        assert job.requested_by == "curator (UI)"
        assert job.counts["done"] == 3 and job.counts["failed"] == 1 and job.progress_done == job.progress_total == 4
        assert job.holder == f"pid {os.getpid()} on {job.holder.split(' on ')[1]}"  # this (the UI's) process ran it
        at.run()
        support.ok(at)
        text = support.texts(at)
        assert f"**Job {job_id}** · ingest · fromui" in text and "**done**" in text
        assert "3 added, 0 skipped, 1 failed" in text
        assert [e.label for e in at.expander] == ["Failures (1 listed)", "Summary"] and "broken.jpg" in text
        summary = [t.value for t in at.expander[1].text]
        assert summary == job.result["lines"] and any("3 done, 0 skipped, 1 failed" in line for line in summary), \
            summary
    finally:
        st.cache_resource.clear()
        close_all()
        support.reset()


# -- cancelling and stopping, with a holder in this process -------------------------------------------------
def test_a_running_job_stops_at_its_next_batch_when_cancelled_or_its_holder_stops(tmp_path, monkeypatch,
                                                                                  migrated_sqlite_template):
    from vislink_testenv import use_data_folder

    from vislink.config import get_settings, reset_settings
    from vislink.index import close_all
    from vislink.jobs import Holder, submit
    from vislink.store import session_scope
    from vislink.store import jobs as store

    home = fresh_home(tmp_path, migrated_sqlite_template)
    use_data_folder(monkeypatch, home, weights="random")
    monkeypatch.setenv("VISLINK_DEFAULT_VARIANTS", "vgg16-pool5-sum")
    reset_settings()
    url = get_settings().database_url
    n = 30
    make_photos(tmp_path / "src", n)

    def job(job_id):
        with session_scope() as s:
            return store.get_job(s, job_id)

    def done(collection):
        return _scalar(url, "SELECT count(*) FROM images JOIN collections ON collections.id = images.collection_id "
                            f"WHERE images.status = 'done' AND collections.name = '{collection}'") or 0

    holder = Holder(get_settings(), "worker", poll=0.1, beat_every=0.2).start()
    try:
        source = {"kind": "folder", "root": str(tmp_path / "src")}
        first = submit("ingest", {"collection": "c1", "source": source, "batch_size": 1})
        _wait_for(lambda: done("c1") >= 1, "the first image")
        with session_scope() as s:
            assert store.cancel(s, first).cancel_requested
        _wait_for(lambda: job(first).finished, "the cancelled job to stop")
        assert job(first).state == "cancelled" and done("c1") < n  # stopped at a batch, what is done stays
        assert _scalar(url, "SELECT status FROM ingest_runs") == "interrupted"  # not failed: stopped on purpose

        second = submit("ingest", {"collection": "c2", "source": source, "batch_size": 1})
        _wait_for(lambda: done("c2") >= 1, "the second job's first image")
        assert holder.stop(timeout=60)
        stopped = job(second)
        assert stopped.state == "queued" and "put back in the queue" in stopped.message and done("c2") < n
        with session_scope() as s:
            assert store.live_holders(s) == []  # unregistered
    finally:
        holder.stop(timeout=60)
        close_all()
        reset_settings()


def test_uploads_for_an_ingest_job_stay_in_their_folder(vislink_env, tmp_path):
    import io
    import zipfile

    from vislink.ui import services

    photo = make_photos(tmp_path / "p", 1)[0].read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../escape.jpg", photo)
        zf.writestr("deep/inside/b.png", photo)
        zf.writestr("notes.txt", "not an image")
    folder = services.save_uploads([("a.jpg", photo), ("../up.jpg", photo), ("set.zip", buf.getvalue())])
    assert folder.parent == vislink_env.resolved_home / "uploads"
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg", "set-00000-escape.jpg", "set-00001-b.png", "up.jpg"]
    assert not (folder.parent / "escape.jpg").exists() and not (folder.parent / "up.jpg").exists()


# -- the real UI server process in Chromium ----------------------------------------------------------------------
CHROMIUM = os.environ.get("VISLINK_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.mark.browser
def test_vislink_ui_runs_a_shells_ingest_and_its_ingest_page_shows_it_in_chromium(tmp_path, holder_env):
    import socket
    import urllib.request
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium): browser test not run")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    env, url, procs = holder_env
    make_photos(tmp_path / "src", 4)
    (tmp_path / "src" / "broken.jpg").write_bytes(b"not a jpeg")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(vislink_cmd("ui", "--host", "127.0.0.1", "--port", str(port)), env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(server)
    site = f"http://127.0.0.1:{port}"

    def healthy():
        try:
            with urllib.request.urlopen(f"{site}/_stcore/health", timeout=2) as resp:
                return resp.read().strip() == b"ok"
        except OSError:
            return False

    try:
        _wait_for(healthy, "the UI server", timeout=90)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(120_000)
            # expect() has its own 5 s default, which a first page run (index, job holder, imports) on a loaded
            # machine exceeds: the browser tests wait as long as the page's own timeout.
            sync_api.expect.set_options(timeout=120_000)
            page.goto(f"{site}/ingest")
            sync_api.expect(page.get_by_role("heading", name="Ingest", exact=True)).to_be_visible()
            # the first page run opened the index and started the UI process's job holder
            _wait_for(lambda: _scalar(url, "SELECT role FROM job_holders") == "ui", "the UI's job holder")

            shell = run_cli(["ingest", "folder", str(tmp_path / "src"), "-c", "shell", "--batch-size", "1",
                             "--no-progress"], env)
            assert shell.returncode == 0, shell.stderr[-3000:]
            assert "held by vislink ui" in shell.stderr and "queued job 1" in shell.stderr
            assert "collection shell: 4 done, 0 skipped, 1 failed" in shell.stdout

            # the page's job list (refreshed every second) shows the finished job, its counts and failure
            sync_api.expect(page.get_by_text("4 added, 0 skipped, 1 failed", exact=False)).to_be_visible()
            sync_api.expect(page.get_by_text("Failures (1 listed)")).to_be_visible()
            page.screenshot(path=str(tmp_path / "ingest.png"))
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_unread_answers_are_pruned(db_session):
    from vislink.store import Job
    from vislink.store import jobs as store

    old = store.submit(db_session, "search", {})
    new = store.submit(db_session, "search", {})
    queued = store.submit(db_session, "search", {})
    for job_id in (old, new):
        row = db_session.get(Job, job_id)
        row.state = store.JobState.done
    db_session.get(Job, old).created_at = datetime.now(timezone.utc) - timedelta(hours=1)
    db_session.get(Job, queued).created_at = datetime.now(timezone.utc) - timedelta(hours=1)
    db_session.commit()
    assert store.prune(db_session, ["search"], older_than=600) == 1
    assert [j.id for j in store.list_jobs(db_session)] == [queued, new]
