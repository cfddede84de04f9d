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
    bad = runner.invoke(app, ["compare", str(collection_query), str(tmp_path / "missing.jpg"), "--out", str(png)])
    assert bad.exit_code == 1 and "missing.jpg: no such image file" in str(bad.exception)
