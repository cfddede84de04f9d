"""Proposed links (``link_proposals``, docs/discovery.md): pairs of images that a batch of nearest-neighbour
searches proposes as visual links, stored with their score, rank and variant, waiting for a verdict.

This module keeps the graph's rules; it does not search (``vislink.evaluation.proposals`` builds the candidates):

- ``store_proposals`` replaces the collection's *open* proposals of one variant by new candidates, leaving out
  every pair that the graph already answers: linked (any link type, negative included: a refused pair is never
  proposed again), in one group, the same file (same content sha256, or one recorded as the other's duplicate),
  or already decided (an accepted or rejected proposal keeps its verdict across rebuilds).
- ``accept_proposal`` makes the pair a positive link (``edits.set_link``: audited, undoable; groups are left as
  they are unless ``join_group``: then the two end in one group), ``reject_proposal`` a negative link (which fine-tuning mines as certain
  negatives, ``build.negative_pairs``), ``duplicate_proposal`` a duplicate link (the same work reproduced twice);
  ``undo_verdict`` takes an annotator's last verdict back (its link edit undone, the proposal open again).
- ``list_proposals`` in three orders (``ORDERS``: best score, uncertain first around ``decision_boundary``, newest),
  ``proposal_counts`` (done / left, per status and per annotator) and ``export_proposals`` (CSV, cells escaped
  against spreadsheet formulas).

Like the other edits, these flush but do not commit.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from statistics import median
from typing import Iterable

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.orm import Session, aliased

from vislink.errors import NotFound, VislinkError
from vislink.formats.spreadsheet import escape_cell
from vislink.graph.audit import Change, undo_last
from vislink.graph.edits import add_member, create_group, group_of, merge_groups, set_link
from vislink.store.models import (
    Annotator,
    AuditEvent,
    GroupMember,
    Image,
    Link,
    LinkProposal,
    LinkType,
    ProposalStatus,
    utcnow,
)

EXPORT_COLUMNS = ("id", "status", "score", "rank", "variant", "image_a", "image_b", "ref_a", "ref_b",
                  "artist_a", "artist_b", "title_a", "title_b", "link_id")


@dataclass(frozen=True)
class Candidate:
    """A pair proposed by a builder: the two image ids (any order), the similarity and the rank."""

    a: int
    b: int
    score: float
    rank: int


@dataclass(frozen=True)
class ProposalInfo:
    id: int
    image_a: int
    image_b: int
    ref_a: str
    ref_b: str
    artist_a: str | None
    artist_b: str | None
    title_a: str | None
    title_b: str | None
    score: float
    rank: int
    variant: str
    status: str
    link_id: int | None
    decided_by: str | None = None  # the annotator's name, None while open (or decided without one)
    distance: float | None = None  # order="uncertain": |score - the variant's decision boundary|


def _pairs_in(session: Session, collection_id: int) -> tuple[set[tuple[int, int]], dict[int, int], dict[int, str],
                                                              dict[int, int]]:
    image_ids = select(Image.id).where(Image.collection_id == collection_id)
    linked = {(a, b) for a, b in session.execute(
        select(Link.image_a_id, Link.image_b_id).where(Link.image_a_id.in_(image_ids)))}
    group_of = {m: g for g, m in session.execute(
        select(GroupMember.group_id, GroupMember.image_id).where(GroupMember.image_id.in_(image_ids)))}
    sha = {}
    duplicate_of = {}
    for i, digest, dup in session.execute(select(Image.id, Image.sha256, Image.duplicate_of_id)
                                          .where(Image.collection_id == collection_id)):
        if digest:
            sha[i] = digest
        if dup is not None:
            duplicate_of[i] = dup
    return linked, group_of, sha, duplicate_of


def exclusion_reason(a: int, b: int, linked: set[tuple[int, int]], group_of: dict[int, int], sha: dict[int, str],
                     duplicate_of: dict[int, int]) -> str | None:
    """Why the pair (a < b) is not proposed, or None."""
    if (a, b) in linked:
        return "linked"
    if group_of.get(a) is not None and group_of.get(a) == group_of.get(b):
        return "same group"
    if (sha.get(a) and sha.get(a) == sha.get(b)) or duplicate_of.get(a) == b or duplicate_of.get(b) == a:
        return "same file"
    return None


def store_proposals(session: Session, collection_id: int, variant: str, candidates: Iterable[Candidate]) -> dict:
    """Replace the open proposals of ``variant`` in the collection by ``candidates`` (minus the pairs the graph
    already answers, see the module's doc). Returns counts: ``stored``, ``replaced`` (open ones removed),
    ``excluded`` by reason (``linked``, ``same group``, ``same file``, ``decided``, ``proposed``: an open
    proposal of another variant)."""
    replaced = session.execute(delete(LinkProposal).where(
        LinkProposal.collection_id == collection_id, LinkProposal.variant_name == variant,
        LinkProposal.status == ProposalStatus.open)).rowcount or 0
    linked, group_of, sha, duplicate_of = _pairs_in(session, collection_id)
    existing = {(a, b): status for a, b, status in session.execute(
        select(LinkProposal.image_a_id, LinkProposal.image_b_id, LinkProposal.status)
        .where(LinkProposal.collection_id == collection_id))}
    excluded: dict[str, int] = {}
    best: dict[tuple[int, int], Candidate] = {}
    for c in candidates:
        a, b = min(int(c.a), int(c.b)), max(int(c.a), int(c.b))
        if a == b:
            continue
        reason = exclusion_reason(a, b, linked, group_of, sha, duplicate_of)
        if reason is None and (a, b) in existing:
            reason = "proposed" if ProposalStatus(existing[(a, b)]) is ProposalStatus.open else "decided"
        if reason is not None:
            excluded[reason] = excluded.get(reason, 0) + 1
            continue
        if (a, b) not in best or c.score > best[(a, b)].score:
            best[(a, b)] = Candidate(a, b, float(c.score), int(c.rank))
    if best:
        # One executemany (Core insert) rather than an ORM object per row: 148,000 proposals at 40,000 images.
        now = utcnow()
        session.execute(insert(LinkProposal), [
            {"collection_id": collection_id, "image_a_id": a, "image_b_id": b, "variant_name": variant,
             "score": c.score, "rank": c.rank, "status": ProposalStatus.open, "created_at": now}
            for (a, b), c in sorted(best.items())])
    session.flush()
    return {"stored": len(best), "replaced": int(replaced), "excluded": excluded}


def parse_status(value: ProposalStatus | str) -> ProposalStatus:
    try:
        return ProposalStatus(value)
    except ValueError:
        raise VislinkError(f"unknown proposal status {value!r}: use one of "
                           + ", ".join(s.value for s in ProposalStatus)) from None


ORDERS = ("score", "uncertain", "newest")
# Verdicts that say "these two are linked": a duplicate is the same work, the most certain link of all.
POSITIVE_VERDICTS = (ProposalStatus.accepted, ProposalStatus.duplicate)


@dataclass(frozen=True)
class Boundary:
    """Where a variant's scores turn from "not linked" to "linked", as far as the verdicts tell: ``score``, and
    ``source``: ``verdicts`` (the midpoint of the median positive and the median rejected score), ``open scores``
    (no or one-sided verdicts: the median score of the open proposals) or ``none`` (no proposal at all, score 0)."""

    variant: str
    score: float
    source: str
    n_positive: int = 0
    n_negative: int = 0


def decision_boundary(session: Session, collection_id: int, variant: str) -> Boundary:
    """The score of ``variant`` a verdict is least predictable at: the midpoint of the medians of the accepted
    (and duplicate) scores and of the rejected ones. Medians, not a logistic fit: a handful of verdicts is
    usually separable, where a fit's slope runs away and its boundary is anywhere in the gap; the midpoint of
    medians lies in it and moves little with one more verdict. With no positive or no rejected verdict yet
    there is nothing to separate: the median open score, so that review starts in the middle of the list."""
    of_variant = (LinkProposal.collection_id == collection_id, LinkProposal.variant_name == variant)
    # The decided rows only (few), then the open median in SQL: loading every score into Python made this take
    # 2.5 s at 100,000 proposals on SQLite (benchmarks/review_order.py), and the Review page asks twice a run.
    decided = session.execute(select(LinkProposal.status, LinkProposal.score).where(
        *of_variant, LinkProposal.status != ProposalStatus.open)).all()
    positive = [float(sc) for st, sc in decided if ProposalStatus(st) in POSITIVE_VERDICTS]
    negative = [float(sc) for st, sc in decided if ProposalStatus(st) is ProposalStatus.rejected]
    if positive and negative:
        return Boundary(variant, (median(positive) + median(negative)) / 2, "verdicts", len(positive),
                        len(negative))
    is_open = (*of_variant, LinkProposal.status == ProposalStatus.open)
    n_open = session.scalar(select(func.count()).select_from(LinkProposal).where(*is_open)) or 0
    if n_open:
        ordered = select(LinkProposal.score).where(*is_open).order_by(LinkProposal.score)
        # One sorted scan: the middle score, or the two middle ones of an even count.
        middle = [float(v) for v in session.scalars(ordered.offset((n_open - 1) // 2).limit(2 - n_open % 2))]
        return Boundary(variant, sum(middle) / len(middle), "open scores", len(positive), len(negative))
    return Boundary(variant, 0.0, "none", len(positive), len(negative))


def parse_order(value: str) -> str:
    if value not in ORDERS:
        raise VislinkError(f"unknown proposal order {value!r}: use one of {', '.join(ORDERS)}")
    return value


def list_proposals(session: Session, collection_id: int, *, status: ProposalStatus | str | None = "open",
                   variant: str | None = None, limit: int | None = None, order: str = "score",
                   offset: int = 0) -> list[ProposalInfo]:
    """Proposals of the collection (``status=None``: every status). ``order``: ``score`` (best first),
    ``uncertain`` (closest to their variant's ``decision_boundary`` first: the verdicts that teach the most,
    the active-learning order; ties by best score) or ``newest`` (last built first)."""
    order = parse_order(order)
    ia, ib, who = aliased(Image), aliased(Image), aliased(Annotator)
    stmt = (select(LinkProposal, ia, ib, who.name).join(ia, ia.id == LinkProposal.image_a_id)
            .join(ib, ib.id == LinkProposal.image_b_id).outerjoin(who, who.id == LinkProposal.decided_by_id)
            .where(LinkProposal.collection_id == collection_id))
    if status is not None:
        stmt = stmt.where(LinkProposal.status == parse_status(status))
    if variant is not None:
        stmt = stmt.where(LinkProposal.variant_name == variant)
    boundaries: dict[str, float] = {}
    if order == "uncertain":
        variants = [variant] if variant is not None else session.scalars(
            select(LinkProposal.variant_name).where(LinkProposal.collection_id == collection_id).distinct()).all()
        boundaries = {v: decision_boundary(session, collection_id, v).score for v in variants}
        # In SQL, so that limit / offset page through the order (one boundary per variant: a CASE).
        at = case(*[(LinkProposal.variant_name == v, b) for v, b in boundaries.items()], else_=0.0) \
            if boundaries else 0.0
        stmt = stmt.order_by(func.abs(LinkProposal.score - at), LinkProposal.score.desc(), LinkProposal.id)
    elif order == "newest":
        stmt = stmt.order_by(LinkProposal.created_at.desc(), LinkProposal.id.desc())
    else:
        stmt = stmt.order_by(LinkProposal.score.desc(), LinkProposal.id)
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [ProposalInfo(p.id, p.image_a_id, p.image_b_id, a.source_ref, b.source_ref, a.artist, b.artist,
                         a.title, b.title, float(p.score), int(p.rank), p.variant_name, ProposalStatus(p.status).value,
                         p.link_id, decided_by=name,
                         distance=abs(float(p.score) - boundaries[p.variant_name])
                         if p.variant_name in boundaries else None)
            for p, a, b, name in session.execute(stmt)]


@dataclass(frozen=True)
class ProposalCounts:
    """How far review has gone: ``left`` (open), ``done`` (decided), ``by_status`` (every status, zeros
    included) and ``by_annotator``: annotator name (``None``: decided without one, e.g. the CLI without
    ``-a``) -> status -> number of verdicts. The open ones are one queue for everybody, so "left" is shared."""

    left: int
    done: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_annotator: dict[str | None, dict[str, int]] = field(default_factory=dict)


def proposal_counts(session: Session, collection_id: int, *, variant: str | None = None) -> ProposalCounts:
    """Done / left overall and per annotator, for one variant or all (``variant=None``)."""
    stmt = (select(LinkProposal.status, Annotator.name, func.count())
            .outerjoin(Annotator, Annotator.id == LinkProposal.decided_by_id)
            .where(LinkProposal.collection_id == collection_id)
            .group_by(LinkProposal.status, Annotator.name))
    if variant is not None:
        stmt = stmt.where(LinkProposal.variant_name == variant)
    by_status = {s.value: 0 for s in ProposalStatus}
    by_annotator: dict[str | None, dict[str, int]] = {}
    for status, name, n in session.execute(stmt):
        status = ProposalStatus(status)
        by_status[status.value] += int(n)
        if status is not ProposalStatus.open:
            per = by_annotator.setdefault(name, {s.value: 0 for s in ProposalStatus if s is not ProposalStatus.open})
            per[status.value] += int(n)
    left = by_status[ProposalStatus.open.value]
    return ProposalCounts(left=left, done=sum(by_status.values()) - left, by_status=by_status,
                          by_annotator=by_annotator)


# The audit action of each verdict's edit (undo_verdict checks that the edit it undoes is the verdict's).
VERDICT_ACTIONS = {ProposalStatus.accepted: "accept_proposal", ProposalStatus.rejected: "reject_proposal",
                   ProposalStatus.duplicate: "duplicate_proposal"}


def _open_proposal(session: Session, proposal_id: int, collection_id: int | None) -> LinkProposal:
    proposal = session.get(LinkProposal, int(proposal_id))
    if proposal is None or (collection_id is not None and proposal.collection_id != collection_id):
        raise NotFound(f"no proposal {proposal_id}" + ("" if collection_id is None else " in this collection"))
    if ProposalStatus(proposal.status) is not ProposalStatus.open:
        raise VislinkError(f"proposal {proposal_id} was already {ProposalStatus(proposal.status).value}")
    return proposal


def _decide(session: Session, proposal_id: int, link_type: LinkType, status: ProposalStatus, *,
            annotator_id: int | None, note: str | None, collection_id: int | None,
            join_group: bool = False) -> LinkProposal:
    proposal = _open_proposal(session, proposal_id, collection_id)
    a, b = proposal.image_a_id, proposal.image_b_id
    change = Change(session, annotator_id, VERDICT_ACTIONS[status])
    link = set_link(session, a, b, link_type, note, annotator_id=annotator_id, change=change)
    if join_group:
        ga, gb = group_of(session, a), group_of(session, b)
        if ga is None and gb is None:
            create_group(session, [a, b], annotator_id=annotator_id, change=change)
        elif ga is None or gb is None:
            add_member(session, (ga or gb).id, a if ga is None else b, annotator_id=annotator_id, change=change)
        elif ga.id != gb.id:
            merge_groups(session, ga.id, [gb.id], annotator_id=annotator_id)
    proposal.status, proposal.link_id = status, link.id
    proposal.decided_by_id, proposal.decided_at = annotator_id, utcnow()
    session.flush()
    return proposal


def accept_proposal(session: Session, proposal_id: int, *, annotator_id: int | None = None, note: str | None = None,
                    collection_id: int | None = None, join_group: bool = False) -> LinkProposal:
    """The proposed pair becomes a positive link (an audited ``set_link``); the proposal is ``accepted``.
    ``join_group``: also put the two in one group, by the graph's rules: a new group when neither is in one, the
    other joins the group of the one that is, the second's group merged into the first's when both are."""
    return _decide(session, proposal_id, LinkType.positive, ProposalStatus.accepted, annotator_id=annotator_id,
                   note=note, collection_id=collection_id, join_group=join_group)


def reject_proposal(session: Session, proposal_id: int, *, annotator_id: int | None = None, note: str | None = None,
                    collection_id: int | None = None) -> LinkProposal:
    """The proposed pair becomes a negative link (never proposed again, mined by fine-tuning as a certain
    negative); the proposal is ``rejected``. Refused like any negative link when the two share a group."""
    return _decide(session, proposal_id, LinkType.negative, ProposalStatus.rejected, annotator_id=annotator_id,
                   note=note, collection_id=collection_id)


def duplicate_proposal(session: Session, proposal_id: int, *, annotator_id: int | None = None,
                       note: str | None = None, collection_id: int | None = None,
                       join_group: bool = False) -> LinkProposal:
    """The pair is the same work twice (a duplicate reproduction): a ``duplicate`` link (a confirmed link, as a
    positive one, for groups and evaluation); the proposal is ``duplicate``. ``join_group`` as for accept."""
    return _decide(session, proposal_id, LinkType.duplicate, ProposalStatus.duplicate, annotator_id=annotator_id,
                   note=note, collection_id=collection_id, join_group=join_group)


def _recent_changes(session: Session, annotator_id: int, n: int) -> list[tuple[str, object, set[int]]]:
    """The annotator's last ``n`` edits not yet undone, newest first: (action, time, ids of the links touched)."""
    changes: dict[str, tuple[str, object, set[int]]] = {}
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.annotator_id == annotator_id, AuditEvent.undone.is_(False),
                                 AuditEvent.action != "undo")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(500))
    for event in events:
        key = event.after["change"]
        if key not in changes:
            if len(changes) == n:
                break
            changes[key] = (event.action, event.at, set())
        if event.entity == "link" and event.entity_id is not None:
            changes[key][2].add(event.entity_id)
    return list(changes.values())


