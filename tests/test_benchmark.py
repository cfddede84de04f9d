"""`vislink benchmark groups`: manifests, in-memory evaluation with the real encoder, stored runs, and the
reference numbers of ../shared/data/paintings_linked (VGG16 ImageNet conv weights, pool5 sum-pool)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from vislink.evaluation.metrics import target_ranks


def _picture(rng, h=56, w=72):
    from PIL import Image

    return Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8"))


@pytest.fixture
def grouped_folder(tmp_path):
    """Real JPEG files: group 'same' holds three byte-identical copies (always each other's nearest), group
    'pair' an image and a resized copy, group 'lone' one image (no query), and four distractors."""
    rng = np.random.default_rng(7)
    root = tmp_path / "set"
    (root / "img").mkdir(parents=True)
    rows = []
    base = _picture(rng)
    for name in ("same_a.jpg",):
        base.save(root / "img" / name, quality=90)
    for name in ("same_b.jpg", "same_c.jpg"):
        shutil.copy(root / "img" / "same_a.jpg", root / "img" / name)
    rows += [(f"img/same_{x}.jpg", "same") for x in "abc"]
    pair = _picture(rng)
    pair.save(root / "img" / "pair_1.jpg", quality=90)
    pair.resize((60, 47)).save(root / "img" / "pair_2.png")
    rows += [("img/pair_1.jpg", "pair"), ("img/pair_2.png", "pair")]
    _picture(rng).save(root / "img" / "lone.jpg")
    rows.append(("img/lone.jpg", "lone"))
    for i in range(4):
        _picture(rng, 40 + 6 * i, 64).save(root / "img" / f"d{i}.jpg")
        rows.append((f"img/d{i}.jpg", ""))
    manifest = root / "manifest.csv"
    manifest.write_text("file,group,note\n" + "".join(f"{f},{g},x\n" for f, g in rows))
    return manifest


def test_groups_benchmark_against_a_numpy_referee(grouped_folder, vislink_env, tmp_path):
    from vislink.cli import app
    from vislink.encoder import get_encoder, open_rgb
    from vislink.evaluation.groups import read_manifest
    from vislink.store import session_scope
    from vislink.store.models import EvaluationQueryResult, EvaluationRun

    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["benchmark", "groups", str(grouped_folder), "--weights", "random-0",
                                      "--variants", "vgg16-pool5-sum,vgg16-pool5-max", "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "10 images: 3 groups (6 images), 4 distractors" in result.output
    assert "5 queries in 2 groups, 10 images searched" in result.output  # 'lone' has no target
    # byte-identical copies: each one's two targets at ranks 1 and 2
    assert "img/same_a.jpg  AP 100.0  ranks 1, 2" in result.output

    gallery = read_manifest(grouped_folder)
    images = [open_rgb(item.path) for item in gallery.items]
    vecs = get_encoder("random-0").encode_images(images, ["vgg16-pool5-sum"])["vgg16-pool5-sum"]
    data = json.loads(next(out.glob("*.json")).read_text())
    run = next(r for r in data["runs"] if r["variant"] == "vgg16-pool5-sum")
    assert run["n_gallery"] == 10 and run["n_queries"] == 5 and run["benchmark"].startswith("groups:")
    refs = [item.ref for item in gallery.items]
    for q in run["queries"]:
        i = refs.index(q["query"])
        ranking = list(np.argsort(-(vecs @ vecs[i]), kind="stable"))
        targets = [refs.index(t["target"]) for t in q["targets"]]
        expected = target_ranks(ranking, targets, query=i)
        got = [t["rank"] for t in q["targets"]]
        # equal up to ties between equal scores (the copies): compare the sets of ranks
        assert sorted(got) == sorted(expected), q["query"]

    with session_scope(vislink_env.database_url) as session:
        runs = session.query(EvaluationRun).all()
        assert sorted(r.variant_name for r in runs) == ["vgg16-pool5-max", "vgg16-pool5-sum"]
        assert all(r.collection_id is None and r.weights_sha256 and r.n_queries == 5 for r in runs)
        assert session.query(EvaluationQueryResult).count() == 10


def test_groups_benchmark_fits_a_pca_variant_on_its_own_images(grouped_folder, vislink_env, tmp_path):
    # Issue #13 item 13: a -pcaN variant is fitted on the benchmark's images (and says so), not refused with a
    # Python API hint; its vectors are the whitening of the base descriptors.
    from vislink.cli import app
    from vislink.encoder import PCAWhitening, get_encoder, open_rgb
    from vislink.evaluation.groups import read_manifest

    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["benchmark", "groups", str(grouped_folder), "--weights", "random-0",
                                      "--variants", "vgg16-pool5-sum,vgg16-pool5-sum-pca4", "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "vgg16-pool5-sum-pca4: PCA whitening fitted on the 10 vgg16-pool5-sum descriptors" in result.output
    data = json.loads(next(out.glob("*.json")).read_text())
    run = next(r for r in data["runs"] if r["variant"] == "vgg16-pool5-sum-pca4")
    assert run["dimension"] == 4 and run["n_queries"] == 5
    gallery = read_manifest(grouped_folder)
    base = get_encoder("random-0").encode_images([open_rgb(i.path) for i in gallery.items],
                                                 ["vgg16-pool5-sum"])["vgg16-pool5-sum"]
    whitened = PCAWhitening.fit(base, 4).transform(base)
    refs = [item.ref for item in gallery.items]
    for q in run["queries"]:
        i = refs.index(q["query"])
        ranking = list(np.argsort(-(whitened @ whitened[i]), kind="stable"))
        expected = target_ranks(ranking, [refs.index(t["target"]) for t in q["targets"]], query=i)
        assert sorted(t["rank"] for t in q["targets"]) == sorted(expected), q["query"]
    too_many = CliRunner().invoke(app, ["benchmark", "groups", str(grouped_folder), "--weights", "random-0",
                                        "--variants", "vgg16-pool5-sum-pca64", "--out", str(out), "--no-progress"])
    assert too_many.exit_code == 1 and "needs at least 64 images, the benchmark has 10" in str(too_many.exception)


def test_manifest_errors_name_the_file(grouped_folder, tmp_path):
    from vislink.errors import ConfigError, NotFound
    from vislink.evaluation.groups import read_manifest

    bad = tmp_path / "bad.csv"
    bad.write_text("path,cluster\na.jpg,1\n")
    with pytest.raises(ConfigError, match="bad.csv: the header must name the columns 'file' and 'group'"):
        read_manifest(bad)
    missing = grouped_folder.parent / "missing.csv"
    missing.write_text(grouped_folder.read_text() + "img/nothere.jpg,pair,x\n")
    with pytest.raises(NotFound, match="missing.csv: 1 listed files are not under"):
        read_manifest(missing)
    gallery = read_manifest(missing, skip_missing=True)
    assert len(gallery.items) == 10 and "1 missing files skipped" in gallery.notes[0]
    with pytest.raises(NotFound):
        read_manifest(tmp_path / "none.csv")


# paintings_linked/README.md: weighted R[5] and mAP, VGG16 ImageNet conv weights with Caffe preprocessing.
REFERENCE = {"vgg16-pool5-sum": (87.3, 94.2), "vgg16-pool5-max": (92.0, 99.7), "vgg16-pool5-sp2x2-sum": (85.0, 94.2)}


@pytest.mark.shared
def test_paintings_linked_reproduces_the_reference(shared_data, caffe_weights, vislink_env, tmp_path):
    """README of paintings_linked: weighted R[5] and mAP of pool5 sum-pool (87.3, 94.2), max-pool (92.0, 99.7)
    and 2x2 sum-pool (85.0, 94.2), within 1.5 points. One forward pass gives all three."""
    from vislink.cli import app

    for f in caffe_weights.iterdir():
        shutil.copy(f, vislink_env.weights_dir / f.name)
    manifest = shared_data / "paintings_linked" / "manifest.csv"
    result = CliRunner().invoke(app, ["benchmark", "groups", str(manifest), "--weights", "vgg16-caffe-conv",
                                      "--variants", ",".join(REFERENCE), "--out", str(tmp_path / "r"),
                                      "--no-progress", "--no-ranks"])
    assert result.exit_code == 0, result.output
    data = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    runs = {run["variant"]: run for run in data["runs"]}
    assert set(runs) == set(REFERENCE)
    for variant, (r5, mean_ap) in REFERENCE.items():
        metrics = runs[variant]["metrics"]
        assert runs[variant]["n_gallery"] == 84 and runs[variant]["n_queries"] == 52
        assert abs(100 * metrics["R@5"] - r5) <= 1.5, (variant, metrics)
        assert abs(100 * metrics["mAP"] - mean_ap) <= 1.5, (variant, metrics)
