"""An image's part of the link graph, laid out to be drawn (the Browse page): groups as hubs, explicit links as
edges, positions computed here so that any front end only draws.

A group is a clique, but drawing it as one hides everything (10 Mona Lisas are 45 edges): each group becomes a
*hub* node in the middle of a ring of its members, one short edge per member. Explicit links (positive,
duplicate, proposal, negative) are drawn between the images they join, also inside a group when they say more
than the group does (another type, or a note). Each group or lone image is a cluster; clusters are packed in
rows, the focus image's first, and a ring's radius grows with its size so that a group of 20 keeps its
thumbnails apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
from sqlalchemy import select
from sqlalchemy.orm import Session

from vislink.errors import NotFound
from vislink.graph.build import build_graph
from vislink.graph.titles import display_artist, group_label
from vislink.store.models import Group, Image, Link, LinkType

NODE_SIZE = 96  # a thumbnail's box, in layout units (pixels when drawn 1:1)
CAPTION = 34  # room under a thumbnail for two lines of caption
GAP = 28  # between neighbouring thumbnails on a ring
MARGIN = 40  # between clusters
HUB_WIDTH, HUB_HEIGHT = 190, 46  # a group's hub: its title and size


@dataclass(frozen=True)
class ViewNode:
    key: str  # "i<image id>" or "g<group id>"
    kind: str  # image | group
    x: float
    y: float
    label: str  # an image: artist; a group: its label ("#12 Leonardo da Vinci, Mona Lisa")
    detail: str = ""  # an image: title and date
    image_id: int | None = None
    group_id: int | None = None
    size: int = 0  # a group: its number of members


@dataclass(frozen=True)
class ViewEdge:
    a: str
    b: str
    kind: str  # member (image to its group's hub) | positive | duplicate | proposal | negative
    note: str = ""


@dataclass
class GraphView:
    focus: int
    nodes: list[ViewNode] = field(default_factory=list)
    edges: list[ViewEdge] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    truncated: bool = False  # the component was larger than the page draws: its nearest part is shown

    def node(self, key: str) -> ViewNode:
        return next(n for n in self.nodes if n.key == key)


def ring_radius(n_members: int) -> float:
    """The radius of a ring of ``n`` thumbnails around a hub, with ``GAP`` between neighbours."""
    if n_members <= 1:
        return 0.0
    chord = NODE_SIZE + GAP  # the distance between two neighbours' centres, at least
    clear_of_hub = math.hypot(HUB_WIDTH / 2, HUB_HEIGHT / 2) + NODE_SIZE / 2 * math.sqrt(2) + GAP / 2
    return max(clear_of_hub, chord / (2 * math.sin(math.pi / n_members)))


def _nodes_to_draw(graph: nx.Graph, focus: int, max_images: int) -> tuple[set[int], bool]:
    nodes = set(nx.node_connected_component(graph, focus))
    if len(nodes) <= max_images:
        return nodes, False
    # The nearest part of a giant component: whole steps out from the focus, until the page's budget.
    lengths = nx.single_source_shortest_path_length(graph, focus)
    return set(sorted(lengths, key=lambda n: (lengths[n], n))[:max_images]), True


def neighbourhood_view(session: Session, image_id: int, *, max_images: int = 60) -> GraphView | None:
    """The connected component of ``image_id`` in the link graph (proposals included), laid out; or its nearest
    ``max_images`` images when larger. None when the image has no group and no link. Negative links between the
    drawn images are drawn too (dashed in the UI), never followed."""
    image = session.get(Image, int(image_id))
    if image is None:
        raise NotFound(f"no image with id {image_id}")
    graph = build_graph(session, image.collection_id, include_proposals=True)
    if image.id not in graph:
        return None
    drawn, truncated = _nodes_to_draw(graph, image.id, max_images)
    if len(drawn) < 2:
        return None
    ids = sorted(drawn)
    infos = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_(ids)))}
    group_of = {n: graph.nodes[n].get("group") or 0 for n in ids}
    group_ids = sorted({g for g in group_of.values() if g})
    titles = dict(session.execute(select(Group.id, Group.title).where(Group.id.in_(group_ids))).all()) \
        if group_ids else {}
    links = session.scalars(select(Link).where(Link.image_a_id.in_(ids), Link.image_b_id.in_(ids))
                            .order_by(Link.id)).all()

    # Clusters: each group (hub + ring), each image in no group. The focus's first, then by size, then id.
    clusters: dict[str, list[int]] = {}
    for n in ids:
        clusters.setdefault(f"g{group_of[n]}" if group_of[n] else f"i{n}", []).append(n)
    focus_key = f"g{group_of[image.id]}" if group_of[image.id] else f"i{image.id}"
    order = sorted(clusters, key=lambda k: (k != focus_key, -len(clusters[k]), min(clusters[k])))

    view = GraphView(focus=image.id, truncated=truncated)
    half = NODE_SIZE / 2
    x, y, row_height, max_width = 0.0, 0.0, 0.0, 0.0
    row_limit = max(1400.0, 2 * (ring_radius(max(len(m) for m in clusters.values())) + half) + 2 * MARGIN)
    for key in order:
        members = clusters[key]
        is_group = key.startswith("g")
        radius = ring_radius(len(members)) if is_group else 0.0
        extent = 2 * (radius + half) + (CAPTION if is_group else 0)  # a ring's box, captions under the bottom row
        box_w, box_h = 2 * (radius + half), extent + (0 if is_group else CAPTION)
        if x > 0 and x + box_w > row_limit:
            x, y, row_height = 0.0, y + row_height + MARGIN, 0.0
        cx, cy = x + box_w / 2, y + radius + half
        if is_group:
            group_id = int(key[1:])
            view.nodes.append(ViewNode(key, "group", cx, cy, group_label(group_id, titles.get(group_id)),
                                       group_id=group_id, size=len(members)))
            # The focus at the top of its ring, the others clockwise by id.
            ring = sorted(members, key=lambda m: (m != image.id, m))
            for k, member in enumerate(ring):
                angle = -math.pi / 2 + 2 * math.pi * k / len(ring)
                view.nodes.append(_image_node(infos[member], cx + radius * math.cos(angle),
                                              cy + radius * math.sin(angle), group_id))
                view.edges.append(ViewEdge(f"i{member}", key, "member"))
        else:
            view.nodes.append(_image_node(infos[members[0]], cx, cy, None))
        x += box_w + MARGIN
        row_height = max(row_height, box_h)
        max_width = max(max_width, x - MARGIN)
    # The drawing's extent is what was placed (a ring of three leaves the bottom of its circle empty).
    view.width = max([max_width] + [n.x + (HUB_WIDTH / 2 if n.kind == "group" else half) for n in view.nodes])
    view.height = max(n.y + (HUB_HEIGHT / 2 if n.kind == "group" else half + CAPTION) for n in view.nodes)

    for link in links:
        kind = LinkType(link.type).value
        same_group = group_of[link.image_a_id] and group_of[link.image_a_id] == group_of[link.image_b_id]
        if same_group and kind == LinkType.positive.value and not link.note:
            continue  # the group already says it
        view.edges.append(ViewEdge(f"i{link.image_a_id}", f"i{link.image_b_id}", kind, link.note or ""))
    return view


def _image_node(img: Image, x: float, y: float, group_id: int | None) -> ViewNode:
    detail = " · ".join(p for p in (img.title, img.date_text) if p)
    return ViewNode(f"i{img.id}", "image", x, y, display_artist(img.artist) or "unknown artist", detail,
                    image_id=img.id, group_id=group_id)
