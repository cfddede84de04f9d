"""qdrant-client backend: a Qdrant server or cluster (``QDRANT_URL``), or qdrant-client's local mode
(a folder, or ``:memory:``) for small embedded set-ups."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import warnings
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

import numpy as np

from vislink.errors import IndexUnavailable, NotFound
from vislink.index.base import (REGIONS_NAME, AnyOf, Filter, Hit, Payload, Point, Range, SparseVector, VectorIndex,
                                check_regions, regions_by_id)
from vislink.index.policy import EXACT, IndexMode, IndexPolicy

log = logging.getLogger(__name__)

SPARSE_NAME = "sparse"
DEFAULT_PORT = 6333
CONNECT_TIMEOUT = 5.0


def _match_one(key: str, value: Any):
    """One ``key == value`` condition with vislink's Filter semantics (see ``filter_matches``)."""
    from qdrant_client import models

    if value is None:  # missing or null, as the referee's payload.get(key) == None
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))
    if isinstance(value, (float, np.floating)) and not isinstance(value, bool):
        # MatchValue takes str/int/bool; a point range is the exact float match (and 1500 == 1500.0).
        return models.FieldCondition(key=key, range=models.Range(gte=float(value), lte=float(value)))
    if isinstance(value, np.generic):
        value = value.item()
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def to_qdrant_filter(flt: Filter | None, exclude_ids: Sequence[int] = ()):
    """vislink Filter -> qdrant_client.models.Filter (all conditions must hold); ``exclude_ids`` left out."""
    from qdrant_client import models

    must: list[Any] = []
    for key, cond in (flt or {}).items():
        if isinstance(cond, Range):
            must.append(models.FieldCondition(key=key, range=models.Range(gte=cond.gte, lte=cond.lte)))
        elif isinstance(cond, AnyOf):
            values = [v.item() if isinstance(v, np.generic) else v for v in cond.values]
            if not values:
                must.append(models.HasIdCondition(has_id=[]))  # "one of nothing" matches no point
            elif all(isinstance(v, str) for v in values) or all(type(v) is int for v in values):
                must.append(models.FieldCondition(key=key, match=models.MatchAny(any=values)))
            else:  # mixed types, floats, None
                must.append(models.Filter(should=[_match_one(key, v) for v in values]))
        else:
            must.append(_match_one(key, cond))
    must_not = [models.HasIdCondition(has_id=[int(i) for i in exclude_ids])] if exclude_ids else []
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)


def server_creation_kwargs(shard_number: int | None, replication_factor: int | None) -> dict[str, Any]:
    """Extra create_collection arguments in server mode: the scaled set-up's distributed collections
    (a single-node server accepts them and keeps one shard copy)."""
    kwargs: dict[str, Any] = {}
    if shard_number is not None:
        kwargs["shard_number"] = int(shard_number)
    if replication_factor is not None:
        kwargs["replication_factor"] = int(replication_factor)
    return kwargs


