"""The one interface every vector-index call goes through.

Stages never talk to qdrant-client (or Qdrant's in-process engine) directly: they call a
``VectorIndex``. Backends are registered by name (see ``vislink.index.registry``), and a
congruence test runs the same operations on each of them against a numpy brute-force referee.

Vectors are compared by cosine similarity; descriptors are l2-normalised upstream, so the
score is the dot product and higher is closer.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vislink.index.policy import EXACT, IndexMode

Payload = dict[str, Any]


@dataclass(frozen=True)
class Range:
    """A numeric payload condition: ``gte <= value <= lte`` (either bound may be open)."""

    gte: float | None = None
    lte: float | None = None

    def matches(self, value: Any) -> bool:
        if value is None:
            return False
        return (self.gte is None or value >= self.gte) and (self.lte is None or value <= self.lte)


@dataclass(frozen=True)
class AnyOf:
    """A keyword payload condition: the value is one of ``values``."""

    values: tuple[Any, ...]

    def matches(self, value: Any) -> bool:
        return value in self.values


# A filter maps payload field -> exact value, Range or AnyOf; all conditions must hold.
# Kept as a plain mapping so that CLI `--filter artist=X` and UI widgets build it directly.
Filter = Mapping[str, Any]


def filter_matches(flt: Filter | None, payload: Mapping[str, Any]) -> bool:
    """Reference semantics of a Filter (used by the numpy referee and in-memory code)."""
    if not flt:
        return True
    for key, cond in flt.items():
        value = payload.get(key)
        if isinstance(cond, (Range, AnyOf)):
            if not cond.matches(value):
                return False
        elif value != cond:
            return False
    return True


@dataclass
class Point:
    id: int
    vector: np.ndarray | Sequence[float]
    payload: Payload = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    id: int
    score: float
    payload: Payload = field(default_factory=dict)


@dataclass(frozen=True)
class SparseVector:
    """A sparse vector (e.g. a bag of visual words): sorted unique ``indices`` and their ``values``."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


