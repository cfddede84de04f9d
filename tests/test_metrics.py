"""The paper's metrics on tiny hand-computed cases, and properties that hold for any ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vislink.evaluation.metrics import (
    MetricInputError,
    average_precision,
    mean_average_precision,
    paper_weight,
    parse_cutoffs,
    recall_at,
    recall_curve,
    summarize,
    target_ranks,
    unweighted_recall,
    weighted_recall,
)


# -- hand-computed examples ----------------------------------------------------------------------

def test_cutoffs_written_by_a_person():
    from vislink.errors import ConfigError

    assert parse_cutoffs("20, 5,5,,1") == (1, 5, 20)
    for text in ("5,ten", "0,5", "", " , "):
        with pytest.raises(ConfigError, match="--cutoffs"):
            parse_cutoffs(text)


def test_target_ranks_drop_the_query_and_keep_target_order():
    # ranking with the query (3) in second place: without it the order is 5, 9, 1, 7
    assert target_ranks([5, 3, 9, 1, 7], targets=[1, 9, 4], query=3) == [3, 2, None]
    # the query at the top (the usual case: it is its own nearest neighbour)
    assert target_ranks(["q", "a", "b"], targets=["b"], query="q") == [2]
    assert target_ranks(["a", "b"], targets=["b"]) == [2]


def test_paper_weights():
    assert paper_weight(1) == pytest.approx(0.5)
    assert paper_weight(4) == pytest.approx(0.4)
    assert paper_weight(9) == pytest.approx(0.3)
    assert paper_weight(2) == pytest.approx(math.sqrt(2) / 3)


def test_recall_and_average_precision_by_hand():
    ranks = [3, 1, None, 12]  # four targets, one never retrieved
    assert recall_at(ranks, 1) == pytest.approx(1 / 4)
    assert recall_at(ranks, 3) == pytest.approx(2 / 4)
    assert recall_at(ranks, 20) == pytest.approx(3 / 4)
    # precision at each found target: 1/1, 2/3, 3/12; the missing one adds 0; divided by 4 targets
    assert average_precision(ranks) == pytest.approx((1 + 2 / 3 + 3 / 12) / 4)
    assert average_precision([2]) == pytest.approx(0.5)
    assert mean_average_precision([[1, 3], [2]]) == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)


def test_weighted_recall_by_hand():
    queries = [[1], [1, 2, 30, 40]]  # R_I[10] = 1 and 0.5; weights 0.5 and 0.4
    assert weighted_recall(queries, 10) == pytest.approx((0.5 * 1 + 0.4 * 0.5) / 0.9)
    assert unweighted_recall(queries, 10) == pytest.approx(0.75)


def test_the_weights_change_which_method_wins():
    # One query with a single target (w = 0.5) and two with nine targets each (w = 0.3).
    # Method A finds the lone target and nothing of the big groups; method B misses the lone
    # target but finds 5 of 9 for both big-group queries.
    miss9 = [None] * 9
    method_a = [[1], miss9, miss9]
    method_b = [[None], [1, 2, 3, 4, 5] + [None] * 4, [1, 2, 3, 4, 5] + [None] * 4]
    # unweighted: A = 1/3 = 0.333, B = (0 + 5/9 + 5/9) / 3 = 0.370  -> B wins
    assert unweighted_recall(method_a, 20) == pytest.approx(1 / 3)
    assert unweighted_recall(method_b, 20) == pytest.approx(10 / 27)
    assert unweighted_recall(method_b, 20) > unweighted_recall(method_a, 20)
    # weighted: A = 0.5 / 1.1 = 0.4545, B = 2 * 0.3 * 5/9 / 1.1 = 0.303  -> A wins
    assert weighted_recall(method_a, 20) == pytest.approx(0.5 / 1.1)
    assert weighted_recall(method_b, 20) == pytest.approx(2 * 0.3 * 5 / 9 / 1.1)
    assert weighted_recall(method_a, 20) > weighted_recall(method_b, 20)


def test_summarize_keys_and_curve_agree_with_point_values():
    queries = [[1, 7], [3], [None, 2, 60]]
    summary = summarize(queries, cutoffs=(5, 1, 50))
    assert list(summary) == ["R@1", "R@5", "R@50", "recall@1", "recall@5", "recall@50", "mAP"]
    curve = recall_curve(queries, 60)
    assert curve.shape == (60,)
    for n in (1, 5, 50):
        assert curve[n - 1] == pytest.approx(summary[f"R@{n}"])
        assert recall_curve(queries, 60, weighted=False)[n - 1] == pytest.approx(summary[f"recall@{n}"])


@pytest.mark.parametrize("bad", [[], [0], [1, 1], [1.5], [True], ["3"], [-2]])
def test_invalid_ranks_are_refused(bad):
    with pytest.raises(MetricInputError):
        average_precision(bad)


def test_invalid_inputs_are_refused():
    with pytest.raises(MetricInputError):
        recall_at([1], 0)
    with pytest.raises(MetricInputError):
        weighted_recall([], 5)
    with pytest.raises(MetricInputError, match="own targets"):
        target_ranks([1, 2, 3], targets=[2], query=2)
    with pytest.raises(MetricInputError, match="twice"):
        target_ranks([1, 2, 2], targets=[2])
    with pytest.raises(MetricInputError):
        target_ranks([1, 2], targets=[])
    with pytest.raises(MetricInputError):
        paper_weight(0)
    with pytest.raises(MetricInputError):
        summarize([[1]], cutoffs=())


# -- properties ----------------------------------------------------------------------------------

@st.composite
def ranked_queries(draw):
    """A few queries, each with a ranking of a gallery (the query somewhere inside) and 1+ targets."""
    out = []
    for _ in range(draw(st.integers(1, 5))):
        size = draw(st.integers(2, 40))
        ranking = draw(st.permutations(range(size)))
        query = draw(st.sampled_from(range(size)))
        others = [i for i in range(size) if i != query]
        targets = draw(st.lists(st.sampled_from(others), min_size=1, max_size=len(others), unique=True))
        # Some targets are missing from a truncated ranking.
        cut = draw(st.integers(1, size))
        out.append(target_ranks(list(ranking)[:cut], targets, query=query))
    return out


@settings(max_examples=150, deadline=None)
@given(ranked_queries())
def test_recall_is_monotone_in_n_and_within_unit_interval(queries):
    for weighted in (True, False):
        curve = recall_curve(queries, 45, weighted=weighted)
        assert np.all(curve >= 0) and np.all(curve <= 1 + 1e-12)
        assert np.all(np.diff(curve) >= -1e-12)
    values = [weighted_recall(queries, n) for n in (1, 5, 10, 20, 50)]
    assert values == sorted(values)
    assert 0 <= mean_average_precision(queries) <= 1


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_perfect_ranking_gives_one(data):
    size = data.draw(st.integers(3, 60))
    ids = list(range(size))
    query = data.draw(st.sampled_from(ids))
    others = [i for i in ids if i != query]
    targets = data.draw(st.lists(st.sampled_from(others), min_size=1, max_size=len(others), unique=True))
    rest = [i for i in others if i not in targets]
    # targets first (in any order), the query anywhere, the rest after
    order = data.draw(st.permutations(targets)) + data.draw(st.permutations(rest))
    order.insert(data.draw(st.integers(0, len(order))), query)
    ranks = target_ranks(order, targets, query=query)
    assert sorted(ranks) == list(range(1, len(targets) + 1))
    assert average_precision(ranks) == pytest.approx(1.0)
    assert recall_at(ranks, len(targets)) == 1.0
    assert weighted_recall([ranks], len(targets)) == pytest.approx(1.0)
