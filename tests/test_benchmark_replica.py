"""`vislink benchmark replica-wga` on a small Replica-style set made here (real JPEGs in a WGA-layout folder,
links.csv, images.csv, a WGA catalog CSV), from the folder and downloaded from the local HTTP server; and,
by hand only, the paper's protocol in miniature on ../shared/data/wga_sample."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

WGA_HEADER = "AUTHOR,BORN-DIED,TITLE,DATE,TECHNIQUE,LOCATION,URL,FORM,TYPE,SCHOOL,TIMEFRAME\n"


def _jpeg(path: Path, rng, size=(64, 48)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype("uint8")).save(path, quality=90)


@pytest.fixture
def replica_set(tmp_path):
    """Group 10: a chain of links p1 - p1_copy - p1_small (a component, not a clique); group 11: one image
    present, its partner missing; group 12: two copies. Catalog: five distractor rows (one file missing) and
    the row of a Replica image. One more file in the folder is in no catalog."""
    from PIL import Image

    rng = np.random.default_rng(11)
    root = tmp_path / "wga"
    _jpeg(root / "a/alpha/p1.jpg", rng)
    shutil.copy(root / "a/alpha/p1.jpg", root / "a/alpha/p1_copy.jpg")
    with Image.open(root / "a/alpha/p1.jpg") as im:
        im.resize((56, 42)).save(root / "a/alpha/p1_small.jpg", quality=90)
    _jpeg(root / "b/beta/q1.jpg", rng)
    _jpeg(root / "c/gamma/r1.jpg", rng)
    shutil.copy(root / "c/gamma/r1.jpg", root / "c/gamma/r2.jpg")
    for i in range(4):
        _jpeg(root / f"d/delta/d{i}.jpg", rng, (60 + 4 * i, 48))
    _jpeg(root / "e/eps/extra.jpg", rng)

    art = "http://www.wga.hu/art/"
    images = {"u1": ("10", "a/alpha/p1.jpg"), "u2": ("10", "a/alpha/p1_copy.jpg"),
              "u3": ("10", "a/alpha/p1_small.jpg"), "u4": ("11", "b/beta/q1.jpg"), "u5": ("11", "b/beta/q2.jpg"),
              "u6": ("12", "c/gamma/r1.jpg"), "u7": ("12", "c/gamma/r2.jpg")}
    meta = tmp_path / "replica"
    meta.mkdir()
    (meta / "images.csv").write_text("uid,group,wga_image_url,AUTHOR\n" + "".join(
        f"{uid},{g},{art}{p},X\n" for uid, (g, p) in images.items()))
    (meta / "links.csv").write_text("uid1,uid2,group\nu1,u2,10\nu2,u3,10\nu4,u5,11\nu6,u7,12\n")
    rows = [f"d/delta/d{i}" for i in range(5)] + ["a/alpha/p1"]
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(WGA_HEADER + "".join(
        f'"DELTA, D",(1500-1560),T{i},1540,Oil,Rome,https://www.wga.hu/html/{p}.html,painting,religious,Italian,'
        f"1501-1550\n" for i, p in enumerate(rows)))
    return {"root": root, "meta": meta, "catalog": catalog}


def _cli(args):
    from vislink.cli import app

    return CliRunner().invoke(app, ["benchmark", "replica-wga", *args])


def test_replica_from_a_local_folder(replica_set, vislink_env, tmp_path):
    s = replica_set
    common = ["--replica", str(s["meta"]), "--catalog", str(s["catalog"]), "--images-root", str(s["root"]),
              "--weights", "random-0", "--no-progress"]
    result = _cli(common + ["--out", str(tmp_path / "r1")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Replica: 7 linked images in 3 groups; found 6" in out
    assert "2 groups have 2 or more images present (5 images: the queries)" in out
    assert "distractors: 4 catalog images (of 5 catalog rows not linked; 1 not in the folder)" in out
    assert "search space: 10 images" in out
    assert "5 queries in 2 groups, 10 images searched" in out
    for column in ("R[20]", "R[50]", "R[100]", "R[200]"):
        assert column in out
    # Table 2: byte-identical copies find each other first
    assert re.search(r"c/gamma/r1\.jpg +AP 100\.0  ranks 1\n", out)
    run = json.loads(next((tmp_path / "r1").glob("*.json")).read_text())["runs"][0]
    q = next(q for q in run["queries"] if q["query"] == "a/alpha/p1_small.jpg")
    # targets through the chain of links: the whole component
    assert sorted(t["target"] for t in q["targets"]) == ["a/alpha/p1.jpg", "a/alpha/p1_copy.jpg"]
    assert run["benchmark"] == "replica-wga" and run["n_gallery"] == 10

    result = _cli(common + ["--distractors", "2", "--no-store", "--no-ranks", "--out", str(tmp_path / "r2")])
    assert result.exit_code == 0, result.output
    assert "search space: 8 images" in result.output
    result = _cli(common + ["--distractor-source", "folder", "--no-store", "--out", str(tmp_path / "r3")])
    assert result.exit_code == 0, result.output
    assert "distractors: 5 image files of the folder" in result.output and "search space: 11 images" in result.output

    from vislink.store import session_scope
    from vislink.store.models import EvaluationRun

    with session_scope(vislink_env.database_url) as session:
        assert [r.benchmark for r in session.query(EvaluationRun)] == ["replica-wga"]


def test_replica_downloaded_from_a_web_server_matches_the_local_folder(replica_set, vislink_env, http_server):
    from vislink.evaluation.gallery import encode_gallery, evaluate_gallery
    from vislink.evaluation.replica import ImageSource, build_replica_gallery
    from vislink.ingest.fetch import Fetcher

    s = replica_set
    shutil.copytree(s["root"], http_server.root / "art")
    links, images = s["meta"] / "links.csv", s["meta"] / "images.csv"
    fetcher = Fetcher(vislink_env.cache_dir / "http", per_host_rate=None, retries=0)
    remote = ImageSource(base_url=http_server.base_url, fetcher=fetcher)
    web = build_replica_gallery(links, images, remote, catalog=s["catalog"])
    assert http_server.hits("/art/a/alpha/p1_small.jpg") == 1
    assert http_server.hits("/art/b/beta/q2.jpg") == 1  # tried, 404: not found
    assert "b/beta/q2.jpg" in remote.failures
    assert "found 6 (downloads from" in web.notes[0]
    local = build_replica_gallery(links, images, ImageSource(images_root=s["root"]), catalog=s["catalog"])
    assert [i.ref for i in web.items] == [i.ref for i in local.items]
    assert [i.group for i in web.items] == [i.group for i in local.items]
    reports = {}
    for name, gallery in (("web", web), ("local", local)):
        encoded = encode_gallery(gallery, ["vgg16-pool5-sum"], weights="random-0", progress=False)
        reports[name] = evaluate_gallery(gallery, encoded)[0]
    assert reports["web"].metrics == pytest.approx(reports["local"].metrics)
    assert reports["web"].n_gallery == 10


def test_replica_input_errors(replica_set, tmp_path):
    from vislink.errors import ConfigError, FormatError, NotFound
    from vislink.evaluation.replica import ImageSource, build_replica_gallery, parse_distractors, read_replica

    s = replica_set
    bad = tmp_path / "links_bad.csv"
    bad.write_text("uid1,uid2\nu1,u99\n")
    with pytest.raises(FormatError, match="uid u99 is not in"):
        read_replica(bad, s["meta"] / "images.csv")
    with pytest.raises(NotFound, match="Replica file not found"):
        read_replica(tmp_path / "nope.csv", s["meta"] / "images.csv")
    with pytest.raises(ConfigError, match="pass --catalog"):
        build_replica_gallery(s["meta"] / "links.csv", s["meta"] / "images.csv", ImageSource(images_root=s["root"]))
    assert parse_distractors("all") is None and parse_distractors("12") == 12
    with pytest.raises(ConfigError):
        parse_distractors("many")


@pytest.mark.shared
@pytest.mark.skipif(not os.environ.get("VISLINK_SLOW_TESTS"),
                    reason="encodes 1,818 images (minutes on 2 cores): run by hand with VISLINK_SLOW_TESTS=1")
def test_wga_sample_miniature_protocol(shared_data, vislink_env, tmp_path):
    """README of wga_sample: pool5 sum-pool R[5] 60.0, R[20] 72.5, R[200] 77.1, mAP 43.9 (11 queries)."""
    from vislink.encoder.weights import install_weights
    from vislink.errors import WeightsUnavailable

    try:
        install_weights("vgg16-caffe-conv", vislink_env)
    except WeightsUnavailable as exc:
        pytest.skip(f"vgg16-caffe-conv weights cannot be installed here: {exc}")
    result = _cli(["--replica", str(shared_data / "replica_wga"), "--catalog",
                   str(shared_data / "wga" / "catalog_2018.csv"), "--images-root",
                   str(shared_data / "wga_sample" / "images"), "--distractor-source", "folder",
                   "--weights", "vgg16-caffe-conv", "--no-progress", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "4 groups have 2 or more images present (11 images: the queries)" in result.output
    metrics = json.loads(next(tmp_path.glob("*.json")).read_text())["runs"][0]["metrics"]
    for key, ref in (("R@5", 60.0), ("R@20", 72.5), ("R@200", 77.1), ("mAP", 43.9)):
        assert abs(100 * metrics[key] - ref) <= 1.5, (key, metrics)
