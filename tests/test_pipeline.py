"""The ingest pipeline end to end on real files, real SQLite, real embedded Qdrant (qdrant-edge, the default)
and the seeded ``random`` encoder weights: registration, dedup, bad input, rerun, reconcile, add-variant,
uploads, collections. One data folder for the module (the encoder is built once per folder)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sqlalchemy import func, select

from test_ingest_support import make_bad_and_odd, make_photos, photo
from vislink_testenv import module_data_folder

VARIANTS3 = ["vgg16-pool5-sum", "vgg16-pool5-max", "vgg16-pool5-sp2x2-sum"]


@pytest.fixture(scope="module")
def env(tmp_path_factory, migrated_sqlite_template):
    with module_data_folder(tmp_path_factory, migrated_sqlite_template, "pipeline") as settings:
        yield settings


@pytest.fixture(scope="module")
def gallery(env, tmp_path_factory):
    """A collection 'gal': 6 photos with metadata, an exact copy, a near-duplicate (re-encoded JPEG)."""
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items

    root = tmp_path_factory.mktemp("gal")
    paths = make_photos(root, 6)
    shutil.copy(paths[0], root / "copy_of_0.jpg")
    photo(1).save(root / "near_1.jpg", quality=60)
    (root / "meta.csv").write_text(
        "file,artist,title,date,school,form,type\n"
        + "".join(f"photo{i:03d}.jpg,Artist {i % 2},Title {i},{1500 + 10 * i},Italian,painting,religious\n"
                  for i in range(6)))
    summary = ingest("gal", folder_items(root, root / "meta.csv"), progress=False, batch_size=4)
    return root, summary


def _counts(collection: str) -> dict[str, int]:
    from vislink.store import Collection, Image, session_scope

    with session_scope() as s:
        cid = s.scalar(select(Collection.id).where(Collection.name == collection))
        return {st.value: n for st, n in s.execute(select(Image.status, func.count())
                                                   .where(Image.collection_id == cid).group_by(Image.status))}


def test_ingest_registers_dedups_stores_and_indexes(env, gallery):
    from vislink.index import open_index
    from vislink.store import DescriptorVariant, Image, ImageDescriptor, IngestRun, session_scope

    root, summary = gallery
    assert (summary.done, summary.skipped, summary.failed) == (7, 1, 0)
    assert summary.skipped_by_reason == {"duplicate": 1}
    assert _counts("gal") == {"done": 7, "duplicate": 1}
    index = open_index()
    with session_scope() as s:
        variants = s.scalars(select(DescriptorVariant).order_by(DescriptorVariant.id)).all()
        assert [v.name for v in variants] == VARIANTS3
        assert all(v.weights_name == "random" and len(v.weights_sha256) == 64 for v in variants)
        done = {i.source_ref: i for i in s.scalars(select(Image).where(Image.status == "done"))}
        dup = s.scalar(select(Image).where(Image.status == "duplicate"))
        # the folder is walked in sorted order: copy_of_0.jpg comes first and photo000.jpg is its duplicate
        assert dup.source_ref == "photo000.jpg" and dup.extra["sha256"] == done["copy_of_0.jpg"].sha256
        assert done["copy_of_0.jpg"].id == dup.duplicate_of_id and dup.file_path == done["copy_of_0.jpg"].file_path
        assert "near_1.jpg" in done  # a near-duplicate is a link to find, not noise: kept
        img = done["photo003.jpg"]
        assert (img.artist, img.title, img.year_start, img.school) == ("Artist 1", "Title 3", 1530, "Italian")
        assert (img.width, img.height) == (72, 56)
        # content-addressed store: images/<sha[:2]>/<sha>.jpg, identical bytes to the source
        assert img.file_path == str(env.images_dir / img.sha256[:2] / f"{img.sha256}.jpg")
        assert open(img.file_path, "rb").read() == (root / "photo003.jpg").read_bytes()
        assert s.scalar(select(func.count()).select_from(ImageDescriptor)) == 7 * 3
        assert len(list(env.images_dir.glob("*/*.jpg"))) == 7  # the duplicate is stored once
        for v in variants:
            assert index.count(v.qdrant_collection) == 7
            pid, payload, vec = index.retrieve(v.qdrant_collection, [img.id], with_vectors=True)[0]
            assert payload == {"image_id": img.id, "collection": "gal", "artist": "Artist 1", "year_start": 1530,
                               "year_end": 1530, "school": "Italian", "form": "painting", "type": "religious",
                               "title": "Title 3"}
            assert vec.shape == (v.dimension,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-4
        run = s.get(IngestRun, summary.run_id)
        assert (run.status.value, run.n_done, run.n_skipped, run.n_failed) == ("finished", 7, 1, 0)


def test_rerun_skips_what_is_done(env, gallery):
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items

    root, _ = gallery
    again = ingest("gal", folder_items(root, root / "meta.csv"), progress=False)
    assert (again.done, again.failed) == (0, 0)
    assert again.skipped_by_reason == {"already-done": 7, "duplicate": 1}
    assert _counts("gal") == {"done": 7, "duplicate": 1}


def test_bad_input_is_reported_and_the_run_continues(env, tmp_path):
    from typer.testing import CliRunner

    from vislink.cli import app
    from vislink.store import Collection, Image, IngestRun, session_scope

    folder = tmp_path / "odd"
    expected = make_bad_and_odd(folder)
    make_photos(folder, 2, start=50)
    result = CliRunner().invoke(app, ["ingest", "folder", str(folder), "-c", "odd", "--no-progress"])
    assert result.exit_code == 0, result.output
    failed = {k: v for k, v in expected.items() if v != "done"}
    assert f"{len(expected) - len(failed) + 2} done, 0 skipped, {len(failed)} failed" in result.output
    for reason in set(failed.values()):
        assert f"failed {reason}: {list(failed.values()).count(reason)}" in result.output
    with session_scope() as s:
        cid = s.scalar(select(Collection.id).where(Collection.name == "odd"))
        rows = {i.source_ref: i for i in s.scalars(select(Image).where(Image.collection_id == cid))}
        for name, outcome in expected.items():
            img = rows[name]
            if outcome == "done":
                assert img.status.value == "done", (name, img.failure_reason)
                assert img.width == 48 and img.height == 40 and img.file_path
            else:
                assert img.status.value == "failed" and img.failure_reason.startswith(outcome), (name, img.failure_reason)
                assert img.sha256 is None and img.file_path is None  # bad files never enter the store
        run = s.scalars(select(IngestRun).where(IngestRun.collection_id == cid)).one()
        assert run.failures_by_reason == {r: list(failed.values()).count(r) for r in set(failed.values())}


def test_search_by_image_id_file_filters_and_examples(env, gallery):
    from vislink.search import search
    from vislink.store import Image, session_scope

    root, _ = gallery
    with session_scope() as s:
        ids = {i.source_ref: i.id for i in s.scalars(select(Image).where(Image.status == "done"))}
    q = ids["photo002.jpg"]
    by_id = search(image_id=q, collection="gal", limit=10)
    assert q not in [r.image_id for r in by_id] and len(by_id) == 6
    assert [r.rank for r in by_id] == list(range(1, 7))
    assert all(a.score >= b.score for a, b in zip(by_id, by_id[1:]))
    # the file itself, searched as an upload would be: its own stored copy comes first, score ~1
    by_file = search(root / "photo002.jpg", collection="gal", variant="vgg16-pool5-max", limit=3)
    assert by_file[0].image_id == q and by_file[0].score > 0.999 and by_file[0].source_ref == "photo002.jpg"
    only = search(image_id=q, collection="gal", filters={"artist": "Artist 1"}, limit=10)
    assert {r.artist for r in only} == {"Artist 1"} and len(only) == 3
    years = search(image_id=q, collection="gal", filters={"year": "1525-1545"}, limit=10)
    assert sorted(r.payload["year_start"] for r in years) == [1530, 1540]
    rec = search(image_id=q, collection="gal", positive=[ids["photo003.jpg"]], negative=[ids["photo005.jpg"]],
                 limit=10)
    assert not {q, ids["photo003.jpg"], ids["photo005.jpg"]} & {r.image_id for r in rec}
    page2 = search(image_id=q, collection="gal", limit=2, offset=2)
    assert [r.image_id for r in page2] == [r.image_id for r in by_id[2:4]]


SP2X2 = "vgg16-pool5-sp2x2-sum"  # keeps the layout (a mirror swaps its left and right cells): the mirror shows


def test_mirrored_search_finds_the_mirror_of_a_stored_image(env, gallery, tmp_path):
    """The query is the mirror of stored photo002 (nothing stored is that mirror): with mirrored=True its
    mirror is photo002's own pixels, so photo002 comes first with a score of ~1; without, it scores clearly lower.
    Through the Python API and the CLI's --mirrored."""
    import json

    from PIL import Image as PILImage, ImageOps
    from typer.testing import CliRunner

    from vislink.cli import app
    from vislink.search import search
    from vislink.store import Image, session_scope

    root, _ = gallery
    with session_scope() as s:
        ids = {i.source_ref: i.id for i in s.scalars(select(Image).where(Image.status == "done"))}
    query = tmp_path / "mirror_of_photo002.png"  # lossless: mirrored back, it is exactly the stored file's pixels
    ImageOps.mirror(PILImage.open(root / "photo002.jpg").convert("RGB")).save(query)
    target = ids["photo002.jpg"]
    mirrored = search(query, collection="gal", variant=SP2X2, mirrored=True, limit=10)
    plain = search(query, collection="gal", variant=SP2X2, mirrored=False, limit=10)
    assert len(mirrored) == len(plain) == 7
    assert mirrored[0].image_id == target and mirrored[0].score > 0.999, [(r.source_ref, r.score) for r in mirrored]
    assert _score(plain, target) < mirrored[0].score - 0.03, [(r.source_ref, r.score) for r in plain]
    # Every other image keeps at least its plain similarity (the best of the two queries is kept).
    for r in plain:
        assert _score(mirrored, r.image_id) >= r.score - 1e-5

    def cli(*flags):
        result = CliRunner().invoke(app, ["search", str(query), "-c", "gal", "--variant", SP2X2, "--json", *flags])
        assert result.exit_code == 0, result.output
        return {row["image_id"]: row["score"] for row in json.loads(result.output)}

    with_flag, without = cli("--mirrored"), cli()
    assert max(with_flag, key=with_flag.get) == target and with_flag[target] > 0.999
    assert without[target] < with_flag[target] - 0.03


