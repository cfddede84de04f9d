"""IIIF manifests (Presentation 2.1 and 3.0) and collections served by a real local HTTP server, with real
IIIF Image API services (info.json, size requests resized by Pillow, limits enforced with 400s)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from httpserver import make_jpeg
from vislink.errors import FetchError
from vislink.ingest.fetch import Fetcher
from vislink.ingest.sources import ImageService, SourceError, iiif_items, lang_text

DATA = Path(__file__).parent / "data" / "iiif"
DOCUMENTS = {
    "manifest_v2.json": "/iiif/v2/manifest.json",
    "manifest_v3.json": "/iiif/v3/manifest.json",
    "collection_v2.json": "/iiif/collection/top.json",
    "collection_v3.json": "/iiif/collection/nested-v3.json",
}


@pytest.fixture(scope="module")
def jpegs() -> dict[str, bytes]:
    """Made once per module: encoding a 2000 px JPEG is the slowest part of setting up the site."""
    return {"v2img": make_jpeg(2000, 1500, seed=1), "v3img": make_jpeg(1200, 1600, seed=2),
            "level0": make_jpeg(1000, 800, seed=3), "verso": make_jpeg(320, 240, seed=4)}


@pytest.fixture
def site(http_server, jpegs):
    """The test manifests, three Image API services and two plain images on the local server."""
    for name, path in DOCUMENTS.items():
        text = (DATA / name).read_text(encoding="utf-8").replace("{BASE}", http_server.base_url)
        http_server.add_bytes(path, text.encode(), "application/json")
    http_server.services = {
        "v2img": http_server.add_iiif_image("v2img", jpegs["v2img"], version=2, level=2,
                                            max_width=1500),
        "v3img": http_server.add_iiif_image("v3img", jpegs["v3img"], version=3, level=1,
                                            max_area=1_000_000),
        "level0": http_server.add_iiif_image("level0", jpegs["level0"], version=2, level=0,
                                             sizes=[(250, 200), (500, 400), (1000, 800)]),
    }
    (http_server.root / "images").mkdir()
    (http_server.root / "images" / "verso.jpg").write_bytes(jpegs["verso"])
    return http_server


@pytest.fixture
def fetcher(tmp_path):
    with Fetcher(tmp_path / "cache", timeout=5, retries=0, per_host_rate=None, allow_hosts="127.0.0.1") as f:
        yield f


def image_size(fetcher: Fetcher, url: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(fetcher.fetch_bytes(url))) as img:
        img.load()
        return img.size


def test_v2_manifest_first_canvas(site, fetcher):
    stream = iiif_items(site.url("iiif/v2/manifest.json"), fetcher=fetcher)
    items = list(stream)
    assert len(items) == 1
    item = items[0]
    base = site.base_url
    assert item.source_ref == f"{base}/iiif/v2/canvas/c1"
    assert item.url == f"{base}/iiif/v2img/full/1024,/0/default.jpg"
    meta = item.metadata
    assert meta["title"] == "Allegory of Peace, Art and Abundance"  # the English label of two
    assert meta["artist"] == "AACHEN, Hans von"
    assert meta["date_text"] == "c. 1598" and (meta["year_start"], meta["year_end"]) == (1593, 1603)
    assert meta["technique"] == "Oil on copper"  # "Medium"
    extra = meta["extra"]
    assert extra["iiif_metadata"]["Inventory number"] == "Inv. 1234"  # HTML removed
    assert extra["iiif_metadata"]["Dimensions"] == "56 x 47 cm"
    assert extra["summary"] == "Oil on copper. Test manifest modelled on a museum's Presentation 2.1 manifest."
    assert extra["attribution"] == "Provided by the vislink test museum"
    assert extra["rights"].startswith("https://creativecommons.org/")
    assert (extra["iiif_version"], extra["canvas_label"], extra["iiif_manifest"]) == (
        2, "recto", f"{base}/iiif/v2/manifest.json")
    assert extra["iiif_image_service"] == f"{base}/iiif/v2img"
    assert image_size(fetcher, item.url) == (1024, 768)
    assert site.hits("/iiif/v2img/info.json") == 1


def test_v2_all_canvases_and_fallbacks(site, fetcher):
    items = list(iiif_items(site.url("iiif/v2/manifest.json"), all_canvases=True, fetcher=fetcher, max_size=512))
    base = site.base_url
    assert [i.source_ref.rsplit("/", 1)[1] for i in items] == ["c1", "c2", "c3"]
    assert items[0].url == f"{base}/iiif/v2img/full/512,/0/default.jpg"
    assert items[1].url == f"{base}/images/verso.jpg"  # no service: the painting annotation's image
    # The third service has no info.json (404): the canvas size is only an estimate, so its level 2 server is
    # asked to fit the box (issue #20 item 3), never for full/full.
    assert items[2].url == f"{base}/iiif/gone/full/!512,512/0/default.jpg"
    assert [i.metadata["extra"]["canvas_index"] for i in items] == [0, 1, 2]
    assert all(i.metadata["title"] == items[0].metadata["title"] for i in items)
    assert image_size(fetcher, items[0].url) == (512, 384)
    assert image_size(fetcher, items[1].url) == (320, 240)


def test_v3_manifest_all_canvases(site, fetcher):
    stream = iiif_items(site.url("iiif/v3/manifest.json"), all_canvases=True, fetcher=fetcher)
    items = list(stream)
    base = site.base_url
    assert [i.source_ref for i in items] == [f"{base}/iiif/v3/canvas/p1", f"{base}/iiif/v3/canvas/p2"]
    assert [(s.source_ref, s.reason) for s in stream.skipped] == [(f"{base}/iiif/v3/canvas/p3", "no-image")]
    portrait, choice = items
    assert portrait.url == f"{base}/iiif/v3img/full/,1024/0/default.jpg"  # portrait: fit the height
    assert image_size(fetcher, portrait.url) == (768, 1024)
    # A Choice body: the first option, whose level 0 v2 service serves only its listed sizes.
    assert choice.url == f"{base}/iiif/level0/full/1000,/0/default.jpg"
    assert image_size(fetcher, choice.url) == (1000, 800)
    meta = portrait.metadata
    assert meta["title"] == "Judith with the Head of Holofernes"
    assert meta["artist"] == "ALLORI, Cristofano"  # "Creator", a language-neutral value
    assert (meta["date_text"], meta["year_start"], meta["year_end"]) == ("1613", 1613, 1613)
    assert (meta["school"], meta["type"], meta["location"]) == ("Italian", "painting", "Palazzo Pitti, Florence")
    assert meta["technique"] == "Oil on canvas, 139 x 116 cm"
    extra = meta["extra"]
    assert extra["iiif_metadata"]["Provenance"] == "Medici collection; Grand Ducal inventory 1663"
    assert extra["attribution"] == "vislink test museum" and extra["summary"].startswith("A test manifest")
    assert extra["iiif_version"] == 3 and extra["canvas_label"] == "front"


def test_language_choice(site, fetcher):
    item = next(iter(iiif_items(site.url("iiif/v3/manifest.json"), fetcher=fetcher, language="it")))
    assert item.metadata["title"] == "Giuditta con la testa di Oloferne"
    item = next(iter(iiif_items(site.url("iiif/v2/manifest.json"), fetcher=fetcher, language="de")))
    assert item.metadata["title"].startswith("Allegorie des Friedens")
    assert item.metadata["date_text"] == "um 1598"


def test_info_json_limits_are_respected(site, fetcher):
    """Asked for more than the servers allow, the requests stay inside maxWidth and maxArea (the test server
    answers 400 otherwise, and the fetch would fail)."""
    v2 = next(iter(iiif_items(site.url("iiif/v2/manifest.json"), fetcher=fetcher, max_size=4000)))
    w, h = image_size(fetcher, v2.url)
    assert w <= 1500 and w >= 1450  # maxWidth 1500, as large as allowed
    v3 = next(iter(iiif_items(site.url("iiif/v3/manifest.json"), fetcher=fetcher, max_size=4000)))
    w, h = image_size(fetcher, v3.url)
    assert w * h <= 1_000_000 and w * h > 950_000  # maxArea
    assert site.services["v3img"].size_requests[-1].startswith(",")
    small = list(iiif_items(site.url("iiif/v3/manifest.json"), all_canvases=True, fetcher=fetcher, max_size=300))
    assert small[1].url.endswith("/full/500,/0/default.jpg")  # level 0: the smallest listed size >= 300 px
    assert image_size(fetcher, small[1].url) == (500, 400)


def test_collections_recursively(site, fetcher):
    stream = iiif_items(site.url("iiif/collection/top.json"), fetcher=fetcher)
    items = list(stream)
    base = site.base_url
    assert [i.source_ref for i in items] == [f"{base}/iiif/v3/canvas/p1", f"{base}/iiif/v2/canvas/c1"]
    assert items[0].metadata["extra"]["iiif_collection"] == f"{base}/iiif/collection/nested-v3.json"
    assert items[1].metadata["extra"]["iiif_collection"] == f"{base}/iiif/collection/top.json"
    assert [(s.source_ref, s.reason) for s in stream.skipped] == [
        (f"{base}/iiif/missing/manifest.json", "fetch-failed")]
    assert "http-404" in stream.skipped[0].detail
    # Iterating again gives the same items from the cache: no manifest is requested twice.
    hits = site.hits("/iiif/v3/manifest.json")
    assert [i.source_ref for i in stream] == [i.source_ref for i in items]
    assert site.hits("/iiif/v3/manifest.json") == hits == 1


def test_manifest_from_a_file(site, fetcher, tmp_path):
    path = tmp_path / "m.json"
    path.write_text((DATA / "manifest_v3.json").read_text().replace("{BASE}", site.base_url))
    items = list(iiif_items(path, fetcher=fetcher))
    assert items[0].url == f"{site.base_url}/iiif/v3img/full/,1024/0/default.jpg"
    assert [i.url for i in iiif_items(path.as_uri(), fetcher=fetcher)] == [items[0].url]


def test_errors(site, fetcher, tmp_path):
    with pytest.raises(FetchError, match="http-404"):
        iiif_items(site.url("iiif/none.json"), fetcher=fetcher)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SourceError, match="not JSON"):
        iiif_items(bad, fetcher=fetcher)
    other = tmp_path / "other.json"
    other.write_text('{"@context": "http://iiif.io/api/presentation/3/context.json", "type": "Canvas", "id": "x"}')
    with pytest.raises(SourceError, match="not a IIIF manifest or collection"):
        list(iiif_items(other, fetcher=fetcher))
    with pytest.raises(SourceError, match="cannot read"):
        iiif_items(tmp_path / "absent.json", fetcher=fetcher)


@pytest.mark.parametrize("value, expected", [
    ({"en": ["Judith"], "it": ["Giuditta"]}, "Judith"),
    ({"none": ["ALLORI"]}, "ALLORI"),
    ({"en-GB": ["Colour"]}, "Colour"),
    ({"fr": ["Seulement"]}, "Seulement"),
    ({"en": ["a", "b"]}, "a; b"),
    ("plain <b>bold</b> &amp; more", "plain bold & more"),
    ([{"@value": "Datierung", "@language": "de"}, {"@value": "Date", "@language": "en"}], "Date"),
    ([{"@value": "Sans langue"}], "Sans langue"),
    (["one", "two"], "one; two"),
    ({"@value": "v", "@language": "en"}, "v"),
    (None, None),
    ({"en": []}, None),
])
def test_lang_text(value, expected):
    assert lang_text(value, "en") == expected


def test_size_parameter_rules():
    svc = ImageService
    assert svc("s", version=2, level=2).size_parameter(1024) == "!1024,1024"  # no size known
    assert svc("s", version=3, level=2).size_parameter(1024) == "!1024,1024"  # v3 !w,h never upscales
    assert svc("s", version=2, level=1).size_parameter(1024) == "1024,"  # !w,h is level 2 only
    known = {"from_info": True}  # sizes read from info.json; otherwise an estimate (issue #20 item 3)
    assert svc("s", version=3, level=2, width=4000, height=3000, **known).size_parameter(1024) == "1024,"
    assert svc("s", version=3, level=2, width=4000, height=3000).size_parameter(1024) == "!1024,1024"
    assert svc("s", version=3, level=2, width=500, height=300, **known).size_parameter(1024) == "max"  # no upscaling
    assert svc("s", version=2, level=2, width=500, height=300, **known).size_parameter(1024) == "full"
    assert svc("s", version=2, level=1, width=4000, height=3000).size_parameter(1024) == "1024,"  # estimate, level 1
    assert svc("s", version=2, level=0, width=4000, height=3000).size_parameter(1024) == "full"
    assert svc("s", version=3, level=0, width=4000, height=3000,
               sizes=[(400, 300), (2000, 1500)]).size_parameter(1024) == "2000,1500"
    assert svc("s", version=3, level=0, width=4000, height=3000,
               sizes=[(400, 300), (800, 600)]).size_parameter(1024) == "800,600"  # the largest there is
    # maxHeight defaults to maxWidth (Image API 3.0, 5.3)
    assert svc("s", version=3, level=1, width=1000, height=3000, max_width=800,
               **known).size_parameter(4000) == ",796"
    assert svc("s", version=2, level=1).image_url() == "s/full/1024,/0/default.jpg"  # never full/full blindly


def test_references_inside_documents_never_read_local_files(http_server, fetcher, tmp_path):
    # Issue #16 item 2: a collection served over HTTP whose members are local paths (or file:// URLs) made vislink
    # read this machine's files. Now they are listed as not followed, and a manifest's image must be http(s).
    secret = tmp_path / "secret.json"
    secret.write_text('{"@type": "sc:Manifest", "label": "SECRET", "sequences": []}')
    http_server.add_json("/evil/collection.json", {
        "@context": "http://iiif.io/api/presentation/2/context.json", "@type": "sc:Collection",
        "@id": http_server.url("/evil/collection.json"),
        "manifests": [{"@id": str(secret), "@type": "sc:Manifest"},
                      {"@id": f"file://{secret}", "@type": "sc:Manifest"},
                      {"@id": "/etc/passwd", "@type": "sc:Manifest"}]})
    http_server.add_json("/evil/manifest.json", {
        "@context": "http://iiif.io/api/presentation/2/context.json", "@type": "sc:Manifest",
        "@id": http_server.url("/evil/manifest.json"), "label": "x",
        "sequences": [{"canvases": [{"@id": "c1", "images": [{"resource": {"@id": f"file://{secret}"}}]}]}]})
    stream = iiif_items(http_server.url("/evil/collection.json"), fetcher=fetcher)
    assert list(stream) == []
    assert [s.reason for s in stream.skipped] == ["not-followed"] * 3
    assert all("http(s)" in s.detail for s in stream.skipped)
    manifest = iiif_items(http_server.url("/evil/manifest.json"), fetcher=fetcher)
    assert list(manifest) == [] and [s.reason for s in manifest.skipped] == ["bad-url"]
    # The same holds for a local collection the user named: only that one file is read.
    local = tmp_path / "local.json"
    local.write_text('{"@type": "sc:Collection", "manifests": [{"@id": "%s", "@type": "sc:Manifest"}]}' % secret)
    mine = iiif_items(local)
    assert list(mine) == [] and [s.reason for s in mine.skipped] == ["not-followed"]