def probe_server(url: str, timeout: float) -> None:
    """Fail fast, with a message for the user, when nothing answers at ``url``'s host and port
    (qdrant-client would only fail at the first call, after its full request timeout)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORT  # qdrant-client's own default when the URL names no port
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise IndexUnavailable(
            f"cannot reach the Qdrant server at {url} ({host}:{port}: {reason}); start it, fix QDRANT_URL, "
            "or unset QDRANT_URL to use the embedded index in the data folder") from exc


def _serialised(method):
    """Local mode is plain Python over SQLite, not safe for concurrent threads (Streamlit serves
    sessions in threads and shares one index): one call at a time. Server mode needs no lock."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self._pid != os.getpid() and not self.is_server:
            # A forked worker writing to the parent's SQLite files would corrupt them.
            raise IndexUnavailable(f"the qdrant-local index at {self.location} was opened by process {self._pid}, "
                                   f"not by this forked process {os.getpid()}; workers must send their vectors "
                                   "to the process that holds the index")
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class QdrantClientIndex(VectorIndex):
    """Backend on qdrant-client. ``location`` is ``":memory:"``, a folder path (local mode) or a URL."""

    def __init__(self, location: str, *, api_key: str | None = None, shard_number: int | None = None,
                 replication_factor: int | None = None, timeout: int = 30, policy: IndexPolicy | None = None):
        from qdrant_client import QdrantClient

        self.policy = policy or IndexPolicy.from_settings()
        self.location = location
        self.is_server = location.startswith(("http://", "https://"))
        self.name = "qdrant-server" if self.is_server else "qdrant-local"
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self._lock = contextlib.nullcontext() if self.is_server else threading.RLock()
        self._pid = os.getpid()
        if self.is_server:
            probe_server(location, min(float(timeout), CONNECT_TIMEOUT))
        try:
            if self.is_server:
                # The probe above and get_collections below replace qdrant-client's version check.
                self.client = QdrantClient(url=location, api_key=api_key, timeout=timeout, check_compatibility=False)
                self.client.get_collections()  # fail now, with a clear message, not at the first search
            elif location == ":memory:":
                # Calls come from several threads, one at a time (see _serialised).
                self.client = QdrantClient(location=":memory:", force_disable_check_same_thread=True)
            else:
                self.client = QdrantClient(path=location, force_disable_check_same_thread=True)
        except Exception as exc:
            if "already accessed by another instance" in str(exc):
                raise IndexUnavailable(
                    f"the qdrant-local index at {location} is open in another process (or twice in this one); "
                    "the embedded index takes one process at a time (let one process write, or set QDRANT_URL "
                    "to use a Qdrant server)") from exc
            hint = " (check QDRANT_API_KEY)" if any(code in str(exc) for code in ("401", "403")) else ""
            raise IndexUnavailable(f"cannot open Qdrant at {location}: {exc}{hint}") from exc

    # -- collections -------------------------------------------------------------------------
    @_serialised
    def create_collection(self, collection: str, dim: int, *, payload_indexes: Mapping[str, str] | None = None,
                          sparse: bool = False, regions: bool = False) -> None:
        from qdrant_client import models

        if self.client.collection_exists(collection):
            size = self._dim(collection)
            if size != dim:
                raise IndexUnavailable(f"Qdrant collection {collection} exists with dimension {size}, not {dim}")
            return
        kwargs = server_creation_kwargs(self.shard_number, self.replication_factor) if self.is_server else {}
        dense: Any = models.VectorParams(size=dim, distance=models.Distance.COSINE)
        if regions:  # the unnamed global vector "" beside the regions' multivector, compared by MaxSim
            dense = {"": dense, REGIONS_NAME: models.VectorParams(
                size=dim, distance=models.Distance.COSINE,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM))}
        self.client.create_collection(
            collection,
            vectors_config=dense,
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

    @_serialised
    def delete_collection(self, collection: str) -> None:
        self.client.delete_collection(collection)

    @_serialised
    def collection_exists(self, collection: str) -> bool:
        return self.client.collection_exists(collection)

    @_serialised
    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def _require(self, collection: str) -> None:
        if not self.client.collection_exists(collection):
            raise NotFound(f"no vector collection named {collection!r} in {self.name} ({self.location})")

    def _vectors_config(self, collection: str):
        """The collection's dense vectors: one unnamed VectorParams, or a dict by name (collections with regions)."""
        return self.client.get_collection(collection).config.params.vectors

    def _dim(self, collection: str) -> int:
        config = self._vectors_config(collection)
        return int((config[""] if isinstance(config, dict) else config).size)

    def _require_regions(self, collection: str) -> int:
        """The dimension of a collection made with regions=True; NotFound / IndexUnavailable otherwise."""
        self._require(collection)
        config = self._vectors_config(collection)
        if not isinstance(config, dict) or REGIONS_NAME not in config:
            raise IndexUnavailable(f"collection {collection} has no regions (create it with regions=True)")
        return int(config[REGIONS_NAME].size)

    # -- points ------------------------------------------------------------------------------
    @_serialised
    def upsert(self, collection: str, points: Sequence[Point], *, sparse: Sequence[SparseVector] | None = None,
               regions: Sequence[np.ndarray] | None = None) -> None:
        from qdrant_client import models

        if not points:
            return
        if regions is not None:
            regions = check_regions(collection, self._require_regions(collection), points, regions)
            named = True
        else:
            self._require(collection)
            # A collection with regions has named vectors: its global vector goes by its name "" even in a
            # point upserted without regions (as local mode requires).
            named = isinstance(self._vectors_config(collection), dict)
        structs = []
        for i, p in enumerate(points):
            vector: Any = np.asarray(p.vector, dtype=np.float32).tolist()
            if sparse is not None:
                sv = sparse[i]
                vector = {"": vector, SPARSE_NAME: models.SparseVector(indices=list(sv.indices), values=list(sv.values))}
            if named and not isinstance(vector, dict):
                vector = {"": vector}
            if regions is not None:
                vector[REGIONS_NAME] = regions[i].tolist()
            structs.append(models.PointStruct(id=int(p.id), vector=vector, payload=dict(p.payload)))
        self.client.upsert(collection, points=structs, wait=True)

    @_serialised
    def delete(self, collection: str, ids: Iterable[int]) -> None:
        from qdrant_client import models

        ids = [int(i) for i in ids]
        self._require(collection)
        if ids:
            self.client.delete(collection, points_selector=models.PointIdsList(points=ids), wait=True)

    @staticmethod
    def _unpack(record, with_vectors: bool) -> tuple[int, Payload, np.ndarray | None]:
        vec = None
        if with_vectors and record.vector is not None:
            raw = record.vector[""] if isinstance(record.vector, dict) else record.vector
            vec = np.asarray(raw, dtype=np.float32)
        return int(record.id), dict(record.payload or {}), vec

    @_serialised
    def retrieve(self, collection, ids, *, with_vectors=False):
        self._require(collection)
        records = self.client.retrieve(collection, ids=[int(i) for i in ids], with_payload=True,
                                       with_vectors=with_vectors)
        return [self._unpack(r, with_vectors) for r in records]

    @_serialised
    def count(self, collection: str, flt: Filter | None = None) -> int:
        self._require(collection)
        return self.client.count(collection, count_filter=to_qdrant_filter(flt), exact=True).count

    @_serialised
    def scroll(self, collection, *, flt=None, limit=256, offset=None, with_vectors=False):
        self._require(collection)
        records, next_offset = self.client.scroll(collection, scroll_filter=to_qdrant_filter(flt), limit=limit,
                                                  offset=offset, with_payload=True, with_vectors=with_vectors)
        return [self._unpack(r, with_vectors) for r in records], (int(next_offset) if next_offset is not None else None)

    # -- queries -----------------------------------------------------------------------------
    @_serialised
    def query_batch(self, collection, vectors, *, limit, flt=None, exact=False, offset=0, with_payload=True):
        from qdrant_client import models

        self._require(collection)
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        qfilter = to_qdrant_filter(flt)
        # Local mode always scans exactly (and warns about search params): only a server gets them.
        params = self._search_params(exact, int(limit) + int(offset)) if self.is_server else None
        requests = [models.QueryRequest(query=v.tolist(), limit=limit, offset=offset, filter=qfilter, params=params,
                                        with_payload=bool(with_payload)) for v in vectors]
        responses = self.client.query_batch_points(collection, requests=requests)
        return [[Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in r.points] for r in responses]

    @_serialised
    def recommend(self, collection, *, positive, negative=(), limit, flt=None, exact=False):
        from qdrant_client import models

        positive, negative = list(positive), list(negative)
        if not positive:
            raise IndexUnavailable("recommend needs at least one positive example")
        self._require(collection)
        ids = [int(x) for x in positive + negative if isinstance(x, (int, np.integer))]
        if ids:  # the same NotFound as the other backends, not a server-specific error
            found = {int(r.id) for r in self.client.retrieve(collection, ids=ids, with_payload=False)}
            missing = sorted(set(ids) - found)
            if missing:
                raise NotFound(f"recommend: no point with id {missing[0]} in {collection}")

        def as_example(x):
            return int(x) if isinstance(x, (int, np.integer)) else np.asarray(x, dtype=np.float32).tolist()

        query = models.RecommendQuery(recommend=models.RecommendInput(
            positive=[as_example(x) for x in positive], negative=[as_example(x) for x in negative],
            strategy=models.RecommendStrategy.AVERAGE_VECTOR))
        result = self.client.query_points(collection, query=query, limit=limit, query_filter=to_qdrant_filter(flt),
                                          search_params=self._search_params(exact, limit) if self.is_server else None,
                                          with_payload=True)
        return [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in result.points]

    @_serialised
    def retrieve_sparse(self, collection, ids):
        self._require(collection)
        records = self.client.retrieve(collection, ids=[int(i) for i in ids], with_payload=False,
                                       with_vectors=[SPARSE_NAME])
        out = {}
        for record in records:
            sv = record.vector.get(SPARSE_NAME) if isinstance(record.vector, dict) else None
            if sv is not None:
                out[int(record.id)] = SparseVector(tuple(int(k) for k in sv.indices), tuple(float(v) for v in sv.values))
        return out

    @_serialised
    def query_sparse(self, collection, vector, *, limit, flt=None):
        from qdrant_client import models

        self._require(collection)
        result = self.client.query_points(
            collection, query=models.SparseVector(indices=list(vector.indices), values=list(vector.values)),
            using=SPARSE_NAME, limit=limit, query_filter=to_qdrant_filter(flt), with_payload=True)
        return [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in result.points]

    @_serialised
    def retrieve_regions(self, collection, ids):
        ids = [int(i) for i in ids]
        self._require_regions(collection)
        if not ids:
            return {}
        records = self.client.retrieve(collection, ids=ids, with_payload=False, with_vectors=[REGIONS_NAME])
        return regions_by_id(records)

    @_serialised
    def query_regions(self, collection, vectors, *, limit, flt=None):
        from qdrant_client import models

        dim = self._require_regions(collection)
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.ndim != 2 or vectors.shape[1] != dim:
            raise IndexUnavailable(f"query vectors of shape {vectors.shape} for a {dim}-d collection {collection}")
        if not len(vectors):
            return []
        qfilter = to_qdrant_filter(flt)
        # Local mode always scans exactly (and warns about search params): only a server gets them.
        params = models.SearchParams(exact=True) if self.is_server else None
        # One query vector as a one-row multivector against a MaxSim multivector: its best cosine over the
        # point's regions. Points without regions are left out (they have no "regions" vector).
        requests = [models.QueryRequest(query=[v.tolist()], using=REGIONS_NAME, limit=int(limit), filter=qfilter,
                                        params=params, with_payload=True) for v in vectors]
        responses = self.client.query_batch_points(collection, requests=requests)
        return [[Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in r.points] for r in responses]

    # -- the index policy (server mode; local mode always scans) ---------------------------------
    def _search_params(self, exact: bool, limit: int):
        """exact: scan the original vectors. Otherwise the policy's ef for ``limit`` and, on int8 collections,
        oversampled candidates rescored with the original vectors (both ignored by collections without them)."""
        from qdrant_client import models

        if exact:
            return models.SearchParams(exact=True, quantization=models.QuantizationSearchParams(ignore=True))
        return models.SearchParams(hnsw_ef=self.policy.ef_for(limit), quantization=models.QuantizationSearchParams(
            rescore=True, oversampling=float(self.policy.oversampling)))

    @_serialised
    def index_mode(self, collection: str) -> IndexMode:
        """Local mode: exact (it has no graph). Server: what the collection's configuration says (m=0: no graph).
        A server builds its graph in the background, above its own indexing threshold (10 MB of vectors by
        default); the mode says what it is configured to build."""
        self._require(collection)
        if not self.is_server:
            return EXACT
        config = self.client.get_collection(collection).config
        hnsw = config.hnsw_config
        if not hnsw.m:
            return EXACT
        quantization = "int8" if getattr(config.quantization_config, "scalar", None) is not None else None
        return IndexMode("hnsw", int(hnsw.m), int(hnsw.ef_construct), quantization)

    @_serialised
    def optimize(self, collection: str, mode: IndexMode | None = None) -> IndexMode:
        """Server: set the collection's HNSW parameters and quantization (``mode``); the server rebuilds its
        segments in the background (searches go on). Local mode: nothing to build, always exact."""
        from qdrant_client import models

        self._require(collection)
        if not self.is_server or mode is None:
            return self.index_mode(collection)
        if mode.approximate:
            hnsw = models.HnswConfigDiff(m=mode.m or self.policy.m,
                                         ef_construct=mode.ef_construct or self.policy.ef_construct)
            quantization: Any = (models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=0.99, always_ram=True)) if mode.quantization
                else models.Disabled.DISABLED)
        else:
            hnsw, quantization = models.HnswConfigDiff(m=0), models.Disabled.DISABLED
        self.client.update_collection(collection, hnsw_config=hnsw, quantization_config=quantization)
        return self.index_mode(collection)

    def close(self) -> None:
        if self._pid != os.getpid():  # a forked child must not unlock or close the parent's storage
            return
        with self._lock:
            self.client.close()
