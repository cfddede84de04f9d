"""One embedded index shared by several processes of one machine (the queue's workers on a small set-up): each
call takes an exclusive file lock on the data folder, opens the index, acts and closes it. A Qdrant server needs
none of this: ``shared_index`` returns the server's client."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from typing import Iterator

from vislink.config import Settings
from vislink.index.base import VectorIndex
from vislink.index.registry import build_index, open_index


def shared_index(settings: Settings) -> VectorIndex:
    """The index workers write to: the configured server, or the embedded folder under a file lock."""
    if settings.effective_index_backend in ("qdrant-server", "memory"):
        return open_index(settings)
    return LockedFolderIndex(settings)


class LockedFolderIndex(VectorIndex):
    """The embedded index opened per call under an exclusive ``flock``, so processes on one machine can
    share it. Correct, not fast: every call reopens the folder."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.name = f"locked-{settings.effective_index_backend}"
        self.lock_path = settings.resolved_home / "qdrant.lock"

    @contextmanager
    def _open(self) -> Iterator[VectorIndex]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            index = build_index(self.settings)
            try:
                yield index
            finally:
                index.close()

    def create_collection(self, collection, dim, *, payload_indexes=None, sparse=False, regions=False):
        with self._open() as ix:
            return ix.create_collection(collection, dim, payload_indexes=payload_indexes, sparse=sparse,
                                        regions=regions)

    def delete_collection(self, collection):
        with self._open() as ix:
            return ix.delete_collection(collection)

    def collection_exists(self, collection):
        with self._open() as ix:
            return ix.collection_exists(collection)

    def list_collections(self):
        with self._open() as ix:
            return ix.list_collections()

    def upsert(self, collection, points, *, sparse=None, regions=None):
        with self._open() as ix:
            return ix.upsert(collection, points, sparse=sparse, regions=regions)

    def delete(self, collection, ids):
        with self._open() as ix:
            return ix.delete(collection, ids)

    def retrieve(self, collection, ids, *, with_vectors=False):
        with self._open() as ix:
            return ix.retrieve(collection, ids, with_vectors=with_vectors)

    def count(self, collection, flt=None):
        with self._open() as ix:
            return ix.count(collection, flt)

    def scroll(self, collection, *, flt=None, limit=256, offset=None, with_vectors=False):
        with self._open() as ix:
            return ix.scroll(collection, flt=flt, limit=limit, offset=offset, with_vectors=with_vectors)

    def query_batch(self, collection, vectors, *, limit, flt=None, exact=False, offset=0, with_payload=True):
        with self._open() as ix:
            return ix.query_batch(collection, vectors, limit=limit, flt=flt, exact=exact, offset=offset,
                                  with_payload=with_payload)

    def recommend(self, collection, *, positive, negative=(), limit, flt=None, exact=False):
        with self._open() as ix:
            return ix.recommend(collection, positive=positive, negative=negative, limit=limit, flt=flt, exact=exact)

    def query_sparse(self, collection, vector, *, limit, flt=None):
        with self._open() as ix:
            return ix.query_sparse(collection, vector, limit=limit, flt=flt)

    def retrieve_sparse(self, collection, ids):
        with self._open() as ix:
            return ix.retrieve_sparse(collection, ids)

    def query_regions(self, collection, vectors, *, limit, flt=None):
        with self._open() as ix:
            return ix.query_regions(collection, vectors, limit=limit, flt=flt)

    def retrieve_regions(self, collection, ids):
        with self._open() as ix:
            return ix.retrieve_regions(collection, ids)

    def index_mode(self, collection):
        with self._open() as ix:
            return ix.index_mode(collection)

    def search_ef_factor(self, collection):
        with self._open() as ix:
            return ix.search_ef_factor(collection)

    def set_search_ef_factor(self, collection, factor):
        with self._open() as ix:
            return ix.set_search_ef_factor(collection, factor)

    def optimize(self, collection, mode=None):
        with self._open() as ix:
            return ix.optimize(collection, mode)
