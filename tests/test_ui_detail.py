"""The Search and Compare pages on a -regions variant (issue #15 item 3, docs/detail.md, docs/ui.md): the region
crop is matched against the stored regions, "Match regions (auto)" matches the query's own regions, each result's
thumbnail has the matched box drawn on it and its caption says "detail at x,y,w,h", and *compare* opens with the
box outlined on the right image and zoomed. Streamlit AppTest on 6 demo images (tests/demo_collection.py) ingested
with vgg16-pool5-sum-regions, random weights and a 128-pixel pool5 input (only what is shown is checked: random
weights rank nothing in particular)."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image as PILImage

import test_ui_support as support
from test_ui_support import app, ok, result_ids, texts

VARIANT = "vgg16-pool5-sum-regions"


@pytest.fixture
def regions_env(tmp_path, monkeypatch, migrated_sqlite_template):
    import demo_collection as demo

    monkeypatch.setattr("vislink.encoder.images.POOL5_SHORTER_SIDE", 128)  # 4 x 5 maps: a quarter of the compute
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(migrated_sqlite_template, home / "vislink.db")
    support.point_settings(monkeypatch, home)
    made = demo.populate(tmp_path / "images", variants=(VARIANT,), n_compositions=2, annotator=None)
    ids = demo.image_ids(made)
    yield home, made, ids
    import streamlit as st

    from vislink.index import close_all
    from vislink.ui import services

    services.drain_background()
    st.cache_resource.clear()
    close_all()
    support.reset()


@pytest.fixture
def drawn(monkeypatch):
    """Every thumbnail the result grid draws a box on: (thumbnail path, box, the image shown)."""
    from vislink.ui import components

    calls = []
    real = components.boxed_thumbnail

    def spy(path, info, box):
        image = real(path, info, box)
        calls.append((path, tuple(box), image))
        return image

    monkeypatch.setattr(components, "boxed_thumbnail", spy)
    return calls


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _detail_captions(at) -> list[str]:
    return [c.value for c in at.caption if "detail at " in c.value]


def test_region_query_is_matched_against_the_stored_regions(regions_env, drawn):
    _, made, ids = regions_env
    query = PILImage.open(made.folder / "work01.jpg").convert("RGB")
    at = app().run()
    ok(at)
    assert at.selectbox(key="search_variant").value == VARIANT
    at.file_uploader(key="search_upload").upload("q.png", _png(query), "image/png").run()
    at.toggle(key="search_region").set_value(True).run()
    ok(at)
    at.button(key="search_go").click().run()
    ok(at)
    heading = [s.value for s in at.subheader]
    assert any(s.startswith("Results for q.png (region ") for s in heading), heading
    # The region searched is the cropper's default box (the centre 60 %), in the upload's pixels.
    w, h = query.size
    region = at.session_state["search_query"].region
    assert region is not None and abs(region[0] - w * 0.2) <= 2 and abs(region[2] - w * 0.6) <= 2, region
    shown = result_ids(at)
    assert len(shown) == len(ids), shown
    captions = _detail_captions(at)
    assert len(captions) == len(shown), texts(at)
    # Every result carries a box (x, y, w, h inside its stored image), drawn on its thumbnail.
    assert len(drawn) == len(shown)
    for path, (x, y, bw, bh), image in drawn:
        plain = PILImage.open(path).convert("RGB")
        assert image.size == plain.size and bw > 0 and bh > 0
        assert np.abs(np.asarray(image, int) - np.asarray(plain, int)).sum() > 0  # the rectangle is drawn
        assert any(f"detail at {x},{y},{bw},{bh}" in c for c in captions), captions


def test_draw_box_scales_to_the_thumbnail():
    from vislink.ui.components import BOX_COLOUR, draw_box, zoom_on

    thumb = PILImage.new("RGB", (200, 150), (255, 255, 255))
    out = draw_box(thumb, (100, 100, 200, 100), (400, 300))  # stored 400 x 300: halved on the thumbnail
    assert out.getpixel((50, 75)) == BOX_COLOUR and out.getpixel((150, 75)) == BOX_COLOUR
    assert out.getpixel((100, 50)) == BOX_COLOUR and out.getpixel((100, 100)) == BOX_COLOUR
    assert out.getpixel((100, 75)) == (255, 255, 255) and thumb.getpixel((50, 75)) == (255, 255, 255)
    assert zoom_on(thumb, (100, 100, 200, 100), (400, 300), margin=0).size == (100, 50)


def test_auto_regions_and_compare_opens_on_the_box(regions_env, drawn, monkeypatch):
    _, made, ids = regions_env
    at = app().run()
    at.radio(key="search_mode").set_value("An image of the collection").run()
    at.number_input(key="search_pick_id").set_value(ids["work01.jpg"]).run()
    at.toggle(key="search_auto").set_value(True).run()
    ok(at)
    at.button(key="search_go").click().run()
    ok(at)
    shown = result_ids(at)
    assert ids["work01.jpg"] not in shown and len(shown) == len(ids) - 1
    captions = _detail_captions(at)
    assert len(captions) == len(shown) and all("(query region " in c for c in captions), captions
    assert len(drawn) == len(shown)
    # compare: the right image outlined and the matched detail zoomed.
    first = shown[0]
    from vislink.ui import components

    outlined = []
    real = components.draw_box
    monkeypatch.setattr(components, "draw_box", lambda image, box, size, **kw: outlined.append(tuple(box))
                        or real(image, box, size, **kw))
    at.button(key=f"search_cmp_{first}").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Compare"]
    zoom = [c for img in at.get("image") for c in (img.captions or []) if "the matched detail" in c]
    assert zoom and f"#{first}, at " in zoom[0], zoom
    assert outlined and f"at {components.box_text(outlined[0])} " in zoom[0]  # the same box outlined on the right


def test_plain_variants_keep_todays_queries():
    """Only a -regions variant gets the detail search (services.stores_regions); a plain query's key is unchanged."""
    from vislink.ui import services

    assert services.stores_regions(VARIANT) and not services.stores_regions("vgg16-pool5-sum")
    assert not services.stores_regions(None) and not services.stores_regions("no-such-variant")
    assert services.Query(image=b"x", label="q").key() == services.Query(image=b"x").key()
    assert services.Query(image=b"x").key() != services.Query(image=b"x", region=(0, 0, 1, 1)).key()


def test_auto_regions_with_verify_marks_the_verified_results(regions_env, drawn):
    """'Verify the top results' applies to a region match too: the verified ones are marked with their matching
    points and boxed by them."""
    _, made, ids = regions_env
    at = app().run()
    at.radio(key="search_mode").set_value("An image of the collection").run()
    at.number_input(key="search_pick_id").set_value(ids["work01.jpg"]).run()
    at.toggle(key="search_auto").set_value(True).run()
    at.checkbox(key="search_verify").check().run()
    at.select_slider(key="search_verify_top").set_value(20).run()
    ok(at)
    at.button(key="search_go").click().run()
    ok(at)
    assert not [c.value for c in at.caption if "do not apply" in c.value or "does not apply" in c.value]
    marks = [c.value for c in at.caption if "verified: " in c.value]
    assert marks, texts(at)
    assert len(drawn) == len(result_ids(at))  # every result still boxed