def _score(results, image_id: int) -> float:
    return next(r.score for r in results if r.image_id == image_id)


def test_search_cli_json(env, gallery):
    import json

    from typer.testing import CliRunner

    from vislink.cli import app

    root, _ = gallery
    result = CliRunner().invoke(app, ["search", str(root / "photo001.jpg"), "-c", "gal", "--limit", "2",
                                      "--filter", "school=Italian", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["source_ref"] == "photo001.jpg"
    text = CliRunner().invoke(app, ["search", str(root / "photo001.jpg"), "-c", "gal", "-k", "1"])
    assert "photo001.jpg" in text.output and "Artist 1" in text.output and "Title 1" in text.output


def test_upload_is_searchable_at_once(env, gallery):
    import io

    from vislink.errors import BadImage
    from vislink.ingest.runner import ingest_upload
    from vislink.search import search

    buf = io.BytesIO()
    photo(77).save(buf, "PNG")
    img = ingest_upload("gal", "my photo.png", buf.getvalue())
    assert img.status.value == "done" and img.file_path.endswith(".png")
    assert search(buf.getvalue(), collection="gal", limit=1)[0].image_id == img.id
    assert ingest_upload("gal", "again.png", buf.getvalue()).id == img.id  # same bytes: the same image
    with pytest.raises(BadImage) as err:
        ingest_upload("gal", "notes.jpg", b"hello")
    assert err.value.reason == "not-an-image"
    env.max_upload_mb = 0  # settings are cached per process: restore below
    try:
        with pytest.raises(BadImage) as err:
            ingest_upload("gal", "big.png", buf.getvalue())
        assert err.value.reason == "too-large"
    finally:
        env.max_upload_mb = 50


def test_reconcile_repairs_orphans_missing_points_and_payload_drift(env, tmp_path):
    from vislink.index import Point, open_index
    from vislink.ingest.runner import ingest
    from vislink.ingest.reconcile import check, reconcile
    from vislink.ingest.sources.folder import folder_items
    from vislink.store import DescriptorVariant, Image, session_scope

    make_photos(tmp_path / "rec", 3, start=20)
    ingest("rec", folder_items(tmp_path / "rec"), variants=["vgg16-pool5-sum"], progress=False)
    assert all(r.ok for r in check("rec"))
    index = open_index()
    with session_scope() as s:
        var = s.scalar(select(DescriptorVariant).where(DescriptorVariant.qdrant_collection.like("%_rec_%")))
        imgs = s.scalars(select(Image).where(Image.collection_id == var.collection_id).order_by(Image.id)).all()
        qname = var.qdrant_collection
        index.delete(qname, [imgs[0].id])  # a lost point
        index.upsert(qname, [Point(99_999, np.ones(512, np.float32), {"image_id": 99_999})])  # an orphan
        imgs[1].artist = "Edited After Ingest"  # payload drift
        kept = imgs[1].id
    (rep,) = check("rec")
    assert (rep.missing_points, rep.orphan_points, rep.payload_drift) == ([imgs[0].id], [99_999], [kept])
    reconcile("rec", progress=False)
    assert all(r.ok for r in check("rec"))
    assert index.count(qname) == 3
    assert index.retrieve(qname, [kept])[0][1]["artist"] == "Edited After Ingest"


def test_add_variant_from_stored_files_and_remove(env, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from vislink.cli import app
    from vislink.index import open_index
    from vislink.ingest.collections import collection_info
    from vislink.ingest.reencode import add_variant
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items

    src = tmp_path / "av"
    make_photos(src, 5, start=30)
    ingest("av", folder_items(src), variants=["vgg16-pool5-max"], progress=False)
    shutil.rmtree(src)  # add-variant must not need the sources again
    row = add_variant("av", "vgg16-pool5-max-pca4", progress=False)
    assert row.pca_dim == 4 and row.pca_path and len(row.pca_sha256) == 64
    index = open_index()
    assert index.count(row.qdrant_collection) == 5
    # from the stored base vectors (no forward pass): the same vector a forward pass with the PCA gives
    from vislink.ingest.workers import encode_batch
    from vislink.store import Image, session_scope

    with session_scope() as s:
        first = s.scalars(select(Image).where(Image.source_ref == "photo030.jpg")).first()
    fresh = encode_batch([first.file_path], [row.name], weights="random", pca_paths={row.name: row.pca_path})
    stored = index.retrieve(row.qdrant_collection, [first.id], with_vectors=True)[0][2]
    assert np.allclose(fresh[0].vectors[row.name], stored, atol=1e-4)
    # a PCA variant whose base the collection lacks: base descriptors computed from the stored files
    other = add_variant("av", "vgg16-pool5-sum-pca3", progress=False)
    assert index.count(other.qdrant_collection) == 5
    info = collection_info("av")
    assert {v["name"]: v["encoded"] for v in info.variants} == {
        "vgg16-pool5-max": 5, "vgg16-pool5-max-pca4": 5, "vgg16-pool5-sum-pca3": 5}
    # a file shared with another collection survives the removal
    shared = tmp_path / "shared"
    make_photos(shared, 1, start=30)
    ingest("other", folder_items(shared), variants=["vgg16-pool5-max"], progress=False)
    runner = CliRunner()
    refused = runner.invoke(app, ["collection", "remove", "av"])
    assert refused.exit_code != 0
    done = runner.invoke(app, ["collection", "remove", "av", "--yes"])
    assert done.exit_code == 0, done.output
    assert "5 images, 3 Qdrant collections, 4 stored files" in done.output
    index = open_index()  # the command closed the process's index on its way out (as `vislink` does)
    assert not index.collection_exists(row.qdrant_collection)
    listed = runner.invoke(app, ["collection", "list"]).output
    assert "av:" not in listed and "other:" in listed


def test_ingest_urls_from_a_local_http_server(env, tmp_path, http_server):
    """URL sources go through the Fetcher: a flaky URL is retried, a missing one fails with its reason."""
    import io

    from vislink.ingest.fetch import Fetcher
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources import url_csv_items

    def jpeg(seed):
        buf = io.BytesIO()
        photo(seed).save(buf, "JPEG", quality=90)
        return buf.getvalue()

    http_server.add_bytes("/a.jpg", jpeg(60), "image/jpeg")
    http_server.add_bytes("/b.jpg", jpeg(61), "image/jpeg")
    http_server.add_flaky("/flaky.jpg", 1, jpeg(62), status=503)
    http_server.add_status("/missing.jpg", 404)
    csv = tmp_path / "urls.csv"
    csv.write_text("url,artist,title\n" + "".join(f"{http_server.url(p)},Someone,{p}\n"
                                                 for p in ("/a.jpg", "/b.jpg", "/flaky.jpg", "/missing.jpg")))
    fetcher = Fetcher(env.cache_dir, retries=2, backoff=0.05, per_host_rate=None, timeout=5)
    summary = ingest("web", url_csv_items(csv), variants=["vgg16-pool5-sum"], progress=False, fetcher=fetcher)
    assert (summary.done, summary.failed) == (3, 1)
    assert summary.failures_by_reason == {"fetch-failed": 1}
    assert summary.failures[0][0] == http_server.url("/missing.jpg")
    again = ingest("web", url_csv_items(csv), progress=False, fetcher=fetcher)
    assert again.skipped_by_reason == {"already-done": 3} and http_server.hits("/a.jpg") == 1  # not fetched again
