"""Evaluation of a re-ranked variant (``<variant>+verify[K]``, parsed by ``vislink.local.rerank.parse_reranked``):
the base variant's ranking, then each query's top K verified against the query with local features and
re-ordered (``vislink.local.rerank.rerank``). Targets beyond the top K keep their ranks: re-ranking only permutes
the top K. The cost (features loaded or extracted, verifications) is measured per query and kept in the run's
params (``verify_top``, ``verify_ms_per_query``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from vislink.evaluation.ranking import QueryResult
from vislink.local import LocalFeatures
from vislink.local.matching import Verifier
from vislink.local.rerank import rerank

log = logging.getLogger(__name__)


def top_candidates(index, collection: str, queries: Sequence, top: int, *, sparse: bool = False,
                   batch: int = 64) -> dict[int, list[int]]:
    """The first ``top`` point ids each query's own stored vector finds (exact, the query left out)."""
    ids = [q.query_id for q in queries]
    out: dict[int, list[int]] = {}
    if sparse:
        stored = {}
        for start in range(0, len(ids), 256):
            stored.update(index.retrieve_sparse(collection, ids[start:start + 256]))
        for qid in ids:
            vector = stored.get(qid)
            found = vector is not None and vector.indices
            hits = index.query_sparse(collection, vector, limit=top + 1) if found else []
            out[qid] = [int(h.id) for h in hits if int(h.id) != qid][:top]
        return out
    vectors = {}
    for start in range(0, len(ids), 256):
        for pid, _payload, vec in index.retrieve(collection, ids[start:start + 256], with_vectors=True):
            vectors[int(pid)] = np.asarray(vec, dtype=np.float32)
    for start in range(0, len(ids), batch):
        chunk = [qid for qid in ids[start:start + batch] if qid in vectors]
        if not chunk:
            continue
        for qid, hits in zip(chunk, index.query_batch(collection, np.stack([vectors[q] for q in chunk]),
                                                      limit=top + 1, exact=True)):
            out[qid] = [int(h.id) for h in hits if int(h.id) != qid][:top]
    return out


def verified_results(results: Sequence[QueryResult], candidates: dict[int, list[int]],
                     features: Callable[[int], LocalFeatures | None], top: int, *,
                     progress: bool = False) -> tuple[list[QueryResult], dict]:
    """``results`` with each query's top ``top`` re-ranked by verification; ``features(point_id)`` gives the local
    features of a point (None: cannot be verified). Returns the new results and the cost figures."""
    from tqdm.auto import tqdm

    out, seconds, verified, checked = [], 0.0, 0, 0
    for result in tqdm(results, disable=not progress, desc="verify", unit="q"):
        query = result.query
        started = time.perf_counter()
        head = candidates.get(query.query_id, [])
        query_features = features(query.query_id)
        if query_features is None or not head:
            out.append(result)
            continue
        outcome = rerank(query_features, [(lambda p=p: features(p)) for p in head], top=top,
                         verifier=Verifier(query_features))
        seconds += time.perf_counter() - started
        new_order = [head[i] for i in outcome.order]
        position = {pid: k + 1 for k, pid in enumerate(new_order)}
        # A target in the top K takes its new place; the others keep theirs (beyond K, or never found).
        ranks = [position.get(t, r) for t, r in zip(query.targets, result.ranks)]
        out.append(QueryResult(query, ranks, list(result.target_refs)))
        checked += sum(v is not None for v in outcome.verifications)
        verified += sum(bool(v and v.verified) for v in outcome.verifications)
    n = max(1, len(results))
    cost = {"verify_top": top, "verify_ms_per_query": round(1000 * seconds / n, 1), "verified_pairs": verified,
            "checked_pairs": checked}
    log.info("re-ranked %d queries (top %d): %.0f ms per query, %d of %d pairs verified", len(results), top,
             cost["verify_ms_per_query"], verified, checked)
    return out, cost
