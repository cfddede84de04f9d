"""Audit trail and undo. Every edit to a group or a link writes one ``AuditEvent`` per entity it
touches, with the entity's state before and after. The events of one edit (a merge touches several
groups, an import thousands of links) share a change id and a timestamp, so that ``undo_last`` reverts
an annotator's whole last edit, never half of it.

Event ``before``/``after`` are ``{"change": <id>, "state": <snapshot or null>}``; a null state means the
entity did not exist (created / deleted). Snapshots hold what an editor sees, not the version counter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from vislink.errors import ConflictError, NotFound
from vislink.store.models import Annotator, AuditEvent, Group, GroupMember, Link, LinkType, utcnow


class Change:
    """One user edit: the events it writes share ``id`` and ``at``."""

    def __init__(self, session: Session, annotator_id: int | None, action: str):
        self.session = session
        self.annotator_id = annotator_id
        self.action = action
        self.id = uuid.uuid4().hex
        self.at = utcnow()
        self.n_events = 0

    def record(self, entity: str, entity_id: int | None, before: dict | None, after: dict | None) -> None:
        if before == after:
            return  # nothing changed: nothing to audit or undo
        self.session.add(AuditEvent(
            annotator_id=self.annotator_id, at=self.at, action=self.action, entity=entity, entity_id=entity_id,
            before={"change": self.id, "state": before}, after={"change": self.id, "state": after},
        ))
        self.n_events += 1


def group_state(session: Session, group_id: int) -> dict | None:
    group = session.get(Group, group_id)
    if group is None:
        return None
    members = session.scalars(select(GroupMember.image_id).where(GroupMember.group_id == group_id)).all()
    return {"id": group.id, "collection_id": group.collection_id, "title": group.title, "note": group.note,
            "external_id": group.external_id, "created_by_id": group.created_by_id, "members": sorted(members)}


def _group_snapshot(state: dict | None) -> dict | None:
    """A group snapshot in today's form: events written before migration 0004 call the title ``name``."""
    if state is None or "title" in state:
        return state
    state = dict(state)
    state["title"] = state.pop("name", None)
    return state


def link_state(link: Link | None) -> dict | None:
    if link is None:
        return None
    return {"id": link.id, "image_a_id": link.image_a_id, "image_b_id": link.image_b_id,
            "type": LinkType(link.type).value, "note": link.note, "annotator_id": link.annotator_id}


def find_link(session: Session, a: int, b: int) -> Link | None:
    a, b = min(a, b), max(a, b)
    # populate_existing: an edit compares versions with the database, not with an old copy in this session
    return session.scalar(select(Link).where(Link.image_a_id == a, Link.image_b_id == b)
                          .execution_options(populate_existing=True))


def annotator_name(session: Session, annotator_id: int | None) -> str:
    if annotator_id is None:
        return "an anonymous editor"
    annotator = session.get(Annotator, annotator_id)
    return annotator.name if annotator else f"annotator #{annotator_id}"


def last_change(session: Session, entity: str, entity_id: int) -> tuple[str, datetime | None]:
    """Who last changed this entity and when (from the audit trail)."""
    event = session.scalar(select(AuditEvent).where(AuditEvent.entity == entity, AuditEvent.entity_id == entity_id)
                           .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(1))
    if event is None:
        return "another editor", None
    return annotator_name(session, event.annotator_id), event.at


def _when(at: datetime | None) -> str:
    if at is None:
        return "an unknown time"
    if at.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def stale_message(session: Session, entity: str, entity_id: int, expected: int | None, current: int | None) -> str:
    who, at = last_change(session, entity, entity_id)
    versions = f" (it is at version {current}, you loaded version {expected})" if expected is not None else ""
    return (f"{entity} {entity_id} was changed by {who} at {_when(at)} since you loaded it{versions}; "
            "reload and try again")


def flush_or_conflict(session: Session, entity: str, entity_id: int | None, expected: int | None = None, *,
                      pair: tuple[int, int] | None = None) -> None:
    """Flush; a concurrent edit (stale version, duplicate row) becomes a ConflictError naming what it hit and
    who made it. ``pair``: the two images of the link being written (a new link has no id before the flush;
    the message then names the concurrent link that took its place). The transaction is rolled back first:
    after a failed flush it cannot go on."""
    try:
        session.flush()
    except StaleDataError as exc:
        session.rollback()
        current = None
        if entity == "group" and entity_id is not None:
            row = session.get(Group, entity_id)
            current = row.version if row else None
        if entity_id is None:
            raise ConflictError(f"{_label(session, entity, entity_id, pair)} was changed by a concurrent edit; "
                                "reload and try again") from exc
        raise ConflictError(stale_message(session, entity, entity_id, expected, current)) from exc
    except IntegrityError as exc:
        session.rollback()
        reason = str(exc.orig).strip().splitlines()[0]
        label = _label(session, entity, entity_id, pair)
        by = ""
        if entity == "link" and entity_id is None and pair is not None:
            theirs = find_link(session, *pair)
            if theirs is not None:
                who, at = last_change(session, "link", theirs.id)
                by = f", made by {who} at {_when(at)}"
        raise ConflictError(f"{label} conflicts with a concurrent change ({reason}{by}); reload and try again") from exc


