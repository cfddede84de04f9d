"""Edits of the annotated link graph: groups (cliques of linked images) and typed links.

Every function takes the ``annotator_id`` of who edits (audited, undoable) and, for groups, the
``expected_version`` the editor loaded: when somebody else changed the group since, ``ConflictError``
says who and when. Every group edit first takes the group's row for its transaction (``SELECT ... FOR UPDATE``
on PostgreSQL, SQLite's write lock), then reads it: concurrent edits of one group wait for each other instead
of racing, so an edit without ``expected_version`` (imports, scripts, the CLI) always applies to the group as
the one before it left it and is never refused (seven concurrent adds of different images: seven added), while
an edit with ``expected_version`` still gets its ``ConflictError`` when the group moved on. On ConflictError
the session's transaction has been rolled back. Functions flush but never commit: the caller owns the
transaction (and the group's lock until it ends). Edits reload the group
from the database first, so changes made by hand to a loaded ``Group`` object and not flushed are dropped:
use ``update_group`` rather than setting attributes.

Rules kept here: an image is in at most one group (a group is its clique; two groups sharing an image
would be one), a group stays in one collection, and two images marked as a negative pair are never put
in the same group.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from vislink.errors import ConflictError, NotFound, VislinkError
from vislink.graph.audit import Change, find_link, flush_or_conflict, group_state, link_state, stale_message
from vislink.graph.refs import collection_of_images
from vislink.graph.titles import MAX_TITLE, default_title, group_label
from vislink.store.models import Group, GroupMember, Link, LinkType, utcnow

_UNSET = object()


def parse_link_type(value) -> LinkType:
    try:
        return LinkType(value.value if isinstance(value, LinkType) else str(value).strip().lower())
    except ValueError:
        valid = ", ".join(t.value for t in LinkType)
        raise VislinkError(f"unknown link type {value!r}; use one of {valid}") from None


def lock_groups(session: Session, group_ids: Iterable[int]) -> None:
    """Hold these groups' rows until the transaction ends, waiting first for concurrent edits of them to
    commit, so that what is read next is what they left. PostgreSQL: row locks, taken in id order (no
    deadlock between two merges). SQLite: a write that changes nothing takes the database's one write lock
    (its reads outside a write transaction always see the latest commit)."""
    ids = sorted({int(g) for g in group_ids})
    if not ids:
        return
    table = Group.__table__
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(table).where(table.c.id.in_(ids)).values(id=table.c.id))
    else:
        session.execute(select(table.c.id).where(table.c.id.in_(ids)).order_by(table.c.id).with_for_update())


def load_group(session: Session, group_id: int, expected_version: int | None = None) -> Group:
    """The group as committed now, locked for this transaction (``lock_groups``); ``ConflictError`` when it is
    not at ``expected_version``."""
    lock_groups(session, [group_id])
    group = session.get(Group, group_id, populate_existing=True)
    if group is None:
        raise NotFound(f"no group {group_id} (deleted by someone else?)")
    if expected_version is not None and group.version != expected_version:
        raise ConflictError(stale_message(session, "group", group_id, expected_version, group.version))
    return group


def group_of(session: Session, image_id: int) -> Group | None:
    """The group an image belongs to, or None."""
    return session.scalar(select(Group).join(GroupMember).where(GroupMember.image_id == image_id).limit(1))


def members_of(session: Session, group_id: int) -> list[int]:
    return sorted(session.scalars(select(GroupMember.image_id).where(GroupMember.group_id == group_id)))


def _check_free(session: Session, image_ids: Iterable[int], allowed_groups: Iterable[int] = ()) -> None:
    allowed = set(allowed_groups)
    rows = session.execute(select(GroupMember.image_id, GroupMember.group_id)
                           .where(GroupMember.image_id.in_(list(image_ids)))).all()
    for row in rows:
        if row.group_id not in allowed:
            title = session.scalar(select(Group.title).where(Group.id == row.group_id))
            named = f" ({title})" if title else ""
            raise VislinkError(f"image {row.image_id} is already in group {row.group_id}{named}; merge the groups "
                               f"(Annotate page, or `vislink groups merge`) or remove it from group {row.group_id} "
                               "first")


def _check_no_negative(session: Session, image_ids: Iterable[int]) -> None:
    ids = sorted(set(image_ids))
    if len(ids) < 2:
        return
    pair = session.execute(select(Link.image_a_id, Link.image_b_id).where(
        Link.type == LinkType.negative, Link.image_a_id.in_(ids), Link.image_b_id.in_(ids)).limit(1)).first()
    if pair is not None:
        raise VislinkError(f"images {pair[0]} and {pair[1]} are marked as a negative pair (not linked); "
                           "remove that negative link before grouping them")


def _title(title: str | None) -> str | None:
    if title is None:
        return None
    text = " ".join(str(title).split())
    if len(text) > MAX_TITLE:
        raise VislinkError(f"a group title has at most {MAX_TITLE} characters (this one has {len(text)})")
    return text or None


def _touch(group: Group) -> None:
    # Member rows are separate; touching the group row makes every member change bump its version.
    group.updated_at = utcnow()


def create_group(session: Session, image_ids: Iterable[int], *, annotator_id: int | None = None,
                 title: str | None = None, note: str | None = None, external_id: str | None = None,
                 change: Change | None = None, created_by_id: int | None = None) -> Group:
    """A new group of these images (all of one collection, none already in a group). Without a ``title``
    the group gets its members' common artist and title (``titles.default_title``). ``created_by_id``
    defaults to the editor (imports keep the original author)."""
    ids = sorted(set(int(i) for i in image_ids))
    collection_id = collection_of_images(session, ids)
    _check_free(session, ids)
    _check_no_negative(session, ids)
    change = change or Change(session, annotator_id, "create_group")
    title = _title(title) or default_title(session, ids)
    group = Group(collection_id=collection_id, title=title, note=note, external_id=external_id,
                  created_by_id=created_by_id if created_by_id is not None else annotator_id)
    session.add(group)
    session.flush()
    for image_id in ids:
        session.add(GroupMember(group_id=group.id, image_id=image_id, added_by_id=annotator_id))
    flush_or_conflict(session, "group", group.id)
    change.record("group", group.id, None, group_state(session, group.id))
    return group


def add_member(session: Session, group_id: int, image_id: int, *, annotator_id: int | None = None,
               expected_version: int | None = None, change: Change | None = None) -> Group:
    group = load_group(session, group_id, expected_version)
    before = group_state(session, group_id)
    if image_id in before["members"]:
        return group
    if collection_of_images(session, [image_id]) != group.collection_id:
        raise VislinkError(f"image {image_id} is not in the collection of group {group_id}")
    _check_free(session, [image_id])
    _check_no_negative(session, before["members"] + [image_id])
    session.add(GroupMember(group_id=group_id, image_id=image_id, added_by_id=annotator_id))
    _touch(group)
    flush_or_conflict(session, "group", group_id, expected_version)
    (change or Change(session, annotator_id, "add_member")).record("group", group_id, before,
                                                                    group_state(session, group_id))
    return group


def remove_member(session: Session, group_id: int, image_id: int, *, annotator_id: int | None = None,
                  expected_version: int | None = None) -> Group:
    """Take an image out of a group (the group stays, even when empty: delete it explicitly)."""
    group = load_group(session, group_id, expected_version)
    before = group_state(session, group_id)
    member = session.get(GroupMember, (group_id, image_id))
    if member is None:
        raise NotFound(f"image {image_id} is not in group {group_id}")
    session.delete(member)
    _touch(group)
    flush_or_conflict(session, "group", group_id, expected_version)
    Change(session, annotator_id, "remove_member").record("group", group_id, before, group_state(session, group_id))
    return group


def update_group(session: Session, group_id: int, *, title=_UNSET, note=_UNSET, annotator_id: int | None = None,
                 expected_version: int | None = None) -> Group:
    """Retitle a group or change its note. ``title=None`` (or blank) gives it the default title of its
    members again."""
    group = load_group(session, group_id, expected_version)
    before = group_state(session, group_id)
    if title is not _UNSET:
        group.title = _title(title) or default_title(session, before["members"])
    if note is not _UNSET:
        group.note = note
    _touch(group)
    flush_or_conflict(session, "group", group_id, expected_version)
    Change(session, annotator_id, "update_group").record("group", group_id, before, group_state(session, group_id))
    return group


def merge_groups(session: Session, target_id: int, source_ids: Iterable[int], *, annotator_id: int | None = None,
                 expected_versions: dict[int, int] | None = None) -> Group:
    """Move every member of the source groups into the target group and delete the sources.
    The target keeps its title (an untitled target takes the first titled source's); source titles and notes
    are appended to the target's note, so that nothing typed by hand is lost."""
    expected_versions = expected_versions or {}
    sources = [int(s) for s in dict.fromkeys(source_ids) if int(s) != target_id]
    if not sources:
        raise VislinkError("merge needs at least one group other than the target")
    lock_groups(session, [target_id, *sources])  # all at once, in id order
    target = load_group(session, target_id, expected_versions.get(target_id))
    loaded = [load_group(session, s, expected_versions.get(s)) for s in sources]
    for source in loaded:
        if source.collection_id != target.collection_id:
            raise VislinkError(f"groups {target_id} and {source.id} are in different collections")
    befores = {g: group_state(session, g) for g in [target_id, *sources]}
    union = sorted({m for state in befores.values() for m in state["members"]})
    _check_no_negative(session, union)
    change = Change(session, annotator_id, "merge_groups")
    title = target.title or next((s.title for s in loaded if s.title), None) or default_title(session, union)
    notes = [target.note] + [s.note for s in loaded]
    notes += [f"merged {group_label(s.id, s.title)}" for s in loaded if s.title and s.title != title]
    target.title, target.note = title, "\n".join(n for n in notes if n) or None
    for source in loaded:
        session.delete(source)  # members go with it (ORM cascade)
    flush_or_conflict(session, "group", sources[0], expected_versions.get(sources[0]))
    for image_id in sorted(set(union) - set(befores[target_id]["members"])):
        session.add(GroupMember(group_id=target_id, image_id=image_id, added_by_id=annotator_id))
    _touch(target)
    flush_or_conflict(session, "group", target_id, expected_versions.get(target_id))
    for source_id in sources:
        change.record("group", source_id, befores[source_id], None)
    change.record("group", target_id, befores[target_id], group_state(session, target_id))
    return target


def split_group(session: Session, group_id: int, image_ids: Iterable[int], *, annotator_id: int | None = None,
                expected_version: int | None = None, title: str | None = None, note: str | None = None) -> Group:
    """Move some members of a group into a new group; returns the new group."""
    group = load_group(session, group_id, expected_version)
    before = group_state(session, group_id)
    moved = sorted(set(int(i) for i in image_ids))
    outsiders = [i for i in moved if i not in before["members"]]
    if outsiders:
        raise VislinkError(f"images {outsiders} are not in group {group_id}")
    if not moved or len(moved) == len(before["members"]):
        raise VislinkError("a split moves some members of the group, not none and not all")
    change = Change(session, annotator_id, "split_group")
    for member in session.scalars(select(GroupMember).where(GroupMember.group_id == group_id,
                                                            GroupMember.image_id.in_(moved))):
        session.delete(member)
    _touch(group)
    flush_or_conflict(session, "group", group_id, expected_version)
    change.record("group", group_id, before, group_state(session, group_id))
    return create_group(session, moved, annotator_id=annotator_id, title=title, note=note, change=change)


def delete_group(session: Session, group_id: int, *, annotator_id: int | None = None,
                 expected_version: int | None = None) -> None:
    group = load_group(session, group_id, expected_version)
    before = group_state(session, group_id)
    session.delete(group)
    flush_or_conflict(session, "group", group_id, expected_version)
    Change(session, annotator_id, "delete_group").record("group", group_id, before, None)


# -- links -------------------------------------------------------------------------------------------

def set_link(session: Session, a: int, b: int, type: LinkType | str = LinkType.positive, note: str | None = None,
             *, annotator_id: int | None = None, expected_version: int | None = None,
             change: Change | None = None) -> Link:
    """Create or change the typed link between two images (one link per unordered pair)."""
    a, b = int(a), int(b)
    if a == b:
        raise VislinkError(f"a link joins two different images (got {a} twice)")
    link_type = parse_link_type(type)
    collection_of_images(session, [a, b])
    a, b = min(a, b), max(a, b)
    if link_type is LinkType.negative:
        ga, gb = group_of(session, a), group_of(session, b)
        if ga is not None and gb is not None and ga.id == gb.id:
            raise VislinkError(f"images {a} and {b} are both in group {ga.id}; take one out of the group "
                               "before marking them as a negative pair")
    link = find_link(session, a, b)
    before = link_state(link)
    if link is not None:
        if expected_version is not None and link.version != expected_version:
            raise ConflictError(stale_message(session, "link", link.id, expected_version, link.version))
        if LinkType(link.type) is link_type and link.note == note:
            return link
        link.type, link.note, link.annotator_id = link_type, note, annotator_id
    else:
        link = Link(image_a_id=a, image_b_id=b, type=link_type, note=note, annotator_id=annotator_id)
        session.add(link)
    flush_or_conflict(session, "link", link.id, expected_version, pair=(a, b))
    (change or Change(session, annotator_id, "set_link")).record("link", link.id, before, link_state(link))
    return link


def set_links(session: Session, collection_id: int, items: Iterable[tuple[int, int, LinkType | str, str | None,
                                                                       int | None]], *, change: Change) -> dict:
    """Bulk ``set_link`` for imports: ``items`` are (a, b, type, note, annotator_id) of images already known to
    be in the collection. A few queries and one flush instead of several per link. Returns counts and the
    pairs refused (a negative pair inside one group), each with its reason."""
    from vislink.graph.build import group_members  # build imports this module

    group_of_image = {m: g for g, members in group_members(session, collection_id).items() for m in members}
    image_ids = sorted({int(x) for item in items for x in item[:2]})
    existing: dict[tuple[int, int], Link] = {}
    for start in range(0, len(image_ids), 500):  # chunks: SQLite limits the parameters of one statement
        for link in session.scalars(select(Link).where(Link.image_a_id.in_(image_ids[start:start + 500]))):
            existing[(link.image_a_id, link.image_b_id)] = link
    result = {"set": 0, "unchanged": 0, "skipped": []}
    touched: list[tuple[Link, dict | None]] = []
    for a, b, type_, note, annotator_id in items:
        a, b = min(int(a), int(b)), max(int(a), int(b))
        link_type = parse_link_type(type_)
        if a == b:
            result["skipped"].append((a, b, "a link joins two different images"))
            continue
        if link_type is LinkType.negative and group_of_image.get(a) is not None \
                and group_of_image.get(a) == group_of_image.get(b):
            result["skipped"].append((a, b, f"both in group {group_of_image[a]}: cannot be a negative pair"))
            continue
        link = existing.get((a, b))
        if link is not None and LinkType(link.type) is link_type and link.note == note:
            result["unchanged"] += 1
            continue
        before = link_state(link)
        if link is None:
            link = existing[(a, b)] = Link(image_a_id=a, image_b_id=b)
            session.add(link)
        link.type, link.note, link.annotator_id = link_type, note, annotator_id
        touched.append((link, before))
    flush_or_conflict(session, "link", None)
    for link, before in touched:
        change.record("link", link.id, before, link_state(link))
    result["set"] = len(touched)
    return result


def remove_link(session: Session, a: int, b: int, *, annotator_id: int | None = None,
                expected_version: int | None = None) -> None:
    link = find_link(session, int(a), int(b))
    if link is None:
        raise NotFound(f"no link between images {a} and {b}")
    if expected_version is not None and link.version != expected_version:
        raise ConflictError(stale_message(session, "link", link.id, expected_version, link.version))
    before = link_state(link)
    session.delete(link)
    flush_or_conflict(session, "link", before["id"], expected_version, pair=(int(a), int(b)))
    Change(session, annotator_id, "remove_link").record("link", before["id"], before, None)


def links_of(session: Session, image_id: int) -> list[Link]:
    return list(session.scalars(select(Link).where(or_(Link.image_a_id == image_id, Link.image_b_id == image_id))
                                .order_by(Link.id)))
