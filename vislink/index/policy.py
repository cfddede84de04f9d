"""The index policy: which collections are scanned exactly and which get an HNSW graph (and quantization).

Below ``hnsw_min_points`` points (at 512 dimensions; proportionally fewer for larger vectors, ``min_points_for``)
a collection is searched by an exact scan (every search, whatever ``exact`` says):
results never depend on whether an optimisation ran, and at tens of thousands of points the scan is fast
enough. From that size on, ``optimize(collection, mode=policy.mode_for(count))`` builds an HNSW graph (and int8
scalar quantization if asked for); queries with ``exact=False`` then walk the graph with an ef chosen for their
limit (``ef_for``), and ``exact=True`` still scans. The defaults come from settings (``VISLINK_INDEX_*``), whose
help says where each was measured; docs/index.md ("Index policy") has the figures.

``measure_recall`` is what `vislink doctor` and `vislink index optimize` print: the approximate top-k of a
sample of the collection's own stored vectors against their exact top-k.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vislink.errors import ConfigError

QUANTIZATIONS = ("none", "int8")
# The dimension VISLINK_INDEX_HNSW_MIN_POINTS is stated at (pool5 and SSCD descriptors).
REFERENCE_DIM = 512


def collection_dim(index: Any, collection: str) -> int | None:
    """The dimension of a collection's dense vectors, read from one stored point (None: empty)."""
    points, _next = index.scroll(collection, limit=1, with_vectors=True)
    for _id, _payload, vector in points:
        if vector is not None:
            return int(np.asarray(vector).reshape(-1).shape[0])
    return None


@dataclass(frozen=True)
class IndexMode:
    """How one collection is searched: ``exact`` (a scan) or ``hnsw`` (graph of ``m`` edges per node built with
    ``ef_construct`` candidates), optionally with int8 scalar quantization (``quantization="int8"``)."""

    kind: Literal["exact", "hnsw"] = "exact"
    m: int | None = None
    ef_construct: int | None = None
    quantization: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("exact", "hnsw"):
            raise ConfigError(f"unknown index mode {self.kind!r}: exact or hnsw")
        if self.quantization not in (None, "int8"):
            raise ConfigError(f"unknown quantization {self.quantization!r}: none or int8")

    @property
    def approximate(self) -> bool:
        return self.kind == "hnsw"

    def describe(self) -> str:
        """``exact``, ``HNSW m=16 ef_construct=100``, ``HNSW m=16 ef_construct=100 / int8``."""
        if self.kind == "exact":
            return "exact"
        params = " ".join(f"{k}={v}" for k, v in (("m", self.m), ("ef_construct", self.ef_construct)) if v is not None)
        return "HNSW" + (f" {params}" if params else " (engine defaults)") + (f" / {self.quantization}"
                                                                              if self.quantization else "")

    def as_meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "m": self.m, "ef_construct": self.ef_construct, "quantization": self.quantization}

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None) -> IndexMode:
        if not meta:
            return EXACT
        return cls(meta.get("kind", "exact"), meta.get("m"), meta.get("ef_construct"), meta.get("quantization"))


EXACT = IndexMode("exact")


