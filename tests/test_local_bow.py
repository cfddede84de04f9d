"""The paper's bag-of-words baseline (issue #14 item 2): a visual vocabulary trained on a sample of RootSIFT
descriptors, tf-idf bags of words stored as sparse vectors in the variant's own index collection, and the same
ingest, add-variant, search, evaluate and benchmark paths as the CNN variants. Real images drawn with Pillow."""

from __future__ import annotations

import numpy as np
import pytest

WORDS = "sift-bow-200"  # small enough to train on a dozen small images in well under a second


def _painting(seed: int, size=(240, 180)):
    """A real image with structure SIFT can find: random filled shapes and strokes on a tinted ground."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    w, h = size
    for _ in range(40):
        x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        x1, y1 = x0 + int(rng.integers(6, 60)), y0 + int(rng.integers(6, 60))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 5)))
    return image


@pytest.fixture
def bow_folder(tmp_path):
    """Eight unrelated pictures and a rescaled, re-compressed copy of the first (never byte-identical)."""
    from PIL import Image

    root = tmp_path / "bow"
    root.mkdir()
    for i in range(8):
        _painting(i).save(root / f"p{i}.jpg", quality=92)
    original = _painting(0)
    original.resize((168, 126), Image.Resampling.BICUBIC).save(root / "p0_copy.jpg", quality=55)
    return root


def test_vocabulary_trains_saves_and_loads_with_its_provenance(tmp_path):
    from vislink.errors import ConfigError
    from vislink.local.bow import EXTRACTOR, bow_vector, features_of_image, fit_vocabulary
    from vislink.local.vocabulary import Vocabulary, load_vocabulary

    features = [features_of_image(_painting(i)) for i in range(6)]
    assert all(len(f) > 20 for f in features)
    vocabulary = fit_vocabulary(features, 64, seed=3, provenance={"collection": "c"})
    assert vocabulary.size == 64 and vocabulary.centers.shape == (64, 128)
    assert vocabulary.provenance["n_images"] == 6 and vocabulary.provenance["extractor"] == EXTRACTOR
    assert np.all(vocabulary.idf >= 0) and vocabulary.idf.max() > 0

    path = tmp_path / "vocab" / "sift-bow-64.npz"
    sha = vocabulary.save(path)
    loaded = load_vocabulary(path)
    assert loaded.sha256 == sha and loaded.provenance == vocabulary.provenance
    np.testing.assert_array_equal(loaded.quantise(features[0].descriptors), vocabulary.quantise(features[0].descriptors))
    # Features of a file decoded reduced are kept in the file's own pixels.
    from vislink.local.bow import features_at_size

    full = features_at_size(features[0], (480, 360))
    assert full.image_size == (480, 360)
    np.testing.assert_allclose(full.points, 2 * features[0].points, rtol=1e-6)
    vector = bow_vector(features[0], loaded)
    assert list(vector.indices) == sorted(set(vector.indices))
    assert np.isclose(np.linalg.norm(vector.values), 1.0)

    # Too few descriptors for the words asked for, a damaged file: clear errors naming the cause and the file.
    with pytest.raises(ConfigError, match="needs at least 100000 descriptors"):
        fit_vocabulary(features, 100_000)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["centers"] = arrays["centers"] + 1.0
    np.savez(tmp_path / "damaged.npz", **arrays)
    with pytest.raises(ConfigError, match="damaged.npz.*differs from the stored"):
        Vocabulary.load(tmp_path / "damaged.npz")


def test_bow_search_finds_the_near_duplicate_first(bow_folder, vislink_env):
    from sqlalchemy import select

    from vislink.index import open_index
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.local import feature_cache
    from vislink.search import search
    from vislink.store import DescriptorVariant, Image, session_scope

    summary = ingest("bow", folder_items(bow_folder), variants=[WORDS], progress=False)
    assert summary.done == 9 and summary.failed == 0
    with session_scope() as session:
        images = {img.source_ref: img for img in session.scalars(select(Image))}
        row = session.scalar(select(DescriptorVariant).where(DescriptorVariant.name == WORDS))
        assert row.dimension == 200 and row.pca_path.endswith(f"{WORDS}.npz") and row.pca_sha256
        qname, ids = row.qdrant_collection, {ref: img.id for ref, img in images.items()}
        shas = {img.sha256: (img.width, img.height) for img in images.values()}
    stored = open_index().retrieve_sparse(qname, list(ids.values()))
    assert sorted(stored) == sorted(ids.values())
    cache = feature_cache()
    # Keypoints kept for geometric verification, in each file's own pixels.
    assert all(cache.get(sha).image_size == size for sha, size in shas.items())

    by_file = search(bow_folder / "p0_copy.jpg", collection="bow", variant=WORDS, limit=5)
    assert by_file[0].image_id == ids["p0_copy.jpg"] and by_file[1].image_id == ids["p0.jpg"]
    by_id = search(image_id=ids["p0_copy.jpg"], collection="bow", variant=WORDS, limit=5)
    assert by_id[0].image_id == ids["p0.jpg"] and by_id[0].score > 2 * by_id[1].score
    assert ids["p0_copy.jpg"] not in {r.image_id for r in by_id}
    mirrored = search(image_id=ids["p0.jpg"], collection="bow", variant=WORDS, limit=3, mirrored=True)
    assert mirrored[0].image_id == ids["p0_copy.jpg"]


def test_add_variant_ingest_and_evaluate_show_the_bow_row(bow_folder, vislink_env, tmp_path):
    from sqlalchemy import select
    from typer.testing import CliRunner

    from vislink.cli import app
    from vislink.graph.edits import create_group
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.local.vocabulary import load_vocabulary
    from vislink.store import Image, ImageDescriptor, session_scope

    late = tmp_path / "late"
    late.mkdir()
    (bow_folder / "p7.jpg").rename(late / "p7.jpg")
    ingest("coll", folder_items(bow_folder), variants=["sift-bow-100"], progress=False)
    runner = CliRunner()
    added = runner.invoke(app, ["collection", "add-variant", "coll", WORDS, "--sample", "6", "--no-progress"])
    assert added.exit_code == 0, added.output
    assert f"variant {WORDS} of coll: 200-d" in added.output
    from vislink.ingest.collections import collection_info

    info = {v["name"]: v for v in collection_info("coll").variants}
    assert info[WORDS]["encoded"] == 8 and info["sift-bow-100"]["encoded"] == 8
    assert load_vocabulary(info[WORDS]["pca_path"]).provenance["n_images"] == 6

    # A new image ingested into a collection that has the variants gets their bags of words.
    assert ingest("coll", folder_items(late), progress=False).done == 1
    info = {v["name"]: v for v in collection_info("coll").variants}
    assert info[WORDS]["encoded"] == 9

    with session_scope() as session:
        ids = {img.source_ref: img.id for img in session.scalars(select(Image))}
        create_group(session, [ids["p0.jpg"], ids["p0_copy.jpg"]])
        assert session.scalar(select(ImageDescriptor).where(ImageDescriptor.image_id == ids["p7.jpg"])) is not None
    result = runner.invoke(app, ["evaluate", "--collection", "coll", "--variants", WORDS, "--split", "none",
                                 "--no-progress", "--out", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith(WORDS))
    assert row.split()[1] == "200" and "100.0" in row  # the copy and its original find each other first


def test_groups_benchmark_fits_the_vocabulary_on_its_own_images(bow_folder, tmp_path, vislink_env):
    from vislink.evaluation.gallery import encode_gallery, evaluate_gallery
    from vislink.evaluation.groups import read_manifest

    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,group\n" + "".join(
        f"bow/{p.name},{'g' if p.name.startswith('p0') else ''}\n" for p in sorted(bow_folder.iterdir())))
    gallery = read_manifest(manifest)
    encoded = encode_gallery(gallery, [WORDS], progress=False)
    assert "trained on" in encoded.notes[0] and "9 images" in encoded.notes[0]
    report = evaluate_gallery(gallery, encoded)[0]
    assert report.variant == WORDS and report.n_queries == 2 and report.dimension == 200
    assert report.metrics["R@1"] == pytest.approx(1.0) and report.metrics["mAP"] == pytest.approx(1.0)
