"""Proposed links (``link_proposals``, docs/discovery.md): pairs of images that a batch of nearest-neighbour
searches proposes as visual links, stored with their score, rank and variant, waiting for a verdict.

This module keeps the graph's rules; it does not search (``vislink.evaluation.proposals`` builds the candidates):

- ``store_proposals`` replaces the collection's *open* proposals of one variant by new candidates, leaving out
  every pair that the graph already answers: linked (any link type, negative included: a refused pair is never
  proposed again), in one group, the same file (same content sha256, or one recorded as the other's duplicate),
  or already decided (an accepted or rejected proposal keeps its verdict across rebuilds).
- ``accept_proposal`` makes the pair a positive link (``edits.set_link``: audited, undoable; groups are left as
  they are unless ``join_group``: then the two end in one group), ``reject_proposal`` a negative link (which fine-tuning mines as certain
  negatives, ``build.negative_pairs``).
- ``list_proposals`` and ``export_proposals`` (CSV, cells escaped against spreadsheet formulas).

Like the other edits, these flush but do not commit.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, aliased

from vislink.errors import NotFound, VislinkError
from vislink.formats.spreadsheet import escape_cell
from vislink.graph.audit import Change
from vislink.graph.edits import add_member, create_group, group_of, merge_groups, set_link
from vislink.store.models import GroupMember, Image, Link, LinkProposal, LinkType, ProposalStatus, utcnow

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
    for (a, b), c in sorted(best.items()):
        session.add(LinkProposal(collection_id=collection_id, image_a_id=a, image_b_id=b, variant_name=variant,
                                 score=c.score, rank=c.rank, status=ProposalStatus.open))
    session.flush()
    return {"stored": len(best), "replaced": int(replaced), "excluded": excluded}


def parse_status(value: ProposalStatus | str) -> ProposalStatus:
    try:
        return ProposalStatus(value)
    except ValueError:
        raise VislinkError(f"unknown proposal status {value!r}: use one of "
                           + ", ".join(s.value for s in ProposalStatus)) from None


def list_proposals(session: Session, collection_id: int, *, status: ProposalStatus | str | None = "open",
                   variant: str | None = None, limit: int | None = None) -> list[ProposalInfo]:
    """Proposals of the collection, best score first (``status=None``: every status)."""
    ia, ib = aliased(Image), aliased(Image)
    stmt = (select(LinkProposal, ia, ib).join(ia, ia.id == LinkProposal.image_a_id)
            .join(ib, ib.id == LinkProposal.image_b_id).where(LinkProposal.collection_id == collection_id))
    if status is not None:
        stmt = stmt.where(LinkProposal.status == parse_status(status))
    if variant is not None:
        stmt = stmt.where(LinkProposal.variant_name == variant)
    stmt = stmt.order_by(LinkProposal.score.desc(), LinkProposal.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [ProposalInfo(p.id, p.image_a_id, p.image_b_id, a.source_ref, b.source_ref, a.artist, b.artist,
                         a.title, b.title, float(p.score), int(p.rank), p.variant_name, ProposalStatus(p.status).value,
                         p.link_id)
            for p, a, b in session.execute(stmt)]


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
    change = Change(session, annotator_id, "accept_proposal" if status is ProposalStatus.accepted
                    else "reject_proposal")
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
