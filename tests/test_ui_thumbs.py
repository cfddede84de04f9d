"""The thumbnail cache and the `vislink ui` command (no Streamlit server needed)."""

from __future__ import annotations

import hashlib
import os

import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_thumbnail_is_small_made_once_and_named_by_hash(vislink_env, tmp_path):
    from vislink.ui import thumbs

    src = tmp_path / "big.jpg"
    PILImage.effect_noise((1200, 800), 40).convert("RGB").save(src, quality=90)
    sha = _sha(src)
    first = thumbs.thumbnail(str(src), sha, 256)
    assert first == vislink_env.thumbs_dir / f"{sha}_256.jpg"
    with PILImage.open(first) as im:
        assert max(im.size) == 256 and im.size[0] > im.size[1] and im.mode == "RGB"
    assert first.stat().st_size < src.stat().st_size / 5
    mtime = first.stat().st_mtime_ns
    src.unlink()  # the cache answers without the original
    assert thumbs.thumbnail(None, sha, 256) == first and first.stat().st_mtime_ns == mtime
    with pytest.raises(ValueError):
        thumbs.thumbnail(str(src), sha, 300)  # only the fixed sizes exist
    with pytest.raises(ValueError):
        thumbs.thumb_path("../../etc/passwd", 256)  # names come from hashes only


def test_thumbnails_of_odd_images_and_failures(vislink_env, tmp_path):
    from vislink.ui import thumbs

    rgba = tmp_path / "transparent.png"
    PILImage.new("RGBA", (300, 100), (255, 0, 0, 0)).save(rgba)
    portrait = tmp_path / "portrait.png"
    PILImage.new("P", (50, 400), 3).save(portrait)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    relative = vislink_env.images_dir / "ab" / "rel.jpg"
    relative.parent.mkdir(parents=True)
    PILImage.new("RGB", (64, 64), (0, 0, 255)).save(relative)
    items = [(str(rgba), _sha(rgba)), (str(portrait), _sha(portrait)), (str(broken), _sha(broken)),
             ("images/ab/rel.jpg", _sha(relative)), (None, None), (str(tmp_path / "missing.jpg"), "ab" * 32)]
    out = thumbs.thumbnails(items, 128)
    assert out[2] is None and out[4] is None and out[5] is None
    with PILImage.open(out[0]) as im:
        assert im.getpixel((10, 10)) == pytest.approx((255, 255, 255), abs=3)  # transparency on white
    with PILImage.open(out[1]) as im:
        assert im.size[1] == 128 and im.size[0] < 20
    with PILImage.open(out[3]) as im:
        assert im.size == (64, 64)  # never enlarged
    assert not list(vislink_env.thumbs_dir.glob("*.part"))  # no half-written files left
    assert thumbs.prune(keep=[items[0][1]]) == 2
    assert [p.name for p in vislink_env.thumbs_dir.iterdir()] == [f"{items[0][1]}_128.jpg"]


def test_ui_command_line(vislink_env, monkeypatch):
    from vislink.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["ui", "--help"])
    assert result.exit_code == 0 and "--port" in result.output and "--host" in result.output
    monkeypatch.setenv("VISLINK_MAX_UPLOAD_MB", "7")
    from vislink.config import reset_settings

    reset_settings()
    result = runner.invoke(app, ["ui", "--dry-run", "--port", "8765"])
    assert result.exit_code == 0, result.output
    cmd = result.output.split()
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith(os.path.join("vislink", "ui", "app.py"))
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == "7"
    result = runner.invoke(app, ["ui", "--port", "70000"])
    assert result.exit_code != 0 and "port" in str(result.exception or result.output)


def test_thumbnails_command_prepares_a_collection(vislink_env, image_dir):
    from vislink.cli import app
    from vislink.store import Collection, Image, ImageStatus, session_scope

    files = sorted(image_dir.glob("*.jpg"))
    with session_scope() as session:
        coll = Collection(name="c")
        session.add(coll)
        session.flush()
        for i, path in enumerate(files):
            session.add(Image(collection_id=coll.id, source_ref=path.name, sha256=_sha(path), file_path=str(path),
                              status=ImageStatus.done if i else ImageStatus.failed))
    result = CliRunner().invoke(app, ["thumbnails", "--collection", "c", "--size", "128", "--size", "256",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    made = sorted(p.name for p in vislink_env.thumbs_dir.iterdir())
    assert made == sorted(f"{_sha(p)}_{s}.jpg" for p in files[1:] for s in (128, 256))  # failed image skipped
    assert CliRunner().invoke(app, ["thumbnails", "--size", "100"]).exit_code != 0
    assert CliRunner().invoke(app, ["thumbnails", "--collection", "nope"]).exit_code != 0


def test_pregenerate_makes_every_encoded_images_thumbnails(vislink_env, image_dir):
    from vislink.errors import ConfigError, NotFound
    from vislink.store import Collection, Image, ImageStatus, session_scope
    from vislink.ui import thumbs

    files = sorted(image_dir.glob("*.jpg"))
    with session_scope() as session:
        for name in ("a", "b"):
            coll = Collection(name=name)
            session.add(coll)
            session.flush()
            for i, path in enumerate(files):
                # b holds the same files as a (one thumbnail each); a's first image failed to ingest.
                status = ImageStatus.failed if (name, i) == ("a", 0) else ImageStatus.done
                session.add(Image(collection_id=coll.id, source_ref=f"{name}/{path.name}", sha256=_sha(path),
                                  file_path=str(path), status=status))
    assert sorted(thumbs.image_files("a")) == sorted((str(p), _sha(p)) for p in files[1:])
    assert len(thumbs.image_files()) == len(files)  # a's and b's rows are the same pairs: listed once
    assert thumbs.pregenerate("a", (128,), progress=False) == (len(files) - 1, 0)
    assert sorted(p.name for p in vislink_env.thumbs_dir.iterdir()) == sorted(f"{_sha(p)}_128.jpg" for p in files[1:])
    files[1].unlink()  # its thumbnail exists already; another size cannot be made
    assert thumbs.pregenerate(None, (128, 256), progress=False) == (2 * len(files) - 1, 1)
    with pytest.raises(ConfigError, match="thumbnails come in sizes 128, 256, 512"):
        thumbs.pregenerate(None, (100,))
    with pytest.raises(NotFound):
        thumbs.image_files("nope")
