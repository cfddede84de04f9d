"""qdrant-edge backend: Qdrant's in-process engine (``qdrant-edge-py``), the embedded default.

One Edge shard per vislink collection, in ``<root>/<collection>/`` (``root`` is
``settings.qdrant_path / "edge"``). A collection exists once its ``vislink.json`` marker is written
(last step of creation), so a crash half-way through ``create_collection`` leaves no half collection.
Every write is flushed before it returns: a killed process loses nothing that was acknowledged.

Concurrency: Edge shards take a lock on their files, so only one process may open the folder (this
module takes one folder-wide lock at open time, to fail early with a clear message). Inside the
process, Edge's own calls are safe from several threads at once (tested: concurrent queries and
upserts), but closing a shard under a running call breaks that call; a small gate lets data calls run
together and makes closing / creating / deleting collections wait for them.

Written against qdrant-edge-py 0.9; where Edge lacks an operation vislink needs, it is built here on
what Edge has, and the comment says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import qdrant_edge as qe

from vislink.errors import IndexUnavailable, NotFound
from vislink.index.base import (REGIONS_NAME, AnyOf, Filter, Hit, Payload, Point, Range, SparseVector, VectorIndex,
                                average_recommendation_vector, check_regions, regions_by_id)
from vislink.index.policy import EXACT, IndexMode, IndexPolicy

try:  # POSIX advisory locks; elsewhere Edge's own WAL lock still keeps a second process out
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

META_FILE = "vislink.json"
LOCK_FILE = ".vislink.lock"
SPARSE_NAME = "sparse"
# One Edge update per chunk of about 8M floats (32 MB): bounded memory, WAL records of sane size.
UPSERT_CHUNK_FLOATS = 8_000_000
# Collection names become folder names: no separators, no leading dot (hidden / trash folders).
_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$")
_EXACT_PARAMS = qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))
_SCHEMA = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer,
           "float": qe.PayloadSchemaType.Float}

# Folders opened by an EdgeIndex of this process (flock would also refuse a second open in the same
# process; this set only lets the message say where the other one is).
_HELD: set[Path] = set()
_HELD_LOCK = threading.Lock()


def _forget_held_in_child() -> None:
    # A forked child inherits the parent's bookkeeping, not its right to the folder: the parent keeps the
    # lock, and the child gets the "another process" error if it tries to open the folder itself.
    global _HELD_LOCK
    _HELD_LOCK = threading.Lock()
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_held_in_child)


# -- filters -------------------------------------------------------------------------------------
def _match_one(key: str, value: Any):
    """One ``key == value`` condition with vislink's Filter semantics (see ``filter_matches``)."""
    if value is None:
        return qe.IsEmptyCondition(key)  # missing or null, as the referee's payload.get(key) == None
    if isinstance(value, (bool, np.bool_)):
        # qdrant-edge-py 0.9 turns Python booleans into integers, so MatchValue(True) never matches a
        # boolean payload. Refuse rather than silently find nothing; vislink payloads hold no booleans.
        raise IndexUnavailable(f"the qdrant-edge backend cannot filter on the boolean value of {key!r}")
    if isinstance(value, (float, np.floating)):
        # MatchValue takes str/int only; a point range is the exact float match (and matches 1500 == 1500.0).
        return qe.FieldCondition(key, range=qe.RangeFloat(gte=float(value), lte=float(value)))
    if isinstance(value, np.integer):
        value = int(value)
    return qe.FieldCondition(key, match=qe.MatchValue(value))


def _condition(key: str, cond: Any):
    if isinstance(cond, Range):
        return qe.FieldCondition(key, range=qe.RangeFloat(gte=cond.gte, lte=cond.lte))
    if isinstance(cond, AnyOf):
        values = [int(v) if isinstance(v, np.integer) else v for v in cond.values]
        if not values:
            return qe.HasIdCondition(set())  # "one of nothing" matches no point
        if all(isinstance(v, str) for v in values) or all(type(v) is int for v in values):
            return qe.FieldCondition(key, match=qe.MatchAny(values))
        return qe.Filter(should=[_match_one(key, v) for v in values])  # mixed types, floats, None
    return _match_one(key, cond)


