"""The vector-index facade. Every stage goes through ``VectorIndex``; ``open_index()`` picks the backend
from the settings: qdrant-server (QDRANT_URL), qdrant-edge (embedded default), qdrant-local, memory."""

from vislink.index.base import AnyOf, Filter, Hit, Point, Range, SparseVector, VectorIndex, filter_matches
from vislink.index.registry import build_index, close_all, list_backends, open_index, register_backend

__all__ = ["AnyOf", "Filter", "Hit", "Point", "Range", "SparseVector", "VectorIndex", "build_index", "close_all",
           "filter_matches", "list_backends", "open_index", "register_backend"]
