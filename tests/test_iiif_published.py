"""IIIF as institutions publish it (issue #20): small hand-written v2 and v3 manifests, served by the real local
HTTP server, for each class of document that used to fail: canvases painted with sound, video or text; Choice and
SpecificResource bodies with regions and rotations; odd shapes and undecodable documents inside collections;
Image API 1.0 / 1.1 / 2.x / 3.0 services and sizes without info.json; canvas ids repeated across manifests;
the metadata labels museums and libraries use; info.json fetched concurrently. No encoding except where an
ingest is the point (repeated canvas ids, the CLI's exit code), with the random-weight encoder on tiny images."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from httpserver import Reply, make_jpeg
from vislink.ingest.fetch import Fetcher
from vislink.ingest.sources import iiif_items
from vislink.ingest.sources.iiif_metadata import metadata_fields

P2 = "http://iiif.io/api/presentation/2/context.json"
P3 = "http://iiif.io/api/presentation/3/context.json"


@pytest.fixture
def fetcher(tmp_path):
    with Fetcher(tmp_path / "cache", timeout=5, retries=0, per_host_rate=None, allow_hosts="127.0.0.1") as f:
        yield f


@pytest.fixture(scope="module")
def small_jpeg() -> bytes:
    return make_jpeg(400, 300, seed=7)


def v3_canvas(cid: str, body, *, width=4000, height=3000, motivation="painting") -> dict:
    return {"id": cid, "type": "Canvas", "width": width, "height": height,
            "items": [{"id": f"{cid}/page", "type": "AnnotationPage",
                       "items": [{"id": f"{cid}/anno", "type": "Annotation", "motivation": motivation,
                                  "body": body, "target": cid}]}]}


def v3_manifest(mid: str, canvases: list, **fields) -> dict:
    return {"@context": P3, "id": mid, "type": "Manifest", "label": {"en": ["A test manifest"]},
            "items": canvases, **fields}


def v2_manifest(mid: str, canvases: list, **fields) -> dict:
    return {"@context": P2, "@id": mid, "@type": "sc:Manifest", "label": "A v2 test manifest",
            "sequences": [{"@type": "sc:Sequence", "canvases": canvases}], **fields}


def v2_canvas(cid: str, resource, *, width=4000, height=3000) -> dict:
    return {"@id": cid, "@type": "sc:Canvas", "width": width, "height": height,
            "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "resource": resource, "on": cid}]}


def info2(sid: str, width=4000, height=3000, level=2) -> dict:
    return {"@context": "http://iiif.io/api/image/2/context.json", "@id": sid, "protocol": "http://iiif.io/api/image",
            "width": width, "height": height, "profile": [f"http://iiif.io/api/image/2/level{level}.json"]}


def info3(sid: str, width=4000, height=3000, level=2) -> dict:
    return {"@context": "http://iiif.io/api/image/3/context.json", "id": sid, "type": "ImageService3",
            "protocol": "http://iiif.io/api/image", "profile": f"level{level}", "width": width, "height": height}


# ------------------------------------------------------------------------------------------ 1. only images


def test_v3_only_image_bodies_are_images(http_server, fetcher):
    base = http_server.base_url
    svc = f"{base}/img/s3"
    http_server.add_json("/img/s3/info.json", info3(svc))
    service = [{"id": svc, "type": "ImageService3", "profile": "level2"}]
    image = {"id": f"{base}/img/s3/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
             "service": service}
    canvases = [
        v3_canvas(f"{base}/c/sound", {"id": f"{base}/media/a.mp3", "type": "Sound", "format": "audio/mpeg"}),
        v3_canvas(f"{base}/c/video", {"id": f"{base}/media/v.mp4", "type": "Video"}),
        v3_canvas(f"{base}/c/dash", {"id": f"{base}/media/stream.mpd"}),  # no type: the extension says video
        v3_canvas(f"{base}/c/text", {"type": "TextualBody", "value": "a transcription"}),
        v3_canvas(f"{base}/c/choice", {"type": "Choice", "items": [
            {"id": f"{base}/media/v.mp4", "type": "Video"},
            {**image, "label": {"en": ["natural light"]}},
            {"id": f"{base}/img/ir.jpg", "type": "Image", "label": {"en": ["infrared"]}}]}),
        v3_canvas(f"{base}/c/region", {"id": f"{base}/c/region/body/b1", "type": "SpecificResource",
                                       "source": image, "selector": {"type": "ImageApiSelector",
                                                                     "region": "1000,500,2000,1000",
                                                                     "rotation": "90"}}),
        v3_canvas(f"{base}/c/fragment", {"type": "SpecificResource", "source": image,
                                         "selector": [{"type": "FragmentSelector",
                                                       "value": "xywh=pixel:0,0,1500,3000"}]}),
        v3_canvas(f"{base}/c/specific-sound", {"type": "SpecificResource",
                                               "source": {"id": f"{base}/media/a.m4a", "type": "Sound"}}),
    ]
    stream = iiif_items(_serve(http_server, "/m3.json", v3_manifest(f"{base}/m3.json", canvases)),
                        all_canvases=True, fetcher=fetcher)
    items = {i.source_ref.rsplit("/", 1)[1]: i for i in stream}
    assert sorted(items) == ["choice", "fragment", "region"]
    skipped = {s.source_ref.rsplit("/", 1)[1]: (s.reason, s.detail) for s in stream.skipped}
    assert {k: r for k, (r, _) in skipped.items()} == dict.fromkeys(
        ["sound", "video", "dash", "text", "specific-sound"], "no-image")
    assert "Sound" in skipped["sound"][1] and "a.mp3" in skipped["sound"][1]
    assert skipped["dash"][1].startswith("painted with Video")
    # A Choice: the first image option (the video is not one); the other image kept in the payload.
    choice = items["choice"]
    assert choice.url == f"{svc}/full/1024,/0/default.jpg"
    assert choice.metadata["extra"]["iiif_choice"] == [{"id": f"{base}/img/ir.jpg", "label": "infrared"}]
    # A SpecificResource: the source's service, not the body's own id, with the selector's region and rotation;
    # the size is the region's (2000 x 1000 -> 1024 wide).
    region = items["region"]
    assert region.url == f"{svc}/1000,500,2000,1000/1024,/90/default.jpg"
    assert (region.metadata["extra"]["iiif_region"], region.metadata["extra"]["iiif_rotation"]) == (
        "1000,500,2000,1000", "90")
    assert items["fragment"].url == f"{svc}/0,0,1500,3000/,1024/0/default.jpg"  # portrait region


def _serve(server, path: str, doc: dict) -> str:
    server.add_json(path, doc)
    return server.url(path)


def test_v2_choice_specific_resource_and_sound(http_server, fetcher):
    base = http_server.base_url
    svc = f"{base}/img/s2"
    http_server.add_json("/img/s2/info.json", info2(svc, level=1))
    image = {"@id": f"{base}/img/s2/full/full/0/default.jpg", "@type": "dctypes:Image",
             "service": {"@context": "http://iiif.io/api/image/2/context.json", "@id": svc,
                         "profile": "http://iiif.io/api/image/2/level1.json"}}
    canvases = [
        v2_canvas(f"{base}/c/audio", {"@id": f"{base}/media/a.mp3", "@type": "dctypes:Sound"}),
        v2_canvas(f"{base}/c/choice", {"@type": "oa:Choice", "default": {**image, "label": "default"},
                                       "item": [{"@id": f"{base}/img/uv.jpg", "@type": "dctypes:Image",
                                                 "label": "ultraviolet"}]}),
        v2_canvas(f"{base}/c/part", {"@type": "oa:SpecificResource", "full": image,
                                     "selector": {"@type": "iiif:ImageApiSelector", "region": "0,0,2000,3000",
                                                  "rotation": "90"}}),
        v2_canvas(f"{base}/c/plain", {"@id": f"{base}/img/plain"}),  # v2 images need not say they are images
    ]
    stream = iiif_items(_serve(http_server, "/m2.json", v2_manifest(f"{base}/m2.json", canvases)),
                        all_canvases=True, fetcher=fetcher)
    items = {i.source_ref.rsplit("/", 1)[1]: i for i in stream}
    assert [(s.source_ref.rsplit("/", 1)[1], s.reason) for s in stream.skipped] == [("audio", "no-image")]
    assert items["choice"].url == f"{svc}/full/1024,/0/default.jpg"
    assert items["choice"].metadata["extra"]["iiif_choice"] == [{"id": f"{base}/img/uv.jpg", "label": "ultraviolet"}]
    # Level 1 serves a region but not a rotation: the rotation is named as not applied.
    part = items["part"]
    assert part.url == f"{svc}/0,0,2000,3000/,1024/0/default.jpg"
    assert "rotation 90" in part.metadata["extra"]["iiif_not_applied"][0]
    assert items["plain"].url == f"{base}/img/plain"


def test_painting_among_other_motivations_and_resource_lists():
    from vislink.ingest.sources.iiif_bodies import painted_image

    caption = {"type": "Annotation", "motivation": "supplementing",
               "body": {"id": "https://x/captions.vtt", "type": "Text"}}
    painting = {"type": "Annotation", "motivation": ["painting"], "body": {"id": "https://x/p.jpg", "type": "Image"}}
    canvas = {"id": "c", "type": "Canvas", "items": [{"type": "AnnotationPage", "items": [caption, painting]}]}
    assert painted_image(canvas, 3).id == "https://x/p.jpg"
    v2 = {"@id": "c", "images": [{"motivation": "sc:painting", "resource": [{"@id": "https://x/a.mp3",
                                                                            "@type": "dctypes:Sound"},
                                                                           {"@id": "https://x/b.jpg"}]}]}
    assert painted_image(v2, 2).id == "https://x/b.jpg"


# ------------------------------------------------------------------------------------------ 2. odd shapes


def test_malformed_members_are_skipped_and_the_walk_goes_on(http_server, fetcher):
    base = http_server.base_url
    good = v2_manifest(f"{base}/good.json", [v2_canvas(f"{base}/c/good", {"@id": f"{base}/img/good.jpg"})])
    # sequences as an object instead of a list: read as the one sequence it is
    obj = v2_manifest(f"{base}/object.json", [])
    obj["sequences"] = {"@type": "sc:Sequence", "canvases": [v2_canvas(f"{base}/c/obj", {"@id": f"{base}/o.jpg"})]}
    http_server.add_json("/good.json", good)
    http_server.add_json("/object.json", obj)
    http_server.add_json("/string-seq.json", {**v2_manifest(f"{base}/string-seq.json", []), "sequences": "none"})
    http_server.add_json("/bad-canvas.json", v2_manifest(f"{base}/bad-canvas.json", ["not a canvas", 3]))
    http_server.add_json("/images-number.json", v2_manifest(f"{base}/images-number.json", [
        {"@id": f"{base}/c/n", "images": 5}]))
    http_server.add_bytes("/not-json.json", b"<html><body>Service Unavailable</body></html>", "application/json")
    http_server.add_bytes("/binary.json", b"\x81\x8d\x8f\x90\x9d" * 10, "application/json")
    latin = v2_manifest(f"{base}/latin.json", [v2_canvas(f"{base}/c/latin", {"@id": f"{base}/l.jpg"})])
    latin["label"] = "Tête de femme"
    http_server.add_bytes("/latin.json", json.dumps(latin, ensure_ascii=False).encode("latin-1"),
                          "application/json; charset=ISO-8859-1")
    cp = v2_manifest(f"{base}/cp.json", [v2_canvas(f"{base}/c/cp", {"@id": f"{base}/cp.jpg"})])
    cp["label"] = "L’Été"  # cp1252 quotes, no charset declared
    http_server.add_bytes("/cp.json", json.dumps(cp, ensure_ascii=False).encode("cp1252"), "application/json")
    u16 = v2_manifest(f"{base}/u16.json", [v2_canvas(f"{base}/c/u16", {"@id": f"{base}/u16.jpg"})])
    http_server.add_bytes("/u16.json", json.dumps(u16).encode("utf-16"), "application/json")
    members = ["/string-seq.json", "/bad-canvas.json", "/images-number.json", "/not-json.json", "/binary.json",
               "/object.json", "/latin.json", "/cp.json", "/u16.json", "/good.json"]
    collection = {"@context": P2, "@id": f"{base}/coll.json", "@type": "sc:Collection",
                  "manifests": [{"@id": f"{base}{m}", "@type": "sc:Manifest"} for m in members] + [42]}
    stream = iiif_items(_serve(http_server, "/coll.json", collection), fetcher=fetcher)
    items = list(stream)
    assert [i.source_ref.rsplit("/", 1)[1] for i in items] == ["obj", "latin", "cp", "u16", "good"]
    assert items[1].metadata["title"] == "Tête de femme" and items[2].metadata["title"] == "L’Été"
    why = {s.source_ref.replace(base, ""): (s.reason, s.detail) for s in stream.skipped}
    assert why["/string-seq.json"][0] == "bad-manifest" and "sequences is a str" in why["/string-seq.json"][1]
    assert why["/bad-canvas.json#canvas=0"][0] == "bad-manifest" and "canvas 0 is a str" in \
        why["/bad-canvas.json#canvas=0"][1]
    assert why["/c/n"][0] == "bad-manifest" and "images is a int" in why["/c/n"][1]
    assert why["/not-json.json"][0] == "fetch-failed" and "not JSON" in why["/not-json.json"][1]
    assert why["/binary.json"][0] == "fetch-failed" and "not UTF-8" in why["/binary.json"][1]
    assert why["/coll.json"][0] == "bad-manifest" and "a member is a int" in why["/coll.json"][1]
    assert all(f"{base}/" in detail for _, detail in why.values())  # every reason names the document


def test_v3_malformed_members_are_skipped_and_the_walk_goes_on(http_server, fetcher):
    base = http_server.base_url
    good = v3_manifest(f"{base}/v3good.json", [v3_canvas(f"{base}/c/v3good", {"id": f"{base}/g.jpg", "type": "Image"})])
    one = v3_manifest(f"{base}/v3one.json", [])
    one["items"] = v3_canvas(f"{base}/c/v3one", {"id": f"{base}/o.jpg", "type": "Image"})  # an object, not a list
    pages = v3_manifest(f"{base}/v3pages.json", [{"id": f"{base}/c/pages", "type": "Canvas", "items": "page"}])
    body = v3_manifest(f"{base}/v3body.json", [v3_canvas(f"{base}/c/body", 7)])
    collection = {"@context": P3, "id": f"{base}/v3coll.json", "type": "Collection", "label": {"en": ["c"]},
                  "items": [one, pages, body, {"id": f"{base}/v3items.json", "type": "Manifest"},
                            "not a member", good]}
    http_server.add_json("/v3items.json", {**v3_manifest(f"{base}/v3items.json", []), "items": 12})
    stream = iiif_items(_serve(http_server, "/v3coll.json", collection), fetcher=fetcher)
    assert [i.source_ref.rsplit("/", 1)[1] for i in stream] == ["v3one", "v3good"]
    why = {s.source_ref.replace(base, ""): (s.reason, s.detail) for s in stream.skipped}
    assert why["/c/pages"][0] == "bad-manifest" and "the canvas's items is a str" in why["/c/pages"][1]
    assert why["/c/body"][0] == "bad-manifest" and "body is a int" in why["/c/body"][1]
    assert why["/v3items.json"][0] == "bad-manifest" and "the manifest's items is a int" in why["/v3items.json"][1]
    assert why["/v3coll.json"][0] == "bad-manifest" and "a member is a str" in why["/v3coll.json"][1]


def test_collections_nested_too_deep_are_cut_and_the_rest_walked(http_server, fetcher):
    base = http_server.base_url
    leaf = v3_manifest(f"{base}/deep.json", [v3_canvas(f"{base}/c/deep", {"id": f"{base}/d.jpg", "type": "Image"})])
    doc = leaf
    for level in range(10, 0, -1):  # ten collections, each holding the next
        doc = {"@context": P3, "id": f"{base}/level{level}.json", "type": "Collection", "label": {"en": ["l"]},
               "items": [doc]}
    shallow = v3_manifest(f"{base}/shallow.json", [v3_canvas(f"{base}/c/shallow",
                                                             {"id": f"{base}/s.jpg", "type": "Image"})])
    doc["items"].append(shallow)
    stream = iiif_items(_serve(http_server, "/level1.json", doc), fetcher=fetcher, max_depth=8)
    assert [i.source_ref for i in stream] == [f"{base}/c/shallow"]
    assert [(s.source_ref, s.reason) for s in stream.skipped] == [(f"{base}/level9.json", "too-deep")]


# ------------------------------------------------------------------------------------------ 3. Image API versions


def _one_canvas_manifest(server, name: str, service: dict, *, width=4396, height=6197) -> str:
    base = server.base_url
    body = {"@id": f"{service.get('@id') or service.get('id')}/full/full/0/native.jpg", "@type": "dctypes:Image",
            "width": 400, "height": 563, "service": service}  # the body's size: a small derivative
    return _serve(server, f"/{name}.json", v2_manifest(f"{base}/{name}.json",
                                                       [v2_canvas(f"{base}/c/{name}", body, width=width,
                                                                  height=height)]))


def test_image_api_1_0_url(http_server, fetcher):
    sid = http_server.url("/iiif1.0/page")
    http_server.add_json("/iiif1.0/page/info.json", {  # 1.0: no @context, an identifier, a compliance profile
        "identifier": "page", "width": 4396, "height": 6197, "formats": ["jpg"], "qualities": ["native"],
        "profile": "http://library.stanford.edu/iiif/image-api/compliance.html#level1"})
    url = _one_canvas_manifest(http_server, "v10", {
        "@id": sid, "profile": "http://library.stanford.edu/iiif/image-api/compliance.html#level1"})
    item = next(iter(iiif_items(url, fetcher=fetcher)))
    assert item.url == f"{sid}/full/,1024/0/native.jpg"
    assert item.metadata["extra"]["iiif_image_api"] == 1


def test_image_api_1_1_url_from_conforms_to_and_without_info(http_server, fetcher):
    sid = http_server.url("/iiif1.1/scroll")
    service = {"@context": "http://iiif.io/api/image/1/context.json", "@id": sid,
               "dcterms:conformsTo": "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level2"}
    # info.json answers 404: the size comes from the canvas (a 62651 x 1976 scroll, not the 400 px body) and the
    # level 2 server is asked to fit a box whose short side keeps the encoders' 288 px (4096 long); never full/full.
    item = next(iter(iiif_items(_one_canvas_manifest(http_server, "v11", service, width=62651, height=1976),
                                fetcher=fetcher)))
    assert item.url == f"{sid}/full/!4096,4096/0/native.jpg"
    http_server.add_json("/iiif1.1/scroll/info.json", {
        "@context": "http://library.stanford.edu/iiif/image-api/1.1/context.json", "@id": sid,
        "width": 62651, "height": 1976,
        "profile": "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level1"})
    fresh = Fetcher(fetcher.cache_dir.parent / "cache2", timeout=5, retries=0, per_host_rate=None,
                    allow_hosts="127.0.0.1")
    item = next(iter(iiif_items(http_server.url("/v11.json"), fetcher=fresh)))
    assert item.url == f"{sid}/full/4096,/0/native.jpg"  # level 1 from info.json: w, (4096 x 129, not 1024 x 32)
    fresh.close()


@pytest.mark.parametrize("minor", ["2.0", "2.1"])
def test_image_api_2_url(http_server, fetcher, minor):
    sid = http_server.url(f"/iiif{minor}/page")
    info = info2(sid, 4396, 6197, level=1 if minor == "2.0" else 2)
    if minor == "2.1":
        info["profile"].append({"maxWidth": 600})
    http_server.add_json(f"/iiif{minor}/page/info.json", info)
    url = _one_canvas_manifest(http_server, f"v{minor}", {"@context": "http://iiif.io/api/image/2/context.json",
                                                          "@id": sid, "profile": info["profile"][0]})
    item = next(iter(iiif_items(url, fetcher=fetcher)))
    expected = ",1024" if minor == "2.0" else ",597"  # 2.1: maxWidth 600 (and the maxHeight it implies)
    assert item.url == f"{sid}/full/{expected}/0/default.jpg"


def test_image_api_3_url(http_server, fetcher):
    sid = http_server.url("/iiif3/page")
    http_server.add_json("/iiif3/page/info.json", info3(sid, 500, 300, level=1))
    url = _one_canvas_manifest(http_server, "v3", {"id": sid, "type": "ImageService3", "profile": "level1"})
    item = next(iter(iiif_items(url, fetcher=fetcher)))
    assert item.url == f"{sid}/full/max/0/default.jpg"  # smaller than 1024: max, never upscaled
    http_server.add_json("/iiif3/big/info.json", info3(http_server.url("/iiif3/big"), 4000, 3000, level=2))
    url = _one_canvas_manifest(http_server, "v3big", {"id": http_server.url("/iiif3/big"), "type": "ImageService3",
                                                      "profile": "level2"})
    big = next(iter(iiif_items(url, fetcher=fetcher)))
    assert big.url == f"{http_server.url('/iiif3/big')}/full/1024,/0/default.jpg"


def test_cookbook_rotation_and_image_service1_without_info(http_server, fetcher):
    """Shapes of the IIIF cookbook's 0040 (a SpecificResource turned 90 degrees on a level 1 v3 service, the canvas
    in turned coordinates) and 0036 (an ImageService1 service) recipes, their info.json unreachable (404)."""
    base = http_server.base_url
    turned = {"id": f"{base}/c/turned/body", "type": "SpecificResource",
              "source": {"id": f"{base}/iiif3/p1/full/max/0/default.jpg", "type": "Image", "width": 1523,
                         "height": 2105, "service": [{"id": f"{base}/iiif3/p1", "type": "ImageService3",
                                                      "profile": "level1"}]},
              "selector": {"@context": "http://iiif.io/api/annex/openannotation/context.json",
                           "type": "iiif:ImageApiSelector", "rotation": "90"}}
    v1 = {"id": f"{base}/iiif1/mini/full/full/0/native.jpg", "type": "Image", "format": "image/jpeg",
          "service": [{"id": f"{base}/iiif1/mini", "type": "ImageService1", "profile": "level2"}]}
    manifest = v3_manifest(f"{base}/cookbook.json", [v3_canvas(f"{base}/c/turned", turned, width=2105, height=1523),
                                                     v3_canvas(f"{base}/c/v1", v1, width=2138, height=2414)])
    items = list(iiif_items(_serve(http_server, "/cookbook.json", manifest), all_canvases=True, fetcher=fetcher))
    # The canvas is 2105 x 1523 turned: the image is 1523 x 2105, a portrait (level 1 sizes it by its height).
    assert items[0].url == f"{base}/iiif3/p1/full/,1024/0/default.jpg"
    assert "rotation 90" in items[0].metadata["extra"]["iiif_not_applied"][0]  # level 1 does not rotate
    assert items[1].url == f"{base}/iiif1/mini/full/!1024,1024/0/native.jpg"


def test_a_service_id_ending_in_info_json_is_its_base():
    from vislink.ingest.sources.iiif_image import service_from_entry

    svc = service_from_entry({"@id": "https://img.example/iiif/p1/info.json",
                              "profile": "http://iiif.io/api/image/2/level2.json"})
    assert (svc.id, svc.info_url, svc.version, svc.level) == ("https://img.example/iiif/p1",
                                                              "https://img.example/iiif/p1/info.json", 2, 2)
    assert service_from_entry({"id": "https://x/search", "type": "SearchService1"}) is None  # not an image server


# ------------------------------------------------------------------------------------------ 4. repeated canvas ids


def _volumes(server, jpegs: list[bytes]) -> str:
    """A collection of volumes whose manifests all call their canvas {BASE}/canvas/1."""
    base = server.base_url
    manifests = []
    for n, data in enumerate(jpegs, 1):
        server.add_bytes(f"/vol{n}/page1.jpg", data, "image/jpeg")
        manifests.append(v3_manifest(f"{base}/vol{n}.json", [v3_canvas(
            f"{base}/canvas/1", {"id": f"{base}/vol{n}/page1.jpg", "type": "Image"}, width=400, height=300)],
            label={"en": [f"Volume {n}"]}))
    return _serve(server, "/volumes.json", {"@context": P3, "id": f"{base}/volumes.json", "type": "Collection",
                                            "label": {"en": ["volumes"]}, "items": manifests})


def test_repeated_canvas_ids_are_scoped_by_manifest(http_server, fetcher, small_jpeg):
    base = http_server.base_url
    stream = iiif_items(_volumes(http_server, [small_jpeg, small_jpeg, small_jpeg]), fetcher=fetcher)
    refs = [i.source_ref for i in stream]
    assert refs == [f"{base}/canvas/1", f"{base}/vol2.json#canvas={base}/canvas/1",
                    f"{base}/vol3.json#canvas={base}/canvas/1"]
    assert [i.source_ref for i in stream] == refs  # the same on every walk


def test_repeated_canvas_ids_ingest_once_each_and_rerun_adds_nothing(vislink_env, http_server, monkeypatch):
    from vislink.ingest.reconcile import reconcile
    from vislink.ingest.runner import ingest

    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    from vislink.config import reset_settings

    reset_settings()
    url = _volumes(http_server, [make_jpeg(96, 72, seed=s) for s in (11, 12)])
    fetcher = Fetcher(vislink_env.cache_dir, retries=0, per_host_rate=None, timeout=5)
    first = ingest("vols", iiif_items(url, fetcher=fetcher), variants=["vgg16-pool5-sum"], progress=False,
                   fetcher=fetcher)
    assert (first.done, first.skipped, first.failed) == (2, 0, 0)
    again = ingest("vols", iiif_items(url, fetcher=fetcher), progress=False, fetcher=fetcher)
    assert (again.done, again.failed) == (0, 0) and again.skipped_by_reason == {"already-done": 2}
    assert all(r.ok for r in reconcile("vols", repair=False, progress=False))
    fetcher.close()


# ------------------------------------------------------------------------------------------ 5. metadata


@pytest.mark.parametrize("entries, expected", [
    ([{"label": "People", "value": "Subject: Medici, Lorenzo de'; Artist: Mantegna, Andrea, 1431-1506"},
      {"label": "Date Statement", "value": "[ca. 1460-1490]"}],
     {"artist": "Mantegna, Andrea", "artist_dates": "1431-1506", "date_text": "[ca. 1460-1490]",
      "year_start": 1455, "year_end": 1495}),
    ([{"label": "People", "value": "Napoleon I"}, {"label": "Photographer", "value": "Nadar"},
      {"label": "Date Created", "value": "1890-01-01"}],
     {"artist": "Nadar", "date_text": "1890-01-01", "year_start": 1890, "year_end": 1890}),
    ([{"label": "Contributor", "value": "Holbein, Hans"}, {"label": "Date of Origin (English)", "value": "1460-90"}],
     {"artist": "Holbein, Hans", "date_text": "1460-90", "year_start": 1460, "year_end": 1490}),
    ([{"label": "Creator", "value": "Dürer, Albrecht"}, {"label": "Contributor", "value": "A printer"},
      {"label": "Period", "value": "c. 1500"}],
     {"artist": "Dürer, Albrecht", "date_text": "c. 1500", "year_start": 1495, "year_end": 1505}),
    ([{"label": "Period", "value": "Renaissance"}, {"label": "Date", "value": "1510-15"}],
     {"date_text": "1510-15", "year_start": 1510, "year_end": 1515}),
    ([{"label": {"de": ["Künstler"], "en": ["Artist"]}, "value": {"none": ["Cranach, Lucas"]}},
      {"label": {"fr": ["Datation"], "de": ["Datierung"]}, "value": {"de": ["um 1530"], "en": ["c. 1530"]}}],
     {"artist": "Cranach, Lucas", "date_text": "c. 1530", "year_start": 1525, "year_end": 1535}),
])
def test_metadata_labels_to_artist_and_date(entries, expected):
    fields, pairs = metadata_fields(entries, "en")
    assert {k: fields.get(k) for k in expected} == expected
    assert len(pairs) == len(entries)  # every pair kept


def test_a_label_given_twice_keeps_both_values():
    _, pairs = metadata_fields([{"label": "Subject", "value": "Saints"}, {"label": "Subject", "value": "Martyrs"},
                                {"label": "Subject", "value": "Saints"}])
    assert pairs == {"Subject": "Saints; Martyrs"}


@pytest.mark.parametrize("text, expected", [
    ("[ca. 1460-1490]", (1455, 1495)), ("1460-90", (1460, 1490)), ("c. 1500", (1495, 1505)),
    ("1890-01-01", (1890, 1890)), ("1460-01-01T00:00:00Z", (1460, 1460)), ("1890-01-01/1895-12-31", (1890, 1895)),
    ("1598-02", (1598, 1602)),  # an abbreviated range, not a month
])
def test_published_dates(text, expected):
    from vislink.ingest.dates import parse_year_range

    assert parse_year_range(text) == expected


def test_v3_manifest_metadata_served(http_server, fetcher):
    base = http_server.base_url
    manifest = v3_manifest(f"{base}/meta.json", [v3_canvas(f"{base}/c/m", {"id": f"{base}/m.jpg", "type": "Image"})],
                           metadata=[{"label": {"en": ["People"]}, "value": {"en": ["Artist: Memling, Hans"]}},
                                     {"label": {"en": ["Date Statement"]}, "value": {"en": ["[ca. 1460-1490]"]}},
                                     {"label": {"en": ["Shelfmark"]}, "value": {"none": ["MS 1"]}}],
                           navDate="1460-01-01T00:00:00Z")
    item = next(iter(iiif_items(_serve(http_server, "/meta.json", manifest), fetcher=fetcher)))
    meta = item.metadata
    assert (meta["artist"], meta["year_start"], meta["year_end"]) == ("Memling, Hans", 1455, 1495)
    assert meta["extra"]["iiif_metadata"] == {"People": "Artist: Memling, Hans", "Date Statement": "[ca. 1460-1490]",
                                              "Shelfmark": "MS 1"}


# ------------------------------------------------------------------------------------------ 6. speed, exit code


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_info_json_fetched_concurrently_and_a_down_host_asked_once(http_server, tmp_path):
    base = http_server.base_url
    lock, active, peak = threading.Lock(), [0], [0]

    def slow_info(sid: str):
        def handler(req):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.3)
            with lock:
                active[0] -= 1
            return Reply(200, json.dumps(info2(sid)).encode(), {"Content-Type": "application/json"})
        return handler

    canvases = []
    for n in range(8):
        sid = f"{base}/slow/s{n}"
        http_server.add_handler(f"/slow/s{n}/info.json", slow_info(sid))
        canvases.append(v2_canvas(f"{base}/c/s{n}", {"@id": f"{sid}/full/full/0/default.jpg", "service": {
            "@context": "http://iiif.io/api/image/2/context.json", "@id": sid,
            "profile": "http://iiif.io/api/image/2/level2.json"}}))
    down = f"http://127.0.0.1:{_closed_port()}/iiif"
    for n in range(5):
        canvases.append(v2_canvas(f"{base}/c/d{n}", {"@id": f"{down}/d{n}/full/full/0/default.jpg", "service": {
            "@context": "http://iiif.io/api/image/2/context.json", "@id": f"{down}/d{n}",
            "profile": "http://iiif.io/api/image/2/level2.json"}}))
    url = _serve(http_server, "/many.json", v2_manifest(f"{base}/many.json", canvases))
    with Fetcher(tmp_path / "cache", timeout=5, retries=2, backoff=0.4, per_host_rate=None,
                 allow_hosts="127.0.0.1") as fetcher:
        started = time.monotonic()
        stream = iiif_items(url, all_canvases=True, fetcher=fetcher, info_per_host=4)
        items = list(stream)
        elapsed = time.monotonic() - started
    assert len(items) == 13 and 0 < stream.seconds <= elapsed  # the walk's time (the top document loads before)
    assert items[0].url == f"{base}/slow/s0/full/1024,/0/default.jpg"  # from its info.json
    assert items[-1].url == f"{down}/d4/full/!1024,1024/0/default.jpg"  # the canvas size, the server fits the box
    assert peak[0] == 4  # at once, but never more than info_per_host to one host
    assert all(http_server.hits(f"/slow/s{n}/info.json") == 1 for n in range(8))
    # The down host: 3 attempts (0.4 + 0.8 s of backoff) for the first documents, none for the others; one at a
    # time it would be 5 x 1.2 s.
    assert elapsed < 4.0, elapsed


class Gauge:
    """Server handlers that wait ``delay`` seconds and record how many requests were in flight at once."""

    def __init__(self, delay: float = 0.25):
        self.delay, self.lock, self.active, self.peak = delay, threading.Lock(), 0, 0

    def handler(self, doc: dict):
        def answer(req):
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(self.delay)
            with self.lock:
                self.active -= 1
            return Reply(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
        return answer


def test_a_collections_manifests_and_their_info_json_are_fetched_together(http_server, fetcher):
    base = http_server.base_url
    manifests, infos = Gauge(), Gauge()
    for n in range(6):
        sid = f"{base}/svc/m{n}"
        body = {"@id": f"{sid}/full/full/0/default.jpg", "@type": "dctypes:Image", "service": {
            "@context": "http://iiif.io/api/image/2/context.json", "@id": sid,
            "profile": "http://iiif.io/api/image/2/level2.json"}}
        http_server.add_handler(f"/svc/m{n}/info.json", infos.handler(info2(sid)))
        http_server.add_handler(f"/m{n}.json", manifests.handler(
            v2_manifest(f"{base}/m{n}.json", [v2_canvas(f"{base}/m{n}/c1", body)])))
    collection = {"@context": P2, "@id": f"{base}/c6.json", "@type": "sc:Collection",
                  "manifests": [{"@id": f"{base}/m{n}.json", "@type": "sc:Manifest"} for n in range(6)]}
    stream = iiif_items(_serve(http_server, "/c6.json", collection), fetcher=fetcher, info_per_host=3)
    items = list(stream)
    assert [i.source_ref for i in items] == [f"{base}/m{n}/c1" for n in range(6)]  # in the collection's order
    assert items[0].url == f"{base}/svc/m0/full/1024,/0/default.jpg"
    assert (manifests.peak, infos.peak) == (3, 3)  # together, never more than info_per_host at once


def test_fetch_json_many_asks_a_down_host_once(http_server, tmp_path):
    down = f"http://127.0.0.1:{_closed_port()}"
    urls = [f"{down}/{n}/info.json" for n in range(4)] + [http_server.url("/ok.json")]
    http_server.add_json("/ok.json", {"ok": True})
    with Fetcher(tmp_path / "cache", timeout=5, retries=1, backoff=0.05, per_host_rate=None,
                 allow_hosts="127.0.0.1") as fetcher:
        results = fetcher.fetch_json_many(urls, per_host=1)
        assert fetcher.stats.requests == 2 + 1  # two attempts for the first down URL, none for the others
    assert list(results) == urls and results[urls[-1]] == {"ok": True}
    assert [r.reason for r in results.values() if not isinstance(r, dict)] == ["connect-error"] * 4
    assert all("not tried" in str(results[u]) and urls[0] in str(results[u]) for u in urls[1:4])


def test_cli_exits_non_zero_with_the_summary_when_every_image_failed(vislink_env, http_server, monkeypatch):
    from typer.testing import CliRunner

    from vislink.cli import app

    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    from vislink.config import reset_settings

    reset_settings()
    base = http_server.base_url
    canvases = [v3_canvas(f"{base}/c/{n}", {"id": f"{base}/gone/{n}.jpg", "type": "Image"}) for n in range(2)]
    canvases.append(v3_canvas(f"{base}/c/audio", {"id": f"{base}/a.mp3", "type": "Sound"}))
    url = _serve(http_server, "/failing.json", v3_manifest(f"{base}/failing.json", canvases))
    result = CliRunner().invoke(app, ["ingest", "iiif", url, "-c", "failing", "--all-canvases", "--no-progress",
                                      "--variant", "vgg16-pool5-sum"])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "0 done" in out and "2 failed" in out and "1 no-image" in out
    assert "whole run" in out
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "/vislink/" not in out  # no frame of vislink's (the test server may log a client's closed connection)
    # A malformed manifest named on the command line: its reason, exit code 1, no traceback.
    bad = _serve(http_server, "/bad.json", {**v2_manifest(f"{base}/bad.json", []), "sequences": "oops"})
    result = CliRunner().invoke(app, ["ingest", "iiif", bad, "-c", "failing", "--no-progress"])
    assert result.exit_code == 1 and (result.exception is None or isinstance(result.exception, SystemExit))
    assert "bad-manifest" in result.output and "sequences is a str" in result.output
    assert "/vislink/" not in result.output
