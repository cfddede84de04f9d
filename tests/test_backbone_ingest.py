"""A collection holding VGG16 and ONNX-backbone variants side by side, through the product's own paths: ingest
(each variant computed and recorded with its own weights), add-variant, a PCA variant of the ONNX one, search
(plain, mirrored, filtered) and the defaults for new collections. The ONNX backbone is a tiny graph the test
builds itself (tests/test_backbones.py), registered like SSCD is."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from test_backbones import TINY, TINY_DIM, TINY_SIDE, build_tiny_onnx, tiny_reference

BOTH = ["vgg16-pool5-sum", TINY]


@pytest.fixture
def env(vislink_env, monkeypatch, tmp_path):
    from vislink.config import reset_settings
    from vislink.encoder.onnx_backbone import clear_onnx_backbones
    from vislink.encoder.onnx_models import OnnxModel, register_onnx_model, unregister_onnx_model

    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    reset_settings()
    path = build_tiny_onnx(tmp_path / "tiny.onnx")
    register_onnx_model(OnnxModel(TINY, "tiny test graph", lambda: path, TINY_DIM, TINY_SIDE,
                                  install_hint="make it in the test"))
    clear_onnx_backbones()
    yield vislink_env
    unregister_onnx_model(TINY)
    clear_onnx_backbones()


def _paintings(folder, n=8):
    """Asymmetric pictures (a bright block in a corner that moves), so that a mirror is a different image."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(5)
    paths = []
    for i in range(n):
        arr = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
        im = Image.fromarray(arr).resize((96, 72), Image.Resampling.BICUBIC)
        block = np.asarray(im).copy()
        block[5:30, 4 + 6 * i: 24 + 6 * i] = (250, 240 - 20 * i, 20 * i)
        path = folder / f"p{i}.jpg"
        Image.fromarray(block).save(path, quality=95)
        paths.append(path)
    (folder / "meta.csv").write_text("file,artist\n" + "".join(f"p{i}.jpg,Artist {i % 2}\n" for i in range(n)))
    return paths


def test_ingest_records_each_variants_own_weights_and_vectors(env, tmp_path):
    from vislink.encoder.weights import describe_weights
    from vislink.index import open_index
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.store import collection_variants, get_collection, session_scope

    paths = _paintings(tmp_path / "imgs")
    summary = ingest("mix", folder_items(tmp_path / "imgs", tmp_path / "imgs" / "meta.csv"), variants=BOTH,
                     progress=False, batch_size=3)
    assert (summary.done, summary.failed) == (len(paths), 0)
    with session_scope() as session:
        rows = {v.name: v for v in collection_variants(session, get_collection(session, "mix"))}
    assert rows["vgg16-pool5-sum"].weights_name == "random"
    assert rows[TINY].weights_name == TINY and rows[TINY].weights_sha256 == describe_weights(TINY).sha256
    assert rows[TINY].dimension == TINY_DIM
    index = open_index()
    stored = {pid: vec for pid, _, vec in index.retrieve(rows[TINY].qdrant_collection, list(range(1, 20)),
                                                         with_vectors=True)}
    assert len(stored) == len(paths)
    # The stored vector is the tiny graph's output for that file (computed independently here).
    from vislink.store import Image as ImageRow

    with session_scope() as session:
        first = session.get(ImageRow, min(stored))
        expected = tiny_reference(Image.open(first.file_path).convert("RGB"), TINY_SIDE)
    np.testing.assert_allclose(stored[min(stored)], expected, atol=1e-4)


def test_search_add_variant_and_pca_on_the_onnx_variant(env, tmp_path):
    from vislink.ingest.reencode import add_variant
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.search import search

    paths = _paintings(tmp_path / "imgs")
    ingest("mix", folder_items(tmp_path / "imgs", tmp_path / "imgs" / "meta.csv"), variants=["vgg16-pool5-sum"],
           progress=False)
    row = add_variant("mix", TINY, progress=False)  # a second backbone added to an existing collection
    assert row.weights_name == TINY
    query = Image.open(paths[3]).convert("RGB")
    hits = search(query, collection="mix", variant=TINY, limit=3)
    assert hits[0].source_ref.endswith("p3.jpg") and hits[0].score == pytest.approx(1.0, abs=1e-4)
    filtered = search(query, collection="mix", variant=TINY, limit=8, filters={"artist": "Artist 0"})
    assert filtered and all(h.artist == "Artist 0" for h in filtered)
    mirrored_query = ImageOps.mirror(query)
    plain = search(mirrored_query, collection="mix", variant=TINY, limit=1)[0]
    both = search(mirrored_query, collection="mix", variant=TINY, limit=1, mirrored=True)[0]
    assert both.source_ref.endswith("p3.jpg") and both.score >= plain.score
    pca = add_variant("mix", f"{TINY}-pca4", progress=False)  # fitted on the collection's own tiny vectors
    assert pca.weights_name == TINY and pca.dimension == 4
    assert search(query, collection="mix", variant=f"{TINY}-pca4", limit=1)[0].source_ref.endswith("p3.jpg")


