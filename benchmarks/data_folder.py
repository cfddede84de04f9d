"""A data folder of a benchmark's own: SQLite and the embedded index in one folder, never the user's.

Every benchmark that ingests or searches through vislink points it at such a folder before anything opens it::

    from data_folder import data_folder, use_data_folder

    with data_folder(args.home, prefix="vislink-latency-", weights="random", threads=2) as home:
        ...                      # a temporary folder (removed at the end) unless a home was given (kept)

    env = use_data_folder(home, backend="qdrant-edge")   # just the settings; the variables for child processes
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def use_data_folder(home: str | Path, *, backend: str | None = "qdrant-edge", **settings: object) -> dict[str, str]:
    """Point vislink at ``home``: ``VISLINK_HOME``, a SQLite database inside it, the index ``backend`` (None: the
    settings' default, the embedded one when no server is named), and each
    of ``settings`` as ``VISLINK_<NAME>`` (``None`` values left out); a ``QDRANT_URL`` or ``VISLINK_DB_URL`` of the
    caller's shell is dropped, so that no benchmark writes to a server. Cached settings and database engines are
    reset. Returns the variables it set (for child processes)."""
    home = Path(home)
    env = {"VISLINK_HOME": str(home), "VISLINK_DB_URL": f"sqlite:///{home / 'vislink.db'}"}
    if backend is None:
        os.environ.pop("VISLINK_INDEX_BACKEND", None)
    else:
        env["VISLINK_INDEX_BACKEND"] = backend
    env.update({f"VISLINK_{name.upper()}": str(value) for name, value in settings.items() if value is not None})
    os.environ.pop("QDRANT_URL", None)
    os.environ.update(env)
    from vislink.config import reset_settings
    from vislink.store import db

    reset_settings()
    db.dispose_engines()
    return env


@contextlib.contextmanager
def data_folder(home: str | Path | None = None, *, prefix: str = "vislink-bench-", backend: str | None = "qdrant-edge",
                **settings: object) -> Iterator[Path]:
    """``use_data_folder`` on ``home``, or on a new temporary folder when ``home`` is None; on the way out the
    open indexes are closed (the embedded one holds a lock on its folder) and a temporary folder is removed."""
    temporary = home is None
    path = Path(tempfile.mkdtemp(prefix=prefix)) if temporary else Path(home)
    path.mkdir(parents=True, exist_ok=True)
    use_data_folder(path, backend=backend, **settings)
    try:
        yield path
    finally:
        from vislink.index import close_all

        close_all()
        if temporary:
            shutil.rmtree(path, ignore_errors=True)