def to_edge_filter(flt: Filter | None, exclude_ids: Sequence[int] = ()) -> qe.Filter | None:
    """vislink Filter (all conditions must hold) -> qdrant_edge.Filter; ``exclude_ids`` are left out."""
    must = [_condition(key, cond) for key, cond in (flt or {}).items()]
    must_not = [qe.HasIdCondition({int(i) for i in exclude_ids})] if exclude_ids else []
    if not must and not must_not:
        return None
    return qe.Filter(must=must or None, must_not=must_not or None)


# -- helpers -------------------------------------------------------------------------------------
class _Gate:
    """Many data calls at once, or one thread creating / deleting / closing shards.

    No writer preference: a data call nested in another (recommend -> retrieve) must never wait.
    The exclusive holder may re-enter (shared or exclusive) from its own thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._owner: int | None = None
        self._depth = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            while self._owner is not None and self._owner != me:
                self._cond.wait()
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                while self._owner is not None or self._users:
                    self._cond.wait()
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
                    self._cond.notify_all()


class _Shard:
    def __init__(self, shard: qe.EdgeShard, dim: int, sparse: bool, regions: bool = False, mode: IndexMode = EXACT,
                 ef_factor: float | None = None):
        self.shard = shard
        self.dim = dim
        self.sparse = sparse
        self.regions = regions
        self.mode = mode  # what optimize() last built (the meta's "mode"): exact collections always scan
        self.ef_factor = ef_factor  # calibrated search ef factor (the meta's "ef_factor"); None: the policy's

    @classmethod
    def from_meta(cls, shard: qe.EdgeShard, meta: Mapping[str, Any]) -> _Shard:
        """An opened shard with what its vislink.json says of it."""
        return cls(shard, int(meta["dim"]), bool(meta.get("sparse")), bool(meta.get("regions")), _meta_mode(meta),
                   meta.get("ef_factor"))


def _meta_mode(meta: Mapping[str, Any]) -> IndexMode:
    """A collection's mode from its vislink.json; collections made before the policy carry only ``hnsw``
    (true: optimize() built a graph with Edge's default parameters)."""
    if "mode" in meta:
        return IndexMode.from_meta(meta["mode"])
    return IndexMode("hnsw") if meta.get("hnsw") else EXACT


def _edge_config(dim: int, sparse: bool, regions: bool, mode: IndexMode, policy: IndexPolicy,
                 search_threads: int | None) -> qe.EdgeConfig:
    """The Edge configuration of a collection in ``mode`` (at creation, and when optimize() changes the mode)."""
    hnsw = mode.kind == "hnsw"
    dense = qe.EdgeVectorParams(size=int(dim), distance=qe.Distance.Cosine)
    if regions:  # the global vector "" beside the regions' multivector, compared by MaxSim
        dense = {"": dense, REGIONS_NAME: qe.EdgeVectorParams(
            size=int(dim), distance=qe.Distance.Cosine,
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
            # Region queries always scan (query_regions): a graph of every region would cost R times the
            # global one and serve no search. m=0 is Qdrant's "no graph for this vector".
            hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=policy.ef_construct,
                                           full_scan_threshold=policy.full_scan_kb) if hnsw else None)}
    graph = None
    if hnsw and mode.m is not None:
        graph = qe.HnswIndexConfig(m=int(mode.m), ef_construct=int(mode.ef_construct or policy.ef_construct),
                                   full_scan_threshold=policy.full_scan_kb)
    quantization = None
    if hnsw and mode.quantization == "int8":
        # quantile 0.99: Qdrant's recommended clipping of outliers; kept in RAM, the point of quantizing.
        quantization = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
    return qe.EdgeConfig(
        vectors=dense,
        sparse_vectors={SPARSE_NAME: qe.EdgeSparseVectorParams()} if sparse else None,
        max_search_threads=search_threads,
        hnsw_config=graph,
        quantization_config=quantization,
        # indexing_threshold=0 turns vector indexing off (Qdrant's convention): optimize() only merges segments
        # and drops deleted points. In HNSW mode 1 KB: optimize() indexes every segment, the freshly written
        # ones too (Edge has no background optimizer; what optimize() left unindexed would be scanned).
        # hnsw with m None (collections of EdgeIndex(hnsw=True) made before the policy): Edge's defaults.
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=(1 if mode.m is not None else None) if hnsw else 0),
    )