def test_vgg16_weights_of_a_collection_cannot_be_mixed_but_an_onnx_variant_can_join(env, tmp_path):
    from vislink.errors import ConflictError
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items

    _paintings(tmp_path / "imgs", 3)
    items = lambda: folder_items(tmp_path / "imgs", tmp_path / "imgs" / "meta.csv")  # noqa: E731
    ingest("mix", items(), variants=["vgg16-pool5-sum"], progress=False)
    with pytest.raises(ConflictError, match="was encoded with weights 'random', not 'random-7'"):
        ingest("mix", items(), variants=["vgg16-pool5-max"], weights="random-7", progress=False)
    summary = ingest("mix", items(), variants=[TINY], progress=False)  # the new variant only is computed
    assert summary.done == 3


@pytest.mark.parametrize("installed", [False, True])
def test_new_collections_get_sscd_next_to_the_paper_only_when_it_is_installed(env, monkeypatch, installed):
    from dataclasses import replace

    from vislink.encoder import weights as weights_module
    from vislink.ingest import collections

    real = weights_module.describe_weights

    def describe(name, settings=None):  # SSCD installed or not, whatever this machine has
        info = real(name, settings)
        return replace(info, installed=installed, sha256="0" * 64 if installed else None) if name == "sscd" else info

    monkeypatch.setattr(weights_module, "describe_weights", describe)
    monkeypatch.setenv("VISLINK_DEFAULT_VARIANTS", "auto")
    from vislink.config import reset_settings

    reset_settings()
    expected = ["vgg16-pool5-sum", "sscd"] if installed else list(collections.DEFAULT_VARIANTS)
    assert collections.default_variants() == expected


def test_the_default_variants_setting_names_them(env, monkeypatch):
    from vislink.config import reset_settings
    from vislink.ingest import collections

    monkeypatch.setenv("VISLINK_DEFAULT_VARIANTS", f"vgg16-pool5-max, {TINY}")
    reset_settings()
    assert collections.default_variants() == ["vgg16-pool5-max", TINY]


def test_the_encode_command_mixes_backbones(env, tmp_path):
    from typer.testing import CliRunner

    from vislink.cli import app

    paths = _paintings(tmp_path / "imgs", 2)
    result = CliRunner().invoke(app, ["encode", *map(str, paths), "-V", "vgg16-pool5-sum", "-V", TINY,
                                      "--weights", "random", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"{TINY}: weights {TINY} sha256=" in result.output and "vgg16-pool5-sum: weights random" in result.output
    assert f"dim={TINY_DIM} norm=1.0000" in result.output and "dim=512 norm=1.0000" in result.output


def test_a_mixed_benchmark_records_each_variants_weights(env, tmp_path):
    from vislink.encoder.weights import describe_weights
    from vislink.evaluation.gallery import encode_gallery, evaluate_gallery
    from vislink.evaluation.groups import read_manifest

    paths = _paintings(tmp_path / "imgs", 4)
    manifest = tmp_path / "imgs" / "manifest.csv"
    manifest.write_text("file,group\n" + "".join(f"{p.name},{'g' if i < 2 else ''}\n" for i, p in enumerate(paths)))
    gallery = read_manifest(manifest)
    encoded = encode_gallery(gallery, ["vgg16-pool5-sum", TINY, f"{TINY}-pca2"], cache=False, progress=False)
    reports = {r.variant: r for r in evaluate_gallery(gallery, encoded)}
    assert reports["vgg16-pool5-sum"].weights_name == "random"
    assert reports[TINY].weights_name == TINY and reports[TINY].weights_sha256 == describe_weights(TINY).sha256
    assert reports[f"{TINY}-pca2"].weights_name == TINY