def _label(session: Session, entity: str, entity_id: int | None, pair: tuple[int, int] | None) -> str:
    """How a conflict message names what it is about: ``group 3``, ``link 12 (images 4 and 5)``; a new link by
    the concurrent one that now holds its pair, else by its images."""
    if entity == "link" and pair is not None:
        a, b = min(pair), max(pair)
        if entity_id is None:
            theirs = find_link(session, a, b)
            entity_id = theirs.id if theirs is not None else None
        return f"link {entity_id} (images {a} and {b})" if entity_id is not None else f"the link of images {a} and {b}"
    if entity_id is None:
        return f"one of the {entity}s written" if entity == "link" else f"a {entity}"
    return f"{entity} {entity_id}"


# -- undo ------------------------------------------------------------------------------------------------

@dataclass
class UndoResult:
    action: str
    at: datetime
    n_events: int
    entities: list[tuple[str, int | None]]


def restore_group(session: Session, group_id: int, state: dict | None) -> None:
    group = session.get(Group, group_id)
    if state is None:
        if group is not None:
            session.delete(group)
        return
    if group is None:
        group = Group(id=group_id, collection_id=state["collection_id"], created_by_id=state["created_by_id"])
        session.add(group)
    state = _group_snapshot(state)
    group.title, group.note, group.external_id = state["title"], state["note"], state["external_id"]
    group.updated_at = utcnow()  # always an UPDATE, so that the version moves and concurrent editors notice
    session.flush()
    current = set(session.scalars(select(GroupMember.image_id).where(GroupMember.group_id == group_id)))
    wanted = set(state["members"])
    for member in session.scalars(select(GroupMember).where(GroupMember.group_id == group_id,
                                                            GroupMember.image_id.in_(current - wanted))):
        session.delete(member)
    for image_id in sorted(wanted - current):
        session.add(GroupMember(group_id=group_id, image_id=image_id))


def restore_link(session: Session, link: Link | None, state: dict | None) -> Link | None:
    """Make the pair's link match ``state`` (None: no link); returns the link now in place."""
    if state is None:
        if link is not None:
            session.delete(link)
        return None
    if link is None:
        link = Link(id=state["id"], image_a_id=state["image_a_id"], image_b_id=state["image_b_id"])
        session.add(link)
    link.type, link.note, link.annotator_id = LinkType(state["type"]), state["note"], state["annotator_id"]
    return link


def _pair(event: AuditEvent) -> tuple[int, int]:
    state = event.after["state"] or event.before["state"]
    return state["image_a_id"], state["image_b_id"]


def undo_last(session: Session, annotator_id: int) -> UndoResult:
    """Revert the annotator's last edit that is not yet undone (repeat to go further back).

    Refused with ConflictError when somebody changed one of the same groups or links afterwards: undoing
    would silently throw their work away. The undo is itself audited (action ``undo``)."""
    session.flush()
    session.expire_all()  # compare with what is committed now, not with what this session saw earlier
    last = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.annotator_id == annotator_id, AuditEvent.undone.is_(False), AuditEvent.action != "undo")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(1))
    if last is None:
        raise NotFound(f"{annotator_name(session, annotator_id)} has no edit left to undo")
    change_id = last.after["change"]
    events = [e for e in session.scalars(
        select(AuditEvent).where(AuditEvent.annotator_id == annotator_id, AuditEvent.at == last.at,
                                 AuditEvent.undone.is_(False)).order_by(AuditEvent.id.desc()))
        if e.after["change"] == change_id]
    # One query for every link of the change (an import may hold thousands), then one flush.
    pairs = {_pair(e) for e in events if e.entity == "link"}
    links: dict[tuple[int, int], Link] = {}
    if pairs:
        firsts = sorted({a for a, _ in pairs})
        for chunk in range(0, len(firsts), 500):
            for link in session.scalars(select(Link).where(Link.image_a_id.in_(firsts[chunk:chunk + 500]))):
                if (link.image_a_id, link.image_b_id) in pairs:
                    links[(link.image_a_id, link.image_b_id)] = link
    # Events are walked newest first: each one's "after" must be what is there now, else someone else
    # changed the entity since, and restoring "before" step by step ends at the state before the change.
    undo = Change(session, annotator_id, "undo")
    touched = []
    for event in events:
        if event.entity == "group":
            current = group_state(session, event.entity_id)
            after = _group_snapshot(event.after["state"])
        else:
            current = link_state(links.get(_pair(event)))
            after = event.after["state"]
        if current != after:
            who, at = last_change(session, event.entity, event.entity_id)
            session.rollback()
            raise ConflictError(
                f"cannot undo your {last.action}: {event.entity} {event.entity_id} was changed by {who} at "
                f"{_when(at)} after it; reload and edit it by hand")
        if event.entity == "group":
            restore_group(session, event.entity_id, event.before["state"])
        else:
            links[_pair(event)] = restore_link(session, links.get(_pair(event)), event.before["state"])
        undo.record(event.entity, event.entity_id, current, event.before["state"])
        event.undone = True
        touched.append((event.entity, event.entity_id))
    flush_or_conflict(session, events[0].entity, events[0].entity_id)
    return UndoResult(action=last.action, at=last.at, n_events=len(events), entities=touched)
