"""The paper's retrieval metrics, as pure functions on target ranks.

Seguin et al. (2016) evaluate a query image I against its target set T_I (the images linked to it):

* ``R_I[n]`` = fraction of T_I found among the first n results (the query itself never counts);
* ``R[n] = sum_I w(I) R_I[n] / sum_I w(I)`` with ``w(I) = sqrt(|T_I|) / (|T_I| + 1)``: large groups give many
  queries, each easy to satisfy once (any member is a near-duplicate of the others), so their queries weigh less;
* the unweighted mean of ``R_I[n]`` and the mean average precision over the full ranking, for comparison.

Every function takes *ranks*: for one query, the 1-based rank of each of its targets in the ranking with the
query removed, ``None`` for a target that was never retrieved. Ranks are validated: a wrong input raises
``MetricInputError`` rather than producing a plausible number.
"""

from __future__ import annotations

import math
from typing import Hashable, Iterable, Sequence

import numpy as np

from vislink.errors import ConfigError, VislinkError

DEFAULT_CUTOFFS: tuple[int, ...] = (1, 5, 10, 20, 50, 100, 200)

Ranks = Sequence[int | None]


class MetricInputError(VislinkError, ValueError):
    """Ranks, rankings or cutoffs that cannot be evaluated (a bug upstream, not a bad result)."""


def parse_cutoffs(text: str) -> tuple[int, ...]:
    """Cutoffs n of R@n written by a person, ``"1,5,20"`` -> ``(1, 5, 20)`` (sorted, each once); a
    ``ConfigError`` for anything but integers >= 1 separated by commas."""
    try:
        values = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise ConfigError(f"--cutoffs takes integers separated by commas, got {text!r}") from None
    if not values or values[0] < 1:
        raise ConfigError(f"--cutoffs must be integers >= 1, got {text!r}")
    return values


def _check_ranks(ranks: Ranks) -> list[int | None]:
    ranks = list(ranks)
    if not ranks:
        raise MetricInputError("a query needs at least one target (got an empty list of ranks)")
    seen: set[int] = set()
    for r in ranks:
        if r is None:
            continue
        # bool is an int subclass; True as a rank is certainly a bug.
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise MetricInputError(f"ranks are 1-based integers or None, got {r!r}")
        if int(r) in seen:
            raise MetricInputError(f"two targets share rank {r}: a ranking lists each image once")
        seen.add(int(r))
    return [None if r is None else int(r) for r in ranks]


def _check_cutoff(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise MetricInputError(f"a recall cutoff is an integer >= 1, got {n!r}")
    return int(n)


def _check_queries(queries: Iterable[Ranks]) -> list[list[int | None]]:
    checked = [_check_ranks(r) for r in queries]
    if not checked:
        raise MetricInputError("no queries to evaluate")
    return checked


def target_ranks(ranking: Sequence[Hashable], targets: Sequence[Hashable], query: Hashable | None = None
                 ) -> list[int | None]:
    """The 1-based rank of each target (in ``targets`` order) in ``ranking`` (best first) once ``query`` is
    removed from it; ``None`` for targets the ranking does not contain."""
    targets = list(targets)
    if not targets:
        raise MetricInputError("a query needs at least one target")
    if len(set(targets)) != len(targets):
        raise MetricInputError("targets contain the same image twice")
    if query is not None and query in targets:
        raise MetricInputError(f"the query {query!r} is among its own targets")
    position: dict[Hashable, int] = {}
    rank = 0
    for item in ranking:
        if query is not None and item == query:
            continue  # the query never counts as a result
        if item in position:
            raise MetricInputError(f"the ranking lists {item!r} twice")
        rank += 1
        position[item] = rank
    return [position.get(t) for t in targets]


def paper_weight(n_targets: int) -> float:
    """w(I) = sqrt(|T_I|) / (|T_I| + 1), the paper's weight of a query with ``n_targets`` targets."""
    if isinstance(n_targets, bool) or not isinstance(n_targets, (int, np.integer)) or n_targets < 1:
        raise MetricInputError(f"a query has at least one target, got {n_targets!r}")
    return math.sqrt(n_targets) / (n_targets + 1)


def recall_at(ranks: Ranks, n: int) -> float:
    """R_I[n]: the fraction of the query's targets ranked within the first ``n``."""
    ranks, n = _check_ranks(ranks), _check_cutoff(n)
    return sum(1 for r in ranks if r is not None and r <= n) / len(ranks)


def average_precision(ranks: Ranks) -> float:
    """Average precision over the full ranking: the mean, over all targets, of the precision at each target's
    rank; a target never retrieved contributes 0."""
    ranks = _check_ranks(ranks)
    found = sorted(r for r in ranks if r is not None)
    return sum((i + 1) / r for i, r in enumerate(found)) / len(ranks)


def weighted_recall(queries: Iterable[Ranks], n: int) -> float:
    """The paper's R[n] = sum_I w(I) R_I[n] / sum_I w(I)."""
    queries, n = _check_queries(queries), _check_cutoff(n)
    weights = [paper_weight(len(q)) for q in queries]
    return sum(w * recall_at(q, n) for w, q in zip(weights, queries)) / sum(weights)


def unweighted_recall(queries: Iterable[Ranks], n: int) -> float:
    """The plain mean of R_I[n] over queries."""
    queries, n = _check_queries(queries), _check_cutoff(n)
    return sum(recall_at(q, n) for q in queries) / len(queries)


def mean_average_precision(queries: Iterable[Ranks]) -> float:
    """mAP: the unweighted mean over queries of their average precision."""
    queries = _check_queries(queries)
    return sum(average_precision(q) for q in queries) / len(queries)


def recall_curve(queries: Iterable[Ranks], max_n: int, *, weighted: bool = True) -> np.ndarray:
    """R[n] (or the unweighted mean of R_I[n]) for every n in 1..max_n, as an array of length ``max_n``:
    what the recall-against-rank plot draws."""
    queries, max_n = _check_queries(queries), _check_cutoff(max_n)
    n = np.arange(1, max_n + 1)
    total = np.zeros(max_n)
    weight_sum = 0.0
    for q in queries:
        found = np.sort(np.array([r for r in q if r is not None], dtype=np.int64))
        per_n = np.searchsorted(found, n, side="right") / len(q)  # targets with rank <= n
        w = paper_weight(len(q)) if weighted else 1.0
        total += w * per_n
        weight_sum += w
    return total / weight_sum


def metric_key(n: int, *, weighted: bool = True) -> str:
    """The key under which R[n] is stored in ``EvaluationRun.metrics``: ``R@20`` (paper's weighting) or
    ``recall@20`` (unweighted)."""
    return f"{'R' if weighted else 'recall'}@{_check_cutoff(n)}"


def summarize(queries: Iterable[Ranks], cutoffs: Sequence[int] = DEFAULT_CUTOFFS) -> dict[str, float]:
    """Every metric of a run: ``R@n`` (weighted) and ``recall@n`` (unweighted) for each cutoff, and ``mAP``."""
    queries = _check_queries(queries)
    cutoffs = sorted({_check_cutoff(n) for n in cutoffs})
    if not cutoffs:
        raise MetricInputError("no recall cutoffs given")
    out: dict[str, float] = {}
    for n in cutoffs:
        out[metric_key(n)] = weighted_recall(queries, n)
    for n in cutoffs:
        out[metric_key(n, weighted=False)] = unweighted_recall(queries, n)
    out["mAP"] = mean_average_precision(queries)
    return out
