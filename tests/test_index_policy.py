"""The index policy (issue #18 item 2): collections scan exactly below a size and get an HNSW graph (and int8
quantization) above it, by `optimize(collection, mode)` / `vislink index optimize`; exact=True always scans;
evaluation always searches exactly; `vislink doctor` prints each collection's mode and measured recall.

Real qdrant-edge shards of 3,000 x 64 clustered vectors (the threshold set low through the policy object or
the settings), compared with the numpy referee."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from vislink.errors import ConfigError
from vislink.index import Point
from vislink.index.edge import EdgeIndex
from vislink.index.numpy_index import NumpyIndex
from vislink.index.policy import EXACT, IndexMode, IndexPolicy, measure_recall, optimize_collection, resolve_mode

N, DIM = 3000, 64
NAME = "vislink_p_v"
# full_scan_kb=1: at 3,000 x 64 (768 KB) Qdrant's default (10 MB) would scan the segments despite their graph.
POLICY = IndexPolicy(hnsw_min_points=2000, m=16, ef_construct=64, quantization=None, full_scan_kb=1)


def _vectors(n: int = N, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (30 clusters), the shape of real descriptors more than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, DIM))
    x = centres[rng.integers(0, 30, n)] + 0.35 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _fill(index, vectors: np.ndarray, name: str = NAME) -> None:
    index.create_collection(name, DIM, payload_indexes={"artist": "keyword"})
    points = [Point(i + 1, vectors[i], {"artist": f"A{i % 5}"}) for i in range(len(vectors))]
    for start in range(0, len(points), 1000):
        index.upsert(name, points[start:start + 1000])


@pytest.fixture
def pair(tmp_path):
    """An edge index holding the collection, and the numpy referee holding the same points."""
    vectors = _vectors()
    index, referee = EdgeIndex(tmp_path / "edge", policy=POLICY, search_threads=1), NumpyIndex()
    _fill(index, vectors)
    _fill(referee, vectors)
    yield index, referee, vectors
    index.close()


def _meta(index: EdgeIndex, name: str = NAME) -> dict:
    return json.loads((index.root / name / "vislink.json").read_text())


def _ids(hits) -> list[int]:
    return [h.id for h in hits]


def test_policy_thresholds_and_ef():
    policy = IndexPolicy(hnsw_min_points=100, ef_min=128, ef_factor=4)
    assert policy.mode_for(99) == EXACT
    assert policy.mode_for(100) == IndexMode("hnsw", 16, 100, "int8")  # int8 by default (docs/scaling.md)
    assert policy.mode_for(100, "none").quantization is None
    assert (policy.ef_for(10), policy.ef_for(200)) == (128, 800)  # never below the limit; more for top-200
    assert resolve_mode(policy, 5, "hnsw", "int8").describe() == "HNSW m=16 ef_construct=100 / int8"
    assert resolve_mode(policy, 10**6, "exact") == EXACT
    with pytest.raises(ConfigError, match="auto, exact or hnsw"):
        resolve_mode(policy, 5, "fast")
    with pytest.raises(ConfigError, match="none or int8"):
        resolve_mode(policy, 5, "hnsw", "int4")


def test_policy_from_settings(monkeypatch):
    from vislink.config import Settings

    s = Settings(VISLINK_INDEX_HNSW_MIN_POINTS=500, VISLINK_INDEX_HNSW_M=8, VISLINK_INDEX_QUANTIZATION="none")
    policy = IndexPolicy.from_settings(s)
    assert (policy.hnsw_min_points, policy.m, policy.quantization) == (500, 8, None)
    assert IndexPolicy.from_settings(Settings()).quantization == "int8"


def test_below_the_threshold_auto_stays_exact(tmp_path):
    index = EdgeIndex(tmp_path / "edge", policy=IndexPolicy(hnsw_min_points=5000, full_scan_kb=1))
    try:
        _fill(index, _vectors(1000))
        report = optimize_collection(index, NAME, index.policy)
        assert report.after == EXACT and report.recall is None
        assert "below 5000 points" in report.describe() and "recall 1 by construction" in report.describe()
        assert index._shard(NAME).shard.info().indexed_vectors_count == 0
        assert _meta(index)["mode"]["kind"] == "exact"
    finally:
        index.close()


def test_crossing_the_threshold_builds_hnsw_and_exact_still_scans(pair):
    index, referee, vectors = pair
    assert index.index_mode(NAME) == EXACT
    report = optimize_collection(index, NAME, POLICY, recall_queries=16)
    assert report.before == EXACT and report.after == IndexMode("hnsw", 16, 64, None)
    assert _meta(index)["mode"] == {"kind": "hnsw", "m": 16, "ef_construct": 64, "quantization": None}
    assert _meta(index)["hnsw"] is True
    assert index._shard(NAME).shard.info().indexed_vectors_count == N  # the graph covers every point
    assert report.recall is not None and report.recall.limit == 200 and report.recall.recall >= 0.9
    queries = _vectors(20, seed=7)
    found = []
    for q in queries:
        truth = _ids(referee.query(NAME, q, limit=10))
        found.append(len(set(truth) & set(_ids(index.query(NAME, q, limit=10, exact=False)))) / 10)
        exact = index.query(NAME, q, limit=50, exact=True)
        ref = referee.query(NAME, q, limit=50)
        assert _ids(exact) == _ids(ref)
        np.testing.assert_allclose([h.score for h in exact], [h.score for h in ref], atol=1e-4)
    assert np.mean(found) >= 0.95
    flt = {"artist": "A2"}
    assert _ids(index.query(NAME, queries[0], limit=20, flt=flt, exact=True)) == \
        _ids(referee.query(NAME, queries[0], limit=20, flt=flt))
    # Points written after the build are found (scanned until the next optimize indexes them).
    index.upsert(NAME, [Point(N + 1, queries[3], {"artist": "new"})])
    assert index.query(NAME, queries[3], limit=5, exact=False)[0].id == N + 1


def test_int8_quantization_keeps_exact_results_exact(pair):
    index, referee, _ = pair
    mode = index.optimize(NAME, POLICY.hnsw_mode("int8"))
    assert mode.quantization == "int8" and index.index_mode(NAME).describe() == "HNSW m=16 ef_construct=64 / int8"
    for q in _vectors(10, seed=3):
        exact = index.query(NAME, q, limit=30, exact=True)
        ref = referee.query(NAME, q, limit=30)
        assert _ids(exact) == _ids(ref)  # original vectors, not the int8 ones
        np.testing.assert_allclose([h.score for h in exact], [h.score for h in ref], atol=1e-4)
    assert measure_recall(index, NAME, queries=8, limit=100).recall >= 0.9  # oversampled and rescored


def test_mode_survives_reopening_and_goes_back_to_exact(pair, tmp_path):
    index, referee, _ = pair
    index.optimize(NAME, POLICY.hnsw_mode())
    index.close()
    again = EdgeIndex(tmp_path / "edge", policy=POLICY)
    try:
        assert again.index_mode(NAME) == POLICY.hnsw_mode()
        assert again.optimize(NAME, EXACT) == EXACT
        assert _meta(again)["mode"]["kind"] == "exact"
        q = _vectors(1, seed=11)[0]
        # exact mode: exact=False scans too, whatever graph is left on disk
        assert _ids(again.query(NAME, q, limit=200, exact=False)) == _ids(referee.query(NAME, q, limit=200))
    finally:
        again.close()


def test_export_import_of_an_hnsw_collection(pair, tmp_path):
    from vislink.index.transfer import export_collection, import_collection

    index, referee, _ = pair
    index.optimize(NAME, POLICY.hnsw_mode())
    export_collection(index, NAME, tmp_path / "export", progress=False)
    target = NumpyIndex()
    summary = import_collection(target, tmp_path / "export", progress=False)
    assert summary.target_count == N
    q = _vectors(1, seed=5)[0]
    assert _ids(target.query(NAME, q, limit=20)) == _ids(referee.query(NAME, q, limit=20))
    import_collection(index, tmp_path / "export", collection="vislink_p_copy", progress=False)
    assert index.count("vislink_p_copy") == N and index.index_mode("vislink_p_copy") == EXACT


def test_evaluation_ranks_an_hnsw_collection_exactly(tmp_path):
    """A deliberately poor graph (m=2, ef_construct=4) whose approximate top-200 differs from the exact one:
    rank_targets must give the referee's ranks all the same (it searches with exact=True)."""
    from vislink.evaluation.ranking import EvalQuery, rank_targets

    vectors = _vectors()
    poor = IndexPolicy(hnsw_min_points=1, m=2, ef_construct=4, ef_min=1, ef_factor=1, full_scan_kb=1)
    index, referee = EdgeIndex(tmp_path / "edge", policy=poor), NumpyIndex()
    try:
        _fill(index, vectors)
        _fill(referee, vectors)
        index.optimize(NAME, poor.hnsw_mode())
        rng = np.random.default_rng(2)
        query_ids = [int(i) for i in rng.choice(np.arange(1, N + 1), 12, replace=False)]
        approx_recall = measure_recall(index, NAME, queries=12, limit=200).recall
        assert approx_recall < 1.0, "the graph is too good to show an approximate evaluation"
        queries = []
        for qid in query_ids:  # targets: the 150th to 160th exact neighbours, where a poor graph misses some
            order = _ids(referee.query(NAME, vectors[qid - 1], limit=161))
            queries.append(EvalQuery(qid, tuple(order[150:161])))
        got = rank_targets(index, NAME, queries, depth=200)
        want = rank_targets(referee, NAME, queries, depth=200)
        assert [r.ranks for r in got] == [r.ranks for r in want]
    finally:
        index.close()


