"""The .npz files of fitted models (a PCA whitening, a visual vocabulary): written atomically with a format tag
and the sha256 of their content inside, read back with the same checks and the same errors for every kind."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from vislink.errors import ConfigError, NotFound


def write_fitted(path: Path | str, fmt: str, sha256: str, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` with the format tag ``fmt`` and the content hash ``sha256`` to ``path`` (a temporary file
    renamed into place: a killed write never leaves half a file under the real name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, format=np.array(fmt), sha256=np.array(sha256), **arrays)
    tmp.replace(path)


def read_fitted(path: Path | str, fmt: str, what: str, build):
    """``build(data)`` on the arrays stored at ``path`` (an ``np.load`` mapping), after checking the format tag;
    the object built must have a ``sha256`` equal to the stored one. ``what`` names the kind in errors
    ("PCA whitening", "visual vocabulary"): NotFound for a missing file, ConfigError for another kind of file,
    an unreadable one or a damaged one."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{what} file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["format"]) != fmt:
                raise ConfigError(f"{path}: not a vislink {what} file (format {data['format']})")
            fitted = build(data)
            stored = str(data["sha256"])
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc})") from exc
    if fitted.sha256 != stored:
        raise ConfigError(f"{path}: content hash {fitted.sha256} differs from the stored {stored} (damaged file)")
    return fitted


def read_once(path: Path | str, load):
    """``load(path)`` once per process for each version of the file: ingest, search and evaluation all read
    fitted files through here, and a file rewritten at the same path is read again (the key is its mtime)."""
    path = Path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None  # let load() raise its own clear error
    return _read_cached(load, str(path), stamp)


@lru_cache(maxsize=64)
def _read_cached(load, path: str, stamp: int | None):
    return load(path)
