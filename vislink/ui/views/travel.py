"""Travel: a pattern's travel through time and space. A group (or an image's linked component: ``?image=ID``,
a group: ``?group=ID``) as a timeline by date and a map of its members' cities or school regions, drawn as one
PNG on the server (``vislink.graph.travel_plot``, matplotlib: nothing is fetched by the browser), a table of
its members, and the PNG and the JSON to download."""

from __future__ import annotations

import streamlit as st

from vislink.config import get_settings
from vislink.graph.travel import Travel, component_travel, group_travel
from vislink.graph.travel_plot import render
from vislink.store import session_scope
from vislink.ui import components as ui
from vislink.ui import data, thumbs

st.title("Travel")

THUMB = 128  # the drawing's thumbnails (a size the thumbnail cache keeps)


def _thumbnails(items):
    return thumbs.thumbnails(items, THUMB, get_settings())


def _travel(group_id: int | None, image_id: int | None) -> Travel:
    with session_scope() as session:
        if image_id is not None:
            return component_travel(session, image_id, thumbnails=_thumbnails)
        return group_travel(session, group_id, thumbnails=_thumbnails)


def _pick() -> tuple[int | None, int | None]:
    """(group id, image id) from the address, else from the pickers."""
    for name in ("group", "image"):
        typed = st.query_params.get(name)
        if typed and typed.isdigit():
            st.session_state["tr_from"] = (name, int(typed))
    chosen = st.session_state.get("tr_from")
    if chosen is not None:
        if st.button("Choose another group", key="tr_other"):
            st.session_state.pop("tr_from", None)
            st.query_params.pop("group", None)
            st.query_params.pop("image", None)
            st.rerun()
        name, value = chosen
        return (value, None) if name == "group" else (None, value)
    info = ui.pick_collection("tr_collection")
    if info is None:
        return None, None
    groups = data.list_groups(info.id, limit=500)
    if not groups:
        st.info(f"Collection {info.name} has no group yet: make one on the Annotate page or `vislink groups "
                "import`.")
        return None, None
    left, right = st.columns([3, 1])
    by_id = {g.id: g for g in groups}
    group_id = left.selectbox("Group", list(by_id), key="tr_group",
                              format_func=lambda g: f"{by_id[g].label} ({len(by_id[g].member_ids)} images)")
    image_id = right.number_input("or an image's linked component (id)", min_value=0, step=1, key="tr_image")
    return (None, int(image_id)) if image_id else (group_id, None)


def _members_table(travel: Travel) -> None:
    rows = []
    for m in travel.members:
        place = m.place or {}
        rows.append({"id": m.id, "date": m.date or "", "from": m.year_start, "to": m.year_end, "artist": m.label,
                     "title": m.title or "", "location": m.location or "", "school": m.school or "",
                     "placed at": place.get("name") or f"? {m.place_reason}",
                     "as": {"city": "city", "school": "school region"}.get(place.get("kind"), "")})
    st.dataframe(rows, hide_index=True, key="tr_members")


def main() -> None:
    group_id, image_id = _pick()
    if group_id is None and image_id is None:
        return
    with ui.guard():
        # The first lookup of a server process builds the place index (seconds: docs/travel.md, "Cost").
        with st.spinner("Placing the members (the first time, GeoNames' cities are loaded)"):
            travel = _travel(group_id, image_id)
        stem = f"travel-group-{travel.group_id}" if travel.kind == "group" else f"travel-image-{travel.image_id}"
        st.subheader(travel.title)
        if len(travel.members) < 2:
            st.info("This image has no confirmed link: its travel is itself alone.")
        with st.spinner("Drawing the timeline and the map"):
            png = render(travel)
        c1, c2 = st.columns(2)
        c1.download_button("Download PNG", png, file_name=f"{stem}.png", mime="image/png", key="tr_png")
        c2.download_button("Download JSON", travel.to_json(), file_name=f"{stem}.json", mime="application/json",
                           key="tr_json")
        st.image(png, caption="Above: the members by date (undated on the right), arrows from earlier to later "
                              "(dashed: in one group; solid: an explicit link). Below: where they are now, "
                              "cities from GeoNames, school regions approximate (ochre).")
        placed = sum(m.place is not None for m in travel.members)
        st.caption(f"{placed} of {len(travel.members)} placed on the map"
                   + (" (only the nearest part of a large component)" if travel.truncated else ""))
        _members_table(travel)


main()
