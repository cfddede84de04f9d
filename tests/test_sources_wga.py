"""The WGA catalog source: its three forms (xls in a zip, UTF-8 comma CSV, ISO-8859-1 semicolon text), filters,
image URLs and local WGA-layout folders. Small hand-made catalogs run everywhere; the real catalog and the real
image sample are read in place from ../shared/data when present."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from httpserver import make_jpeg
from vislink.ingest.sources import SourceError, read_wga_catalog, wga_catalog_items, wga_paths
from vislink.ingest.sources.wga import WGA_COLUMNS

HEADER = list(WGA_COLUMNS)
# Made-up rows in the catalog's shape (the real catalog is not ours to copy into the repository).
ROWS = [
    ["TESTER, Anna", "(b. 1552, Köln, d. 1615, Praha)", "Allegory of Testing", "1598.0", "Oil on copper, 56 x 47 cm",
     "Alte Pinakothek, Munich", "https://www.wga.hu/html/t/tester/allegory.html", "painting", "mythological",
     "German", "1601-1650"],
    ["TESTER, Anna", "(b. 1552, Köln, d. 1615, Praha)", "Bacchus; or, the Test", "-", "Oil on canvas",
     "Kunsthistorisches Museum, Vienna", "https://www.wga.hu/html/t/tester/bacchus.html", "painting", "mythological",
     "German", "1601-1650"],
    ["ÉCOLE, Maître de l'", "(active c. 1500 in Tours)", "Façade", "c. 1510-15", "Stone", "Tours",
     "https://www.wga.hu/html/e/ecole/facade.html", "architecture", "other", "French", "1501-1550"],
    ["MUSTER, Max", "(b. 1450, Ulm, d. 1520, Ulm)", "Madonna", "1545-50", "Tempera on panel", "Ulm",
     "https://www.wga.hu/html/m/muster/madonna1.html", "painting", "religious", "German", "1451-1500"],
    ["BAD, Url", "", "No page", "", "", "", "https://example.org/somewhere.htm", "painting", "other", "Other",
     "1501-1550"],
]


def write_csv(path, rows, delimiter=",", encoding="utf-8"):
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow(HEADER)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def test_wga_paths():
    assert wga_paths("https://www.wga.hu/html/a/aachen/allegory.html") == (
        "a/aachen/allegory.jpg", "https://www.wga.hu/art/a/aachen/allegory.jpg")
    assert wga_paths("https://www.wga.hu/html/a/aachen/allegory1.html", "http://mirror.test/")[1] == \
        "http://mirror.test/art/a/aachen/allegory1.jpg"
    assert wga_paths("https://www.wga.hu/frames-e.html?/html/a/aachen/allegory.html") is None
    assert wga_paths("https://www.wga.hu/html/../../etc/passwd.html") is None


def test_comma_and_semicolon_latin1_forms_agree(tmp_path):
    comma = write_csv(tmp_path / "catalog.csv", ROWS)
    semi = write_csv(tmp_path / "catalog.txt", ROWS, delimiter=";", encoding="iso-8859-1")
    assert b"\xc9COLE" in semi.read_bytes()  # really Latin-1 bytes
    assert read_wga_catalog(comma) == read_wga_catalog(semi)
    items = list(wga_catalog_items(semi))
    assert [i.metadata for i in items] == [i.metadata for i in wga_catalog_items(comma)]


def test_items_keep_every_column(tmp_path):
    stream = wga_catalog_items(write_csv(tmp_path / "catalog.csv", ROWS))
    items = list(stream)
    first = items[0]
    assert first.source_ref == first.url == "https://www.wga.hu/art/t/tester/allegory.jpg"
    assert first.local_path is None
    assert first.metadata == {
        "artist": "TESTER, Anna", "artist_dates": "(b. 1552, Köln, d. 1615, Praha)", "title": "Allegory of Testing",
        "date_text": "1598", "year_start": 1598, "year_end": 1598, "technique": "Oil on copper, 56 x 47 cm",
        "location": "Alte Pinakothek, Munich", "form": "painting", "type": "mythological", "school": "German",
        "timeframe": "1601-1650",
        "extra": {"wga_page_url": "https://www.wga.hu/html/t/tester/allegory.html",
                  "wga_path": "t/tester/allegory.jpg"},
    }
    assert items[1].metadata["date_text"] == "-" and "year_start" not in items[1].metadata
    assert (items[2].metadata["year_start"], items[2].metadata["year_end"]) == (1505, 1520)
    assert (items[3].metadata["year_start"], items[3].metadata["year_end"]) == (1545, 1550)
    assert [(s.reason, s.source_ref) for s in stream.skipped] == [("bad-url", "https://example.org/somewhere.htm")]


def test_filters(tmp_path):
    path = write_csv(tmp_path / "catalog.csv", ROWS)

    def refs(**kw):
        return [i.metadata["extra"]["wga_path"] for i in wga_catalog_items(path, **kw)]

    assert refs(where={"FORM": "painting"}) == ["t/tester/allegory.jpg", "t/tester/bacchus.jpg",
                                                "m/muster/madonna1.jpg"]
    assert refs(where={"form": "PAINTING", "timeframe": "1451-1500"}) == ["m/muster/madonna1.jpg"]
    assert refs(where={"school": ["French", "Italian"]}) == ["e/ecole/facade.jpg"]
    assert refs(timeframe=(1500, 1650)) == ["t/tester/allegory.jpg", "t/tester/bacchus.jpg", "e/ecole/facade.jpg"]
    assert refs(timeframe="1501-1600") == ["e/ecole/facade.jpg"]
    assert refs(where={"TIMEFRAME": "1501-1650"}) == ["t/tester/allegory.jpg", "t/tester/bacchus.jpg",
                                                      "e/ecole/facade.jpg"]
    assert refs(where={"timeframe": ["1451-1500", "1601-1650"], "form": "painting"}) == [
        "t/tester/allegory.jpg", "t/tester/bacchus.jpg", "m/muster/madonna1.jpg"]
    assert refs(timeframe=(None, 1550)) == ["e/ecole/facade.jpg", "m/muster/madonna1.jpg"]
    assert refs(where={"FORM": "painting"}, limit=2) == ["t/tester/allegory.jpg", "t/tester/bacchus.jpg"]
    with pytest.raises(SourceError, match="unknown WGA filter field"):
        wga_catalog_items(path, where={"colour": "red"})
    with pytest.raises(SourceError, match="timeframe"):
        wga_catalog_items(path, timeframe="16th century")


def test_local_images_root_and_missing_images(tmp_path):
    root = tmp_path / "art"
    (root / "t" / "tester").mkdir(parents=True)
    (root / "t" / "tester" / "allegory.jpg").write_bytes(make_jpeg(30, 20))
    stream = wga_catalog_items(write_csv(tmp_path / "catalog.csv", ROWS), images_root=root,
                               where={"form": "painting"})
    items = list(stream)
    assert [(i.source_ref, i.local_path, i.url) for i in items] == [
        ("https://www.wga.hu/art/t/tester/allegory.jpg", root / "t/tester/allegory.jpg", None)]
    assert stream.counts() == {"missing-image": 2, "bad-url": 1}
    assert {s.source_ref for s in stream.skipped if s.reason == "missing-image"} == {
        "https://www.wga.hu/art/t/tester/bacchus.jpg", "https://www.wga.hu/art/m/muster/madonna1.jpg"}


def test_catalog_errors(tmp_path):
    with pytest.raises(SourceError, match="no such catalog"):
        read_wga_catalog(tmp_path / "none.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("AUTHOR,TITLE\nA,B\n")
    with pytest.raises(SourceError, match="missing column"):
        read_wga_catalog(wrong)
    empty_zip = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty_zip, "w") as zf:
        zf.writestr("readme.md", "nothing here")
    with pytest.raises(SourceError, match="no .xls or .csv"):
        read_wga_catalog(empty_zip)
    with pytest.raises(SourceError, match="images root"):
        wga_catalog_items(write_csv(tmp_path / "c.csv", ROWS), images_root=tmp_path / "nowhere")


def test_zipped_csv(tmp_path):
    archive = tmp_path / "catalog.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("__MACOSX/._catalog.csv", b"resource fork")
        zf.writestr("catalog.csv", write_csv(tmp_path / "y.csv", ROWS).read_bytes())
    assert len(read_wga_catalog(archive)) == len(ROWS)


# ---------------------------------------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def real_csv_rows(shared_data):
    return read_wga_catalog(shared_data / "wga" / "catalog_2018.csv")


@pytest.mark.shared
def test_real_xls_in_zip_equals_real_csv(shared_data, real_csv_rows):
    xls_rows = read_wga_catalog(shared_data / "wga" / "data_xls.zip")
    assert len(xls_rows) == len(real_csv_rows) == 44809
    assert xls_rows == real_csv_rows
    assert xls_rows[0]["DATE"] == "1598"  # a number cell in the sheet, 1598.0 in the CSV


@pytest.mark.shared
def test_real_rows_as_wga_text_version(shared_data, real_csv_rows, tmp_path):
    """The first 3,000 real rows re-encoded as WGA's text version (semicolons, ISO-8859-1) read back the same."""
    with open(shared_data / "wga" / "catalog_2018.csv", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        raw = [row for _, row in zip(range(3000), reader)]
    latin = [row for row in raw if all(c.encode("iso-8859-1", "ignore").decode("iso-8859-1") == c for c in row)]
    assert any(any(ord(ch) > 127 for ch in "".join(row)) for row in latin)  # accents really go through Latin-1
    text_version = write_real(tmp_path / "catalog.txt", header, latin, ";", "iso-8859-1")
    comma_version = write_real(tmp_path / "catalog.csv", header, latin, ",", "utf-8")
    rows = read_wga_catalog(text_version)
    assert len(rows) == len(latin) > 2900
    assert rows == read_wga_catalog(comma_version)
    assert rows[0] == real_csv_rows[0]


def write_real(path, header, rows, delimiter, encoding):
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


@pytest.mark.shared
def test_real_catalog_over_real_image_sample(shared_data, real_csv_rows):
    """Paintings of the 2018 catalog against the 1,818 real WGA files: present ones get local paths that open,
    the others are reported, and the counts add up."""
    from PIL import Image

    root = shared_data / "wga_sample" / "images"
    stream = wga_catalog_items(shared_data / "wga" / "catalog_2018.csv", images_root=root,
                               where={"FORM": "painting"})
    items = list(stream)
    paintings = sum(1 for r in real_csv_rows if r["FORM"] == "painting")
    assert len(items) + len(stream.skipped) == paintings
    assert 700 <= len(items) <= 800  # the README: 776 paintings in the sample
    assert set(stream.counts()) == {"missing-image"}
    for item in items[:20]:
        assert item.local_path.is_relative_to(root) and item.url is None
        assert item.source_ref == "https://www.wga.hu/art/" + item.metadata["extra"]["wga_path"]
        with Image.open(item.local_path) as img:
            img.verify()
    bacchus = next(i for i in items if i.metadata["extra"]["wga_path"] == "a/aachen/bacchus.jpg")
    assert bacchus.metadata["title"] == "Bacchus, Ceres and Cupid" and bacchus.metadata["school"] == "German"
