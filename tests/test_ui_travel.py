"""The Travel page (issue #19 item 4), with streamlit.testing.v1.AppTest through the real app script: a group of
three works with WGA-style dates and locations in a real SQLite store (real JPEG files) is drawn as one PNG,
its members are listed by date with their places, and both downloads are offered; an image id in the address
shows its linked component; an unknown group says so."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image as PILImage

from test_ui_support import app, ok, reset

WORKS = [  # inserted in this order, which is not the date order
    ("SALAI", "Mona Lisa (copy)", "c. 1510-15", 1505, 1520, "Galleria degli Uffizi, Florence", "Italian"),
    ("FOLLOWER of Leonardo", "Mona Lisa (copy)", "-", None, None, "Private collection", "Flemish"),
    ("LEONARDO da Vinci", "Mona Lisa", "1503-19", 1503, 1519, "Musée du Louvre, Paris", "Italian"),
]


@pytest.fixture
def travel_group(vislink_env):
    import streamlit as st

    from vislink.graph import create_group
    from vislink.index import close_all
    from vislink.store import session_scope
    from vislink.store.models import Collection, Image

    with session_scope(vislink_env.database_url) as s:
        coll = Collection(name="travel")
        s.add(coll)
        s.flush()
        ids = []
        for k, (artist, title, date, y0, y1, location, school) in enumerate(WORKS):
            buf = io.BytesIO()
            PILImage.new("RGB", (40, 30), (60 * k, 120, 200 - 60 * k)).save(buf, "JPEG")
            sha = hashlib.sha256(buf.getvalue()).hexdigest()
            path = vislink_env.images_dir / f"{sha}.jpg"
            path.write_bytes(buf.getvalue())
            img = Image(collection_id=coll.id, source_ref=f"w{k}.jpg", file_path=str(path), sha256=sha,
                        artist=artist, title=title, date_text=date, year_start=y0, year_end=y1, location=location,
                        school=school)
            s.add(img)
            s.flush()
            ids.append(img.id)
        group_id = create_group(s, ids, title="Mona Lisa and copies").id
    reset()
    yield group_id, ids
    st.cache_resource.clear()  # the index client of this data folder
    close_all()


def _downloads(at) -> dict[str, object]:
    return {d.proto.label: d for d in at.get("download_button")}


def test_the_page_draws_a_group_and_offers_both_downloads(travel_group):
    group_id, ids = travel_group
    at = app().run()
    at.switch_page("views/travel.py").run()
    ok(at)
    assert at.selectbox(key="tr_group").value == group_id
    assert [s.value for s in at.subheader] == [f"#{group_id} Mona Lisa and copies"]
    downloads = _downloads(at)
    assert set(downloads) == {"Download PNG", "Download JSON"}
    # Served by this server as media files of their types (AppTest keeps no bytes after a run: the PNG itself
    # is checked in tests/test_travel.py).
    assert downloads["Download PNG"].proto.url.endswith(".png")
    assert downloads["Download JSON"].proto.url.endswith(".json")
    [picture] = at.get("image")  # the drawing, one PNG made on the server: no chart library in the browser
    assert picture.proto.imgs[0].url.startswith("/mock/media/") and picture.proto.imgs[0].url.endswith(".png")
    table = at.dataframe[0].value
    # By date, the undated last; each placed at its city, the private one at its school's region.
    assert list(table["id"]) == [ids[2], ids[0], ids[1]]
    assert list(table["placed at"])[:2] == ["Paris", "Florence"] and "Flanders" in list(table["placed at"])[2]
    assert list(table["as"]) == ["city", "city", "school region"]
    assert "3 of 3 placed on the map" in " ".join(c.value for c in at.caption)


def test_an_image_in_the_address_shows_its_component_and_an_unknown_group_is_named(travel_group):
    group_id, ids = travel_group
    at = app()
    at.query_params["image"] = str(ids[0])
    at.switch_page("views/travel.py").run()
    ok(at)
    assert at.subheader[0].value.startswith(f"linked to #{ids[0]} Salai")
    assert list(at.dataframe[0].value["id"]) == [ids[2], ids[0], ids[1]]
    assert set(_downloads(at)) == {"Download PNG", "Download JSON"}
    at = app()
    at.query_params["group"] = "999"
    at.switch_page("views/travel.py").run()
    ok(at)
    assert any("no group with id 999" in w.value for w in at.warning)


def test_the_browse_page_links_a_group_to_its_travel(travel_group):
    group_id, ids = travel_group
    at = app()
    at.query_params["image"] = str(ids[0])
    at.switch_page("views/browse.py").run()
    ok(at)
    links = [p.proto for p in at.get("page_link")]
    assert [(l.label, l.page) for l in links if "travel" in l.label] == [
        ("Its travel: timeline and map", "travel")], links
    assert f"group={group_id}" in next(l for l in links if "travel" in l.label).query_string


def test_without_a_collection_or_a_group_the_page_says_what_to_do(vislink_env):
    from vislink.store import session_scope
    from vislink.store.models import Collection

    reset()
    at = app()
    at.switch_page("views/travel.py").run()
    ok(at)
    assert any("No collection yet" in i.value for i in at.info)
    with session_scope(vislink_env.database_url) as s:
        s.add(Collection(name="empty"))
    at.run()
    ok(at)
    assert any("Collection empty has no group yet" in i.value for i in at.info)
    assert not at.get("download_button")
