"""Index backends by name, and the one function that opens the configured one.

``auto`` (the default) means qdrant-server when QDRANT_URL is set, else qdrant-edge (Qdrant's
in-process engine) in ``<data folder>/qdrant/edge``; where the qdrant-edge-py wheel cannot be imported,
auto falls back to qdrant-client's local mode in ``<data folder>/qdrant`` and logs a warning.
Asking for ``qdrant-edge`` explicitly never falls back: it raises ConfigError.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from vislink.config import Settings, get_settings
from vislink.errors import ConfigError
from vislink.index.base import VectorIndex

log = logging.getLogger(__name__)

_BACKENDS: dict[str, Callable[[Settings], VectorIndex]] = {}
# Open indexes by (backend, location): embedded Qdrant (edge and local mode) locks its folder, so a
# process holds one index per folder and every caller, in every thread, shares it.
_OPEN: dict[tuple[str, str], VectorIndex] = {}
_OPEN_LOCK = threading.Lock()
_warned_fallback = False


def register_backend(name: str):
    def decorator(builder: Callable[[Settings], VectorIndex]):
        _BACKENDS[name] = builder
        return builder

    return decorator


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


def edge_path(settings: Settings) -> Path:
    """Folder of the qdrant-edge index: one Edge shard folder per collection inside it."""
    return settings.qdrant_path / "edge"


def edge_import_error() -> ImportError | None:
    """Why qdrant-edge-py cannot be imported here, or None when it can."""
    try:
        import qdrant_edge  # noqa: F401
    except ImportError as exc:
        return exc
    return None


@register_backend("qdrant-server")
def _server(settings: Settings) -> VectorIndex:
    from vislink.index.qdrant import QdrantClientIndex

    if not settings.qdrant_url:
        raise ConfigError("VISLINK_INDEX_BACKEND=qdrant-server needs QDRANT_URL")
    from vislink.index.policy import IndexPolicy

    return QdrantClientIndex(settings.qdrant_url, api_key=settings.qdrant_api_key,
                             shard_number=settings.qdrant_shards, replication_factor=settings.qdrant_replication,
                             policy=IndexPolicy.from_settings(settings))


@register_backend("qdrant-local")
def _local(settings: Settings) -> VectorIndex:
    from vislink.index.qdrant import QdrantClientIndex

    settings.qdrant_path.mkdir(parents=True, exist_ok=True)
    return QdrantClientIndex(str(settings.qdrant_path))


@register_backend("qdrant-edge")
def _edge(settings: Settings) -> VectorIndex:
    error = edge_import_error()
    if error is not None:
        raise ConfigError(f"VISLINK_INDEX_BACKEND=qdrant-edge needs the qdrant-edge-py package, which cannot be "
                          f"imported ({error}); install it (pip install qdrant-edge-py) or choose another backend")
    from vislink.index.edge import EdgeIndex  # lazily: only those who use it need the wheel

    from vislink.index.policy import IndexPolicy

    return EdgeIndex(edge_path(settings), policy=IndexPolicy.from_settings(settings))


@register_backend("memory")
def _memory(settings: Settings) -> VectorIndex:
    from vislink.index.numpy_index import NumpyIndex

    return NumpyIndex()


def resolve_backend(settings: Settings, backend: str | None = None) -> str:
    """The backend name that ``backend`` (or the settings) means here, ``auto`` resolved."""
    global _warned_fallback

    name = backend or settings.index_backend
    if name != "auto":
        return name
    name = "qdrant-server" if settings.qdrant_url else "qdrant-edge"
    if name == "qdrant-edge":
        error = edge_import_error()
        if error is not None:
            if not _warned_fallback:
                log.warning("qdrant-edge-py cannot be imported (%s); the embedded index falls back to "
                            "qdrant-client's local mode in %s (slower; collections indexed with qdrant-edge "
                            "are not visible there)", error, settings.qdrant_path)
                _warned_fallback = True
            name = "qdrant-local"
    return name


def _location(settings: Settings, name: str) -> str:
    if name == "qdrant-server":
        return settings.qdrant_url or ""
    if name == "qdrant-local":
        return str(settings.qdrant_path)
    if name == "qdrant-edge":
        return str(edge_path(settings))
    return str(settings.resolved_home)


def build_index(settings: Settings, backend: str | None = None) -> VectorIndex:
    """A new index object (not shared: most callers want ``open_index``)."""
    name = resolve_backend(settings, backend)
    if name not in _BACKENDS:
        raise ConfigError(f"unknown index backend {name!r}; valid: auto, {', '.join(list_backends())}")
    return _BACKENDS[name](settings)


def open_index(settings: Settings | None = None, backend: str | None = None) -> VectorIndex:
    """The configured index, opened once per process and location, shared by every thread."""
    settings = settings or get_settings()
    name = resolve_backend(settings, backend)
    key = (name, _location(settings, name))
    with _OPEN_LOCK:  # two Streamlit sessions opening at once must not open the folder twice
        index = _OPEN.get(key)
        if index is None:
            index = _OPEN[key] = build_index(settings, name)
        return index


def close_all() -> None:
    """Close every index opened by ``open_index`` (tests, and processes before they fork)."""
    with _OPEN_LOCK:
        indexes = list(_OPEN.values())
        _OPEN.clear()
    for index in indexes:
        try:
            index.close()
        except Exception as exc:  # close the others anyway
            log.warning("closing %s failed: %s", index.name, exc)
