"""A brute-force in-memory index on numpy: the referee of the congruence tests between backends,
and the ``memory`` backend for throw-away work. Exact by construction; nothing is persisted."""

from __future__ import annotations

import functools
import threading
from typing import Iterable, Mapping, Sequence

import numpy as np

from vislink.errors import IndexUnavailable, NotFound
from vislink.index.base import (Filter, Hit, Point, SparseVector, VectorIndex, average_recommendation_vector,
                                check_regions, filter_matches)


class _Table:
    def __init__(self, dim: int, sparse: bool, regions: bool = False):
        self.dim = dim
        self.sparse = sparse
        self.regions = regions
        self.vectors: dict[int, np.ndarray] = {}
        self.payloads: dict[int, dict] = {}
        self.sparse_vectors: dict[int, SparseVector] = {}
        self.region_vectors: dict[int, np.ndarray] = {}


def _normalise(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norm == 0, 1, norm)


def _locked(method):
    """Shared by the threads of a process (Streamlit sessions): one call at a time, so a search never
    sees a table half-updated."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class NumpyIndex(VectorIndex):
    name = "memory"

    def __init__(self):
        self._tables: dict[str, _Table] = {}
        self._lock = threading.RLock()

    def _table(self, collection: str) -> _Table:
        try:
            return self._tables[collection]
        except KeyError:
            raise NotFound(f"no vector collection named {collection!r} in the memory index") from None

    @_locked
    def create_collection(self, collection, dim, *, payload_indexes: Mapping[str, str] | None = None, sparse=False,
                          regions=False):
        if collection in self._tables:
            if self._tables[collection].dim != dim:
                raise IndexUnavailable(f"collection {collection} exists with dimension {self._tables[collection].dim}")
            return
        self._tables[collection] = _Table(dim, sparse, regions)

    @_locked
    def delete_collection(self, collection):
        self._tables.pop(collection, None)

    @_locked
    def collection_exists(self, collection):
        return collection in self._tables

    @_locked
    def list_collections(self):
        return sorted(self._tables)

    @_locked
    def upsert(self, collection, points: Sequence[Point], *, sparse=None, regions=None):
        table = self._table(collection)
        if sparse is not None and (not table.sparse or len(sparse) != len(points)):
            raise IndexUnavailable(f"{len(sparse)} sparse vectors for {len(points)} points in {collection} "
                                   f"({'with' if table.sparse else 'without'} sparse vectors)")
        if regions is not None:
            if not table.regions:
                raise IndexUnavailable(f"collection {collection} has no regions (create it with regions=True)")
            regions = check_regions(collection, table.dim, points, regions)
        for i, p in enumerate(points):
            vec = np.asarray(p.vector, dtype=np.float32)
            if vec.shape != (table.dim,):
                raise IndexUnavailable(f"vector of shape {vec.shape} for a {table.dim}-d collection {collection}")
            # Cosine distance: Qdrant normalises on insert, so the referee does too.
            table.vectors[int(p.id)] = _normalise(vec)
            table.payloads[int(p.id)] = dict(p.payload)
            if sparse is not None:
                table.sparse_vectors[int(p.id)] = sparse[i]
            if regions is not None:
                table.region_vectors[int(p.id)] = _normalise(regions[i])

    @_locked
    def delete(self, collection, ids: Iterable[int]):
        table = self._table(collection)
        for i in ids:
            table.vectors.pop(int(i), None)
            table.payloads.pop(int(i), None)
            table.sparse_vectors.pop(int(i), None)
            table.region_vectors.pop(int(i), None)

    @_locked
    def retrieve(self, collection, ids, *, with_vectors=False):
        table = self._table(collection)
        return [(int(i), dict(table.payloads[int(i)]), table.vectors[int(i)].copy() if with_vectors else None)
                for i in ids if int(i) in table.vectors]

    def _ids(self, table: _Table, flt: Filter | None) -> list[int]:
        return sorted(i for i in table.vectors if filter_matches(flt, table.payloads[i]))

    @_locked
    def count(self, collection, flt=None):
        return len(self._ids(self._table(collection), flt))

    @_locked
    def scroll(self, collection, *, flt=None, limit=256, offset=None, with_vectors=False):
        table = self._table(collection)
        ids = [i for i in self._ids(table, flt) if offset is None or i >= offset]
        page, rest = ids[:limit], ids[limit:]
        return self.retrieve(collection, page, with_vectors=with_vectors), (rest[0] if rest else None)

    def _search(self, table: _Table, queries: np.ndarray, limit: int, flt, offset: int, exclude=(),
                with_payload: bool = True) -> list[list[Hit]]:
        ids = [i for i in self._ids(table, flt) if i not in exclude]
        if not ids:
            return [[] for _ in queries]
        matrix = np.stack([table.vectors[i] for i in ids])
        scores = _normalise(np.asarray(queries, dtype=np.float32)) @ matrix.T
        out = []
        id_array = np.asarray(ids)
        for row in scores:
            # Ties broken by id, as a stable referee.
            order = np.lexsort((id_array, -row))[offset:offset + limit]
            out.append([Hit(int(id_array[j]), float(row[j]),
                            dict(table.payloads[int(id_array[j])]) if with_payload else {}) for j in order])
        return out

    @_locked
    def query_batch(self, collection, vectors, *, limit, flt=None, exact=False, offset=0, with_payload=True):
        table = self._table(collection)
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.shape[1] != table.dim:
            raise IndexUnavailable(f"query vectors of shape {vectors.shape} for a {table.dim}-d collection {collection}")
        return self._search(table, vectors, limit, flt, offset, with_payload=with_payload)

    @_locked
    def recommend(self, collection, *, positive, negative=(), limit, flt=None, exact=False):
        positive, negative = list(positive), list(negative)
        if not positive:
            raise IndexUnavailable("recommend needs at least one positive example")
        table = self._table(collection)
        by_id = {int(x) for x in positive + negative if isinstance(x, (int, np.integer))}
        missing = sorted(by_id - set(table.vectors))
        if missing:
            raise NotFound(f"recommend: no point with id {missing[0]} in {collection}")

        def vec(x):
            # Stored vectors (normalised on insert) by id; vectors given by value are used as given,
            # as Qdrant's avg_vector_for_recommendation does.
            return table.vectors[int(x)] if isinstance(x, (int, np.integer)) else np.asarray(x, np.float32)

        target = average_recommendation_vector([vec(x) for x in positive], [vec(x) for x in negative])
        return self._search(table, target[None, :], limit, flt, 0, exclude=by_id)[0]

    @_locked
    def retrieve_sparse(self, collection, ids):
        table = self._table(collection)
        return {int(i): table.sparse_vectors[int(i)] for i in ids if int(i) in table.sparse_vectors}

    @_locked
    def query_sparse(self, collection, vector, *, limit, flt=None):
        table = self._table(collection)
        if not table.sparse:
            raise IndexUnavailable(f"collection {collection} has no sparse vectors (create it with sparse=True)")
        query = dict(zip(vector.indices, vector.values))
        scored = []
        for i in self._ids(table, flt):
            sv = table.sparse_vectors.get(i)
            if sv is None:
                continue
            score = sum(v * query.get(k, 0.0) for k, v in zip(sv.indices, sv.values))
            if score > 0:
                scored.append(Hit(i, float(score), dict(table.payloads[i])))
        return sorted(scored, key=lambda h: (-h.score, h.id))[:limit]

    @_locked
    def retrieve_regions(self, collection, ids):
        table = self._table(collection)
        return {int(i): table.region_vectors[int(i)].copy() for i in ids if int(i) in table.region_vectors}

    @_locked
    def query_regions(self, collection, vectors, *, limit, flt=None):
        table = self._table(collection)
        if not table.regions:
            raise IndexUnavailable(f"collection {collection} has no regions (create it with regions=True)")
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.shape[1] != table.dim:
            raise IndexUnavailable(f"query vectors of shape {vectors.shape} for a {table.dim}-d collection {collection}")
        ids = [i for i in self._ids(table, flt) if i in table.region_vectors]
        if not ids:
            return [[] for _ in vectors]
        id_array = np.asarray(ids)
        # MaxSim of one query vector: its best cosine over each point's regions.
        scores = np.stack([(table.region_vectors[i] @ _normalise(vectors).T).max(axis=0) for i in ids], axis=1)
        out = []
        for row in scores:
            order = np.lexsort((id_array, -row))[:limit]
            out.append([Hit(int(id_array[j]), float(row[j]), dict(table.payloads[int(id_array[j])])) for j in order])
        return out
