"""The link graph as networkx, built from the SQL store, and the queries the UI and the CLI ask of it.

Edges of the *confirmed* graph: every pair inside a group (a group is a clique, as in the paper),
explicit positive links and duplicate links (a duplicate is a visual link too: the same image twice).
Negative links are constraints, never edges (``negative_pairs``: the certain negatives of fine-tuning).
Proposals are unconfirmed suggestions: not edges, listed by ``proposals``.

Edge attributes: ``type`` (``positive`` or ``duplicate``), ``group`` (the group id, 0 when the edge
comes from a link only), ``link`` (the link id, 0 when none), ``note`` ("" when none): GraphML-safe scalars.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import networkx as nx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from vislink.errors import NotFound, VislinkError
from vislink.graph.edits import group_of
from vislink.store.models import Group, GroupMember, Image, Link, LinkType

CONFIRMED_TYPES = (LinkType.positive, LinkType.duplicate)


def _links(session: Session, collection_id: int, types) -> list[Link]:
    image = aliased(Image)
    return list(session.scalars(
        select(Link).join(image, image.id == Link.image_a_id)
        .where(image.collection_id == collection_id, Link.type.in_(list(types))).order_by(Link.id)))


def group_members(session: Session, collection_id: int) -> dict[int, list[int]]:
    """{group id: sorted member image ids} for every group of the collection (empty groups included)."""
    groups: dict[int, list[int]] = {g: [] for g in session.scalars(
        select(Group.id).where(Group.collection_id == collection_id).order_by(Group.id))}
    rows = session.execute(select(GroupMember.group_id, GroupMember.image_id).join(Group)
                           .where(Group.collection_id == collection_id)
                           .order_by(GroupMember.group_id, GroupMember.image_id))
    for group_id, image_id in rows:
        groups[group_id].append(image_id)
    return groups


def build_graph(session: Session, collection_id: int, *, include_proposals: bool = False) -> nx.Graph:
    """The confirmed link graph of a collection: nodes are image ids (attribute ``group``: its group id
    or 0), edges as described in the module docstring. ``include_proposals`` adds proposal links as
    edges of type ``proposal`` (for display; they are not confirmed)."""
    graph = nx.Graph(collection_id=collection_id)
    for group_id, members in group_members(session, collection_id).items():
        for image_id in members:
            graph.add_node(image_id, group=group_id)
        for a, b in combinations(members, 2):
            graph.add_edge(a, b, type=LinkType.positive.value, group=group_id, link=0, note="")
    types = CONFIRMED_TYPES + ((LinkType.proposal,) if include_proposals else ())
    for link in _links(session, collection_id, types):
        for node in (link.image_a_id, link.image_b_id):
            if node not in graph:
                graph.add_node(node, group=0)
        data = graph.get_edge_data(link.image_a_id, link.image_b_id)
        if data is not None:  # the pair is already a group edge: keep the group, take the link's type and note
            data.update(type=LinkType(link.type).value, link=link.id, note=link.note or "")
        else:
            graph.add_edge(link.image_a_id, link.image_b_id, type=LinkType(link.type).value, group=0,
                           link=link.id, note=link.note or "")
    return graph


def negative_pairs(session: Session, collection_id: int) -> set[tuple[int, int]]:
    """Pairs (a < b) marked as not linked: certain negatives for fine-tuning."""
    return {(l.image_a_id, l.image_b_id) for l in _links(session, collection_id, [LinkType.negative])}


def proposals(session: Session, collection_id: int) -> list[Link]:
    """Unconfirmed proposed links (e.g. from search), oldest first."""
    return _links(session, collection_id, [LinkType.proposal])


@dataclass(frozen=True)
class Neighbour:
    image_id: int
    type: str  # positive | duplicate | negative | proposal
    group_id: int | None  # the shared group, when the relation comes from a group
    link_id: int | None
    note: str | None


def neighbours(session: Session, image_id: int, *, types: tuple[str, ...] | None = None) -> list[Neighbour]:
    """Every image related to this one: its group mates (type positive) and its links of every type
    (or only ``types``). An explicit link to a group mate overrides the group's type on that pair."""
    if session.get(Image, image_id) is None:
        raise NotFound(f"no image with id {image_id}")
    found: dict[int, Neighbour] = {}
    group = group_of(session, image_id)
    if group is not None:
        for mate in session.scalars(select(GroupMember.image_id).where(GroupMember.group_id == group.id,
                                                                       GroupMember.image_id != image_id)):
            found[mate] = Neighbour(mate, LinkType.positive.value, group.id, None, None)
    for link in session.scalars(select(Link).where(or_(Link.image_a_id == image_id, Link.image_b_id == image_id))):
        other = link.image_b_id if link.image_a_id == image_id else link.image_a_id
        prior = found.get(other)
        found[other] = Neighbour(other, LinkType(link.type).value, prior.group_id if prior else None, link.id,
                                 link.note)
    result = sorted(found.values(), key=lambda n: n.image_id)
    return [n for n in result if types is None or n.type in types]


def connected_components(session: Session, collection_id: int, graph: nx.Graph | None = None) -> list[set[int]]:
    """Connected components of the confirmed graph, largest first (ties by smallest image id)."""
    graph = graph if graph is not None else build_graph(session, collection_id)
    return sorted((set(c) for c in nx.connected_components(graph)), key=lambda c: (-len(c), min(c)))


def shortest_path(session: Session, a: int, b: int, graph: nx.Graph | None = None) -> list[int]:
    """The shortest chain of confirmed links from image a to image b (image ids, both ends included)."""
    images = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_([a, b])))}
    for image_id in (a, b):
        if image_id not in images:
            raise NotFound(f"no image with id {image_id}")
    if images[a].collection_id != images[b].collection_id:
        raise VislinkError(f"images {a} and {b} are in different collections: no link can join them")
    graph = graph if graph is not None else build_graph(session, images[a].collection_id)
    if a not in graph or b not in graph:
        raise NotFound(f"no path of links between images {a} and {b}: "
                       f"{a if a not in graph else b} has no confirmed link")
    try:
        return nx.shortest_path(graph, a, b)
    except nx.NetworkXNoPath:
        raise NotFound(f"no path of links between images {a} and {b} (different connected components)") from None


def path_edges(graph: nx.Graph, path: list[int]) -> list[dict]:
    """The edge attributes along a path (what joins each step: group id, link type, note)."""
    return [dict(graph.get_edge_data(u, v), a=u, b=v) for u, v in zip(path, path[1:])]


__all__ = ["CONFIRMED_TYPES", "Neighbour", "build_graph", "connected_components", "group_members", "negative_pairs",
           "neighbours", "path_edges", "proposals", "shortest_path"]

