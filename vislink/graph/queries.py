"""Read-only questions about the link graph, answered with plain dataclasses detached from the session (the UI
caches them): an image's links, the link between two images, group memberships, groups with their members,
and how search results relate to the query. Each costs one query per kind of information, never one per image,
so that a page of results stays cheap. Edits go through ``edits`` (audit, versions, conflicts)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from vislink.errors import NotFound
from vislink.graph.titles import group_label
from vislink.store.models import Group, GroupMember, Link


@dataclass(frozen=True)
class LinkInfo:
    """A link seen from one of its images: ``other_id`` is the image at the other end."""

    id: int
    other_id: int
    type: str
    note: str | None
    annotator_id: int | None


@dataclass(frozen=True)
class GroupInfo:
    id: int
    collection_id: int | None
    title: str | None
    note: str | None
    version: int
    member_ids: tuple[int, ...]

    @property
    def label(self) -> str:
        """"#12 Leonardo da Vinci, Mona Lisa" (or "group #12" when untitled): how every page names it."""
        return group_label(self.id, self.title)


def _text(value) -> str:
    return value.value if hasattr(value, "value") else str(value)


def _group_info(group: Group) -> GroupInfo:
    return GroupInfo(group.id, group.collection_id, group.title, group.note, group.version,
                     tuple(sorted(m.image_id for m in group.members)))


def image_links(session: Session, image_id: int) -> list[LinkInfo]:
    """Every link of an image (any type), oldest first."""
    rows = session.scalars(select(Link).where(or_(Link.image_a_id == image_id, Link.image_b_id == image_id))
                           .order_by(Link.id))
    return [LinkInfo(link.id, link.image_b_id if link.image_a_id == image_id else link.image_a_id, _text(link.type),
                     link.note, link.annotator_id) for link in rows]


def link_info(session: Session, a: int, b: int) -> LinkInfo | None:
    """The link between images ``a`` and ``b`` seen from ``a``, or None."""
    lo, hi = sorted((int(a), int(b)))
    link = session.scalars(select(Link).where(Link.image_a_id == lo, Link.image_b_id == hi)).first()
    if link is None:
        return None
    return LinkInfo(link.id, hi if int(a) == lo else lo, _text(link.type), link.note, link.annotator_id)


def group_memberships(session: Session, image_ids: Iterable[int]) -> dict[int, list[int]]:
    """image id -> ids of the groups it belongs to (images in no group are absent)."""
    ids = sorted({int(i) for i in image_ids})
    out: dict[int, list[int]] = defaultdict(list)
    if not ids:
        return out
    for image_id, group_id in session.execute(select(GroupMember.image_id, GroupMember.group_id)
                                              .where(GroupMember.image_id.in_(ids)).order_by(GroupMember.group_id)):
        out[image_id].append(group_id)
    return out


def group_info(session: Session, group_id: int) -> GroupInfo:
    """A group with its members; ``NotFound`` for an unknown id."""
    group = session.get(Group, int(group_id))
    if group is None:
        raise NotFound(f"no group with id {group_id}")
    return _group_info(group)


def list_groups(session: Session, collection_id: int | None = None, limit: int | None = 500, *,
                newest_first: bool = True, text: str = "") -> list[GroupInfo]:
    """Groups (of a collection, default all) with their members: the ``limit`` newest first, or every group
    in creation order with ``newest_first=False, limit=None``. ``text``: only groups whose title contains it
    (case-insensitive), or whose id it is ("12", "#12")."""
    q = (select(Group).options(selectinload(Group.members))
         .order_by(Group.id.desc() if newest_first else Group.id).limit(limit))
    if collection_id is not None:
        q = q.where(Group.collection_id == collection_id)
    wanted = " ".join(text.split())
    if wanted:
        match = func.lower(Group.title).like(f"%{wanted.lower()}%")
        number = wanted.lstrip("#")
        q = q.where(or_(match, Group.id == int(number)) if number.isdigit() else match)
    return [_group_info(g) for g in session.scalars(q)]


def group_titles(session: Session, group_ids: Iterable[int]) -> dict[int, str | None]:
    """group id -> title (None when untitled), in one query."""
    ids = sorted({int(g) for g in group_ids})
    if not ids:
        return {}
    return dict(session.execute(select(Group.id, Group.title).where(Group.id.in_(ids))).all())


def link_status(session: Session, query_id: int | None, result_ids: Sequence[int]) -> dict[int, str]:
    """A short text per result: its link to the query (when the query is an image of the collection),
    whether it shares the query's group, and otherwise the group(s) it belongs to."""
    result_ids = [int(i) for i in result_ids]
    status: dict[int, list[str]] = {i: [] for i in result_ids}
    memberships = group_memberships(session, result_ids + ([query_id] if query_id is not None else []))
    query_groups: set[int] = set()
    if query_id is not None:
        rows = session.execute(select(Link.image_a_id, Link.image_b_id, Link.type).where(or_(
            and_(Link.image_a_id == query_id, Link.image_b_id.in_(result_ids)),
            and_(Link.image_b_id == query_id, Link.image_a_id.in_(result_ids)))))
        for a, b, kind in rows:
            status[b if a == query_id else a].append(f"linked: {_text(kind)}")
        query_groups = set(memberships.get(query_id, ()))
    titles = group_titles(session, [g for groups in memberships.values() for g in groups])
    for rid in result_ids:
        groups = memberships.get(rid, [])
        shared = [g for g in groups if g in query_groups]
        if shared:
            status[rid].append("in the query's group " + ", ".join(_numbered(g, titles.get(g)) for g in shared))
        elif groups:
            status[rid].append("group " + ", ".join(_numbered(g, titles.get(g)) for g in groups))
    return {rid: "; ".join(parts) for rid, parts in status.items()}


def _numbered(group_id: int, title: str | None) -> str:
    return f"#{group_id} {title}" if title else f"#{group_id}"
