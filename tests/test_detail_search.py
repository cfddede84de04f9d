"""Detail search (issue #15, docs/detail.md): regional descriptors (-regions variants), their multivectors in the
index backends (qdrant-edge against the numpy referee)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from vislink.encoder.regions import box_iou, pool_regions, region_grid
from vislink.encoder.variants import parse_variant
from vislink.errors import NotFound
from vislink.index import Point
from vislink.index.numpy_index import NumpyIndex

VARIANT = "vgg16-pool5-sum-regions"


# -- the grid and the variant names (no model) ------------------------------------------------------------------
@pytest.mark.parametrize("h, w, low, high", [(8, 8, 10, 16), (8, 12, 20, 30), (12, 8, 20, 30), (8, 16, 25, 35)])
def test_grid_has_tens_of_overlapping_squares_and_the_whole_map_first(h, w, low, high):
    grid = region_grid(h, w)
    assert low <= len(grid) <= high
    assert grid[0] == (0, 0, h, w) and len(set(grid)) == len(grid)
    for y0, x0, y1, x1 in grid[1:]:
        assert 0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w and y1 - y0 == x1 - x0  # squares inside the map


def test_regions_are_pooled_like_the_global_descriptor():
    import torch

    from vislink.encoder.pooling import pool5_descriptors

    fmap = np.random.default_rng(0).random((16, 8, 12)).astype(np.float32)
    for pooling in ("sum", "max", "sp2x2-sum"):
        whole, vectors, fractions = pool_regions(fmap, pooling)
        expected = pool5_descriptors(torch.from_numpy(fmap[None]), {pooling})[pooling][0].numpy()
        np.testing.assert_allclose(whole, expected, atol=1e-6)
        np.testing.assert_allclose(vectors[0], whole, atol=1e-6)  # region 0: the whole image
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        assert fractions.shape == (len(vectors), 4) and fractions.min() >= 0
        assert (fractions[:, :2] + fractions[:, 2:]).max() <= 1 + 1e-6
    y0, x0, y1, x1 = region_grid(8, 12)[5]
    _, vectors, _ = pool_regions(fmap, "sum")
    region = fmap[:, y0:y1, x0:x1].sum(axis=(1, 2))
    np.testing.assert_allclose(vectors[5], region / np.linalg.norm(region), atol=1e-5)


def test_regions_variant_names():
    spec = parse_variant("vgg16-pool5-sum-regions@vgg16-caffe-conv")
    assert spec.regions and spec.dim == 512 and spec.base == "vgg16-pool5-sum@vgg16-caffe-conv"
    assert not parse_variant("vgg16-pool5-sum").regions
    for name, why in [("sscd-regions", "no feature map"), ("vgg16-fc6-crop-regions", "fc6"),
                      ("sift-bow-regions", "bag of visual words"), ("vgg16-pool5-sum-pca64-regions", "PCA")]:
        with pytest.raises(NotFound, match=why):
            parse_variant(name)


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0


# -- the index backends: multivectors (MaxSim) against the numpy referee ----------------------------------------
def _regional_data(rng, n=40, dim=16):
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    regions = [rng.standard_normal((int(rng.integers(1, 9)), dim)).astype(np.float32) for _ in range(n)]
    payloads = [{"image_id": i, "artist": ["A", "B"][i % 2]} for i in range(n)]
    return vectors, regions, payloads


@pytest.fixture
def edge_index():
    from vislink.index.edge import EdgeIndex

    root = Path(tempfile.mkdtemp(prefix="vislink-detail-edge-"))
    index = EdgeIndex(root)
    yield index
    index.close()
    shutil.rmtree(root, ignore_errors=True)


def test_region_queries_congruent_with_the_referee(edge_index):
    rng = np.random.default_rng(7)
    vectors, regions, payloads = _regional_data(rng)
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    answers = []
    for index in (NumpyIndex(), edge_index):
        index.create_collection("r", 16, payload_indexes={"artist": "keyword"}, regions=True)
        index.upsert("r", [Point(i, vectors[i], payloads[i]) for i in range(40)], regions=regions)
        index.upsert("r", [Point(3, vectors[3], payloads[3])], regions=[regions[4]])  # replaced
        index.delete("r", [5])
        got = {"all": index.query_regions("r", queries, limit=7),
               "flt": index.query_regions("r", queries[:2], limit=5, flt={"artist": "B"}),
               "global": index.query("r", queries[0], limit=5, exact=True)}
        stored = index.retrieve_regions("r", [3, 4, 5, 9])
        assert sorted(stored) == [3, 4, 9] and stored[3].shape == regions[4].shape
        np.testing.assert_allclose(stored[9], regions[9] / np.linalg.norm(regions[9], axis=1, keepdims=True),
                                   atol=1e-5)
        answers.append(got)
    ref, edge = answers
    for key in ref:
        ref_rows = ref[key] if key != "global" else [ref[key]]
        edge_rows = edge[key] if key != "global" else [edge[key]]
        for a, b in zip(ref_rows, edge_rows):
            assert [h.id for h in a] == [h.id for h in b]
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-4)
    # MaxSim of one query vector is its best cosine over the point's regions.
    top = ref["all"][0][0]
    matrix = regions[4] if top.id == 3 else regions[top.id]
    q = queries[0] / np.linalg.norm(queries[0])
    assert top.score == pytest.approx(float((matrix / np.linalg.norm(matrix, axis=1, keepdims=True) @ q).max()),
                                      abs=1e-5)
    assert all(h.payload["artist"] == "B" for row in ref["flt"] for h in row)


def test_regions_are_refused_clearly(edge_index):
    from vislink.errors import IndexUnavailable
    from vislink.index.qdrant import QdrantClientIndex

    edge_index.create_collection("plain", 4)
    with pytest.raises(IndexUnavailable, match="has no regions"):
        edge_index.upsert("plain", [Point(1, np.ones(4))], regions=[np.ones((2, 4))])
    with pytest.raises(IndexUnavailable, match="has no regions"):
        edge_index.query_regions("plain", np.ones((1, 4)), limit=3)
    edge_index.create_collection("r", 4, regions=True)
    with pytest.raises(IndexUnavailable, match=r"regions of shape \(2, 3\)"):
        edge_index.upsert("r", [Point(1, np.ones(4))], regions=[np.ones((2, 3))])
    local = QdrantClientIndex(":memory:")
    with pytest.raises(NotImplementedError, match="qdrant-local.*no regional multivectors"):
        local.create_collection("r", 4, regions=True)