@dataclass(frozen=True)
class IndexPolicy:
    """Thresholds and parameters of the policy; ``from_settings`` reads them from ``VISLINK_INDEX_*``."""

    hnsw_min_points: int = 50_000  # at REFERENCE_DIM dimensions
    m: int = 16
    ef_construct: int = 100
    ef_min: int = 128
    ef_factor: float = 5.0
    quantization: str | None = "int8"  # "int8" or None
    oversampling: float = 2.0
    # Segments smaller than this (KB of vectors) are scanned even when they have a graph, and so are filtered
    # searches that keep fewer points: Qdrant's own default, 10 MB (a scan of 10 MB takes about a millisecond).
    full_scan_kb: int = 10_000
    # After a build, the ef factor is doubled until recall@200 on the collection's own vectors reaches this
    # (0: no calibration), up to max_ef_factor: SSCD vectors need far more than pool5 ones (docs/scaling.md).
    target_recall: float = 0.95
    max_ef_factor: float = 40.0
    # A calibration that needs a factor above this (10: ef 2,000 for top-200), or misses the target, rebuilds the
    # graph once with m and ef_construct doubled and calibrates again (0: never). SSCD-shaped vectors at 1M:
    # m 16 needed ef 8,000 (15 ms) for 0.96, m 32 / ef_construct 200 reached 0.97 at ef 2,000 (7 ms).
    rebuild_above_factor: float = 10.0

    def __post_init__(self) -> None:
        if self.hnsw_min_points < 0 or self.m < 1 or self.ef_construct < 1 or self.ef_min < 1 or self.ef_factor <= 0:
            raise ConfigError(f"invalid index policy {self}: thresholds and HNSW parameters must be positive")
        if self.quantization not in (None, "int8"):
            raise ConfigError(f"unknown quantization {self.quantization!r}: none or int8")
        if self.oversampling < 1:
            raise ConfigError(f"quantization oversampling {self.oversampling} is below 1")
        if not 0 <= self.target_recall <= 1 or self.max_ef_factor < self.ef_factor or self.rebuild_above_factor < 0:
            raise ConfigError(f"invalid index policy {self}: the target recall is a share (0 to 1), the largest "
                              "ef factor is at least the ef factor, and the rebuild factor is 0 or more")

    @classmethod
    def from_settings(cls, settings: Any = None) -> IndexPolicy:
        from vislink.config import get_settings

        s = settings or get_settings()
        return cls(hnsw_min_points=s.index_hnsw_min_points, m=s.index_hnsw_m, ef_construct=s.index_hnsw_ef_construct,
                   ef_min=s.index_hnsw_ef, ef_factor=s.index_hnsw_ef_factor,
                   quantization=None if s.index_quantization == "none" else s.index_quantization,
                   oversampling=s.index_oversampling, target_recall=s.index_target_recall,
                   rebuild_above_factor=s.index_hnsw_rebuild_above)

    def hnsw_mode(self, quantization: str | None | Literal["default"] = "default") -> IndexMode:
        """The HNSW mode this policy builds; ``quantization`` "int8" / None overrides the policy's own."""
        q = self.quantization if quantization == "default" else (None if quantization == "none" else quantization)
        return IndexMode("hnsw", self.m, self.ef_construct, q)

    def min_points_for(self, dim: int | None) -> int:
        """The threshold for ``dim``-dimensional vectors: an exact scan costs the vectors' bytes, so above
        ``REFERENCE_DIM`` the threshold shrinks in proportion (50,000 at 512-d is 12,500 at 2048-d: measured,
        the scan passes 20-30 ms at about 50,000 x 512 and 15,000 x 2048, docs/scaling.md). Smaller vectors keep
        the point count (a graph's build and memory grow with points, not dimensions)."""
        if not dim or dim <= REFERENCE_DIM:
            return self.hnsw_min_points
        return max(1, int(self.hnsw_min_points * REFERENCE_DIM / dim))

    def mode_for(self, points: int, quantization: str | None | Literal["default"] = "default",
                 dim: int | None = None) -> IndexMode:
        """exact below ``min_points_for(dim)`` points, HNSW from there on."""
        return self.hnsw_mode(quantization) if points >= self.min_points_for(dim) else EXACT

    def ef_for(self, limit: int, factor: float | None = None) -> int:
        """The search ef of an approximate query for ``limit`` results (offset included): never below the limit
        (the graph search returns at most ef candidates), ``ef_factor`` times it for large limits (top-200 needs
        more candidates than top-10 for the same recall). ``factor``: a collection's calibrated factor
        (``calibrate_ef``) instead of the policy's."""
        return max(int(limit), self.ef_min, int(math.ceil((factor or self.ef_factor) * int(limit))))


def resolve_mode(policy: IndexPolicy, points: int, mode: str = "auto", quantization: str | None = None,
                 dim: int | None = None) -> IndexMode:
    """The mode `vislink index optimize --mode ... --quantization ...` asks for: ``auto`` applies the policy's
    threshold, ``exact`` / ``hnsw`` force one; ``quantization`` (int8 / none) overrides the policy's."""
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantization!r}: {' or '.join(QUANTIZATIONS)}")
    q: Any = "default" if quantization is None else quantization
    if mode == "auto":
        return policy.mode_for(points, q, dim)
    if mode == "exact":
        return EXACT
    if mode == "hnsw":
        return policy.hnsw_mode(q)
    raise ConfigError(f"unknown index mode {mode!r}: auto, exact or hnsw")


@dataclass(frozen=True)
class RecallMeasure:
    recall: float  # mean over the queries of |approximate top-k & exact top-k| / |exact top-k|
    queries: int
    limit: int
    approximate_ms: float  # per query, one query at a time (p50)
    exact_ms: float

    def describe(self) -> str:
        return (f"recall@{self.limit} {self.recall:.3f} on {self.queries} of its own vectors "
                f"(HNSW {self.approximate_ms:.1f} ms, exact {self.exact_ms:.1f} ms a query, p50)")