def _jsonable(value: Any) -> Any:
    """Payload values as plain JSON types (numpy scalars come from dataframes and arrays)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _dense(vector: Any) -> np.ndarray | None:
    if vector is None:
        return None
    if isinstance(vector, dict):
        vector = vector.get("")
        if vector is None:
            return None
    return np.asarray(vector, dtype=np.float32)


@contextlib.contextmanager
def _edge_errors(what: str) -> Iterator[None]:
    """Edge raises bare ``Exception``s; turn them into IndexUnavailable naming the operation."""
    try:
        yield
    except (IndexUnavailable, NotFound, NotImplementedError):
        raise
    except Exception as exc:
        raise IndexUnavailable(f"qdrant-edge: {what} failed: {exc}") from exc


# -- the backend ---------------------------------------------------------------------------------
class EdgeIndex(VectorIndex):
    """Backend on qdrant-edge-py: one Edge shard folder per collection under ``root``."""

    name = "qdrant-edge"

    def __init__(self, root: str | Path, *, search_threads: int | None = None, hnsw: bool = False,
                 policy: IndexPolicy | None = None):
        """``policy``: HNSW parameters, search ef and quantization options (default: the settings'). Collections
        are created exact; ``optimize(collection, mode=...)`` builds a graph where the policy says so.
        ``hnsw``: create collections in the policy's HNSW mode at once, so that the first ``optimize()``
        builds the graph (off by default: on 40,000 x 2048-d vectors the build took 24 min on 2 busy cores, gave
        a top-200 recall of 0.25 on random data and searched no faster than the exact scan; docs/index.md)."""
        self.root = Path(root).expanduser().resolve()
        self.location = str(self.root)
        self.search_threads = search_threads
        self.hnsw = hnsw
        self.policy = policy or IndexPolicy.from_settings()
        self._shards: dict[str, _Shard] = {}
        self._gate = _Gate()
        self._open_lock = threading.Lock()  # lazy opening of shards from concurrent data calls
        self._lock_fd: int | None = None
        self._holding = False
        self._pid = os.getpid()
        self._acquire_folder()

    # -- the folder lock ---------------------------------------------------------------------
    def _acquire_folder(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexUnavailable(f"cannot create the qdrant-edge folder {self.root}: {exc}") from exc
        with _HELD_LOCK:
            if self.root in _HELD:
                raise IndexUnavailable(
                    f"the qdrant-edge index at {self.root} is already open in this process; "
                    "share it through vislink.index.open_index() instead of opening it twice")
            if fcntl is not None:
                fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    raise IndexUnavailable(
                        f"the qdrant-edge index at {self.root} is open in another process (a running `vislink ui` or "
                        "`vislink ingest`?); the embedded index "
                        "takes one process at a time (let one process write, or set QDRANT_URL to use a "
                        "Qdrant server)") from None
                self._lock_fd = fd
            _HELD.add(self.root)
            self._holding = True

    def _release_folder(self) -> None:
        with _HELD_LOCK:
            if not self._holding:
                return
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor drops the flock
                self._lock_fd = None
            _HELD.discard(self.root)
            self._holding = False

    def _ensure_open(self) -> None:
        if os.getpid() != self._pid:
            # A worker forked from the process that opened the index: writing through the inherited
            # shards would corrupt them (two processes, one set of files).
            raise IndexUnavailable(
                f"the qdrant-edge index at {self.root} was opened by process {self._pid}, not by this forked "
                f"process {os.getpid()}; workers must send their vectors to the process that holds the index")
        # close() releases the folder; a later call on the same object takes it again.
        if not self._holding:
            self._acquire_folder()

    # -- collections -------------------------------------------------------------------------
    def _path(self, collection: str) -> Path:
        if not isinstance(collection, str) or not _NAME_RE.match(collection):
            raise IndexUnavailable(f"invalid vector collection name {collection!r}: use letters, digits, _ - .")
        return self.root / collection

    @staticmethod
    def _read_meta(path: Path) -> dict[str, Any] | None:
        try:
            return json.loads((path / META_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise IndexUnavailable(f"unreadable collection metadata {path / META_FILE}: {exc}") from exc

    def create_collection(self, collection: str, dim: int, *, payload_indexes: Mapping[str, str] | None = None,
                          sparse: bool = False, regions: bool = False) -> None:
        path = self._path(collection)
        indexes = dict(payload_indexes or {})
        for field, kind in indexes.items():
            if kind not in _SCHEMA:
                raise IndexUnavailable(f"payload index type {kind!r} for {field!r}: use one of {sorted(_SCHEMA)}")
        with self._gate.exclusive():
            self._ensure_open()
            meta = self._read_meta(path)
            if meta is not None:
                if meta["dim"] != dim:
                    raise IndexUnavailable(f"qdrant-edge collection {collection} exists with dimension "
                                           f"{meta['dim']}, not {dim}")
                missing = {f: k for f, k in indexes.items() if f not in meta.get("payload_indexes", {})}
                if missing:  # same collection, more indexes asked for: add them (idempotent creation)
                    shard = self._shard(collection)
                    with _edge_errors(f"adding payload indexes to {collection}"):
                        for field, kind in missing.items():
                            shard.shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[kind]))
                        shard.shard.flush()
                    meta["payload_indexes"] = {**meta.get("payload_indexes", {}), **missing}
                    self._write_meta(path, meta)
                return
            if path.exists():  # left over by a creation that died before its marker: start again
                log.warning("removing the unfinished qdrant-edge collection folder %s", path)
                shutil.rmtree(path)
            mode = self.policy.hnsw_mode() if self.hnsw else EXACT
            config = _edge_config(dim, sparse, regions, mode, self.policy, self.search_threads)
            with _edge_errors(f"creating collection {collection} in {self.root}"):
                shard = qe.EdgeShard.create(str(path), config)
                for field, kind in indexes.items():
                    shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[kind]))
                shard.flush()
            # "mode" is what searches follow; with hnsw=True the graph exists once optimize() ran (before, the
            # graph search on unindexed segments is a scan anyway).
            self._write_meta(path, {"format": 1, "dim": int(dim), "distance": "cosine", "sparse": bool(sparse),
                                    "regions": bool(regions), "hnsw": bool(self.hnsw), "mode": mode.as_meta(),
                                    "payload_indexes": indexes})
            with self._open_lock:
                self._shards[collection] = _Shard(shard, int(dim), bool(sparse), bool(regions), mode)

    @staticmethod
    def _write_meta(path: Path, meta: dict[str, Any]) -> None:
        tmp = path / f"{META_FILE}.tmp"
        with open(tmp, "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path / META_FILE)

    def delete_collection(self, collection: str) -> None:
        path = self._path(collection)
        with self._gate.exclusive():
            self._ensure_open()
            with self._open_lock:
                shard = self._shards.pop(collection, None)
            if shard is not None:
                with _edge_errors(f"closing collection {collection}"):
                    shard.shard.close()
            if path.exists():
                # Rename first: a crash during rmtree leaves a hidden trash folder, never half a collection.
                trash = self.root / f".trash-{collection}-{uuid.uuid4().hex[:8]}"
                os.replace(path, trash)
                shutil.rmtree(trash, ignore_errors=True)

    def collection_exists(self, collection: str) -> bool:
        return (self._path(collection) / META_FILE).is_file()

    def list_collections(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if not p.name.startswith(".") and (p / META_FILE).is_file())

    def _shard(self, collection: str) -> _Shard:
        """The open shard of a collection (opened on first use). Call inside the gate."""
        with self._open_lock:
            shard = self._shards.get(collection)
            if shard is not None and os.getpid() == self._pid:
                return shard
            self._ensure_open()
            path = self._path(collection)
            meta = self._read_meta(path)
            if meta is None:
                raise NotFound(f"no vector collection named {collection!r} in qdrant-edge ({self.root})")
            with _edge_errors(f"opening collection {collection} at {path}"):
                edge = qe.EdgeShard.load(str(path))
            shard = self._shards[collection] = _Shard.from_meta(edge, meta)
            return shard

    # -- points ------------------------------------------------------------------------------
    def upsert(self, collection: str, points: Sequence[Point], *, sparse: Sequence[SparseVector] | None = None,
               regions: Sequence[np.ndarray] | None = None) -> None:
        if not points:
            return
        if sparse is not None and len(sparse) != len(points):
            raise IndexUnavailable(f"{len(sparse)} sparse vectors for {len(points)} points")
        with self._gate.shared():
            shard = self._shard(collection)
            if sparse is not None and not shard.sparse:
                raise IndexUnavailable(f"collection {collection} has no sparse vectors (create it with sparse=True)")
            if regions is not None:
                if not shard.regions:
                    raise IndexUnavailable(f"collection {collection} has no regions (create it with regions=True)")
                regions = check_regions(collection, shard.dim, points, regions)
            edge_points = []
            for i, p in enumerate(points):
                vec = np.asarray(p.vector, dtype=np.float32)
                if vec.shape != (shard.dim,):
                    raise IndexUnavailable(f"vector of shape {vec.shape} for a {shard.dim}-d collection {collection}")
                vector: Any = vec.tolist()
                if sparse is not None:
                    sv = sparse[i]
                    vector = {"": vector, SPARSE_NAME: qe.SparseVector([int(k) for k in sv.indices],
                                                                       [float(v) for v in sv.values])}
                if regions is not None:
                    vector = vector if isinstance(vector, dict) else {"": vector}
                    vector[REGIONS_NAME] = regions[i].tolist()
                edge_points.append(qe.Point(int(p.id), vector, _jsonable(dict(p.payload))))
            per_point = shard.dim * (1 + max((len(r) for r in regions), default=0) if regions is not None else 1)
            chunk = max(1, UPSERT_CHUNK_FLOATS // per_point)
            with _edge_errors(f"upsert into {collection}"):
                for start in range(0, len(edge_points), chunk):
                    shard.shard.update(qe.UpdateOperation.upsert_points(edge_points[start:start + chunk]))
                shard.shard.flush()  # acknowledged means on disk

    def delete(self, collection: str, ids) -> None:
        ids = [int(i) for i in ids]
        if not ids:
            return
        with self._gate.shared():
            shard = self._shard(collection)
            with _edge_errors(f"delete from {collection}"):
                shard.shard.update(qe.UpdateOperation.delete_points(ids))
                shard.shard.flush()

    @staticmethod
    def _unpack(record, with_vectors: bool) -> tuple[int, Payload, np.ndarray | None]:
        return int(record.id), dict(record.payload or {}), _dense(record.vector) if with_vectors else None

    def retrieve(self, collection, ids, *, with_vectors=False):
        ids = [int(i) for i in ids]
        with self._gate.shared():
            shard = self._shard(collection)
            if not ids:
                return []
            with _edge_errors(f"retrieve from {collection}"):
                records = shard.shard.retrieve(ids, True, with_vectors)
        return [self._unpack(r, with_vectors) for r in records]

    def count(self, collection: str, flt: Filter | None = None) -> int:
        with self._gate.shared():
            shard = self._shard(collection)
            with _edge_errors(f"count in {collection}"):
                return int(shard.shard.count(qe.CountRequest(exact=True, filter=to_edge_filter(flt))))

    def scroll(self, collection, *, flt=None, limit=256, offset=None, with_vectors=False):
        with self._gate.shared():
            shard = self._shard(collection)
            request = qe.ScrollRequest(offset=None if offset is None else int(offset), limit=int(limit),
                                       filter=to_edge_filter(flt), with_payload=True, with_vector=with_vectors)
            with _edge_errors(f"scroll in {collection}"):
                records, next_offset = shard.shard.scroll(request)
        return ([self._unpack(r, with_vectors) for r in records],
                int(next_offset) if next_offset is not None else None)

    # -- queries -----------------------------------------------------------------------------
    def _check_queries(self, shard: _Shard, collection: str, vectors) -> np.ndarray:
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.ndim != 2 or vectors.shape[1] != shard.dim:
            raise IndexUnavailable(f"query vectors of shape {vectors.shape} for a {shard.dim}-d collection {collection}")
        return vectors

    def _nearest(self, shard: _Shard, collection: str, vectors: np.ndarray, *, limit: int, flt, exact: bool,
                 offset: int = 0, exclude_ids: Sequence[int] = (), with_payload: bool = True) -> list[list[Hit]]:
        qfilter = to_edge_filter(flt, exclude_ids)
        params = self._search_params(shard, exact, int(limit) + int(offset))
        requests = [qe.QueryRequest(limit=int(limit), offset=int(offset), query=qe.Query.Nearest(v.tolist()),
                                    filter=qfilter, params=params, with_payload=bool(with_payload)) for v in vectors]
        with _edge_errors(f"query in {collection}"):
            # One planned batch: Edge shares the pass over the segments between the queries.
            results = shard.shard.query_batch(qe.QueryBatchRequest(requests))
        if not with_payload:
            return [[Hit(int(p.id), float(p.score)) for p in points] for points in results]
        return [[Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in points] for points in results]

    def _search_params(self, shard: _Shard, exact: bool, limit: int) -> qe.SearchParams:
        """Exact collections always scan (exact=True: results never depend on an optimisation having run).
        In HNSW mode, exact=True scans the original vectors (quantization ignored: evaluation's guarantee), and
        exact=False walks the graph with the policy's ef for ``limit``; int8 candidates are oversampled and
        rescored with the original vectors (without rescore Edge ranks by the quantized scores)."""
        if exact or not shard.mode.approximate:
            # ignore=True also covers quantized vectors left by an earlier int8 mode (the meta says exact).
            return _EXACT_PARAMS
        quantization = (qe.QuantizationSearchParams(rescore=True, oversampling=float(self.policy.oversampling))
                        if shard.mode.quantization else None)
        return qe.SearchParams(hnsw_ef=self.policy.ef_for(limit, shard.ef_factor), quantization=quantization)

    def query_batch(self, collection, vectors, *, limit, flt=None, exact=False, offset=0, with_payload=True):
        with self._gate.shared():
            shard = self._shard(collection)
            vectors = self._check_queries(shard, collection, vectors)
            if not len(vectors):
                return []
            return self._nearest(shard, collection, vectors, limit=limit, flt=flt, exact=exact, offset=offset,
                                 with_payload=with_payload)

    def recommend(self, collection, *, positive, negative=(), limit, flt=None, exact=False):
        # Edge 0.9 offers the best_score and sum_scores recommend strategies, not average_vector. This is
        # Qdrant's average_vector done here: examples given by id are read back (stored, i.e. normalised),
        # vectors given by value are used as given (like the server's avg_vector_for_recommendation), the
        # target is 2*avg(pos) - avg(neg) (avg(pos) with no negatives), and the ids are filtered out.
        positive, negative = list(positive), list(negative)
        if not positive:
            raise IndexUnavailable("recommend needs at least one positive example")
        with self._gate.shared():
            shard = self._shard(collection)
            ids = [int(x) for x in positive + negative if isinstance(x, (int, np.integer))]
            stored = {i: v for i, _, v in self.retrieve(collection, ids, with_vectors=True)}
            missing = sorted(set(ids) - set(stored))
            if missing:
                raise NotFound(f"recommend: no point with id {missing[0]} in {collection}")

            def vector(x) -> np.ndarray:
                if isinstance(x, (int, np.integer)):
                    return stored[int(x)]
                return self._check_queries(shard, collection, x)[0]

            target = average_recommendation_vector([vector(x) for x in positive], [vector(x) for x in negative])
            return self._nearest(shard, collection, target[None, :], limit=limit, flt=flt, exact=exact,
                                 exclude_ids=ids)[0]

    def retrieve_sparse(self, collection, ids):
        ids = [int(i) for i in ids]
        with self._gate.shared():
            shard = self._shard(collection)
            if not shard.sparse:
                raise IndexUnavailable(f"collection {collection} has no sparse vectors (create it with sparse=True)")
            if not ids:
                return {}
            with _edge_errors(f"retrieve sparse vectors from {collection}"):
                records = shard.shard.retrieve(ids, False, True)
        out = {}
        for record in records:
            sv = record.vector.get(SPARSE_NAME) if isinstance(record.vector, dict) else None
            if sv is not None:
                out[int(record.id)] = SparseVector(tuple(int(k) for k in sv.indices), tuple(float(v) for v in sv.values))
        return out

    def query_sparse(self, collection, vector, *, limit, flt=None):
        with self._gate.shared():
            shard = self._shard(collection)
            if not shard.sparse:
                raise IndexUnavailable(f"collection {collection} has no sparse vectors (create it with sparse=True)")
            query = qe.Query.Nearest(qe.SparseVector([int(i) for i in vector.indices],
                                                     [float(v) for v in vector.values]), using=SPARSE_NAME)
            request = qe.QueryRequest(limit=int(limit), query=query, filter=to_edge_filter(flt), with_payload=True)
            with _edge_errors(f"sparse query in {collection}"):
                points = shard.shard.query(request)
        return [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in points]

    def retrieve_regions(self, collection, ids):
        ids = [int(i) for i in ids]
        with self._gate.shared():
            shard = self._shard(collection)
            if not shard.regions:
                raise IndexUnavailable(f"collection {collection} has no regions (create it with regions=True)")
            if not ids:
                return {}
            with _edge_errors(f"retrieve regions from {collection}"):
                records = shard.shard.retrieve(ids, False, [REGIONS_NAME])
        return regions_by_id(records)

    def query_regions(self, collection, vectors, *, limit, flt=None):
        with self._gate.shared():
            shard = self._shard(collection)
            if not shard.regions:
                raise IndexUnavailable(f"collection {collection} has no regions (create it with regions=True)")
            vectors = self._check_queries(shard, collection, vectors)
            if not len(vectors):
                return []
            qfilter = to_edge_filter(flt)
            params = self._search_params(shard, True, int(limit))
            # One query vector against a MaxSim multivector: its best cosine over the point's regions.
            requests = [qe.QueryRequest(limit=int(limit), query=qe.Query.Nearest([v.tolist()], using=REGIONS_NAME),
                                        filter=qfilter, params=params, with_payload=True) for v in vectors]
            with _edge_errors(f"region query in {collection}"):
                results = shard.shard.query_batch(qe.QueryBatchRequest(requests))
        return [[Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in points] for points in results]

    # -- upkeep ------------------------------------------------------------------------------
    def index_mode(self, collection: str) -> IndexMode:
        with self._gate.shared():
            return self._shard(collection).mode

    def search_ef_factor(self, collection: str) -> float | None:
        with self._gate.shared():
            return self._shard(collection).ef_factor

    def set_search_ef_factor(self, collection: str, factor: float | None) -> bool:
        if factor is not None and not factor > 0:
            raise IndexUnavailable(f"an ef factor must be positive, got {factor}")
        with self._gate.exclusive():
            self._ensure_open()
            path = self._path(collection)
            meta = self._read_meta(path)
            if meta is None:
                raise NotFound(f"no vector collection named {collection!r} in qdrant-edge ({self.root})")
            wanted = None if factor is None else float(factor)
            if meta.get("ef_factor") != wanted:  # an exact collection's optimize clears it each time: write once
                meta["ef_factor"] = wanted
                self._write_meta(path, meta)
            shard = self._shards.get(collection)
            if shard is not None:
                shard.ef_factor = wanted
        return True

    def optimize(self, collection: str, mode: IndexMode | None = None) -> IndexMode:
        """Run Edge's optimizers (Edge has none in the background): merge segments, drop deleted points,
        and (in HNSW mode) index what is not indexed yet. ``mode``: switch the collection to it first (the
        shard is reopened with the new configuration; a few ms of exclusive access), then build (queries go on
        meanwhile, exactly). The meta says the new mode only once the build is done: a build that dies half-way
        leaves the collection exact, and the next optimize() builds again. Going back to exact leaves built
        graphs on disk, unused (every search scans). Returns the collection's mode."""
        if mode is not None and mode != self.index_mode(collection):
            self._reconfigure(collection, mode)
        with self._gate.shared():
            shard = self._shard(collection)
            with _edge_errors(f"optimizing {collection}"):
                shard.shard.optimize()
                shard.shard.flush()
        if mode is not None and mode != shard.mode:
            with self._gate.exclusive():
                path = self._path(collection)
                meta = self._read_meta(path) or {}
                meta.update(mode=mode.as_meta(), hnsw=mode.approximate)
                self._write_meta(path, meta)
                current = self._shards.get(collection)
                if current is not None:
                    current.mode = mode
        return mode if mode is not None else shard.mode

    def _reconfigure(self, collection: str, mode: IndexMode) -> None:
        """Close the collection's shard and load it with the configuration of ``mode`` (Edge writes it to disk)."""
        path = self._path(collection)
        with self._gate.exclusive():
            self._ensure_open()
            meta = self._read_meta(path)
            if meta is None:
                raise NotFound(f"no vector collection named {collection!r} in qdrant-edge ({self.root})")
            with self._open_lock:
                old = self._shards.pop(collection, None)
            config = _edge_config(int(meta["dim"]), bool(meta.get("sparse")), bool(meta.get("regions")), mode,
                                  self.policy, self.search_threads)
            with _edge_errors(f"reconfiguring {collection} for {mode.describe()}"):
                if old is not None:
                    old.shard.flush()
                    old.shard.close()
                edge = qe.EdgeShard.load(str(path), config)
            # Until the build ends, searches follow the old mode (an exact collection keeps scanning).
            with self._open_lock:
                self._shards[collection] = _Shard.from_meta(edge, meta)

    def __del__(self) -> None:
        # An index dropped without close() must not keep its folder locked for the rest of the process.
        if getattr(self, "_holding", False) and os.getpid() == self._pid:
            try:
                for shard in self._shards.values():
                    shard.shard.close()
                self._shards = {}
                self._release_folder()
            except Exception:  # never raise from a finaliser
                pass

    def close(self) -> None:
        if os.getpid() != self._pid:  # a forked child must not flush or close the parent's shards
            return
        with self._gate.exclusive():
            with self._open_lock:
                shards, self._shards = self._shards, {}
            errors = []
            for name, shard in shards.items():
                try:
                    shard.shard.flush()
                    shard.shard.close()
                except Exception as exc:  # close the others anyway
                    errors.append(f"{name}: {exc}")
            self._release_folder()
        if errors:
            raise IndexUnavailable(f"qdrant-edge: closing {self.root} failed for {'; '.join(errors)}")