def undo_verdict(session: Session, proposal_id: int, *, annotator_id: int,
                 collection_id: int | None = None) -> LinkProposal:
    """Take back ``annotator_id``'s verdict on the proposal: its edit is undone (``audit.undo_last``: the link as
    it was before, a group made or joined by ``join_group`` too, and the merge a join made, a second edit) and the
    proposal is open again. Only the annotator's *last* edit can go this way: anything they did after it is
    undone first (the Annotate page's undo), or the verdict changed by hand (``vislink link add``)."""
    proposal = session.get(LinkProposal, int(proposal_id))
    if proposal is None or (collection_id is not None and proposal.collection_id != collection_id):
        raise NotFound(f"no proposal {proposal_id}" + ("" if collection_id is None else " in this collection"))
    status = ProposalStatus(proposal.status)
    if status is ProposalStatus.open:
        raise VislinkError(f"proposal {proposal_id} is open: there is no verdict to undo")
    if proposal.decided_by_id != annotator_id:
        raise VislinkError(f"proposal {proposal_id} was {status.value} by another annotator: only they can undo it")
    action = VERDICT_ACTIONS[status]
    changes = _recent_changes(session, annotator_id, 2)
    # A join that merged two groups is a second edit, made before the verdict was stamped: undone first.
    steps = 2 if (len(changes) == 2 and changes[0][0] == "merge_groups" and proposal.decided_at is not None
                  and _naive(changes[0][1]) <= _naive(proposal.decided_at)) else 1
    verdict = changes[steps - 1] if len(changes) >= steps else None
    if verdict is None or verdict[0] != action or proposal.link_id not in verdict[2]:
        raise VislinkError(f"the verdict on proposal {proposal_id} is not your last edit: undo the edits made "
                           "after it first, or change the link itself")
    for _ in range(steps):
        undo_last(session, annotator_id)
    proposal = session.get(LinkProposal, int(proposal_id))
    proposal.status, proposal.link_id = ProposalStatus.open, None
    proposal.decided_by_id, proposal.decided_at = None, None
    session.flush()
    return proposal


def _naive(at):
    # SQLite hands back naive datetimes (written in UTC), PostgreSQL aware ones: compare them as naive UTC.
    return at.replace(tzinfo=None) if at.tzinfo is None else at.astimezone(timezone.utc).replace(tzinfo=None)


def export_proposals(session: Session, collection_id: int, path: Path | str, *,
                     status: ProposalStatus | str | None = None) -> int:
    """Write the collection's proposals (``status=None``: all) as CSV (``EXPORT_COLUMNS``); returns the rows."""
    rows = list_proposals(session, collection_id, status=status)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(EXPORT_COLUMNS)
        for p in rows:
            writer.writerow([escape_cell(v) for v in (
                p.id, p.status, f"{p.score:.6f}", p.rank, p.variant, p.image_a, p.image_b, p.ref_a, p.ref_b,
                p.artist_a or "", p.artist_b or "", p.title_a or "", p.title_b or "",
                "" if p.link_id is None else p.link_id)])
    return len(rows)
