"""Folder, upload and URL-list sources on real files."""

from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from httpserver import make_jpeg
from vislink.errors import BadImage
from vislink.ingest.sources import (
    IMAGE_FIELDS,
    SourceError,
    SourceItem,
    folder_items,
    sanitize_filename,
    upload_item,
    url_csv_items,
)


@pytest.fixture
def tree(tmp_path):
    """A folder of real images in sub-folders, with files that must be ignored."""
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    files = {
        "a.jpg": make_jpeg(40, 30, seed=1),
        "B.JPEG": make_jpeg(40, 30, seed=2),
        "sub/c.png": None,
        "sub/deeper/d.tif": None,
        "sub/deeper/e.webp": None,
    }
    for rel, data in files.items():
        path = root / rel
        if data is not None:
            path.write_bytes(data)
        else:
            Image.new("RGB", (20, 10), (200, 10, 10)).save(path)
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "._c.png").write_bytes(b"resource fork")
    (root / ".hidden" / "x.jpg").write_bytes(make_jpeg(8, 8))
    return root


def test_folder_walks_recursively_in_order(tree):
    items = list(folder_items(tree))
    assert [i.source_ref for i in items] == ["B.JPEG", "a.jpg", "sub/c.png", "sub/deeper/d.tif", "sub/deeper/e.webp"]
    for item in items:
        assert item.local_path == tree / item.source_ref and item.url is None
        assert item.metadata == {"extra": {}}
        with Image.open(item.local_path) as img:
            img.load()


