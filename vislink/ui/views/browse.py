"""Browse: the collections, the images of one (paged thumbnails), and an image's page with its metadata,
its links, its group and a drawing of its part of the link graph (click a thumbnail to open it)."""

from __future__ import annotations

import streamlit as st

from vislink.ui import data, graphview, services
from vislink.ui import components as ui

st.title("Browse")

PAGE_SIZE = 30
GRAPH_THUMB = 128  # the link graph's thumbnails


def _open_here(image_id: int) -> None:
    """Another image's page, with its own address (``?image=``)."""
    st.session_state["browse_image"] = int(image_id)
    st.query_params["image"] = str(int(image_id))
    st.rerun()


def _search_with(img: data.ImageInfo) -> None:
    """The Search page, searching with this image at once (in its collection)."""
    st.session_state["search_mode"] = "An image of the collection"
    st.session_state["search_pick_id"] = img.id
    st.session_state["search_region"] = False
    names = {c.id: c.name for c in data.list_collections()}
    if img.collection_id in names:
        st.session_state["search_collection"] = names[img.collection_id]
    st.session_state["search_pending"] = True
    st.switch_page(ui.SEARCH_PAGE)


def _graph(img: data.ImageInfo) -> None:
    view = services.graph_view(img.id)
    if view is None:
        return
    st.subheader("Its part of the link graph")
    infos = data.images_by_ids(n.image_id for n in view.nodes if n.kind == "image")
    ids = sorted(infos)
    files = ui.thumb_files([infos[i] for i in ids], GRAPH_THUMB)
    clicked = graphview.draw(view, {i: graphview.data_uri(f) for i, f in zip(ids, files)}, key="br_graph")
    st.caption("A group is a hub with its images around it; lines between images are explicit links (thick: "
               "duplicate, dotted: a proposal, dashed red: not linked). Click an image to open it."
               + (" Only the nearest part of a large component is drawn." if view.truncated else ""))
    if clicked is not None and clicked != img.id:
        _open_here(clicked)


def _image_page(image_id: int) -> None:
    img = data.image(image_id)
    st.header(img.label)
    left, right = st.columns([1, 1])
    ui.show_image(img, 512, left)
    with right:
        ui.metadata_table(img)
        c1, c2, c3 = st.columns(3)
        if c1.button("Search with it", key="br_search"):
            _search_with(img)
        if c2.button("select", key="br_select", disabled=img.id in ui.basket()):
            ui.basket().append(img.id)
            st.rerun()
        if c3.button("back to the collection", key="br_back"):
            st.session_state.pop("browse_image", None)
            st.session_state["br_jump"] = 0
            st.query_params.pop("image", None)
            st.rerun()
    this = [ui.Side(img.label, image_id=img.id)]
    links = data.links_of(img.id)
    st.subheader(f"Links ({len(links)})")
    if links:
        others = data.images_by_ids(l.other_id for l in links)
        ui.grid([ui.Cell(i + 1, None, others[l.other_id], f"{l.type}" + (f": {l.note}" if l.note else ""))
                 for i, l in enumerate(links) if l.other_id in others], key="br_links", columns=ui.per_row(),
                compare=this)
    groups = data.groups_of([img.id]).get(img.id, [])
    for group_id in groups:
        group = data.group(group_id)
        st.subheader(f"{ui.group_name(group)}: {len(group.member_ids)} images")
        if group.note:
            st.caption(group.note)
        st.page_link("views/travel.py", label="Its travel: timeline and map", query_params={"group": str(group.id)})
        members = data.images_by_ids(group.member_ids)
        ui.grid([ui.Cell(i + 1, None, members[m]) for i, m in enumerate(group.member_ids)
                 if m in members and m != img.id], key=f"br_group{group.id}", columns=ui.per_row(),
                compare=this)
    _graph(img)


def _collections() -> data.CollectionInfo | None:
    collections = data.list_collections()
    st.dataframe([{"collection": c.name, "images": c.n_images, "variants": ", ".join(c.variants),
                   "description": c.description or ""} for c in collections], hide_index=True)
    return ui.pick_collection("br_collection")


def main() -> None:
    ui.show_flash()
    typed = st.query_params.get("image")
    if typed and typed.isdigit():
        st.session_state["browse_image"] = int(typed)
    image_id = st.session_state.get("browse_image")
    with ui.guard():
        if image_id:
            _image_page(int(image_id))
            return
        info = _collections()
        if info is None:
            return
        left, right = st.columns([3, 1])
        text = left.text_input("Artist or title contains", key="br_text", persist_state="session")
        jump = right.number_input("Open image id", min_value=0, step=1, key="br_jump")
        if jump:
            ui.open_image(int(jump))
        total = data.count_images(info.id, text)
        page = ui.pager(total, PAGE_SIZE, "br_page", more=(st.session_state.get("br_page", 0) + 1) * PAGE_SIZE < total)
        images = data.find_images(info.id, text, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
        status = data.link_status(None, [i.id for i in images])
        ui.grid([ui.Cell(page * PAGE_SIZE + k + 1, None, im, status.get(im.id, "")) for k, im in enumerate(images)],
                key="br_grid", columns=ui.per_row())


main()
