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
from typing import Callable, Sequence

import numpy as np

from vislink.errors import VislinkError
from vislink.evaluation.metrics import average_precision, paper_weight, target_ranks
from vislink.index.base import Filter, VectorIndex

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
                 scan_cost_ratio: float = 12.0, scan_min_queries: int = 8, progress: bool = False) -> list[QueryResult]:
    """Search every query in ``collection`` and return the ranks of its targets.

    ``depth``: the first search fetches ``depth + 1`` results (the largest recall cutoff plus the query).
    ``max_depth``: never search deeper than this many results (None: the whole collection).
    ``vectors``: the queries' vectors, one row per query; by default each query's own stored vector.
    ``scan_cost_ratio``, ``scan_min_queries``: when the next deeper searches would return more than
    ``scan_cost_ratio`` times as many hits as the collection has points (and concern at least
    ``scan_min_queries`` queries), the remaining targets are ranked in one pass over the collection's vectors
    instead (``scan_ranks``). Measured on qdrant-edge (40,000 x 2048): reading a point with its vector costs
    about 12 times returning a hit, hence the default.
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
            # Ranks need ids only: no payload read for the hits (a few ms of a 40k x 2048 query, docs/index.md).
            hits = index.query_batch(collection, vectors[chunk], limit=limit, exact=True, with_payload=False)
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
            if len(deeper) >= scan_min_queries and len(deeper) * limit > scan_cost_ratio * total:
                for qi, ranks in zip(deeper, scan_ranks(index, collection, [queries[qi] for qi in deeper],
                                                        vectors[deeper], max_rank=cap - 1)):
                    results[qi] = QueryResult(queries[qi], ranks)
                    bar.update(1)
                deeper = []
        pending = deeper
    bar.close()
    return [r for r in results if r is not None]


def nearest_neighbours(index: VectorIndex, collection: str, ids: Sequence[int], k: int, *, batch_size: int = 64,
                       exact: bool = True, flt: Filter | None = None) -> dict[int, list[tuple[int, float]]]:
    """Each point's ``k`` nearest neighbours in ``collection`` as ``(point id, score)``, best first, the point
    itself left out: its stored vector searched in batches of ``batch_size`` (``query_batch``; exact by default,
    ``exact=False`` lets the index use its HNSW graph), among the points ``flt`` keeps. Points without a stored
    vector get no entry."""
    if k < 1:
        raise VislinkError(f"k must be >= 1, got {k}")
    ids = [int(i) for i in ids]
    stored = _fetch_vectors(index, collection, ids)
    present = [i for i in ids if i in stored]
    out: dict[int, list[tuple[int, float]]] = {}
    for start in range(0, len(present), batch_size):
        chunk = present[start:start + batch_size]
        hits = index.query_batch(collection, np.stack([stored[i] for i in chunk]), limit=k + 1, exact=exact, flt=flt,
                                 with_payload=False)
        for qid, qhits in zip(chunk, hits):
            out[qid] = [(int(h.id), float(h.score)) for h in qhits if int(h.id) != qid][:k]
    return out


def all_pairs_neighbours(index: VectorIndex, collection: str, ids: Sequence[int], k: int, *, block: int = 1024,
                         on_block: Callable[[int, int], None] | None = None) -> dict[int, list[tuple[int, float]]]:
    """``nearest_neighbours`` among ``ids`` themselves, computed in memory: the stored vectors of ``ids`` read
    once, then every point's ``k`` best cosine scores against all of them, ``block`` rows of one matrix product at
    a time (the exact scan the index would do, without a request per query: at 40,000 points it is seconds where
    40,000 batched queries took minutes; docs/discovery.md). Holds the ``len(ids) x dim`` float32 vectors and one
    ``block x len(ids)`` score matrix. ``on_block(done, total)`` after each block."""
    if k < 1:
        raise VislinkError(f"k must be >= 1, got {k}")
    stored = _fetch_vectors(index, collection, [int(i) for i in ids])
    present = np.array(sorted(stored), dtype=np.int64)
    out: dict[int, list[tuple[int, float]]] = {}
    if not len(present):
        return out
    matrix = np.stack([stored[int(i)] for i in present])
    stored.clear()  # the rows are in the matrix now: not twice in memory
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.where(norms > 0, norms, 1.0)  # the index compares by cosine: its stored vectors are unit already
    kk = min(k, len(present) - 1)
    for start in range(0, len(present), block):
        scores = matrix[start:start + block] @ matrix.T
        rows = np.arange(scores.shape[0])
        scores[rows, start + rows] = -np.inf  # the point itself
        if kk > 0:
            # A lower bound of each row's kk-th best score, the kk-th best of its first columns, keeps a few dozen
            # candidates a row for the exact sort (argpartition over whole rows cost 5x the matrix product).
            sample = min(len(present), max(4 * kk, 4096))
            bound = np.partition(scores[:, :sample], sample - kk, axis=1)[:, sample - kk]
            cand_rows, cand_cols = np.nonzero(scores >= bound[:, None])
            splits = np.searchsorted(cand_rows, np.arange(1, len(rows)))
            for r, cols in enumerate(np.split(cand_cols, splits)):
                # best first, equal scores by id (the sorted order of ``present``)
                cols = cols[np.lexsort((cols, -scores[r, cols]))][:kk]
                out[int(present[start + r])] = [(int(present[c]), float(scores[r, c])) for c in cols]
        else:
            out.update({int(present[start + r]): [] for r in rows})
        if on_block:
            on_block(min(start + block, len(present)), len(present))
    return out


def rank_sparse_targets(index: VectorIndex, collection: str, queries: Sequence[EvalQuery], *, depth: int = 200,
                        max_depth: int | None = None, vectors: Sequence | None = None,
                        progress: bool = False) -> list[QueryResult]:
    """``rank_targets`` for a collection of sparse vectors (a bag of words, ``sift-bow``): each query's stored
    sparse vector (or ``vectors[i]``) searched with ``query_sparse`` (exact: an inverted-index scan), four times
    deeper each round until its targets are found. A target sharing no word with its query is never returned by
    a sparse search: its rank is None (counted as not found, as beyond ``max_depth``)."""
    if depth < 1:
        raise VislinkError(f"search depth must be >= 1, got {depth}")
    if not queries:
        return []
    total = index.count(collection)
    cap = total + 1 if max_depth is None else min(max_depth + 1, total + 1)
    if vectors is None:
        ids = [q.query_id for q in queries]
        stored: dict = {}
        for start in range(0, len(ids), 256):
            stored.update(index.retrieve_sparse(collection, ids[start:start + 256]))
        missing = [q.ref or q.query_id for q in queries if q.query_id not in stored]
        if missing:
            raise VislinkError(f"{len(missing)} queries have no sparse vector in index collection {collection} "
                               f"(e.g. {missing[:3]}): re-ingest or reconcile the collection")
        vectors = [stored[q.query_id] for q in queries]
    if len(vectors) != len(queries):
        raise VislinkError(f"expected one sparse vector per query ({len(queries)}), got {len(vectors)}")
    bar = _progress(len(queries), progress)
    results = []
    for q, vector in zip(queries, vectors):
        limit = min(depth + 1, cap)
        while True:
            hits = index.query_sparse(collection, vector, limit=limit) if vector.indices else []
            ranks = target_ranks([h.id for h in hits], q.targets, query=q.query_id)
            if all(r is not None for r in ranks) or len(hits) < limit or limit >= cap:
                break
            limit = min(limit * 4, cap)
        results.append(QueryResult(q, ranks))
        bar.update(1)
    bar.close()
    return results


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def scan_ranks(index: VectorIndex, collection: str, queries: Sequence[EvalQuery], vectors: np.ndarray, *,
               max_rank: int | None = None, page: int = 2048) -> list[list[int | None]]:
    """Ranks of every target by counting, in one pass over the collection's vectors, the points that score
    higher (cosine) than the target: what the exact ranking gives, without materialising it. Points scoring
    exactly the same as a target are not counted (the index orders such ties arbitrarily). Targets without a
    point, or ranked beyond ``max_rank``, get None."""
    q = _unit(vectors)
    target_ids = sorted({t for query in queries for t in query.targets})
    stored = {tid: _unit(vec) for tid, vec in _fetch_vectors(index, collection, target_ids).items()}
    # One row per (query, target) pair: its query row, target score, and the ids never to count.
    pair_query, pair_score, pair_skip = [], [], []
    for i, query in enumerate(queries):
        for t in query.targets:
            pair_query.append(i)
            pair_score.append(float(q[i] @ stored[t]) if t in stored else np.inf)
            pair_skip.append((query.query_id, t))
    pair_query_arr = np.asarray(pair_query)
    pair_score_arr = np.asarray(pair_score, dtype=np.float32)
    counts = np.zeros(len(pair_query), dtype=np.int64)
    offset = None
    while True:
        points, offset = index.scroll(collection, limit=page, offset=offset, with_vectors=True)
        if points:
            ids = np.asarray([p[0] for p in points])
            scores = q @ _unit(np.stack([p[2] for p in points])).T  # (queries, page)
            higher = scores[pair_query_arr] > pair_score_arr[:, None]  # (pairs, page)
            for k, (query_id, target_id) in enumerate(pair_skip):
                # The query and the target themselves never count against the target.
                for own in (query_id, target_id):
                    hit = np.nonzero(ids == own)[0]
                    if hit.size:
                        higher[k, hit] = False
            counts += higher.sum(axis=1)
        if offset is None:
            break
    out: list[list[int | None]] = []
    k = 0
    for query in queries:
        ranks: list[int | None] = []
        for t in query.targets:
            rank = int(counts[k]) + 1
            ranks.append(None if t not in stored or (max_rank is not None and rank > max_rank) else rank)
            k += 1
        out.append(_untie(ranks))
    return out


def _untie(ranks: list[int | None]) -> list[int | None]:
    """Targets of one query that score exactly the same get the same count: give them consecutive ranks, as a
    ranking would."""
    order = sorted((r, i) for i, r in enumerate(ranks) if r is not None)
    out = list(ranks)
    last = 0
    for r, i in order:
        last = max(r, last + 1)
        out[i] = last
    return out


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
