"""The vector-index facade. Every stage goes through ``VectorIndex``; ``open_index()`` picks the backend
from the settings: qdrant-server (QDRANT_URL), qdrant-edge (embedded default), qdrant-local, memory.
``shared_index()`` gives processes of one machine one embedded index (``LockedFolderIndex``)."""

from vislink.index.base import AnyOf, Filter, Hit, Point, Range, SparseVector, VectorIndex, filter_matches
from vislink.index.locked import LockedFolderIndex, shared_index
from vislink.index.registry import build_index, close_all, list_backends, open_index, register_backend

__all__ = ["AnyOf", "Filter", "Hit", "LockedFolderIndex", "Point", "Range", "SparseVector", "VectorIndex", "build_index",
           "close_all", "filter_matches", "list_backends", "open_index", "register_backend", "shared_index"]
