"""Geometric re-ranking through search (``search(verify=True)``, ``vislink search --verify``) and the aligned
compare command, on a small ingested collection of real photos (random VGG16 weights: the descriptor order is
arbitrary, verification decides)."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from test_local_verify import _sample, warped_detail


@pytest.fixture(scope="module")
def verify_collection(tmp_path_factory, migrated_sqlite_template):
    """Collection 'v' (ingested once for the module): a rotated detail and a mirror of china.jpg, flower.jpg and
    six noise images; returns the query file (china.jpg itself, not ingested)."""
    import shutil

    import numpy as np
    from vislink_testenv import use_data_folder

    from vislink.index import close_all
    from vislink.ingest import ingest
    from vislink.ingest.sources.folder import folder_items

    root = tmp_path_factory.mktemp("verify")
    home, images = root / "home", root / "images"
    home.mkdir()
    images.mkdir()
    shutil.copy(migrated_sqlite_template, home / "vislink.db")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray((rng.random((120, 160, 3)) * 255).astype("uint8")).save(images / f"noise{i}.jpg")
    china = _sample("china.jpg").resize((400, 267))
    detail, _ = warped_detail(china, scale=1.3, angle_deg=15, centre=(200, 130), size=(220, 180))
    detail.save(images / "detail.jpg", quality=90)
    ImageOps.mirror(china).save(images / "mirror.jpg", quality=90)
    _sample("flower.jpg").resize((400, 267)).save(images / "flower.jpg", quality=90)
    query = root / "query.jpg"
    china.save(query, quality=92)
    with pytest.MonkeyPatch.context() as mp:
        use_data_folder(mp, home, weights="random")
        ingest("v", folder_items(images), variants=["vgg16-pool5-sum"], progress=False)
        from vislink.graph.edits import set_link
        from vislink.graph.refs import ImageResolver
        from vislink.store import get_collection, session_scope

        with session_scope() as session:
            refs = ImageResolver(session, get_collection(session, "v").id)
            set_link(session, refs.require("detail.jpg"), refs.require("mirror.jpg"), "positive")
        close_all()
    from vislink.config import reset_settings

    reset_settings()
    yield home, query


@pytest.fixture
def collection_query(verify_collection, monkeypatch):
    from vislink_testenv import use_data_folder

    from vislink.config import reset_settings
    from vislink.index import close_all

    home, query = verify_collection
    use_data_folder(monkeypatch, home, weights="random")
    yield query
    close_all()
    reset_settings()


def test_verify_puts_verified_copies_first_and_keeps_the_rest_in_order(collection_query):
    from vislink.search import search

    plain = search(collection_query, collection="v", limit=9)
    checked = search(collection_query, collection="v", limit=9, verify=True, verify_top=9)
    refs = [r.source_ref for r in checked]
    assert set(refs[:2]) == {"detail.jpg", "mirror.jpg"}, refs
    assert all(r.verified for r in checked[:2]) and not any(r.verified for r in checked[2:])
    assert next(r for r in checked if r.source_ref == "mirror.jpg").mirrored
    assert checked[0].inliers >= checked[1].inliers >= 12
    assert [r.rank for r in checked] == list(range(1, 10))
    rest = [r.source_ref for r in plain if r.source_ref not in refs[:2]]
    assert refs[2:] == rest  # the unverified keep the descriptor's order
    assert all(r.verified is None for r in plain)
    paged = search(collection_query, collection="v", limit=3, offset=1, verify=True, verify_top=9)
    assert [r.source_ref for r in paged] == refs[1:4] and paged[0].rank == 2


def test_cli_search_verify_and_compare(collection_query, tmp_path):
    from vislink.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["search", str(collection_query), "-c", "v", "--verify", "--verify-top", "9",
                              "--limit", "3", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert rows[0]["verified"] and rows[0]["inliers"] >= 12
    png = tmp_path / "aligned.png"
    done = runner.invoke(app, ["compare", str(collection_query), str(rows[0]["image_id"]), "--out", str(png)])
    assert done.exit_code == 0, done.output
    assert "aligned" in done.output and "inliers" in done.output
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width > 400
    flower = next(r["image_id"] for r in json.loads(runner.invoke(app, [
        "search", str(collection_query), "-c", "v", "--limit", "9", "--json"]).output) if r["source_ref"] == "flower.jpg")
    unrelated = runner.invoke(app, ["compare", str(collection_query), str(flower), "--json"])
    assert unrelated.exit_code == 0, unrelated.output
    shown = json.loads(unrelated.output)
    assert not shown["verified"] and shown["reason"] and shown["b"].endswith("flower.jpg")
    bad = runner.invoke(app, ["compare", str(collection_query), str(tmp_path / "missing.jpg"), "--out", str(png)])
    assert bad.exit_code == 1 and "missing.jpg: no such image file" in str(bad.exception)


def test_benchmark_groups_reranked_variant(vislink_env, tmp_path):
    """``<variant>+verify`` in benchmark groups: its own Table 1 row, the china group's copies found first
    whatever the random descriptor says, the cost per query in the stored params."""
    import numpy as np

    from vislink.cli import app

    rng = np.random.default_rng(3)
    root = tmp_path / "set"
    root.mkdir()
    china = _sample("china.jpg").resize((320, 213))
    china.save(root / "china.jpg", quality=90)
    warped_detail(china, scale=1.2, angle_deg=-12, centre=(160, 100), size=(180, 140))[0].save(root / "detail.jpg")
    ImageOps.mirror(china).save(root / "mirror.jpg", quality=90)
    rows = ["china.jpg,china", "detail.jpg,china", "mirror.jpg,china"]
    for i in range(5):
        Image.fromarray((rng.random((90, 120, 3)) * 255).astype("uint8")).save(root / f"d{i}.jpg")
        rows.append(f"d{i}.jpg,")
    (root / "manifest.csv").write_text("file,group\n" + "\n".join(rows) + "\n")
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["benchmark", "groups", str(root / "manifest.csv"), "--weights", "random",
                                      "--variants", "vgg16-pool5-sum,vgg16-pool5-sum+verify5", "--out", str(out),
                                      "--no-progress", "--columns", "1,2"])
    assert result.exit_code == 0, result.output
    assert "vgg16-pool5-sum+verify5" in result.output
    data = json.loads(next(out.glob("*.json")).read_text())
    run = next(r for r in data["runs"] if r["variant"] == "vgg16-pool5-sum+verify5")
    assert all(sorted(t["rank"] for t in q["targets"]) == [1, 2] for q in run["queries"]), run["queries"]
    assert run["params"]["verify_top"] == 5 and run["params"]["verify_ms_per_query"] > 0
    assert run["params"]["verified_pairs"] == 6  # each of the 3 queries verifies its 2 copies, nothing else


def test_evaluate_collection_reranked_variant(collection_query):
    """``vislink evaluate``'s path: a collection variant with +verify, the stored images' features from the cache."""
    from vislink.evaluation.runner import evaluate_collection

    report = evaluate_collection("v", "vgg16-pool5-sum+verify", split=None, store=True, progress=False)
    assert report.variant == "vgg16-pool5-sum+verify" and report.n_queries == 2
    assert [r.ranks for r in report.results] == [[1], [1]]  # detail and mirror of one photo: verified first
    assert report.params["verify_top"] == 50 and report.params["verified_pairs"] == 2
    assert report.run_id is not None