class _RecallProbe:
    """``queries`` stored vectors of a collection (the first ones in id order: cheap to read, and ids are ingest
    order, not grouped by content) with their exact top-``limit``, searched once; ``measure()`` runs the
    approximate searches as the collection answers them now (calibration measures several ef factors)."""

    def __init__(self, index: Any, collection: str, queries: int, limit: int):
        from vislink.errors import NotFound

        page, _ = index.scroll(collection, limit=queries, with_vectors=True)
        self.vectors = [v for _, _, v in page if v is not None]
        if not self.vectors:
            raise NotFound(f"collection {collection} has no stored vectors to measure its recall on")
        self.index, self.collection = index, collection
        self.k = max(1, min(int(limit), index.count(collection)))
        self.truth, exact_ms = [], []
        for vector in self.vectors:
            t0 = time.perf_counter()
            exact = index.query(collection, vector, limit=self.k, exact=True, with_payload=False)
            exact_ms.append(1e3 * (time.perf_counter() - t0))
            self.truth.append({h.id for h in exact})
        self.exact_ms = float(np.median(exact_ms))

    def measure(self) -> RecallMeasure:
        recalls, approx_ms = [], []
        for vector, truth in zip(self.vectors, self.truth):
            t0 = time.perf_counter()
            approx = self.index.query(self.collection, vector, limit=self.k, exact=False, with_payload=False)
            approx_ms.append(1e3 * (time.perf_counter() - t0))
            # Each query finds itself in both lists, which both count the same way.
            recalls.append(len(truth & {h.id for h in approx}) / max(1, len(truth)))
        return RecallMeasure(float(np.mean(recalls)), len(self.vectors), self.k, float(np.median(approx_ms)),
                             self.exact_ms)


def measure_recall(index: Any, collection: str, *, queries: int = 32, limit: int = 200) -> RecallMeasure:
    """Approximate vs exact top-``limit`` of ``queries`` stored vectors of ``collection`` (the first ones in id
    order). Raises NotFound for an unknown collection."""
    return _RecallProbe(index, collection, queries, limit).measure()


@dataclass(frozen=True)
class Calibration:
    """The ef factor ``calibrate_ef`` chose and the recall it measured with it."""

    factor: float
    ef: int  # what a top-``recall.limit`` search uses with it (``IndexPolicy.ef_for``)
    recall: RecallMeasure
    reached: bool  # the recall reached the policy's target (False: at max_ef_factor and still short)
    tried: tuple[tuple[float, float], ...]  # (factor, recall) in the order measured

    def describe(self) -> str:
        steps = ", ".join(f"x{f:g} {r:.3f}" for f, r in self.tried)
        outcome = "reaches the target" if self.reached else "is the largest tried, short of the target"
        return (f"ef x{self.factor:g} (ef {self.ef} for top-{self.recall.limit}) {outcome} "
                f"(recall by factor: {steps})")


def calibrate_ef(index: Any, collection: str, policy: IndexPolicy, *, queries: int = 32,
                 limit: int = 200) -> Calibration | None:
    """The smallest ef factor, doubling from the policy's up to ``max_ef_factor``, whose recall@``limit`` on
    ``queries`` of the collection's own vectors reaches ``policy.target_recall``; stored with the collection
    (``index.set_search_ef_factor``) so that its approximate searches use it. None where the backend cannot keep a
    factor (a Qdrant server: its searches use the policy's). Recall grows with ef at a cost in time: 1M pool5
    vectors reach 0.97 at the policy's factor 5, SSCD ones need several times more (docs/scaling.md)."""
    if not index.set_search_ef_factor(collection, None):
        return None
    probe = _RecallProbe(index, collection, queries, limit)
    factor, tried = policy.ef_factor, []
    while True:
        index.set_search_ef_factor(collection, factor)
        measured = probe.measure()
        tried.append((factor, measured.recall))
        reached = measured.recall >= policy.target_recall
        if reached or factor >= policy.max_ef_factor:
            break
        factor = min(factor * 2, policy.max_ef_factor)
    if factor == policy.ef_factor:
        index.set_search_ef_factor(collection, None)  # the policy's: a later change of the setting applies
    return Calibration(factor, policy.ef_for(probe.k, factor), measured, reached, tuple(tried))


