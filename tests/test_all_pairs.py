"""ranking.all_pairs_neighbours, the in-memory exact search proposals build with: the same neighbours as the
index's own exact search, among the ids given only, in blocks, with progress."""

from __future__ import annotations

import numpy as np
import pytest

from vislink.evaluation.ranking import all_pairs_neighbours, nearest_neighbours
from vislink.index import Point
from vislink.index.edge import EdgeIndex


@pytest.fixture
def index(tmp_path):
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((12, 32)).astype(np.float32)
    vectors = centres[rng.integers(0, 12, 400)] + 0.3 * rng.standard_normal((400, 32)).astype(np.float32)
    vectors[399] = vectors[10] * 3.0  # the same direction at another length: cosine 1 to point 10
    index = EdgeIndex(tmp_path / "edge")
    index.create_collection("c", 32)
    index.upsert("c", [Point(i, v, {"image_id": i}) for i, v in enumerate(vectors)])
    yield index, vectors
    index.close()


def test_all_pairs_equal_the_index_exact_search(index):
    index, _ = index
    ids = list(range(400))
    by_index = nearest_neighbours(index, "c", ids, 10, exact=True)
    in_memory = all_pairs_neighbours(index, "c", ids, 10, block=64)
    assert set(in_memory) == set(by_index) == set(ids)
    for i in ids:
        # The same neighbours with the same scores; equal scores (10 and 399) may come in either order.
        assert {n for n, _ in in_memory[i]} == {n for n, _ in by_index[i]}, i
        assert np.allclose([s for _, s in in_memory[i]], [s for _, s in by_index[i]], atol=1e-5)
        assert i not in [n for n, _ in in_memory[i]]  # never itself
    assert in_memory[10][0][0] == 399 and in_memory[10][0][1] == pytest.approx(1.0, abs=1e-5)


def test_only_the_given_ids_are_searched_and_progress_is_reported(index):
    index, vectors = index
    subset = list(range(0, 400, 3)) + [10_000]  # 10,000 has no point: no entry, no error
    done = []
    got = all_pairs_neighbours(index, "c", subset, 5, block=50, on_block=lambda d, t: done.append((d, t)))
    present = subset[:-1]
    assert set(got) == set(present)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for i in present:
        scores = {j: float(unit[i] @ unit[j]) for j in present if j != i}
        best = sorted(scores, key=lambda j: (-scores[j], j))[:5]
        assert [n for n, _ in got[i]] == best
    assert done == [(50, len(present)), (100, len(present)), (len(present), len(present))]


def test_one_point_has_no_neighbours_and_k_must_be_positive(index):
    index, _ = index
    assert all_pairs_neighbours(index, "c", [3], 5) == {3: []}
    with pytest.raises(Exception, match="k must be >= 1"):
        all_pairs_neighbours(index, "c", [1, 2], 0)
