"""qdrant-client backend: a Qdrant server or cluster (``QDRANT_URL``), or qdrant-client's local mode
(a folder, or ``:memory:``) for small embedded set-ups."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vislink.errors import IndexUnavailable, NotFound
from vislink.index.base import AnyOf, Filter, Hit, Payload, Point, Range, SparseVector, VectorIndex

log = logging.getLogger(__name__)

SPARSE_NAME = "sparse"


def to_qdrant_filter(flt: Filter | None):
    """vislink Filter -> qdrant_client.models.Filter (all conditions must hold)."""
    from qdrant_client import models

    if not flt:
        return None
    must = []
    for key, cond in flt.items():
        if isinstance(cond, Range):
            must.append(models.FieldCondition(key=key, range=models.Range(gte=cond.gte, lte=cond.lte)))
        elif isinstance(cond, AnyOf):
            must.append(models.FieldCondition(key=key, match=models.MatchAny(any=list(cond.values))))
        else:
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=cond)))
    return models.Filter(must=must)


class QdrantClientIndex(VectorIndex):
    """Backend on qdrant-client. ``location`` is ``":memory:"``, a folder path (local mode) or a URL."""

    def __init__(self, location: str, *, api_key: str | None = None, shard_number: int | None = None,
                 replication_factor: int | None = None, timeout: int = 30):
        from qdrant_client import QdrantClient

        self.location = location
        self.is_server = location.startswith(("http://", "https://"))
        self.name = "qdrant-server" if self.is_server else "qdrant-local"
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        try:
            if self.is_server:
                self.client = QdrantClient(url=location, api_key=api_key, timeout=timeout)
                self.client.get_collections()  # fail now, with a clear message, not at the first search
            elif location == ":memory:":
                self.client = QdrantClient(location=":memory:")
            else:
                self.client = QdrantClient(path=location)
        except Exception as exc:
            raise IndexUnavailable(f"cannot open Qdrant at {location}: {exc}") from exc

    # -- collections -------------------------------------------------------------------------
    def create_collection(self, collection: str, dim: int, *, payload_indexes: Mapping[str, str] | None = None,
                          sparse: bool = False) -> None:
        from qdrant_client import models

        if self.client.collection_exists(collection):
            info = self.client.get_collection(collection)
            size = info.config.params.vectors.size
            if size != dim:
                raise IndexUnavailable(f"Qdrant collection {collection} exists with dimension {size}, not {dim}")
            return
        kwargs: dict[str, Any] = {}
        if self.is_server:
            # The scaled set-up: distributed collections (ignored by a single-node server).
            kwargs.update(shard_number=self.shard_number, replication_factor=self.replication_factor)
        self.client.create_collection(
            collection,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            sparse_vectors_config={SPARSE_NAME: models.SparseVectorParams()} if sparse else None,
            **kwargs,
        )
        schema = {"keyword": models.PayloadSchemaType.KEYWORD, "integer": models.PayloadSchemaType.INTEGER,
                  "float": models.PayloadSchemaType.FLOAT}
        with warnings.catch_warnings():
            # Local mode has no payload indexes and warns; filters still work there (by scanning).
            warnings.simplefilter("ignore")
            for field, kind in (payload_indexes or {}).items():
                self.client.create_payload_index(collection, field, field_schema=schema[kind])

    def delete_collection(self, collection: str) -> None:
        self.client.delete_collection(collection)

    def collection_exists(self, collection: str) -> bool:
        return self.client.collection_exists(collection)

    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def _require(self, collection: str) -> None:
        if not self.client.collection_exists(collection):
            raise NotFound(f"no vector collection named {collection!r} in {self.name} ({self.location})")

    # -- points ------------------------------------------------------------------------------
    def upsert(self, collection: str, points: Sequence[Point], *, sparse: Sequence[SparseVector] | None = None) -> None:
        from qdrant_client import models

        if not points:
            return
        structs = []
        for i, p in enumerate(points):
            vector: Any = np.asarray(p.vector, dtype=np.float32).tolist()
            if sparse is not None:
                sv = sparse[i]
                vector = {"": vector, SPARSE_NAME: models.SparseVector(indices=list(sv.indices), values=list(sv.values))}
            structs.append(models.PointStruct(id=int(p.id), vector=vector, payload=dict(p.payload)))
        self.client.upsert(collection, points=structs, wait=True)

    def delete(self, collection: str, ids: Iterable[int]) -> None:
        from qdrant_client import models

        ids = [int(i) for i in ids]
        if ids:
            self.client.delete(collection, points_selector=models.PointIdsList(points=ids), wait=True)

    @staticmethod
    def _unpack(record, with_vectors: bool) -> tuple[int, Payload, np.ndarray | None]:
        vec = None
        if with_vectors and record.vector is not None:
            raw = record.vector[""] if isinstance(record.vector, dict) else record.vector
            vec = np.asarray(raw, dtype=np.float32)
        return int(record.id), dict(record.payload or {}), vec

    def retrieve(self, collection, ids, *, with_vectors=False):
        self._require(collection)
        records = self.client.retrieve(collection, ids=[int(i) for i in ids], with_payload=True,
                                       with_vectors=with_vectors)
        return [self._unpack(r, with_vectors) for r in records]

    def count(self, collection: str, flt: Filter | None = None) -> int:
        self._require(collection)
        return self.client.count(collection, count_filter=to_qdrant_filter(flt), exact=True).count

    def scroll(self, collection, *, flt=None, limit=256, offset=None, with_vectors=False):
        self._require(collection)
        records, next_offset = self.client.scroll(collection, scroll_filter=to_qdrant_filter(flt), limit=limit,
                                                  offset=offset, with_payload=True, with_vectors=with_vectors)
        return [self._unpack(r, with_vectors) for r in records], (int(next_offset) if next_offset is not None else None)

    # -- queries -----------------------------------------------------------------------------
    def query_batch(self, collection, vectors, *, limit, flt=None, exact=False, offset=0):
        from qdrant_client import models

        self._require(collection)
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        qfilter = to_qdrant_filter(flt)
        params = models.SearchParams(exact=exact)
        requests = [models.QueryRequest(query=v.tolist(), limit=limit, offset=offset, filter=qfilter, params=params,
                                        with_payload=True) for v in vectors]
        responses = self.client.query_batch_points(collection, requests=requests)
        return [[Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in r.points] for r in responses]

    def recommend(self, collection, *, positive, negative=(), limit, flt=None, exact=False):
        from qdrant_client import models

        self._require(collection)

        def as_example(x):
            return int(x) if isinstance(x, (int, np.integer)) else np.asarray(x, dtype=np.float32).tolist()

        query = models.RecommendQuery(recommend=models.RecommendInput(
            positive=[as_example(x) for x in positive], negative=[as_example(x) for x in negative],
            strategy=models.RecommendStrategy.AVERAGE_VECTOR))
        result = self.client.query_points(collection, query=query, limit=limit, query_filter=to_qdrant_filter(flt),
                                          search_params=models.SearchParams(exact=exact), with_payload=True)
        return [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in result.points]

    def query_sparse(self, collection, vector, *, limit, flt=None):
        from qdrant_client import models

        self._require(collection)
        result = self.client.query_points(
            collection, query=models.SparseVector(indices=list(vector.indices), values=list(vector.values)),
            using=SPARSE_NAME, limit=limit, query_filter=to_qdrant_filter(flt), with_payload=True)
        return [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in result.points]

    def close(self) -> None:
        self.client.close()