@dataclass(frozen=True)
class OptimizeReport:
    collection: str
    points: int
    before: IndexMode
    after: IndexMode
    seconds: float
    recall: RecallMeasure | None  # measured on HNSW collections only (exact ones have recall 1 by construction)
    note: str = ""
    calibration: Calibration | None = None  # the ef factor chosen for the target recall (HNSW, where kept)

    def describe(self) -> str:
        change = (f"{self.before.describe()} -> {self.after.describe()}" if self.before != self.after
                  else f"{self.after.describe()} (unchanged)")
        line = f"{self.collection}: {self.points} points, {change}, {self.seconds:.1f} s"
        if self.recall is not None:
            line += f"; {self.recall.describe()}"
            if self.calibration is not None:
                line += f"; {self.calibration.describe()}"
        elif not self.after.approximate:
            line += "; exact (recall 1 by construction)"
        return line + (f"; {self.note}" if self.note else "")

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "points": self.points, "before": self.before.as_meta(),
                "after": self.after.as_meta(), "seconds": round(self.seconds, 3),
                "recall": None if self.recall is None else {"recall": self.recall.recall, "limit": self.recall.limit,
                                                            "queries": self.recall.queries},
                "ef_factor": None if self.calibration is None else self.calibration.factor,
                "line": self.describe()}


def optimize_collection(index: Any, collection: str, policy: IndexPolicy | None = None, *, mode: str = "auto",
                        quantization: str | None = None, measure: bool = True, recall_queries: int = 32,
                        recall_limit: int = 200) -> OptimizeReport:
    """Apply the policy to one collection: ``mode`` auto (HNSW from ``hnsw_min_points``), exact or hnsw;
    build what it says (``index.optimize(collection, mode)``), time it, and measure the recall of an HNSW result
    (``measure_recall``), raising the collection's search ef until the policy's target recall is met
    (``calibrate_ef``; ``measure=False`` skips both). A backend that has no graph (numpy, qdrant-client's local
    mode) stays exact, and the report's note says so."""
    policy = policy or getattr(index, "policy", None) or IndexPolicy.from_settings()  # the index's own first
    points = index.count(collection)
    before = index.index_mode(collection)
    dim = collection_dim(index, collection) if mode == "auto" and points else None
    wanted = policy_mode = resolve_mode(policy, points, mode, quantization, dim)
    if mode == "auto" and before == _denser(policy_mode):
        wanted = before  # an earlier optimize rebuilt it denser for its recall: keep that graph
    t0 = time.perf_counter()
    after = index.optimize(collection, wanted)
    seconds = time.perf_counter() - t0
    note = ""
    if wanted.approximate and not after.approximate:
        note = f"the {index.name} backend has no HNSW graph: its searches are always exact scans"
    elif mode == "auto" and not wanted.approximate and points:
        note = (f"below {policy.min_points_for(dim)} points (VISLINK_INDEX_HNSW_MIN_POINTS"
                + (f", scaled to {dim}-d" if dim and dim > REFERENCE_DIM else "") + "): scanned exactly")
    recall = calibration = None
    if not after.approximate:
        index.set_search_ef_factor(collection, None)  # exact: no factor left over from an earlier graph
    elif measure and points:
        if policy.target_recall > 0:
            calibration = calibrate_ef(index, collection, policy, queries=recall_queries, limit=recall_limit)
        # Only the policy's own graph is rebuilt (once): a denser one kept from before is not doubled again.
        if calibration is not None and after == policy_mode and _needs_denser_graph(policy, calibration):
            # One rebuild, twice as dense: a factor far above the policy's means slow searches on this graph.
            first, sparse_m = calibration, after.m
            t0 = time.perf_counter()
            after = index.optimize(collection, _denser(after))
            seconds += time.perf_counter() - t0
            calibration = calibrate_ef(index, collection, policy, queries=recall_queries, limit=recall_limit)
            note = (f"rebuilt with m {after.m}: at m {sparse_m} recall@{first.recall.limit} was "
                    f"{first.recall.recall:.3f} with ef x{first.factor:g} (VISLINK_INDEX_HNSW_REBUILD_ABOVE "
                    f"{policy.rebuild_above_factor:g})")
        recall = (calibration.recall if calibration is not None
                  else measure_recall(index, collection, queries=recall_queries, limit=recall_limit))
    return OptimizeReport(collection, points, before, after, seconds, recall, note, calibration)


def _denser(mode: IndexMode) -> IndexMode | None:
    """``mode`` with m and ef_construct doubled (None for exact or engine-default graphs)."""
    if not mode.approximate or not mode.m or not mode.ef_construct:
        return None
    return IndexMode("hnsw", mode.m * 2, mode.ef_construct * 2, mode.quantization)


def _needs_denser_graph(policy: IndexPolicy, calibration: Calibration) -> bool:
    """The calibration missed the target, or met it only above ``rebuild_above_factor`` (0: never rebuild)."""
    return bool(policy.rebuild_above_factor) and (not calibration.reached
                                                  or calibration.factor > policy.rebuild_above_factor)