class VectorIndex(abc.ABC):
    """Operations vislink needs from a vector index. One Qdrant-style collection per descriptor variant."""

    name: str = "abstract"

    # -- collections -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_collection(self, collection: str, dim: int, *, payload_indexes: Mapping[str, str] | None = None,
                          sparse: bool = False, regions: bool = False) -> None:
        """Create a collection of ``dim``-d cosine vectors. ``payload_indexes`` maps field -> "keyword" |
        "integer" | "float". With ``sparse=True`` the points also carry a sparse vector named "sparse"; with
        ``regions=True`` a multivector of ``dim``-d regional descriptors named "regions", compared by MaxSim
        (``query_regions``). Creating an existing collection with the same dimension is a no-op."""

    @abc.abstractmethod
    def delete_collection(self, collection: str) -> None: ...

    @abc.abstractmethod
    def collection_exists(self, collection: str) -> bool: ...

    @abc.abstractmethod
    def list_collections(self) -> list[str]: ...

    # -- points ------------------------------------------------------------------------------
    @abc.abstractmethod
    def upsert(self, collection: str, points: Sequence[Point], *, sparse: Sequence[SparseVector] | None = None,
               regions: Sequence[np.ndarray] | None = None) -> None:
        """Insert or replace points (idempotent: re-upserting an id never duplicates it). ``regions``: one
        (R, dim) matrix per point (R >= 1), its regional descriptors, in a collection made with ``regions=True``."""

    @abc.abstractmethod
    def delete(self, collection: str, ids: Iterable[int]) -> None: ...

    @abc.abstractmethod
    def retrieve(self, collection: str, ids: Sequence[int], *, with_vectors: bool = False) -> list[tuple[int, Payload, np.ndarray | None]]:
        """Points by id, in no particular order; missing ids are left out."""

    @abc.abstractmethod
    def count(self, collection: str, flt: Filter | None = None) -> int: ...

    @abc.abstractmethod
    def scroll(self, collection: str, *, flt: Filter | None = None, limit: int = 256, offset: int | None = None,
               with_vectors: bool = False) -> tuple[list[tuple[int, Payload, np.ndarray | None]], int | None]:
        """One page of points in id order and the offset of the next page (None at the end)."""

    # -- queries -----------------------------------------------------------------------------
    @abc.abstractmethod
    def query_batch(self, collection: str, vectors: np.ndarray, *, limit: int, flt: Filter | None = None,
                    exact: bool = False, offset: int = 0, with_payload: bool = True) -> list[list[Hit]]:
        """Nearest neighbours of each row of ``vectors``, best first. ``with_payload=False``: hits with empty
        payloads, for callers that need ids and scores only (evaluation): the engine reads no payload."""

    def query(self, collection: str, vector: np.ndarray, *, limit: int, flt: Filter | None = None,
              exact: bool = False, offset: int = 0, with_payload: bool = True) -> list[Hit]:
        return self.query_batch(collection, np.asarray(vector, dtype=np.float32)[None, :], limit=limit, flt=flt,
                                exact=exact, offset=offset, with_payload=with_payload)[0]

    def query_multi(self, collection: str, vectors: np.ndarray, *, limit: int, flt: Filter | None = None,
                    exact: bool = False) -> list[Hit]:
        """Several query vectors for one search (an image and its mirror, several crops): each point scores
        its best similarity to any of them. Exact for the top ``limit``: each vector's own top ``limit``
        contains every point whose best score ranks in the merged top ``limit``."""
        best: dict[int, Hit] = {}
        for hits in self.query_batch(collection, np.atleast_2d(vectors), limit=limit, flt=flt, exact=exact):
            for hit in hits:
                if hit.id not in best or hit.score > best[hit.id].score:
                    best[hit.id] = hit
        return sorted(best.values(), key=lambda h: (-h.score, h.id))[:limit]

    @abc.abstractmethod
    def recommend(self, collection: str, *, positive: Sequence[np.ndarray | int], negative: Sequence[np.ndarray | int] = (),
                  limit: int, flt: Filter | None = None, exact: bool = False) -> list[Hit]:
        """Qdrant's recommendation (average-vector strategy): ``positive`` (at least one) and ``negative``
        examples are vectors or point ids; points given by id are never returned, an unknown id raises
        NotFound. Stored vectors are normalised; vectors given by value are averaged as given, as Qdrant does."""

    def query_sparse(self, collection: str, vector: SparseVector, *, limit: int, flt: Filter | None = None) -> list[Hit]:
        """Points nearest to a sparse vector by dot product (only points sharing an index with it), best first."""
        raise NotImplementedError(f"the {self.name} index backend has no sparse vectors")

    def retrieve_sparse(self, collection: str, ids: Sequence[int]) -> dict[int, SparseVector]:
        """The stored sparse vectors of points by id (a stored image as a query); ids without one are left out."""
        raise NotImplementedError(f"the {self.name} index backend has no sparse vectors")

    def query_regions(self, collection: str, vectors: np.ndarray, *, limit: int,
                      flt: Filter | None = None) -> list[list[Hit]]:
        """For each row of ``vectors``, the points whose best region is nearest (MaxSim of one query vector:
        the highest cosine over the point's regions), best first; exact. Points without regions are left out."""
        raise NotImplementedError(f"the {self.name} index backend has no regional multivectors (detail search): "
                                  "use qdrant-edge, qdrant-local, qdrant-server or memory")

    def retrieve_regions(self, collection: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored (R, dim) regional descriptors of points by id; ids without them are left out."""
        raise NotImplementedError(f"the {self.name} index backend has no regional multivectors (detail search): "
                                  "use qdrant-edge, qdrant-local, qdrant-server or memory")

    def index_mode(self, collection: str) -> IndexMode:
        """How ``collection`` is searched: exact (a scan) or HNSW (with its parameters, quantization);
        ``vislink.index.policy``. Backends without a graph are always exact."""
        if not self.collection_exists(collection):
            from vislink.errors import NotFound

            raise NotFound(f"no vector collection named {collection!r} in {self.name}")
        return EXACT

    def search_ef_factor(self, collection: str) -> float | None:
        """The ef factor calibrated for ``collection`` (``set_search_ef_factor``); None: the policy's."""
        return None

    def set_search_ef_factor(self, collection: str, factor: float | None) -> bool:
        """Make the approximate searches of ``collection`` use ef = ``factor`` x limit (None: the policy's factor),
        kept with the collection (``vislink.index.policy.calibrate_ef`` sets it after a build). False where the
        backend keeps none (no graph, or a Qdrant server, whose searches use the policy's factor)."""
        return False

    def optimize(self, collection: str, mode: IndexMode | None = None) -> IndexMode:
        """Tidy a collection after a large ingest (qdrant-edge: merge segments, index new points) and, with
        ``mode``, switch it to that mode (build the HNSW graph and quantization, or go back to exact scans).
        Searches are correct without it. Returns the mode the collection is in afterwards: backends without a
        graph (numpy, qdrant-client's local mode) stay exact whatever was asked."""
        return self.index_mode(collection)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""


def check_regions(collection: str, dim: int, points: Sequence[Point],
                  regions: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The points' regional matrices as float32 (R, dim), R >= 1, one per point; IndexUnavailable otherwise."""
    from vislink.errors import IndexUnavailable

    if len(regions) != len(points):
        raise IndexUnavailable(f"{len(regions)} region matrices for {len(points)} points in {collection}")
    out = []
    for point, matrix in zip(points, regions):
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != dim or not len(matrix):
            raise IndexUnavailable(f"regions of shape {matrix.shape} for point {point.id} of the {dim}-d collection "
                                   f"{collection}: give an (R, {dim}) matrix, R >= 1")
        out.append(matrix)
    return out


REGIONS_NAME = "regions"  # the multivector of regional descriptors (MaxSim), in collections made with regions=True


def regions_by_id(records) -> dict[int, np.ndarray]:
    """``{id: (n, dim) float32}`` from the records a Qdrant retrieve of the ``REGIONS_NAME`` vector returns (the
    same record shape in qdrant-client and qdrant-edge); a record without regions is left out."""
    out = {}
    for record in records:
        matrix = record.vector.get(REGIONS_NAME) if isinstance(record.vector, dict) else None
        if matrix:
            out[int(record.id)] = np.asarray(matrix, dtype=np.float32)
    return out


def average_recommendation_vector(positive: Sequence[np.ndarray], negative: Sequence[np.ndarray]) -> np.ndarray:
    """Qdrant's ``average_vector`` strategy: avg(pos) + avg(pos) - avg(neg), i.e. 2*avg(pos) - avg(neg)
    when there are negatives, else avg(pos)."""
    pos = np.mean(np.stack([np.asarray(v, dtype=np.float32) for v in positive]), axis=0)
    if not negative:
        return pos
    neg = np.mean(np.stack([np.asarray(v, dtype=np.float32) for v in negative]), axis=0)
    return pos + pos - neg
