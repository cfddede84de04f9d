"""Draw an image's part of the link graph (``vislink.graph.view.GraphView``, laid out there) as an SVG of
thumbnails, in a small Streamlit component that says which node was clicked: the Browse page opens it.

Groups are hubs with a ring of members; explicit links are lines styled by type (positive solid, duplicate
thick, proposal dotted, negative dashed red). Every text comes from the database and is escaped."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Mapping

import streamlit as st

from vislink.graph.view import CAPTION, HUB_HEIGHT as HUB_H, HUB_WIDTH as HUB_W, NODE_SIZE, GraphView

PAD = 24
EDGE_STYLE = {  # stroke, width, dash
    "member": ("#b9b1a2", 1.5, ""),
    "positive": ("#333333", 2.5, ""),
    "duplicate": ("#333333", 5, ""),
    "proposal": ("#555555", 2, "2 5"),
    "negative": ("#c0392b", 2, "8 5"),
}

_JS = """
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".vl-graph");
  root.innerHTML = data.svg;
  root.querySelectorAll("[data-image]").forEach((node) => {
    const open = () => setTriggerValue("open", Number(node.getAttribute("data-image")));
    node.addEventListener("click", open);
    node.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") open(); });
  });
}
"""
_CSS = """
.vl-graph svg { max-width: 100%; height: auto; font-family: sans-serif; }
.vl-graph [data-image] { cursor: pointer; }
.vl-graph [data-image]:hover rect.frame, .vl-graph [data-image]:focus rect.frame { stroke: #e4572e; stroke-width: 3; }
"""


# Defined once at import (Streamlit registers it on whichever runtime mounts it: AppTest makes one per test).
_GRAPH = st.components.v2.component("vislink_graph", html='<div class="vl-graph"></div>', css=_CSS, js=_JS)


def _cut(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1].rstrip() + "…"


def data_uri(path: Path | None) -> str | None:
    if path is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def svg(view: GraphView, pictures: Mapping[int, str | None]) -> str:
    """The SVG of a laid-out view; ``pictures``: image id -> a data URI of its thumbnail (or None)."""
    where = {n.key: n for n in view.nodes}
    w, h = view.width + 2 * PAD, view.height + 2 * PAD
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{-PAD} {-PAD} {w:.0f} {h:.0f}" width="{w:.0f}" '
           f'role="img" aria-label="link graph of image {view.focus}">']  # drawn 1:1, narrowed to fit
    for edge in view.edges:
        a, b = where.get(edge.a), where.get(edge.b)
        if a is None or b is None:
            continue
        stroke, width, dash = EDGE_STYLE.get(edge.kind, EDGE_STYLE["positive"])
        tip = escape(edge.kind + (f": {edge.note}" if edge.note else ""))
        out.append(f'<line class="edge {edge.kind}" x1="{a.x:.1f}" y1="{a.y:.1f}" x2="{b.x:.1f}" y2="{b.y:.1f}" '
                   f'stroke="{stroke}" stroke-width="{width}"' + (f' stroke-dasharray="{dash}"' if dash else "")
                   + f'><title>{tip}</title></line>')
    half = NODE_SIZE / 2
    for node in view.nodes:
        if node.kind == "group":
            out.append(f'<g class="hub"><rect x="{node.x - HUB_W / 2:.1f}" y="{node.y - HUB_H / 2:.1f}" '
                       f'width="{HUB_W}" height="{HUB_H}" rx="10" fill="#f4f1ea" stroke="#9a8f7a"/>'
                       f'<text x="{node.x:.1f}" y="{node.y - 4:.1f}" text-anchor="middle" font-size="12" '
                       f'font-weight="bold">{escape(_cut(node.label, 28))}</text>'
                       f'<text x="{node.x:.1f}" y="{node.y + 13:.1f}" text-anchor="middle" font-size="11" '
                       f'fill="#555">{node.size} images</text><title>{escape(node.label)}</title></g>')
            continue
        focus = node.image_id == view.focus
        x0, y0 = node.x - half, node.y - half
        picture = pictures.get(node.image_id)
        body = (f'<image href="{picture}" x="{x0:.1f}" y="{y0:.1f}" width="{NODE_SIZE}" height="{NODE_SIZE}" '
                'preserveAspectRatio="xMidYMid meet"/>' if picture else
                f'<text x="{node.x:.1f}" y="{node.y:.1f}" text-anchor="middle" font-size="11">no picture</text>')
        tip = escape(f"#{node.image_id} {node.label}" + (f": {node.detail}" if node.detail else "") + " (open)")
        out.append(
            f'<g class="node" data-image="{node.image_id}" tabindex="0" role="link">'
            f'<rect class="frame" x="{x0 - 3:.1f}" y="{y0 - 3:.1f}" width="{NODE_SIZE + 6}" height="{NODE_SIZE + 6}" '
            f'rx="4" fill="#ffffff" stroke="{"#e4572e" if focus else "#cfc8b8"}" stroke-width="{4 if focus else 1}"/>'
            f'{body}'
            f'<text x="{node.x:.1f}" y="{y0 + NODE_SIZE + 14:.1f}" text-anchor="middle" font-size="11" '
            f'font-weight="bold">{escape(_cut(node.label, 20))}</text>'
            f'<text x="{node.x:.1f}" y="{y0 + NODE_SIZE + CAPTION - 6:.1f}" text-anchor="middle" font-size="10" '
            f'fill="#555">{escape(_cut(node.detail, 24))}</text><title>{tip}</title></g>')
    out.append("</svg>")
    return "".join(out)


def draw(view: GraphView, pictures: Mapping[int, str | None], key: str) -> int | None:
    """Mount the drawing; returns the id of the image clicked in it (once), or None."""
    result = _GRAPH(data={"svg": svg(view, pictures)}, key=key, on_open_change=lambda: None)
    clicked = getattr(result, "open", None)
    return int(clicked) if clicked not in (None, "") else None
