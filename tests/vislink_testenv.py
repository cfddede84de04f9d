"""Point vislink's settings at a test data folder (one place for every fixture that needs it)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path


DEFAULT_TEST_VARIANTS = ("vgg16-pool5-sum", "vgg16-pool5-max", "vgg16-pool5-sp2x2-sum")

# The suite's budget is 2 cores: with pytest-xdist's N workers (./run test runs 2), each worker's torch and
# onnxruntime get 2 // N threads, so that the workers share the cores instead of oversubscribing them.
TEST_THREADS = max(1, 2 // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))


def use_data_folder(mp, home: Path, *, weights: str | None = None) -> None:
    """Set the environment for a data folder ``home`` holding ``vislink.db``, with the embedded qdrant-edge index
    (the product's default; VISLINK_TEST_INDEX_BACKEND names another), TEST_THREADS torch threads, no Qdrant server; ``weights`` sets VISLINK_WEIGHTS.
    ``mp`` is a pytest MonkeyPatch, so that everything is undone after the test."""
    from vislink.config import reset_settings
    from vislink.store import db

    mp.setenv("VISLINK_HOME", str(home))
    mp.setenv("VISLINK_DB_URL", f"sqlite:///{home / 'vislink.db'}")
    mp.setenv("VISLINK_INDEX_BACKEND", os.environ.get("VISLINK_TEST_INDEX_BACKEND", "qdrant-edge"))
    mp.setenv("VISLINK_THREADS", str(TEST_THREADS))
    # New collections get the paper's three pool5 variants, whether or not this machine has SSCD installed.
    mp.setenv("VISLINK_DEFAULT_VARIANTS", ",".join(DEFAULT_TEST_VARIANTS))
    mp.delenv("QDRANT_URL", raising=False)
    if weights is not None:
        mp.setenv("VISLINK_WEIGHTS", weights)
    reset_settings()
    db.dispose_engines()


@contextmanager
def module_data_folder(tmp_path_factory, sqlite_template: Path, name: str, *, weights: str | None = "random"):
    """A data folder for a module-scoped fixture: a copy of the migrated SQLite template, the settings pointing at
    it while the block runs (yields them), the index closed and the settings reset afterwards."""
    import pytest

    from vislink.config import get_settings, reset_settings
    from vislink.index import close_all

    home = tmp_path_factory.mktemp(name) / "vislink-data"
    home.mkdir()
    shutil.copy(sqlite_template, home / "vislink.db")
    with pytest.MonkeyPatch.context() as mp:
        use_data_folder(mp, home, weights=weights)
        settings = get_settings()
        settings.ensure_dirs()
        yield settings
        close_all()
        reset_settings()
