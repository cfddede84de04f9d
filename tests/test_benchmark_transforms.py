"""`vislink benchmark transforms`: transformed copies as queries among the untransformed images (seeded random
weights, small real images, pool5 at a shorter side of 64)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr("vislink.encoder.images.POOL5_SHORTER_SIDE", 64)
    rng = np.random.default_rng(1)
    root = tmp_path / "pictures"
    (root / "sub").mkdir(parents=True)
    for i in range(8):
        small = Image.fromarray((rng.random((4 + i % 3, 6, 3)) * 255).astype(np.uint8))
        small.resize((96 + 8 * i, 72), Image.Resampling.BICUBIC).save(
            root / ("sub" if i % 2 else "") / f"p{i}.jpg", quality=92)
    return root


def test_metrics_per_transformation_on_hand_made_ranks():
    from vislink.evaluation.ranking import EvalQuery, QueryResult
    from vislink.evaluation.transforms import transform_metrics

    # Two images x two transformations, in that order: (img0 mirror, img0 detail, img1 mirror, img1 detail).
    ranks = [[1], [3], [1], [None]]
    results = [QueryResult(EvalQuery(-(k + 1), (k // 2,)), r) for k, r in enumerate(ranks)]
    metrics = transform_metrics(results, ["mirror", "detail"], (1, 5))
    assert metrics["mirror"]["top1"] == 1.0 and metrics["detail"]["top1"] == 0.0
    assert metrics["detail"]["R@5"] == 0.5 and metrics["detail"]["mAP"] == pytest.approx(1 / 6)
    assert metrics["top1"] == 0.5 and metrics["R@1"] == 0.5 and metrics["mAP"] == pytest.approx((1 + 1 / 3 + 1) / 4)
    assert "recall@1" in metrics and "recall@1" not in metrics["mirror"]


def test_ranks_are_those_of_a_direct_computation(folder, vislink_env):
    from vislink.augment import transform
    from vislink.encoder import encode_variants, open_rgb
    from vislink.evaluation.transforms import benchmark_gallery, folder_gallery, query_seed
    from vislink.hashing import sha256_file

    gallery = folder_gallery(folder)
    assert gallery.name == "transforms:pictures" and len(gallery.items) == 8
    reports = benchmark_gallery(gallery, ["vgg16-pool5-sum", "vgg16-pool5-max"], weights="random",
                                transforms=["mirror", "detail"], strength=0.7, sample=3, seed=4, progress=False)
    assert [r.variant for r in reports] == ["vgg16-pool5-sum", "vgg16-pool5-max"]
    report = reports[0]
    assert report.n_queries == 6 and report.n_gallery == 8 and report.benchmark == "transforms:pictures"
    assert set(report.metrics["mirror"]) >= {"top1", "R@5", "mAP"} and report.params["transforms"] == ["mirror", "detail"]
    images = [open_rgb(item.path) for item in gallery.items]
    base = encode_variants(images, ["vgg16-pool5-sum"], weights="random")["vgg16-pool5-sum"]
    for result in report.results:
        name, ref = result.query.ref.split(":", 1)
        k = next(i for i, item in enumerate(gallery.items) if item.ref == ref)
        query = transform(images[k], name, 0.7, query_seed(4, sha256_file(gallery.items[k].path), name))
        vector = encode_variants([query], ["vgg16-pool5-sum"], weights="random")["vgg16-pool5-sum"][0]
        scores = base @ vector
        assert result.query.targets == (k,)
        assert result.ranks == [1 + int((scores > scores[k]).sum())]
    again = benchmark_gallery(gallery, ["vgg16-pool5-sum"], weights="random", transforms=["mirror", "detail"],
                              strength=0.7, sample=3, seed=4, progress=False)[0]
    assert [r.ranks for r in again.results] == [r.ranks for r in report.results]
    assert list(vislink_env.cache_dir.rglob("vgg16-pool5-sum.transforms*.npz"))  # transformed queries cached


def test_cli_on_a_folder_prints_the_table_and_stores_one_run_per_variant(folder, vislink_env):
    from sqlalchemy import select

    from vislink.cli import app
    from vislink.store import EvaluationQueryResult, EvaluationRun, session_scope

    result = CliRunner().invoke(app, ["benchmark", "transforms", str(folder), "--weights", "random", "--variants",
                                      "vgg16-pool5-sum,vgg16-pool5-sum@random-3", "--transforms",
                                      "grayscale,resize", "--no-progress", "--out", str(vislink_env.reports_dir)])
    assert result.exit_code == 0, result.output
    assert "8 images x 2 transformations" in result.output
    lines = [line.split() for line in result.output.splitlines() if line.startswith("vgg16")]
    assert [(r[0], r[1]) for r in lines] == [(v, t) for v in ("vgg16-pool5-sum", "vgg16-pool5-sum@random-3")
                                            for t in ("grayscale", "resize", "all")]
    with session_scope() as session:
        runs = session.scalars(select(EvaluationRun).order_by(EvaluationRun.id)).all()
        assert [r.variant_name for r in runs] == ["vgg16-pool5-sum", "vgg16-pool5-sum@random-3"]
        assert all(r.benchmark == "transforms:pictures" and r.n_queries == 16 for r in runs)
        assert set(runs[0].metrics["grayscale"]) >= {"top1", "R@5", "mAP"} and "R@5" in runs[0].metrics
        refs = session.scalars(select(EvaluationQueryResult.query_ref).where(
            EvaluationQueryResult.run_id == runs[0].id)).all()
        assert len(refs) == 16 and {r.split(":")[0] for r in refs} == {"grayscale", "resize"}
    markdown = next(vislink_env.reports_dir.glob("*.md")).read_text()
    assert "## Per transformation" in markdown and "| vgg16-pool5-sum | grayscale |" in markdown


def test_cli_refuses_unknown_transformations_and_two_sources(folder, vislink_env):
    from vislink.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["benchmark", "transforms", str(folder), "--transforms", "blur", "--no-progress"])
    assert result.exit_code != 0 and "unknown transformation 'blur'" in str(result.exception)
    result = runner.invoke(app, ["benchmark", "transforms", str(folder), "--collection", "x"])
    assert result.exit_code != 0 and "one of them" in str(result.exception)
