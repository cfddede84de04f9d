"""Where each target of each query lands when the query's vector is searched in a vector index.

Searches are exact (``exact=True``: the metric measures the descriptor, not the approximate index) and
batched. The query's own point is fetched and dropped, so it never counts. Ranks are wanted for every
target, not only those within the largest recall cutoff (average precision is over the full ranking, and
the paper's Table 2 lists every rank): queries whose targets are not all found are searched again, four
times deeper each round, until all are found, the ranking is exhausted, or ``max_depth`` is reached (then
the rank is recorded as ``None``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from vislink.errors import VislinkError
from vislink.evaluation.metrics import average_precision, paper_weight, target_ranks
from vislink.index.base import VectorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalQuery:
    """One query: its point id in the index, the point ids of its targets, and names for reports."""

    query_id: int
    targets: tuple[int, ...]
    ref: str | None = None  # what a person recognises: source_ref, file name, WGA path
    image_id: int | None = None  # the store's Image.id, when the query is an image of the store

    def __post_init__(self):
        if not self.targets:
            raise VislinkError(f"query {self.ref or self.query_id} has no targets")


@dataclass
class QueryResult:
    """The rank of every target of one query (aligned with ``query.targets``; None: not found)."""

    query: EvalQuery
    ranks: list[int | None]
    target_refs: list[str] = field(default_factory=list)  # filled by benchmarks for Table 2

    @property
    def n_targets(self) -> int:
        return len(self.ranks)

    @property
    def weight(self) -> float:
        return paper_weight(self.n_targets)

    @property
    def average_precision(self) -> float:
        return average_precision(self.ranks)

    @property
    def sorted_ranks(self) -> list[int | None]:
        """Ranks ascending, targets never found last: how they are stored and printed."""
        return sorted(self.ranks, key=lambda r: (r is None, r or 0))


def _fetch_vectors(index: VectorIndex, collection: str, ids: Sequence[int], batch: int = 256) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for start in range(0, len(ids), batch):
        for pid, _payload, vec in index.retrieve(collection, list(ids[start:start + batch]), with_vectors=True):
            if vec is not None:
                out[int(pid)] = np.asarray(vec, dtype=np.float32)
    return out


def rank_targets(index: VectorIndex, collection: str, queries: Sequence[EvalQuery], *, depth: int = 200,
                 max_depth: int | None = None, vectors: np.ndarray | None = None, batch_size: int = 64,
                 progress: bool = False) -> list[QueryResult]:
    """Search every query in ``collection`` and return the ranks of its targets.

    ``depth``: the first search fetches ``depth + 1`` results (the largest recall cutoff plus the query).
    ``max_depth``: never search deeper than this many results (None: the whole collection).
    ``vectors``: the queries' vectors, one row per query; by default each query's own stored vector.
    """
    if depth < 1:
        raise VislinkError(f"search depth must be >= 1, got {depth}")
    if not queries:
        return []
    total = index.count(collection)
    cap = total + 1 if max_depth is None else min(max_depth + 1, total + 1)
    if vectors is None:
        stored = _fetch_vectors(index, collection, [q.query_id for q in queries])
        missing = [q.ref or q.query_id for q in queries if q.query_id not in stored]
        if missing:
            raise VislinkError(f"{len(missing)} queries have no vector in index collection {collection} "
                               f"(e.g. {missing[:3]}): re-ingest or reconcile the collection")
        vectors = np.stack([stored[q.query_id] for q in queries])
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(queries):
        raise VislinkError(f"expected one vector per query ({len(queries)}), got an array of shape {vectors.shape}")

    results: list[QueryResult | None] = [None] * len(queries)
    pending = list(range(len(queries)))
    limit = min(depth + 1, cap)
    bar = _progress(len(queries), progress)
    while pending:
        deeper: list[int] = []
        for start in range(0, len(pending), batch_size):
            chunk = pending[start:start + batch_size]
            hits = index.query_batch(collection, vectors[chunk], limit=limit, exact=True)
            for qi, qhits in zip(chunk, hits):
                q = queries[qi]
                ranks = target_ranks([h.id for h in qhits], q.targets, query=q.query_id)
                exhausted = len(qhits) < limit or limit >= cap
                if any(r is None for r in ranks) and not exhausted:
                    deeper.append(qi)
                else:
                    results[qi] = QueryResult(q, ranks)
                    bar.update(1)
        if deeper:
            limit = min(limit * 4, cap)
            log.debug("%d queries have targets beyond rank %d: searching %d deep", len(deeper), limit // 4, limit)
        pending = deeper
    bar.close()
    return [r for r in results if r is not None]


class _NoBar:
    def update(self, _n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="queries", unit="q")
