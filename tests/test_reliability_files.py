"""One bad file never stops a folder ingest (issue #16 item 1): a file that cannot be read, a name that is not
valid text, formats vislink cannot decode, broken and looping links each end as a failure or a listed skip with
its reason, and the good files are ingested."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner


@pytest.fixture
def odd_folder(tmp_path, image_dir):
    import shutil

    root = tmp_path / "odd"
    shutil.copytree(image_dir, root)
    good = sorted(p.name for p in root.iterdir())
    (root / "drawing.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (root / "gone.jpg").symlink_to(root / "nowhere.jpg")
    (root / "loop.jpg").symlink_to(root / "loop.jpg")
    with open(os.fsencode(root) + b"/caf\xe9.jpg", "wb") as fh:  # Latin-1 bytes: not UTF-8
        fh.write((root / good[0]).read_bytes())
    (root / "locked.jpg").write_bytes((root / good[1]).read_bytes()[:-10] + b"0123456789")
    return root, good


def test_a_folder_of_odd_files_ingests_the_good_ones_and_lists_the_rest(vislink_env, odd_folder, monkeypatch):
    from vislink.cli import app
    from vislink.config import reset_settings
    from vislink.ingest import pipeline

    root, good = odd_folder
    locked = root / "locked.jpg"
    if os.geteuid() == 0:
        # Fake, named so: root reads every file whatever its mode, so the denial is simulated at the hash.
        real = pipeline.sha256_file

        def denied(path):
            if os.fspath(path) == os.fspath(locked):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path)

        monkeypatch.setattr(pipeline, "sha256_file", denied)
    else:
        locked.chmod(0)
    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    reset_settings()
    result = CliRunner().invoke(app, ["ingest", "folder", str(root), "--collection", "odd", "--variant",
                                      "vgg16-pool5-sum", "--no-progress"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"{len(good)} done" in out and "1 failed" in out and "failed unreadable: 1" in out
    assert "locked.jpg: unreadable: PermissionError: Permission denied" in out
    assert "5 left out (" in out and "2 not-an-image" in out and "2 broken-link" in out and "1 bad-name" in out
    for line in ("left out drawing.svg: not-an-image", "left out phone.heic: not-an-image",
                 "left out gone.jpg: broken-link", "left out loop.jpg: broken-link"):
        assert line in out, out


def test_a_name_that_is_not_text_is_listed_not_fatal(vislink_env, odd_folder):
    from vislink.ingest.sources.folder import folder_items

    root, good = odd_folder
    stream = folder_items(root)
    refs = [item.source_ref for item in stream]
    assert set(good) <= set(refs) and "locked.jpg" in refs
    skipped = {s.source_ref: s.reason for s in stream.skipped}
    assert skipped["caf\\xe9.jpg"] == "bad-name"
    assert skipped == {"caf\\xe9.jpg": "bad-name", "drawing.svg": "not-an-image", "phone.heic": "not-an-image",
                       "gone.jpg": "broken-link", "loop.jpg": "broken-link"}