def test_folder_metadata_csv(tree, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text(
        "path,Artist,title,DATE,school,inventory,year_start\n"
        "a.jpg,\"AACHEN, Hans von\",Allegory,1598.0,German,Inv. 1,\n"
        "./sub/c.png,Anon,Study,c. 1510-15,,,1505\n"
        "sub\\deeper\\d.tif,X,Backslashes,,,,\n"
        "gone.jpg,Nobody,Missing file,,,,\n"
        "a.jpg,Someone else,A second row,,,,\n",
        encoding="utf-8",
    )
    stream = folder_items(tree, meta)
    by_ref = {i.source_ref: i for i in stream}
    a = by_ref["a.jpg"].metadata
    assert a["artist"] == "AACHEN, Hans von" and a["title"] == "Allegory" and a["school"] == "German"
    assert a["date_text"] == "1598.0" and (a["year_start"], a["year_end"]) == (1598, 1598)
    assert a["extra"] == {"inventory": "Inv. 1"}
    c = by_ref["sub/c.png"].metadata
    assert c["year_start"] == 1505 and "year_end" not in c  # given years win over the parsed date
    assert by_ref["sub/deeper/d.tif"].metadata["title"] == "Backslashes"
    assert by_ref["B.JPEG"].metadata == {"extra": {}}
    assert set(a) <= set(IMAGE_FIELDS) | {"extra"}
    assert {(s.source_ref, s.reason) for s in stream.skipped} == {("gone.jpg", "missing-file"), ("a.jpg", "duplicate")}
    assert stream.counts()["missing-file"] == 1


def test_folder_metadata_csv_latin1_semicolon(tree, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_bytes("file;artist;location\na.jpg;DÜRER, Albrecht;Nürnberg\n".encode("latin-1"))
    item = next(i for i in folder_items(tree, meta) if i.source_ref == "a.jpg")
    assert item.metadata["artist"] == "DÜRER, Albrecht" and item.metadata["location"] == "Nürnberg"


def test_folder_errors(tree, tmp_path):
    with pytest.raises(SourceError, match="not a folder"):
        folder_items(tmp_path / "nope")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,artist\na.jpg,X\n")
    with pytest.raises(SourceError, match="'file' or 'path' column"):
        folder_items(tree, bad)


def test_long_values_are_clipped_to_their_columns(tree, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("file,form\na.jpg," + "x" * 100 + "\n")
    item = next(i for i in folder_items(tree, meta) if i.source_ref == "a.jpg")
    assert len(item.metadata["form"]) == 60 and item.metadata["extra"]["form_full"] == "x" * 100


def test_upload_is_stored_under_its_hash(tmp_path):
    data = make_jpeg(50, 40, seed=7)
    item = upload_item("../../etc/passwd/<evil>.jpg", data, cache_dir=tmp_path, max_bytes=10**6)
    digest = hashlib.sha256(data).hexdigest()
    assert item.local_path == tmp_path / "uploads" / digest and item.local_path.read_bytes() == data
    assert item.source_ref == f"upload:{digest}"
    assert item.metadata["extra"]["original_filename"] == "_evil_.jpg"
    assert not list(tmp_path.rglob("*evil*"))  # the user's name is never a path
    again = upload_item("other.jpg", data, cache_dir=tmp_path, max_bytes=10**6)
    assert again.source_ref == item.source_ref and again.local_path == item.local_path


def test_upload_refuses_empty_and_oversized(tmp_path):
    with pytest.raises(BadImage) as info:
        upload_item("x.jpg", b"", cache_dir=tmp_path, max_bytes=100)
    assert info.value.reason == "empty-file"
    with pytest.raises(BadImage) as info:
        upload_item("x.jpg", b"x" * 101, cache_dir=tmp_path, max_bytes=100)
    assert info.value.reason == "too-large"
    assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").iterdir())


def test_upload_defaults_come_from_settings(vislink_env):
    item = upload_item("a.jpg", b"\xff\xd8 some bytes")
    assert item.local_path.parent == vislink_env.cache_dir / "uploads"


@pytest.mark.parametrize("name, expected", [
    ("photo.jpg", "photo.jpg"), ("C:\\Users\\me\\scan.tif", "scan.tif"), ("..", "upload"), ("", "upload"),
    (None, "upload"), (".bashrc", "bashrc"), ("a\x00b.png", "a_b.png"), ("x" * 300 + ".jpg", "x" * 196 + ".jpg"),
])
def test_sanitize_filename(name, expected):
    assert sanitize_filename(name) == expected


def test_url_csv(tmp_path):
    path = tmp_path / "urls.csv"
    path.write_text(
        "URL,artist,title,date,collection_id\n"
        "https://example.org/a.jpg,Anon,First,1540s,17\n"
        "http://example.org/b.jpg,,Second,,\n"
        "ftp://example.org/c.jpg,,Bad scheme,,\n"
        ",,No URL,,\n"
        "https://example.org/a.jpg,,Again,,\n",
        encoding="utf-8",
    )
    stream = url_csv_items(path)
    items = list(stream)
    assert [(i.source_ref, i.url) for i in items] == [("https://example.org/a.jpg", "https://example.org/a.jpg"),
                                                      ("http://example.org/b.jpg", "http://example.org/b.jpg")]
    first = items[0].metadata
    assert first["artist"] == "Anon" and first["date_text"] == "1540s" and first["year_start"] == 1540
    assert first["extra"] == {"collection_id": "17"}
    assert items[1].metadata == {"title": "Second", "extra": {}}
    assert sorted(stream.counts().items()) == [("bad-url", 2), ("duplicate", 1)]


def test_url_csv_needs_url_column(tmp_path):
    path = tmp_path / "urls.csv"
    path.write_text("link,title\nhttps://x/a.jpg,A\n")
    with pytest.raises(SourceError, match="'url' column"):
        url_csv_items(path)


def test_source_item_contract():
    item = SourceItem("x", {"title": "T", "artist": "A"}, url="https://example.org/x.jpg")
    assert item.metadata["extra"] == {}
    assert item.image_columns() == {"title": "T", "artist": "A", "extra": {}}
    with pytest.raises(SourceError):
        SourceItem("y", {})  # neither a file nor a URL
