"""A pattern's travel: the members of a group (or of an image's linked component) in date order, each placed on
the map, with the links between them, so that a reader sees who copied whom, where and when.

Years are the store's (``year_start`` / ``year_end``, parsed from the catalog date at ingest); an undated member
comes last. Places come from ``vislink.formats.places``: the city of the member's LOCATION, else its school's
region (``place.kind`` says which), else none with the reason. The result is plain data: ``to_dict`` /
``to_json`` export it (``from_dict`` reads it back), ``vislink.graph.travel_plot`` draws it. No network anywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import networkx as nx
from sqlalchemy import select
from sqlalchemy.orm import Session

from vislink.errors import NotFound, VislinkError
from vislink.formats.places import place_of
from vislink.graph.build import build_graph
from vislink.graph.refs import wga_path_of
from vislink.graph.titles import display_artist, group_label
from vislink.store.models import Group, GroupMember, Image, Link, LinkType

FORMAT = "vislink-travel/1"
MAX_MEMBERS = 200  # a component larger than this is cut to the focus's nearest images (``truncated``)

# ``thumbnails``: [(file_path, sha256), ...] -> a thumbnail file (or None) for each, e.g.
# ``lambda items: vislink.ui.thumbs.thumbnails(items, 128)``; the graph layer does not make thumbnails itself.
Thumbnails = Callable[[Sequence[tuple[str | None, str | None]]], Sequence[Path | None]]


@dataclass(frozen=True)
class TravelMember:
    id: int
    ref: str  # the WGA path when there is one, else the source_ref
    artist: str | None
    title: str | None
    date: str | None  # the catalog's text ("c. 1510-15")
    year_start: int | None
    year_end: int | None
    location: str | None
    school: str | None
    form: str | None
    place: dict | None  # ``Place.to_dict()``: name, latitude, longitude, kind (city | school), country
    place_reason: str  # why there is no place ("" when there is one)
    thumbnail: str | None  # a thumbnail file, when a ``thumbnails`` maker was given
    group_id: int | None = None  # the group it belongs to

    @property
    def year(self) -> float | None:
        """The middle of its year range: where the timeline puts it."""
        if self.year_start is None:
            return None
        return (self.year_start + (self.year_end if self.year_end is not None else self.year_start)) / 2

    @property
    def label(self) -> str:
        return display_artist(self.artist) or "unknown artist"


@dataclass(frozen=True)
class TravelLink:
    a: int
    b: int
    type: str  # positive | duplicate | proposal | negative
    note: str = ""


@dataclass
class Travel:
    kind: str  # group | component
    title: str
    group_id: int | None = None
    image_id: int | None = None  # a component's focus
    members: list[TravelMember] = field(default_factory=list)
    links: list[TravelLink] = field(default_factory=list)
    truncated: bool = False

    def member(self, image_id: int) -> TravelMember:
        return next(m for m in self.members if m.id == image_id)

    def arrows(self) -> list[tuple[int, int, str]]:
        """(earlier, later, type) for what the drawings join: each group's dated members as a date-ordered chain
        (type "group": each from the one before it, since a group says that its members are linked but not who
        after whom; an undated member has no place in that order), and the explicit visual links (positive,
        duplicate) between members, earlier to later."""
        rank = {m.id: k for k, m in enumerate(self.members)}  # date order, undated last
        pairs: dict[tuple[int, int], str] = {}
        for group_id in dict.fromkeys(m.group_id for m in self.members if m.group_id is not None):
            chain = [m.id for m in self.members if m.group_id == group_id and m.year_start is not None]
            pairs.update({(a, b): "group" for a, b in zip(chain, chain[1:])})
        for l in self.links:
            if l.type in (LinkType.positive.value, LinkType.duplicate.value) and l.a in rank and l.b in rank:
                pairs[(l.a, l.b) if rank[l.a] <= rank[l.b] else (l.b, l.a)] = l.type
        return [(a, b, kind) for (a, b), kind in pairs.items()]

    def to_dict(self) -> dict:
        return {"format": FORMAT, "kind": self.kind, "title": self.title, "group_id": self.group_id,
                "image_id": self.image_id, "truncated": self.truncated,
                "members": [asdict(m) for m in self.members], "links": [asdict(l) for l in self.links]}

    def to_json(self, path: Path | str | None = None) -> str:
        """The JSON export (written to ``path`` too when given)."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: dict) -> Travel:
        """A travel read back from ``to_dict`` / ``to_json``; ``VislinkError`` naming what is wrong otherwise."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise VislinkError(f"not a {FORMAT} export (format {found!r})")
        try:
            return cls(data["kind"], data["title"], data.get("group_id"), data.get("image_id"),
                       [TravelMember(**m) for m in data["members"]], [TravelLink(**l) for l in data["links"]],
                       bool(data.get("truncated")))
        except (KeyError, TypeError) as exc:
            raise VislinkError(f"{FORMAT} export with a missing or unknown field: {exc}") from None


def date_order(members: Sequence[TravelMember]) -> list[TravelMember]:
    """By year range (start, then end), undated last, ties by id."""
    return sorted(members, key=lambda m: (m.year_start is None, m.year_start or 0,
                                          m.year_end if m.year_end is not None else m.year_start or 0, m.id))


def group_travel(session: Session, group_id: int, *, thumbnails: Thumbnails | None = None) -> Travel:
    """A group's members in date order, placed, with the explicit links between them; ``NotFound`` for an
    unknown group."""
    group = session.get(Group, int(group_id))
    if group is None:
        raise NotFound(f"no group with id {group_id}")
    ids = sorted(session.scalars(select(GroupMember.image_id).where(GroupMember.group_id == group.id)))
    travel = Travel("group", group_label(group.id, group.title), group_id=group.id)
    return _fill(session, travel, ids, thumbnails)


def component_travel(session: Session, image_id: int, *, thumbnails: Thumbnails | None = None,
                     max_members: int = MAX_MEMBERS) -> Travel:
    """The confirmed linked component of an image (its group, its positive and duplicate links, transitively:
    ``build_graph``) in date order; an image with no link is a component of one. ``NotFound`` for an unknown
    image. A component over ``max_members`` keeps the image's nearest members (``truncated``)."""
    image = session.get(Image, int(image_id))
    if image is None:
        raise NotFound(f"no image with id {image_id}")
    graph = build_graph(session, image.collection_id)
    ids, truncated = [image.id], False
    if image.id in graph:
        lengths = nx.single_source_shortest_path_length(graph, image.id)
        ids = sorted(lengths, key=lambda n: (lengths[n], n))
        truncated = len(ids) > max_members
        ids = sorted(ids[:max_members])
    title = f"linked to #{image.id} " + (display_artist(image.artist) or "") + (f", {image.title}" if image.title
                                                                                else "")
    travel = Travel("component", " ".join(title.split()).rstrip(","), image_id=image.id, truncated=truncated)
    return _fill(session, travel, ids, thumbnails)


def _fill(session: Session, travel: Travel, ids: list[int], thumbnails: Thumbnails | None) -> Travel:
    rows = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_(ids)))} if ids else {}
    images = [rows[i] for i in ids if i in rows]
    pictures = list(thumbnails([(i.file_path, i.sha256) for i in images])) if thumbnails else [None] * len(images)
    groups = dict(session.execute(select(GroupMember.image_id, GroupMember.group_id)
                                  .where(GroupMember.image_id.in_(ids))).all()) if ids else {}
    members = []
    for img, picture in zip(images, pictures):
        found = place_of(img.location, img.school)
        members.append(TravelMember(
            img.id, wga_path_of(img) or img.source_ref, img.artist, img.title, img.date_text, img.year_start,
            img.year_end, img.location, img.school, img.form, found.place.to_dict() if found.place else None,
            found.reason, str(picture) if picture else None, groups.get(img.id)))
    travel.members = date_order(members)
    if ids:
        links = session.scalars(select(Link).where(Link.image_a_id.in_(ids), Link.image_b_id.in_(ids))
                                .order_by(Link.id))
        travel.links = [TravelLink(l.image_a_id, l.image_b_id, LinkType(l.type).value, l.note or "") for l in links]
    return travel
