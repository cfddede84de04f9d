"""Reviewing proposals (issue #19 items 2 and 5): the orders of ``list_proposals`` (the active-learning one puts
the proposal nearest the verdicts' boundary first), the boundary's fallbacks, the duplicate verdict, counts per
annotator and the undo of a verdict, on a real SQLite store with hand-made proposals of known scores."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from vislink.errors import VislinkError

VARIANT = "vgg16-pool5-sum"


def _setup(session, scores, variant=VARIANT, name="rev"):
    """A collection of 2 * len(scores) images and one proposal per (2i, 2i+1) pair with ``scores[i]``;
    returns (collection id, proposal ids in the order of ``scores``, the two annotators' ids)."""
    from vislink.graph.proposals import Candidate, store_proposals
    from vislink.store import Annotator, Collection, Image, LinkProposal

    coll = Collection(name=name)
    session.add(coll)
    session.flush()
    images = [Image(collection_id=coll.id, source_ref=f"{name}/img{i}.jpg") for i in range(2 * len(scores))]
    session.add_all(images)
    alice, bob = Annotator(name=f"alice-{name}"), Annotator(name=f"bob-{name}")
    session.add_all([alice, bob])
    session.flush()
    ids = [im.id for im in images]
    store_proposals(session, coll.id, variant,
                    [Candidate(ids[2 * i], ids[2 * i + 1], s, 1) for i, s in enumerate(scores)])
    by_pair = {(p.image_a_id, p.image_b_id): p.id for p in session.scalars(
        select(LinkProposal).where(LinkProposal.collection_id == coll.id))}
    return coll.id, [by_pair[(ids[2 * i], ids[2 * i + 1])] for i in range(len(scores))], alice.id, bob.id


def _order(session, cid, order, **kw):
    from vislink.graph.proposals import list_proposals

    return [p.id for p in list_proposals(session, cid, order=order, **kw)]


def test_orders_by_score_and_newest(db_session):
    cid, pids, _, _ = _setup(db_session, [0.6, 0.9, 0.7])
    assert _order(db_session, cid, "score") == [pids[1], pids[2], pids[0]]
    assert _order(db_session, cid, "newest") == sorted(pids, reverse=True)  # one build: the last stored first
    with pytest.raises(VislinkError, match="unknown proposal order 'random'.*score, uncertain, newest"):
        _order(db_session, cid, "random")


def test_uncertain_first_without_verdicts_starts_at_the_median_open_score(db_session):
    from vislink.graph.proposals import decision_boundary

    cid, pids, _, _ = _setup(db_session, [0.95, 0.5, 0.72, 0.8, 0.6])
    boundary = decision_boundary(db_session, cid, VARIANT)
    assert (boundary.source, boundary.score) == ("open scores", pytest.approx(0.72))
    # |score - 0.72|: 0.72 (0), 0.8 (0.08), 0.6 (0.12), 0.5 (0.22), 0.95 (0.23)
    assert _order(db_session, cid, "uncertain") == [pids[2], pids[3], pids[4], pids[1], pids[0]]


def test_uncertain_first_moves_to_the_boundary_the_verdicts_draw(db_session):
    from vislink.graph.proposals import accept_proposal, decision_boundary, list_proposals, reject_proposal

    cid, pids, alice, _ = _setup(db_session, [0.95, 0.9, 0.55, 0.5, 0.78, 0.7, 0.62, 0.85])
    accept_proposal(db_session, pids[0], annotator_id=alice)  # 0.95
    accept_proposal(db_session, pids[1], annotator_id=alice)  # 0.9: median positive 0.925
    reject_proposal(db_session, pids[2], annotator_id=alice)  # 0.55
    reject_proposal(db_session, pids[3], annotator_id=alice)  # 0.5: median rejected 0.525
    boundary = decision_boundary(db_session, cid, VARIANT)
    assert (boundary.source, boundary.n_positive, boundary.n_negative) == ("verdicts", 2, 2)
    assert boundary.score == pytest.approx(0.725)
    # Open: 0.78 (0.055 away), 0.7 (0.025), 0.62 (0.105), 0.85 (0.125). The median open score (0.74) would
    # have put 0.78 first: the verdicts moved the start.
    shown = list_proposals(db_session, cid, order="uncertain")
    assert [p.id for p in shown] == [pids[5], pids[4], pids[6], pids[7]]
    assert shown[0].distance == pytest.approx(0.025)
    # A page further on (offset) continues the same order.
    assert [p.id for p in list_proposals(db_session, cid, order="uncertain", offset=1, limit=2)] == pids[4:7:2]


def test_one_sided_verdicts_fall_back_to_the_open_median(db_session):
    from vislink.graph.proposals import accept_proposal, decision_boundary

    cid, pids, alice, _ = _setup(db_session, [0.9, 0.8, 0.6])
    accept_proposal(db_session, pids[0], annotator_id=alice)
    boundary = decision_boundary(db_session, cid, VARIANT)
    assert (boundary.source, boundary.score, boundary.n_positive) == ("open scores", pytest.approx(0.7), 1)


def test_each_variant_is_ordered_by_its_own_boundary(db_session):
    """Scores of two variants are not comparable: uncertain-first over both uses one boundary per variant."""
    from vislink.graph.proposals import Candidate, list_proposals, store_proposals
    from vislink.store import Image

    cid, pids, _, _ = _setup(db_session, [0.9, 0.8, 0.7])  # boundary 0.8
    extra = [Image(collection_id=cid, source_ref=f"rev/x{i}.jpg") for i in range(6)]
    db_session.add_all(extra)
    db_session.flush()
    store_proposals(db_session, cid, "sscd", [Candidate(extra[0].id, extra[1].id, 0.3, 1),
                                              Candidate(extra[2].id, extra[3].id, 0.2, 1),
                                              Candidate(extra[4].id, extra[5].id, 0.12, 1)])  # boundary 0.2
    shown = list_proposals(db_session, cid, order="uncertain")
    assert [p.distance for p in shown][:2] == [pytest.approx(0.0)] * 2
    assert sorted((p.variant, round(p.score, 6)) for p in shown[:2]) == [("sscd", 0.2), (VARIANT, 0.8)]


def test_duplicate_verdict_makes_a_duplicate_link(db_session):
    from vislink.graph.proposals import duplicate_proposal, list_proposals
    from vislink.store import Link, LinkType

    cid, pids, alice, _ = _setup(db_session, [0.9])
    proposal = duplicate_proposal(db_session, pids[0], annotator_id=alice, note="same print")
    link = db_session.get(Link, proposal.link_id)
    assert (LinkType(link.type), link.note) == (LinkType.duplicate, "same print")
    assert [p.status for p in list_proposals(db_session, cid, status="duplicate")] == ["duplicate"]
    with pytest.raises(VislinkError, match="already duplicate"):
        duplicate_proposal(db_session, pids[0], annotator_id=alice)


def test_counts_done_and_left_per_annotator(db_session):
    from vislink.graph.proposals import accept_proposal, duplicate_proposal, proposal_counts, reject_proposal

    cid, pids, alice, bob = _setup(db_session, [0.9, 0.8, 0.7, 0.6, 0.5])
    accept_proposal(db_session, pids[0], annotator_id=alice)
    reject_proposal(db_session, pids[1], annotator_id=alice)
    duplicate_proposal(db_session, pids[2], annotator_id=bob)
    counts = proposal_counts(db_session, cid)
    assert (counts.done, counts.left) == (3, 2)
    assert counts.by_status == {"open": 2, "accepted": 1, "rejected": 1, "duplicate": 1}
    assert counts.by_annotator == {"alice-rev": {"accepted": 1, "rejected": 1, "duplicate": 0},
                                   "bob-rev": {"accepted": 0, "rejected": 0, "duplicate": 1}}
    assert proposal_counts(db_session, cid, variant="another").done == 0


def test_undo_verdict_reopens_the_proposal_and_removes_its_link(db_session):
    from vislink.graph.proposals import accept_proposal, list_proposals, reject_proposal, undo_verdict
    from vislink.store import Link, LinkProposal

    cid, pids, alice, bob = _setup(db_session, [0.9, 0.8])
    first = accept_proposal(db_session, pids[0], annotator_id=alice)
    pair = (first.image_a_id, first.image_b_id)
    with pytest.raises(VislinkError, match="by another annotator"):
        undo_verdict(db_session, pids[0], annotator_id=bob)
    undo_verdict(db_session, pids[0], annotator_id=alice)
    assert _status(db_session, pids[0]) == "open"
    assert db_session.scalar(select(Link).where(Link.image_a_id == pair[0], Link.image_b_id == pair[1])) is None
    assert db_session.get(LinkProposal, pids[0]).decided_by_id is None
    # Only the last edit: after a second verdict, the first cannot be taken back this way.
    accept_proposal(db_session, pids[0], annotator_id=alice)
    reject_proposal(db_session, pids[1], annotator_id=alice)
    with pytest.raises(VislinkError, match="not your last edit"):
        undo_verdict(db_session, pids[0], annotator_id=alice)
    undo_verdict(db_session, pids[1], annotator_id=alice)  # the last edit: taken back
    with pytest.raises(VislinkError, match="is open"):
        undo_verdict(db_session, pids[1], annotator_id=alice)
    assert [p.id for p in list_proposals(db_session, cid)] == [pids[1]]


def test_undo_of_an_accept_that_merged_groups_undoes_the_merge_too(db_session):
    from vislink.graph import create_group
    from vislink.graph.edits import group_of
    from vislink.graph.proposals import accept_proposal, undo_verdict
    from vislink.store import Image, LinkProposal

    cid, pids, alice, _ = _setup(db_session, [0.9])
    proposal = db_session.get(LinkProposal, pids[0])
    a, b = proposal.image_a_id, proposal.image_b_id
    others = [Image(collection_id=cid, source_ref=f"rev/o{i}.jpg") for i in range(2)]
    db_session.add_all(others)
    db_session.flush()
    ga = create_group(db_session, [a, others[0].id], annotator_id=alice)
    gb = create_group(db_session, [b, others[1].id], annotator_id=alice)
    accept_proposal(db_session, pids[0], annotator_id=alice, join_group=True)
    assert group_of(db_session, b).id == ga.id  # merged into the first's group
    undo_verdict(db_session, pids[0], annotator_id=alice)
    assert (group_of(db_session, a).id, group_of(db_session, b).id) == (ga.id, gb.id)
    assert _status(db_session, pids[0]) == "open"


def _status(session, proposal_id) -> str:
    from vislink.store import LinkProposal, ProposalStatus

    session.expire_all()
    return ProposalStatus(session.get(LinkProposal, proposal_id).status).value


def test_order_counts_and_undo_on_postgresql(pg_url):
    """The same SQL (CASE / abs ordering, the open median's OFFSET, counts grouped by status and annotator) and
    undo's time comparison (PostgreSQL returns aware datetimes, SQLite naive ones) on PostgreSQL."""
    from vislink.graph import create_group
    from vislink.graph.edits import group_of
    from vislink.graph.proposals import (accept_proposal, decision_boundary, proposal_counts, reject_proposal,
                                         undo_verdict)
    from vislink.store import Image, LinkProposal, db, session_scope

    db.upgrade(pg_url)
    with session_scope(pg_url) as s:
        cid, pids, alice, _ = _setup(s, [0.95, 0.5, 0.72, 0.8, 0.6, 0.9])
        assert decision_boundary(s, cid, VARIANT).score == pytest.approx((0.72 + 0.8) / 2)  # even: two middles
        accept_proposal(s, pids[0], annotator_id=alice)
        reject_proposal(s, pids[1], annotator_id=alice)  # boundary (0.95 + 0.5) / 2 = 0.725
        assert _order(s, cid, "uncertain") == [pids[2], pids[3], pids[4], pids[5]]
        assert proposal_counts(s, cid).by_annotator == {"alice-rev": {"accepted": 1, "rejected": 1, "duplicate": 0}}
        p = s.get(LinkProposal, pids[5])
        others = [Image(collection_id=cid, source_ref=f"rev/o{i}.jpg") for i in range(2)]
        s.add_all(others)
        s.flush()
        ga = create_group(s, [p.image_a_id, others[0].id], annotator_id=alice)
        gb = create_group(s, [p.image_b_id, others[1].id], annotator_id=alice)
        accept_proposal(s, pids[5], annotator_id=alice, join_group=True)
        undo_verdict(s, pids[5], annotator_id=alice)
        assert (group_of(s, p.image_a_id).id, group_of(s, p.image_b_id).id) == (ga.id, gb.id)
        assert _status(s, pids[5]) == "open"
