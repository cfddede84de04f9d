"""What the Review page reads and writes (docs/review.md): the queue of open proposals in the chosen order, the
counts, and the verdicts, each in a session of its own through ``vislink.graph.proposals`` (audited edits, the
graph's rules for groups). Plain dataclasses come back, detached from the session."""

from __future__ import annotations

from sqlalchemy import select

from vislink.errors import VislinkError
# Names, not the module: ``vislink.graph.proposals`` is also a function that vislink.graph exports (the older
# proposal links of graph.build), and ``from vislink.graph import proposals`` gets whichever was bound last.
from vislink.graph.proposals import (
    Boundary,
    ProposalCounts,
    ProposalInfo,
    accept_proposal,
    decision_boundary,
    duplicate_proposal,
    list_proposals,
    proposal_counts,
    reject_proposal,
    undo_verdict,
)
from vislink.store import LinkProposal, session_scope

# The page's names of the orders (list_proposals' ``order``), the first the default: the active-learning one.
ORDERS = {"uncertain first": "uncertain", "best score": "score", "newest": "newest"}
# Verdict -> (graph function, what the page says it did).
VERDICTS = {
    "accept": (accept_proposal, "accepted: a positive link"),
    "reject": (reject_proposal, "rejected: a negative link"),
    "duplicate": (duplicate_proposal, "marked as the same work: a duplicate link"),
}


def variants_with_proposals(collection_id: int) -> list[str]:
    """The variants that proposals were built with in this collection, by name."""
    with session_scope() as s:
        return sorted(s.scalars(select(LinkProposal.variant_name)
                                .where(LinkProposal.collection_id == collection_id).distinct()))


def queue(collection_id: int, variant: str, order: str, *, limit: int, skip: frozenset[int] = frozenset()
          ) -> list[ProposalInfo]:
    """The next ``limit`` open proposals of ``variant`` in ``order`` (a page name of ``ORDERS`` or the API's
    name), leaving out the ids in ``skip`` (those this browser session skipped)."""
    with session_scope() as s:
        rows = list_proposals(s, collection_id, status="open", variant=variant,
                                              order=ORDERS.get(order, order), limit=limit + len(skip))
    return [p for p in rows if p.id not in skip][:limit]


def counts(collection_id: int, variant: str) -> ProposalCounts:
    with session_scope() as s:
        return proposal_counts(s, collection_id, variant=variant)


def boundary(collection_id: int, variant: str) -> Boundary:
    with session_scope() as s:
        return decision_boundary(s, collection_id, variant)


def decide(proposal_id: int, verdict: str, annotator_id: int, *, collection_id: int, note: str | None = None,
           join_group: bool = False) -> str:
    """Give ``verdict`` (``VERDICTS``) on the proposal as ``annotator_id``; returns a sentence saying what it did.
    ``join_group``: accept and duplicate also put the two in one group (the graph's rules); reject never does."""
    if verdict not in VERDICTS:
        raise VislinkError(f"unknown verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
    fn, said = VERDICTS[verdict]
    extra = {"join_group": join_group} if verdict != "reject" else {}
    with session_scope() as s:
        proposal = fn(s, int(proposal_id), annotator_id=annotator_id, note=(note or "").strip() or None,
                      collection_id=collection_id, **extra)
        text = f"Proposal #{proposal.id} {said} between images {proposal.image_a_id} and {proposal.image_b_id}"
    return text + (" (the two are now in one group)." if extra.get("join_group") else ".")


def undo(proposal_id: int, annotator_id: int, *, collection_id: int) -> str:
    """Take back the annotator's verdict on the proposal (``graph.proposals.undo_verdict``)."""
    with session_scope() as s:
        undo_verdict(s, int(proposal_id), annotator_id=annotator_id, collection_id=collection_id)
    return f"Verdict on proposal #{proposal_id} undone: it is open again."
