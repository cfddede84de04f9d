"""`vislink demo`: the online sample (WGA catalog + Replica links, served here by a local HTTP server) and the
offline folder, ending with every doctor check green."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select
from typer.testing import CliRunner

from vislink.cli import app
from vislink.formats.replica import replica_wga_links
from vislink.ingest.replica_sample import build_demo_sample
from vislink.ingest.sources.wga import WGA_COLUMNS

runner = CliRunner()


def _write_wga_site(root, n_paintings=6):
    """A WGA-like site: catalog CSV, /art/ images, and a Replica morphograph CSV linking p0-p1-p2 and p3-p4."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n_paintings):
        path = f"a/artist{i % 2}/p{i}.jpg"
        (root / "art" / path).parent.mkdir(parents=True, exist_ok=True)
        arr = (rng.random((40, 56, 3)) * 255).astype("uint8")
        PILImage.fromarray(arr).save(root / "art" / path, quality=90)
        rows.append({"AUTHOR": f"ARTIST {i % 2}", "BORN-DIED": "(b. 1500)", "TITLE": f"Painting {i}",
                     "DATE": "c. 1550", "TECHNIQUE": "Oil", "LOCATION": "Museum", "URL":
                     f"https://www.wga.hu/html/{path[:-4]}.html", "FORM": "painting", "TYPE": "religious",
                     "SCHOOL": "Italian", "TIMEFRAME": "1551-1600"})
    with open(root / "catalog.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=WGA_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    uid = {i: f"u{i}" for i in range(n_paintings)}
    with open(root / "morpho.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["uid", "path", "img1", "img2", "type", "cluster_file"])
        writer.writeheader()
        for a, b in [(0, 1), (1, 2), (3, 4)]:
            writer.writerow({"uid": uid[a], "path": f"../data/WGA/images/a/artist{a % 2}/p{a}.jpg", "img1": uid[a],
                             "img2": uid[b], "type": "POSITIVE", "cluster_file": "Original"})
            writer.writerow({"uid": uid[b], "path": f"../data/WGA/images/a/artist{b % 2}/p{b}.jpg", "img1": uid[a],
                             "img2": uid[b], "type": "POSITIVE", "cluster_file": "Original"})
        # A link annotated later by clustering, not by the experts: left out.
        writer.writerow({"uid": uid[5], "path": "../data/WGA/images/a/artist1/p5.jpg", "img1": uid[5],
                         "img2": uid[0], "type": "POSITIVE", "cluster_file": "01-06-2022/clusters"})


def test_sample_takes_whole_groups_then_paintings(tmp_path):
    _write_wga_site(tmp_path)
    links = replica_wga_links(tmp_path / "morpho.csv")
    assert links == [("a/artist0/p0.jpg", "a/artist1/p1.jpg"), ("a/artist0/p2.jpg", "a/artist1/p1.jpg"),
                     ("a/artist0/p4.jpg", "a/artist1/p3.jpg")]
    sample = build_demo_sample(tmp_path / "catalog.csv", links, size=6, linked_share=0.5)
    # Budget 3 linked images: the group of 3 fits, the pair does not; 3 distractors fill the rest.
    assert sample.groups == [["a/artist0/p0.jpg", "a/artist0/p2.jpg", "a/artist1/p1.jpg"]]
    assert len(sample.items) == 6 and len(sample.links) == 2


@pytest.fixture
def demo_env(vislink_env, monkeypatch):
    from vislink.config import reset_settings

    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    reset_settings()
    return vislink_env


def test_online_demo_ingests_links_and_passes_doctor(demo_env, http_server):
    from vislink.store import Image, ImageStatus, Link, session_scope

    _write_wga_site(http_server.root)
    result = runner.invoke(app, ["demo", "--no-ui", "--size", "6", "--catalog-url", http_server.url("catalog.csv"),
                                 "--links-url", http_server.url("morpho.csv"), "--wga-url", http_server.url("")])
    assert result.exit_code == 0, result.output
    assert "all checks pass" in result.output
    assert "2 expert links imported" in result.output or "3 expert links imported" in result.output
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Image).where(Image.status == ImageStatus.done)) == 6
        assert session.scalar(select(func.count()).select_from(Link)) >= 2


def test_offline_demo_from_a_folder(demo_env, image_dir):
    from vislink.store import Image, session_scope

    result = runner.invoke(app, ["demo", "--no-ui", "--images", str(image_dir)])
    assert result.exit_code == 0, result.output
    assert "annotator account: demo /" in result.output
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == len(list(image_dir.iterdir()))


def test_offline_demo_without_network_says_what_to_do(demo_env):
    result = runner.invoke(app, ["demo", "--no-ui", "--catalog-url", "http://127.0.0.1:9/catalog.zip",
                                 "--links-url", "http://127.0.0.1:9/links.csv"])
    assert result.exit_code != 0
    assert "--images DIR" in str(result.exception) + result.output


def test_import_wga_links_links_encoded_images_by_wga_path(demo_env):
    from vislink.ingest.demo import import_wga_links
    from vislink.store import Annotator, Collection, Image, ImageStatus, Link, session_scope

    with session_scope() as session:
        coll = Collection(name="wga")
        session.add(coll)
        session.flush()
        for i, status in enumerate([ImageStatus.done, ImageStatus.done, ImageStatus.done, ImageStatus.failed]):
            session.add(Image(collection_id=coll.id, source_ref=f"r{i}", status=status,
                              extra={"wga_path": f"a/x/p{i}.jpg"}))
    links = [("a/x/p0.jpg", "a/x/p1.jpg"), ("a/x/p1.jpg", "a/x/p2.jpg"),
             ("a/x/p2.jpg", "a/x/p3.jpg"),  # p3 failed to ingest: left out
             ("a/x/p0.jpg", "a/x/absent.jpg")]  # not in the collection: left out
    assert import_wga_links("wga", links) == 2
    assert import_wga_links("wga", links) == 2  # again: the same two, unchanged
    with session_scope() as session:
        rows = session.scalars(select(Link)).all()
        assert len(rows) == 2 and {r.type.value for r in rows} == {"positive"}
        assert {session.get(Annotator, r.annotator_id).name for r in rows} == {"replica"}


def test_demo_annotator_is_created_once(demo_env):
    from vislink.graph.annotators import verify_password
    from vislink.ingest.demo import ensure_annotator
    from vislink.store import session_scope

    password = ensure_annotator("demo")
    assert password and ensure_annotator("demo") is None
    with session_scope() as session:
        assert verify_password(session, "demo", password) is not None
