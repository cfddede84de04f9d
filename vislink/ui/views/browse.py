"""Browse: the collections, the images of one (paged thumbnails), and an image's page with its metadata,
its links, its group and a picture of its part of the link graph."""

from __future__ import annotations

import streamlit as st

from vislink.ui import data, services
from vislink.ui import components as ui

st.title("Browse")

PAGE_SIZE = 30
EDGE_STYLE = {"positive": "solid", "duplicate": "bold", "proposal": "dotted", "group": "solid", "negative": "dashed"}


def _dot(graph, focus: int, labels: dict[int, str]) -> str:
    """The graph in Graphviz's DOT language (drawn in the browser by st.graphviz_chart)."""
    lines = ["graph G {", '  graph [overlap=false, splines=true, bgcolor="transparent"];',
             '  node [shape=box, style="rounded,filled", fillcolor="#f4f1ea", fontsize=10];']
    for node in graph.nodes:
        text = labels.get(node, f"#{node}").replace('"', "'")
        fill = ', fillcolor="#e4572e", fontcolor="white"' if node == focus else ""
        lines.append(f'  {node} [label="{text}"{fill}];')
    for a, b, attrs in graph.edges(data=True):
        kind = str(attrs.get("type", "positive")).split(".")[-1]
        if attrs.get("link"):  # an explicit link: drawn dark and labelled with its type
            lines.append(f'  {a} -- {b} [style={EDGE_STYLE.get(kind, "solid")}, color="#333333", '
                         f'label="{kind}", fontsize=9];')
        else:  # an edge of a group's clique
            lines.append(f'  {a} -- {b} [color="#9a9a9a", tooltip="group {attrs.get("group", "")}"];')
    lines.append("}")
    return "\n".join(lines)


def _image_page(image_id: int) -> None:
    img = data.image(image_id)
    st.header(img.label)
    left, right = st.columns([1, 1])
    ui.show_image(img, 512, left)
    with right:
        ui.metadata_table(img)
        c1, c2, c3 = st.columns(3)
        if c1.button("Search with it", key="br_search"):
            st.session_state["search_mode"] = "An image of the collection"
            st.session_state["search_pick_id"] = img.id
            st.switch_page(ui.SEARCH_PAGE)
        if c2.button("select", key="br_select", disabled=img.id in ui.basket()):
            ui.basket().append(img.id)
            st.rerun()
        if c3.button("back to the collection", key="br_back"):
            st.session_state.pop("browse_image", None)
            st.session_state["br_jump"] = 0
            st.query_params.pop("image", None)
            st.rerun()
    links = data.links_of(img.id)
    st.subheader(f"Links ({len(links)})")
    if links:
        others = data.images_by_ids(l.other_id for l in links)
        ui.grid([ui.Cell(i + 1, None, others[l.other_id], f"{l.type}" + (f": {l.note}" if l.note else ""))
                 for i, l in enumerate(links) if l.other_id in others], key="br_links", columns=6, query_id=img.id)
    groups = data.groups_of([img.id]).get(img.id, [])
    for group_id in groups:
        group = data.group(group_id)
        st.subheader(f"Group #{group.id}" + (f" {group.title}" if group.title else "")
                     + f" ({len(group.member_ids)} images)")
        if group.note:
            st.caption(group.note)
        members = data.images_by_ids(group.member_ids)
        ui.grid([ui.Cell(i + 1, None, members[m]) for i, m in enumerate(group.member_ids)
                 if m in members and m != img.id], key=f"br_group{group.id}", columns=6, query_id=img.id)
    graph = services.component_graph(img.id)
    if graph is not None and graph.number_of_nodes() > 1:
        st.subheader("Its part of the link graph")
        infos = data.images_by_ids(graph.nodes)
        labels = {n: f"#{n} {(infos[n].artist or '')[:24]}" for n in graph.nodes if n in infos}
        st.graphviz_chart(_dot(graph, img.id, labels))
        st.caption("grey: same group · dark, labelled: an explicit link (dotted: a proposal)")


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
        text = left.text_input("Artist or title contains", key="br_text")
        jump = right.number_input("Open image id", min_value=0, step=1, key="br_jump")
        if jump:
            ui.open_image(int(jump))
        total = data.count_images(info.id, text)
        page = ui.pager(total, PAGE_SIZE, "br_page", more=(st.session_state.get("br_page", 0) + 1) * PAGE_SIZE < total)
        images = data.find_images(info.id, text, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
        status = data.link_status(None, [i.id for i in images])
        ui.grid([ui.Cell(page * PAGE_SIZE + k + 1, None, im, status.get(im.id, "")) for k, im in enumerate(images)],
                key="br_grid", columns=6)


main()
