"""Evaluating a collection against the real index (qdrant-client local mode) and a real SQLite store:
queries from the test split, targets from the link graph, exact search, stored runs, reports, drop alerts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vislink.evaluation.metrics import paper_weight, target_ranks
from vislink.store.models import (
    Collection,
    DescriptorVariant,
    EvaluationQueryResult,
    EvaluationRun,
    Group,
    GroupMember,
    Image,
    ImageDescriptor,
    Link,
    LinkType,
    Split,
    SplitMember,
    SplitPart,
)

# Six images in 4-d, chosen so that no two similarities tie. Group {1, 2, 3}, a positive link 4-5,
# image 6 a distractor. Test split: 1, 4, 6 (6 has no links: not a query).
VECTORS = {
    1: [1.0, 0.0, 0.0, 0.0],
    2: [0.9, 0.1, 0.0, 0.0],
    3: [0.2, 1.0, 0.0, 0.0],
    4: [0.0, 0.0, 1.0, 0.1],
    5: [0.05, 0.0, 1.0, 0.3],
    6: [0.8, 0.3, 0.1, 0.0],
}
# Query 1: similarities 2 (.994) > 6 (.93) > 3 (.196) > 5 > 4, so its targets 2 and 3 rank 1 and 3.
# Query 4: its one target 5 ranks 1.


def _setup(session, index, vectors=VECTORS, name="demo", variant="vgg16-pool5-sum"):
    from vislink.index import Point
    from vislink.index.payload import qdrant_collection_name

    dim = len(next(iter(vectors.values())))
    coll = Collection(name=name, source_kind="folder")
    session.add(coll)
    session.flush()
    qname = qdrant_collection_name(name, variant)
    var = DescriptorVariant(collection_id=coll.id, name=variant, weights_name="random-0", weights_sha256="ab" * 32,
                            layer="pool5", pooling="sum", resize_rule="shorter-256", dimension=dim,
                            qdrant_collection=qname)
    session.add(var)
    images = {}
    for key in vectors:
        img = Image(collection_id=coll.id, source_ref=f"img{key}.jpg", sha256=f"{key:064x}", status="done")
        session.add(img)
        images[key] = img
    session.flush()
    ids = {k: img.id for k, img in images.items()}
    session.add_all([ImageDescriptor(image_id=i, variant_id=var.id) for i in ids.values()])
    group = Group(collection_id=coll.id, title="g")
    session.add(group)
    session.flush()
    session.add_all([GroupMember(group_id=group.id, image_id=ids[k]) for k in (1, 2, 3)])
    a, b = sorted((ids[4], ids[5]))
    session.add(Link(image_a_id=a, image_b_id=b, type=LinkType.positive))
    split = Split(collection_id=coll.id, name="default", seed=0)
    session.add(split)
    session.flush()
    parts = {1: "test", 4: "test", 6: "test", 2: "train", 3: "val", 5: "train"}
    session.add_all([SplitMember(split_id=split.id, image_id=ids[k], part=SplitPart(p)) for k, p in parts.items()])
    session.commit()
    index.create_collection(qname, dim)
    index.upsert(qname, [Point(ids[k], np.asarray(v, np.float32) / np.linalg.norm(v)) for k, v in vectors.items()])
    return ids, qname


@pytest.fixture
def db_session(vislink_env):
    # This test's database, named explicitly (as the runner does).
    from vislink.store import session_scope

    with session_scope(vislink_env.database_url) as session:
        yield session


@pytest.fixture
def demo(db_session):
    from vislink.index import open_index

    index = open_index()
    ids, qname = _setup(db_session, index)
    return ids, qname, index


def test_ranks_metrics_and_stored_run(demo, db_session):
    from vislink.evaluation.runner import evaluate_collection

    ids, qname, index = demo
    report = evaluate_collection("demo", "vgg16-pool5-sum", progress=False)
    by_query = {r.query.image_id: r for r in report.results}
    assert set(by_query) == {ids[1], ids[4]}  # 6 has no links; 2, 3, 5 are not in the test part
    assert dict(zip(by_query[ids[1]].query.targets, by_query[ids[1]].ranks)) == {ids[2]: 1, ids[3]: 3}
    assert by_query[ids[4]].ranks == [1]
    assert report.n_gallery == 6
    w2, w1 = paper_weight(2), paper_weight(1)
    assert report.metrics["R@1"] == pytest.approx((w2 * 0.5 + w1 * 1) / (w2 + w1))
    assert report.metrics["recall@1"] == pytest.approx(0.75)
    assert report.metrics["R@5"] == pytest.approx(1.0)
    assert report.metrics["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)

    run = db_session.get(EvaluationRun, report.run_id)
    assert run.variant_name == "vgg16-pool5-sum" and run.split_name == "default"
    assert run.weights_sha256 == "ab" * 32 and run.code_version and run.finished_at is not None
    assert run.n_queries == 2 and run.n_gallery == 6 and run.metrics["R@1"] == pytest.approx(report.metrics["R@1"])
    rows = {r.query_image_id: r for r in db_session.query(EvaluationQueryResult).filter_by(run_id=run.id)}
    assert rows[ids[1]].target_ranks == [1, 3] and rows[ids[1]].n_targets == 2
    assert rows[ids[1]].weight == pytest.approx(w2) and rows[ids[1]].query_ref == "img1.jpg"


def test_targets_beyond_the_first_search_are_found_deeper_or_recorded_null(demo):
    from vislink.evaluation.runner import evaluate_collection

    ids, _, _ = demo
    # With one cutoff (n = 1) the first search fetches 2 results; target 3 (rank 3) needs a deeper one.
    deep = evaluate_collection("demo", "vgg16-pool5-sum", cutoffs=(1,), store=False, progress=False)
    q1 = next(r for r in deep.results if r.query.image_id == ids[1])
    assert q1.sorted_ranks == [1, 3]
    capped = evaluate_collection("demo", "vgg16-pool5-sum", cutoffs=(1,), max_depth=2, store=False, progress=False)
    q1 = next(r for r in capped.results if r.query.image_id == ids[1])
    assert q1.sorted_ranks == [1, None]


def test_random_collection_agrees_with_a_numpy_referee(db_session):
    """60 random 16-d vectors, random groups: the ranks must be those of a brute-force cosine ranking."""
    from vislink.evaluation.runner import evaluate_collection
    from vislink.index import open_index

    rng = np.random.default_rng(3)
    vectors = {k: rng.normal(size=16).tolist() for k in range(1, 61)}
    # _setup links 1-2-3 and 4-5; add bigger groups by hand below
    index = open_index()
    ids, qname = _setup(db_session, index, vectors=vectors, name="rand")
    for members in ((10, 11, 12, 13), (20, 21), (30, 31, 32)):
        g = Group(collection_id=db_session.get(Image, ids[1]).collection_id)
        db_session.add(g)
        db_session.flush()
        db_session.add_all([GroupMember(group_id=g.id, image_id=ids[m]) for m in members])
    db_session.commit()
    report = evaluate_collection("rand", "vgg16-pool5-sum", split=None, progress=False, store=False)
    assert report.n_queries == 3 + 2 + 4 + 2 + 3  # every linked image is a query without a split
    mat = np.array([vectors[k] for k in sorted(vectors)], dtype=np.float64)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    key_of = {v: k for k, v in ids.items()}
    for r in report.results:
        q = key_of[r.query.query_id]
        order = np.argsort(-(mat @ mat[q - 1]), kind="stable")
        ranking = [ids[int(i) + 1] for i in order]
        assert r.ranks == target_ranks(ranking, r.query.targets, query=r.query.query_id)

    # The one-pass scan that replaces very deep searches gives the same ranks (forced here from rank 2 on),
    # and None beyond max_depth.
    from vislink.evaluation.ranking import rank_targets

    queries = [r.query for r in report.results]
    scanned = rank_targets(index, qname, queries, depth=1, scan_cost_ratio=0, scan_min_queries=1)
    assert [r.ranks for r in scanned] == [r.ranks for r in report.results]
    assert any(x > 20 for r in scanned for x in r.ranks)  # the scan did rank far targets
    capped = rank_targets(index, qname, queries, depth=1, max_depth=20, scan_cost_ratio=0, scan_min_queries=1)
    assert [[x if x <= 20 else None for x in r.ranks] for r in report.results] == [r.ranks for r in capped]


def test_unknown_names_are_clear_errors(demo):
    from vislink.errors import NotFound
    from vislink.evaluation.runner import evaluate_collection

    with pytest.raises(NotFound, match="collections: demo"):
        evaluate_collection("nope", "vgg16-pool5-sum", progress=False)
    with pytest.raises(NotFound, match="its variants: vgg16-pool5-sum"):
        evaluate_collection("demo", "vgg16-pool5-max", progress=False)
    with pytest.raises(NotFound, match="no split named 'other'"):
        evaluate_collection("demo", "vgg16-pool5-sum", split="other", progress=False)


def test_cli_reports_history_and_drop_alert(demo, vislink_env, tmp_path):
    from typer.testing import CliRunner
    from PIL import Image as PILImage

    from vislink.cli import app
    from vislink.index import Point

    ids, qname, index = demo
    runner = CliRunner()
    out = tmp_path / "reports"
    result = runner.invoke(app, ["evaluate", "--collection", "demo", "--variants", "vgg16-pool5-sum",
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    # Six images: the columns that can tell methods apart (issue #13 item 11), not R[20] (near 1 at this size).
    assert "R[1]" in result.output and "R[5]" in result.output and "R[20]" not in result.output
    assert "vgg16-pool5-sum" in result.output
    assert "100.0" in result.output  # R[5] of this collection is 1
    md = next(out.glob("*.md")).read_text()
    assert "| vgg16-pool5-sum | 4 | 100.0 | 100.0 | 100.0 | 100.0 |" in md
    data = json.loads(next(out.glob("*.json")).read_text())
    assert data["runs"][0]["metrics"]["R@20"] == pytest.approx(1.0) and len(data["runs"][0]["queries"]) == 2
    with PILImage.open(next(out.glob("*.png"))) as png:
        assert png.format == "PNG" and png.size[0] > 100

    # 30 new points close to image 1 push its target 3 beyond rank 20: R[20] falls, exit code 3.
    rng = np.random.default_rng(1)
    near = np.asarray(VECTORS[1], np.float32)
    extra = [Point(1000 + i, (near + 0.01 * rng.normal(size=4)).astype(np.float32)) for i in range(30)]
    index.upsert(qname, extra)
    result = runner.invoke(app, ["evaluate", "--collection", "demo", "--out", str(out), "--no-progress"])
    assert result.exit_code == 3, result.output
    assert "ALERT" in result.output and "R@20 fell from 100.0" in result.output

    result = runner.invoke(app, ["evaluate", "--history", "--collection", "demo"])
    assert result.exit_code == 0
    assert result.output.count("vgg16-pool5-sum") == 2


def test_evaluate_and_check_stores_reports_and_finds_a_drop(demo, vislink_env, tmp_path):
    """The job `vislink evaluate` runs, from Python: R@20 always computed (the check reads it), runs stored,
    reports written, a drop of R@20 since the previous run found; recent_runs lists them newest first."""
    from vislink.evaluation.records import recent_runs
    from vislink.evaluation.schedule import evaluate_and_check
    from vislink.index import Point
    from vislink.store import session_scope

    ids, qname, index = demo
    first = evaluate_and_check("demo", cutoffs=(1, 5), out=tmp_path, progress=False)
    assert first.title == "Evaluation of demo (split default, test)" and first.drops == [] and first.alerts == []
    assert first.reports[0].cutoffs == (1, 5, 20) and first.reports[0].metrics["R@20"] == pytest.approx(1.0)
    assert {k: p.is_file() for k, p in first.paths.items()} == {"json": True, "markdown": True, "plot": True}

    rng = np.random.default_rng(1)  # as in the CLI test: push image 1's target 3 beyond rank 20
    near = np.asarray(VECTORS[1], np.float32)
    index.upsert(qname, [Point(1000 + i, (near + 0.01 * rng.normal(size=4)).astype(np.float32)) for i in range(30)])
    second = evaluate_and_check("demo", ["vgg16-pool5-sum"], split=None, out=tmp_path, progress=False)
    assert second.title == "Evaluation of demo (every linked image)"
    assert len(second.drops) == 1 and second.drops[0].previous_run_id == first.reports[0].run_id
    assert "R@20 fell from 100.0" in second.alerts[0]
    assert evaluate_and_check("demo", out=tmp_path, max_drop=1.0, progress=False).drops == []

    with session_scope(vislink_env.database_url) as session:
        runs = recent_runs(session, collection="demo", variants=["vgg16-pool5-sum"])
        assert [r.collection for r in runs] == ["demo"] * 3 and runs[0].id > runs[1].id > runs[2].id
        assert runs[-1].id == first.reports[0].run_id and runs[1].id == second.reports[0].run_id
        assert len(recent_runs(session, limit=2)) == 2
        assert recent_runs(session, variants=["vgg16-pool5-max"]) == []
        assert recent_runs(session, collection="other") == []


def test_a_missing_split_names_both_ways_out_and_can_be_created(demo, vislink_env, tmp_path):
    # Issue #13 item 15: the error names `--split none` and the command that creates the split, before any work;
    # --create-split (or yes at the prompt in a terminal) creates it and goes on.
    from typer.testing import CliRunner

    from vislink.cli import app
    from vislink.errors import MissingSplit
    from vislink.evaluation.runner import require_split

    with pytest.raises(MissingSplit) as caught:
        require_split("demo", "fresh")
    assert "`--split none`" in str(caught.value)
    assert "`vislink groups split --collection demo --name fresh`" in str(caught.value)
    runner = CliRunner()
    args = ["evaluate", "--collection", "demo", "--split", "fresh", "--part", "train", "--out", str(tmp_path),
            "--no-progress"]  # two components here: the test part of a new split is empty
    refused = runner.invoke(app, args, input="n\n")
    assert refused.exit_code == 1 and isinstance(refused.exception, MissingSplit)
    created = runner.invoke(app, [*args, "--create-split"])
    assert created.exit_code == 0, created.output
    assert "created split 'fresh'" in created.output and "R[5]" in created.output
    require_split("demo", "fresh")  # it is stored


def test_the_ui_opens_on_the_variant_with_the_best_stored_evaluation(demo, db_session):
    # Issue #11 item 3: newest collection evaluation per variant, highest mAP wins; benchmarks do not count.
    from vislink.evaluation.records import best_variant
    from vislink.store import get_collection

    coll = get_collection(db_session, "demo")
    variants = ["vgg16-pool5-sum", "sscd", "vgg16-pool5-max"]
    assert best_variant(db_session, "demo", variants) is None
    for variant, m, benchmark in (("vgg16-pool5-sum", 0.5, None), ("sscd", 0.9, None), ("sscd", 0.4, None),
                                  ("vgg16-pool5-max", 0.99, "groups:x")):
        db_session.add(EvaluationRun(collection_id=None if benchmark else coll.id, variant_name=variant,
                                     benchmark=benchmark, n_queries=1, n_gallery=6, metrics={"mAP": m}))
        db_session.flush()
    assert best_variant(db_session, "demo", variants) == "vgg16-pool5-sum"  # sscd's newest run is 0.4