def test_cli_optimize_and_doctor(vislink_env, monkeypatch):
    from typer.testing import CliRunner

    from vislink.cli import app
    from vislink.config import reset_settings
    from vislink.index import build_index, close_all

    monkeypatch.setenv("VISLINK_INDEX_HNSW_MIN_POINTS", "2000")
    reset_settings()
    index = build_index(vislink_env, "qdrant-edge")
    _fill(index, _vectors())
    _fill(index, _vectors(500, seed=1), name="vislink_p_small")
    index.close()
    runner = CliRunner()
    result = runner.invoke(app, ["index", "optimize", "--all", "--no-progress", "--recall-queries", "8"])
    assert result.exit_code == 0, result.output
    assert f"{NAME}: {N} points, exact -> HNSW m=16 ef_construct=100" in result.output
    assert "recall@200 " in result.output
    assert "vislink_p_small: 500 points, exact (unchanged)" in result.output
    assert "below 2000 points" in result.output
    close_all()
    result = runner.invoke(app, ["doctor"])
    assert f"collection {NAME}: {N} points, 64-d, HNSW m=16 ef_construct=100 / int8; recall@200 " in result.output, \
        result.output
    assert "collection vislink_p_small: 500 points, 64-d, exact (recall 1 by construction)" in result.output
    close_all()
    result = runner.invoke(app, ["index", "optimize", NAME, "--mode", "exact", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "HNSW m=16 ef_construct=100 / int8 -> exact" in result.output
    result = runner.invoke(app, ["index", "optimize", "--mode", "fast", NAME])
    assert result.exit_code != 0 and "auto, exact or hnsw" in str(result.exception or result.output)


def test_an_ingest_that_crosses_the_threshold_queues_the_build(vislink_env, monkeypatch, tmp_path):
    """The ingest queues an index-optimize job (it does not build, nor wait) once a collection has at least
    VISLINK_INDEX_HNSW_MIN_POINTS points; only one job is queued per collection."""
    from test_ingest_support import make_photos

    from vislink.config import reset_settings
    from vislink.index import open_index
    from vislink.ingest.index_policy import queue_index_builds
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.store import session_scope
    from vislink.store.jobs import list_jobs

    monkeypatch.setenv("VISLINK_INDEX_HNSW_MIN_POINTS", "3")
    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    reset_settings()
    make_photos(tmp_path / "two", 2)
    ingest("pol", folder_items(tmp_path / "two"), variants=["vgg16-pool5-sum"], progress=False)
    with session_scope() as s:
        assert list_jobs(s, kinds=["index-optimize"]) == []  # 2 points: below the threshold
    make_photos(tmp_path / "more", 2, start=10)
    ingest("pol", folder_items(tmp_path / "more"), progress=False)
    index = open_index()
    (qname,) = [c for c in index.list_collections() if "_pol_" in c]
    assert index.index_mode(qname) == EXACT  # nothing built by the ingest itself
    with session_scope() as s:
        (job,) = list_jobs(s, kinds=["index-optimize"])
    assert (job.state, job.arguments["collections"], job.arguments["mode"]) == ("queued", [qname], "auto")
    assert queue_index_builds(index, [qname]) == [f"{qname}: 4 points, at least 3: an index-optimize job for it "
                                                  "is already queued"]

    # The holder (here in this process, as `vislink ui` would) runs the queued job: the collection becomes HNSW.
    import time

    from vislink.config import get_settings
    from vislink.jobs import Holder
    from vislink.store.jobs import get_job

    holder = Holder(get_settings(), "worker", poll=0.1, beat_every=0.2).start()
    try:
        deadline = time.monotonic() + 120
        while True:
            with session_scope() as s:
                finished = get_job(s, job.id)
            if finished.finished or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        holder.stop(timeout=60)
    assert finished.state == "done", finished.message
    assert finished.result["lines"][0].startswith(f"{qname}: 4 points, exact -> HNSW m=16 ef_construct=100")
    assert open_index().index_mode(qname).approximate


def test_hits_without_payloads_have_the_same_ids_and_scores(pair, tmp_path):
    from vislink.index.qdrant import QdrantClientIndex

    index, referee, vectors = pair
    local = QdrantClientIndex(":memory:")
    _fill(local, vectors[:500])
    q = _vectors(3, seed=9)
    for ix in (index, referee, local):
        full = ix.query_batch(NAME, q, limit=15, exact=True)
        bare = ix.query_batch(NAME, q, limit=15, exact=True, with_payload=False)
        assert [[(h.id, round(h.score, 5)) for h in r] for r in bare] == \
            [[(h.id, round(h.score, 5)) for h in r] for r in full], ix.name
        assert all(h.payload == {} for r in bare for h in r) and full[0][0].payload["artist"].startswith("A")
    local.close()


def test_hnsw_on_a_collection_with_sparse_vectors_and_regions(tmp_path):
    """The graph is built for the global vector only: sparse and region queries give the referee's answers."""
    from vislink.index import SparseVector

    rng = np.random.default_rng(4)
    vectors = _vectors(400)
    regions = [rng.normal(size=(3, DIM)).astype(np.float32) for _ in range(400)]
    sparse = [SparseVector((i % 50, 50 + i % 7), (1.0 + i / 1000, 0.5 + i / 1000)) for i in range(400)]  # no tied scores
    points = [Point(i + 1, vectors[i], {"artist": f"A{i % 5}"}) for i in range(400)]
    index, referee = EdgeIndex(tmp_path / "edge", policy=POLICY), NumpyIndex()
    try:
        for ix in (index, referee):
            ix.create_collection(NAME, DIM, sparse=True, regions=True)
            ix.upsert(NAME, points, sparse=sparse, regions=regions)
        assert index.optimize(NAME, POLICY.hnsw_mode("int8")).approximate
        q = _vectors(2, seed=8)
        assert [_ids(r) for r in index.query_regions(NAME, q, limit=10)] == \
            [_ids(r) for r in referee.query_regions(NAME, q, limit=10)]
        sq = SparseVector((3, 51), (1.0, 1.0))
        assert _ids(index.query_sparse(NAME, sq, limit=10)) == _ids(referee.query_sparse(NAME, sq, limit=10))
        assert _ids(index.query(NAME, q[0], limit=10, exact=True)) == _ids(referee.query(NAME, q[0], limit=10))
        assert index.retrieve_regions(NAME, [5])[5].shape == (3, DIM)
    finally:
        index.close()


def test_the_index_optimize_job_kind(pair):
    from vislink.jobs.kinds import JobContext, get_kind

    index, referee, _ = pair
    kind = get_kind("index-optimize")
    assert not kind.quick  # a long job: the holder's long-job thread runs it, searches go on beside it
    result = kind.fn(JobContext(1, index), {"collections": [NAME], "all": False, "mode": "auto",
                                            "quantization": None, "recall_queries": 8})
    assert result["lines"][0].startswith(f"{NAME}: {N} points, exact -> HNSW m=16 ef_construct=64")
    assert result["reports"][0]["after"]["kind"] == "hnsw" and result["reports"][0]["recall"]["limit"] == 200
    assert index.index_mode(NAME).approximate


def test_the_threshold_shrinks_with_larger_vectors_only():
    """An exact scan costs the vectors' bytes: 50,000 points at 512-d, 12,500 at 2048-d; smaller vectors keep
    the point count (docs/scaling.md)."""
    policy = IndexPolicy(hnsw_min_points=50_000)
    assert policy.min_points_for(512) == policy.min_points_for(64) == policy.min_points_for(None) == 50_000
    assert policy.min_points_for(2048) == 12_500 and policy.min_points_for(4096) == 6_250
    assert policy.mode_for(20_000, dim=2048).approximate and not policy.mode_for(20_000, dim=512).approximate


def test_calibration_raises_the_ef_of_a_poor_graph_and_keeps_it(tmp_path):
    """A deliberately poor graph (m=2) misses neighbours at the policy's ef: optimize doubles the collection's ef
    factor until the target recall (or the largest factor), stores it with the collection, and its searches use it
    after a reopen; going back to exact drops it."""
    from vislink.index.policy import calibrate_ef

    poor = IndexPolicy(hnsw_min_points=1, m=2, ef_construct=4, ef_min=1, ef_factor=1, full_scan_kb=1,
                       quantization=None, target_recall=0.99, max_ef_factor=8, rebuild_above_factor=0)
    index = EdgeIndex(tmp_path / "edge", policy=poor)
    _fill(index, _vectors())
    index.optimize(NAME, poor.hnsw_mode())
    at_policy = measure_recall(index, NAME, queries=16, limit=200).recall
    assert at_policy < 0.99, "the graph is too good to need a calibration"
    report = optimize_collection(index, NAME, poor, recall_queries=16)
    cal = report.calibration
    assert cal is not None and cal.factor > 1 and [f for f, _ in cal.tried][:2] == [1, 2]
    assert cal.recall.recall > at_policy and cal.recall.recall == report.recall.recall
    assert cal.reached == (cal.recall.recall >= 0.99) and (cal.reached or cal.factor == 8)
    assert f"ef x{cal.factor:g}" in report.describe() and report.as_dict()["ef_factor"] == cal.factor
    assert _meta(index)["ef_factor"] == cal.factor
    index.close()
    again = EdgeIndex(tmp_path / "edge", policy=poor)
    try:
        assert again.search_ef_factor(NAME) == cal.factor
        from vislink.cli.doctor import collection_checks

        doctor_line = collection_checks(again, [NAME], recall_queries=4)[0].detail
        assert f"search ef x{cal.factor:g} (calibrated); recall@200" in doctor_line
        assert measure_recall(again, NAME, queries=16, limit=200).recall == pytest.approx(cal.recall.recall)
        # A target the policy's own factor meets: no factor kept (a later change of the setting applies).
        easy = IndexPolicy(hnsw_min_points=1, m=2, ef_construct=4, ef_min=1, ef_factor=1, full_scan_kb=1,
                           quantization=None, target_recall=at_policy / 2, max_ef_factor=8)
        assert calibrate_ef(again, NAME, easy, queries=16).factor == 1 and again.search_ef_factor(NAME) is None
        again.set_search_ef_factor(NAME, 4.0)
        assert optimize_collection(again, NAME, poor, mode="exact").calibration is None
        assert again.search_ef_factor(NAME) is None and _meta(again)["ef_factor"] is None
    finally:
        again.close()


def test_no_calibration_when_turned_off_or_where_the_backend_keeps_no_factor(pair):
    from vislink.index.policy import calibrate_ef

    index, referee, _ = pair
    off = IndexPolicy(hnsw_min_points=2000, m=16, ef_construct=64, quantization=None, full_scan_kb=1, target_recall=0)
    report = optimize_collection(index, NAME, off, recall_queries=8)
    assert report.after.approximate and report.recall is not None and report.calibration is None
    assert index.search_ef_factor(NAME) is None
    assert calibrate_ef(referee, NAME, POLICY) is None  # numpy: no graph, nothing to keep
    with pytest.raises(ConfigError, match="target recall"):
        IndexPolicy(target_recall=1.5)


def test_a_graph_that_needs_too_large_an_ef_is_rebuilt_denser_once(tmp_path):
    """Calibrated above rebuild_above_factor (or short of the target), the policy's graph is rebuilt once with m and
    ef_construct doubled and calibrated again; a later optimize keeps the denser graph instead of going back."""
    policy = IndexPolicy(hnsw_min_points=1, m=2, ef_construct=4, ef_min=1, ef_factor=1, full_scan_kb=1,
                         quantization=None, target_recall=0.99, max_ef_factor=8, rebuild_above_factor=2)
    index = EdgeIndex(tmp_path / "edge", policy=policy)
    try:
        _fill(index, _vectors())
        index.optimize(NAME, policy.hnsw_mode())
        sparse = measure_recall(index, NAME, queries=16, limit=200).recall
        report = optimize_collection(index, NAME, policy, recall_queries=16)
        assert report.after == IndexMode("hnsw", 4, 8, None) == index.index_mode(NAME)
        assert _meta(index)["mode"]["m"] == 4
        assert "rebuilt with m 4: at m 2 recall@200 was" in report.describe()
        assert report.recall.recall > sparse and report.calibration.recall.recall == report.recall.recall
        again = optimize_collection(index, NAME, policy, recall_queries=16)  # auto: keeps m 4, no second doubling
        assert again.before == again.after == IndexMode("hnsw", 4, 8, None) and "rebuilt" not in again.describe()
        off = dataclasses.replace(policy, rebuild_above_factor=0)
        assert optimize_collection(index, NAME, off, mode="hnsw", recall_queries=16).after.m == 2  # never rebuilt
    finally:
        index.close()
