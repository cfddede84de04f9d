"""The suite runs on qdrant-edge, the product's default (conftest.TEST_INDEX_BACKEND); here the same ingest,
searches and reconcile run end to end on both embedded backends, which must agree (ids and scores), so that
qdrant-local stays covered beyond the index-level congruence tests (test_index_congruence.py)."""

from __future__ import annotations

import os
import shutil

import pytest

from test_ingest_support import make_photos, photo
from vislink_testenv import use_data_folder

EMBEDDED = ["qdrant-edge", "qdrant-local"]
SP2X2 = "vgg16-pool5-sp2x2-sum"


def test_the_default_test_environment_is_the_products_default(vislink_env):
    from vislink.config import Settings

    assert Settings.model_fields["index_backend"].default == "auto"
    expected = os.environ.get("VISLINK_TEST_INDEX_BACKEND")
    assert expected == "qdrant-edge" or expected in EMBEDDED + ["memory"]  # overridden on purpose
    assert vislink_env.effective_index_backend == expected


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    make_photos(root, 6)
    photo(1).save(root / "near_1.jpg", quality=60)
    (root / "meta.csv").write_text(
        "file,artist,title,date,school\n"
        + "".join(f"photo{i:03d}.jpg,Artist {i % 2},Title {i},{1500 + 10 * i},Italian\n" for i in range(6)))
    return root


def _scenario(root, tmp_path):
    """Ingest ``root`` and run one of each kind of search; results as (source_ref, score) lists."""
    from PIL import Image as PILImage, ImageOps

    from vislink.index import open_index
    from vislink.ingest.reconcile import check
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.search import search

    summary = ingest("gal", folder_items(root, root / "meta.csv"), progress=False, batch_size=4)
    assert (summary.done, summary.failed) == (7, 0)
    refs = {}

    def run(**kwargs):
        results = search(collection="gal", **kwargs)
        refs.update({r.source_ref: r.image_id for r in results})
        return [(r.source_ref, round(r.score, 4)) for r in results]

    mirror = tmp_path / "mirror.png"
    ImageOps.mirror(PILImage.open(root / "photo002.jpg").convert("RGB")).save(mirror)
    out = {"file": run(image=root / "photo002.jpg", variant="vgg16-pool5-max", limit=10),
           "mirrored": run(image=mirror, variant=SP2X2, mirrored=True, limit=10),
           "plain": run(image=mirror, variant=SP2X2, limit=10)}
    pid = refs["photo002.jpg"]
    out["by_id"] = run(image_id=pid, limit=10)
    out["filtered"] = run(image_id=pid, filters={"artist": "Artist 1", "year": "1510-1535"}, limit=10)
    out["examples"] = run(image_id=pid, positive=[refs["photo003.jpg"]], negative=[refs["photo005.jpg"]], limit=10)
    out["page"] = run(image_id=pid, limit=2, offset=3)
    reports = check("gal")
    out["counts"] = [(r.points, open_index().count(r.qdrant_collection)) for r in reports]
    out["in_agreement"] = all(r.ok for r in reports)
    return out


@pytest.fixture(scope="module")
def outcomes(photos, tmp_path_factory, migrated_sqlite_template):
    from vislink.config import get_settings, reset_settings
    from vislink.index import close_all

    found = {}
    for backend in EMBEDDED:
        home = tmp_path_factory.mktemp(backend) / "vislink-data"
        home.mkdir()
        shutil.copy(migrated_sqlite_template, home / "vislink.db")
        with pytest.MonkeyPatch.context() as mp:
            use_data_folder(mp, home, weights="random")
            mp.setenv("VISLINK_INDEX_BACKEND", backend)
            reset_settings()
            settings = get_settings()
            settings.ensure_dirs()
            assert settings.effective_index_backend == backend
            try:
                found[backend] = _scenario(photos, tmp_path_factory.mktemp(f"{backend}-q"))
                found[backend]["folders"] = sorted(p.name for p in settings.qdrant_path.iterdir())
            finally:
                close_all()
                reset_settings()
    return found


@pytest.mark.parametrize("backend", EMBEDDED)
def test_end_to_end_on_each_embedded_backend(outcomes, backend):
    out = outcomes[backend]
    assert out["in_agreement"] and out["counts"] == [(7, 7)] * 3
    assert out["file"][0] == ("photo002.jpg", 1.0)
    assert out["mirrored"][0] == ("photo002.jpg", 1.0) and dict(out["plain"])["photo002.jpg"] < 0.97
    assert len(out["by_id"]) == 6 and "photo002.jpg" not in dict(out["by_id"])
    assert sorted(dict(out["filtered"])) == ["photo001.jpg", "photo003.jpg"]
    assert not {"photo002.jpg", "photo003.jpg", "photo005.jpg"} & set(dict(out["examples"]))
    assert [ref for ref, _ in out["page"]] == [ref for ref, _ in out["by_id"][3:5]]
    # each backend keeps its files in its own place in the data folder
    assert ("edge" in out["folders"]) == (backend == "qdrant-edge"), out["folders"]


def test_both_embedded_backends_give_the_same_results(outcomes):
    edge, local = (outcomes[b] for b in EMBEDDED)
    for key in ("file", "mirrored", "plain", "by_id", "filtered", "examples"):  # every result: ties may swap
        a, b = dict(edge[key]), dict(local[key])
        assert a.keys() == b.keys(), (key, edge[key], local[key])
        assert all(abs(a[ref] - b[ref]) <= 2e-4 for ref in a), (key, edge[key], local[key])
