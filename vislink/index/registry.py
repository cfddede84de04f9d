"""Index backends by name, and the one function that opens the configured one."""

from __future__ import annotations

import logging
from typing import Callable

from vislink.config import Settings, get_settings
from vislink.errors import ConfigError
from vislink.index.base import VectorIndex

log = logging.getLogger(__name__)

_BACKENDS: dict[str, Callable[[Settings], VectorIndex]] = {}
_OPEN: dict[tuple, VectorIndex] = {}


def register_backend(name: str):
    def decorator(builder: Callable[[Settings], VectorIndex]):
        _BACKENDS[name] = builder
        return builder

    return decorator


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


@register_backend("qdrant-server")
def _server(settings: Settings) -> VectorIndex:
    from vislink.index.qdrant import QdrantClientIndex

    if not settings.qdrant_url:
        raise ConfigError("VISLINK_INDEX_BACKEND=qdrant-server needs QDRANT_URL")
    return QdrantClientIndex(settings.qdrant_url, api_key=settings.qdrant_api_key,
                             shard_number=settings.qdrant_shards, replication_factor=settings.qdrant_replication)


@register_backend("qdrant-local")
def _local(settings: Settings) -> VectorIndex:
    from vislink.index.qdrant import QdrantClientIndex

    settings.qdrant_path.mkdir(parents=True, exist_ok=True)
    return QdrantClientIndex(str(settings.qdrant_path))


@register_backend("memory")
def _memory(settings: Settings) -> VectorIndex:
    from vislink.index.numpy_index import NumpyIndex

    return NumpyIndex()


def build_index(settings: Settings, backend: str | None = None) -> VectorIndex:
    name = backend or settings.effective_index_backend
    if name not in _BACKENDS:
        # The edge backend registers itself on import; import it lazily so a missing wheel
        # only matters to those who ask for it.
        try:
            import vislink.index.edge  # noqa: F401
        except ImportError as exc:
            log.debug("qdrant-edge backend unavailable: %s", exc)
    if name not in _BACKENDS:
        raise ConfigError(f"unknown index backend {name!r}; valid: {', '.join(list_backends())}")
    return _BACKENDS[name](settings)


def open_index(settings: Settings | None = None, backend: str | None = None) -> VectorIndex:
    """The configured index, opened once per process (embedded Qdrant holds a lock on its folder)."""
    settings = settings or get_settings()
    key = (backend or settings.effective_index_backend, str(settings.resolved_home), settings.qdrant_url)
    if key not in _OPEN:
        _OPEN[key] = build_index(settings, backend)
    return _OPEN[key]


def close_all() -> None:
    for index in _OPEN.values():
        index.close()
    _OPEN.clear()
