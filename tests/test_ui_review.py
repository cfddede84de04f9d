"""The Review page (issue #19 items 2 and 5; Streamlit AppTest on the demo collection, tests/demo_collection.py,
with proposals stored by ``store_proposals``): accept makes a positive link (and with "Join groups" one group),
reject a negative link, duplicate a duplicate link, skip changes nothing, undo takes the verdict back, the counts
move, a signed-out visitor cannot decide, and "uncertain first" shows the proposal nearest the verdicts' boundary."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import test_ui_support as support
from test_ui_support import app, ok, signed_in, texts

VARIANT = "vgg16-pool5-max"  # the demo collection's variant
# (image, image, score): the pairs proposed, best score first.
PAIRS = (("work00.jpg", "work00_copy.jpg", 0.95), ("work01.jpg", "work01_mirror.jpg", 0.9),
         ("work02.jpg", "work02_copy.jpg", 0.8), ("work00.jpg", "work01.jpg", 0.6), ("work01.jpg", "work02.jpg", 0.5))


@pytest.fixture
def ui_env(tmp_path_factory, monkeypatch):
    env, teardown = support.restore(tmp_path_factory, monkeypatch)
    yield env
    teardown()


@pytest.fixture
def proposed(ui_env):
    """The PAIRS stored as open proposals; returns (collection id, image ids by file, proposal ids in PAIRS order)."""
    from vislink.graph.proposals import Candidate, store_proposals
    from vislink.store import Collection, LinkProposal, session_scope

    _, _, ids = ui_env
    with session_scope() as s:
        cid = s.scalar(select(Collection.id).where(Collection.name == "demo"))
        store_proposals(s, cid, VARIANT, [Candidate(ids[a], ids[b], score, 1) for a, b, score in PAIRS])
        by_pair = {(p.image_a_id, p.image_b_id): p.id for p in s.scalars(select(LinkProposal))}
    pids = [by_pair[(min(ids[a], ids[b]), max(ids[a], ids[b]))] for a, b, _ in PAIRS]
    return cid, ids, pids


def _review(order="best score", signed=True):
    at = app()
    if signed:
        signed_in(at)
    at.session_state["rev_order"] = order
    return at.switch_page("views/review.py").run()


def _link(ids, a, b):
    from vislink.graph.queries import link_info
    from vislink.store import session_scope

    with session_scope() as s:
        info = link_info(s, ids[a], ids[b])
        return info.type if info else None


def _status(pid) -> str:
    from vislink.store import LinkProposal, ProposalStatus, session_scope

    with session_scope() as s:
        return ProposalStatus(s.get(LinkProposal, pid).status).value


def _shown(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("#### Proposal #"))


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_accept_makes_a_positive_link_and_the_counts_move(proposed):
    _, ids, pids = proposed
    at = _review()
    ok(at)
    assert _shown(at).startswith(f"#### Proposal #{pids[0]} · score 0.950")
    assert _metrics(at) == {"Left": "5", "Done": "0", "By you": "0"}
    assert _link(ids, "work00.jpg", "work00_copy.jpg") is None
    at.text_input(key=f"rev_note_{pids[0]}").input("same design")
    at.button(key="rev_accept").click().run()
    ok(at)
    assert _link(ids, "work00.jpg", "work00_copy.jpg") == "positive"
    assert _status(pids[0]) == "accepted"
    assert any("accepted: a positive link" in s.value for s in at.success)
    assert _metrics(at) == {"Left": "4", "Done": "1", "By you": "1"}
    assert _shown(at).startswith(f"#### Proposal #{pids[1]} ")  # the next one
    assert "**demo** · 1 accepted · 0 rejected · 0 duplicate" in texts(at)


def test_accept_with_join_groups_puts_the_pair_in_one_group(proposed):
    from vislink.ui import data

    _, ids, pids = proposed
    at = _review()
    at.toggle(key="rev_join").set_value(True).run()
    at.button(key="rev_accept").click().run()
    ok(at)
    groups = data.groups_of([ids["work00.jpg"], ids["work00_copy.jpg"]])
    assert groups[ids["work00.jpg"]] and groups[ids["work00.jpg"]] == groups[ids["work00_copy.jpg"]], groups
    assert _link(ids, "work00.jpg", "work00_copy.jpg") == "positive"


def test_reject_and_duplicate_make_negative_and_duplicate_links(proposed):
    from vislink.ui import data

    _, ids, pids = proposed
    at = _review()
    at.button(key="rev_reject").click().run()
    ok(at)
    assert _link(ids, "work00.jpg", "work00_copy.jpg") == "negative"
    assert _status(pids[0]) == "rejected"
    at.button(key="rev_duplicate").click().run()  # the next one: work01 / its mirror
    ok(at)
    assert _link(ids, "work01.jpg", "work01_mirror.jpg") == "duplicate"
    assert _status(pids[1]) == "duplicate"
    assert not data.groups_of([ids["work01.jpg"]]).get(ids["work01.jpg"])  # no join asked: groups as they were
    assert _metrics(at)["Done"] == "2"


def test_skip_stores_nothing_and_moves_on(proposed):
    from vislink.store import AuditEvent, session_scope

    _, ids, pids = proposed
    at = _review()
    at.button(key="rev_skip").click().run()
    ok(at)
    assert _shown(at).startswith(f"#### Proposal #{pids[1]} ")
    assert _status(pids[0]) == "open" and _link(ids, "work00.jpg", "work00_copy.jpg") is None
    with session_scope() as s:
        assert s.scalar(select(AuditEvent).limit(1)) is None
    assert _metrics(at) == {"Left": "5", "Done": "0", "By you": "0"}
    assert "5 open, 1 skipped by you" in texts(at)


def test_undo_takes_the_last_verdict_back(proposed):
    _, ids, pids = proposed
    at = _review()
    at.button(key="rev_accept").click().run()
    assert _status(pids[0]) == "accepted"
    at.button(key="rev_undo").click().run()
    ok(at)
    assert _status(pids[0]) == "open" and _link(ids, "work00.jpg", "work00_copy.jpg") is None
    assert any("open again" in s.value for s in at.success)
    assert _shown(at).startswith(f"#### Proposal #{pids[0]} ")


def test_signed_out_visitors_see_proposals_but_cannot_decide(proposed):
    _, _, pids = proposed
    at = _review(signed=False)
    ok(at)
    assert _shown(at).startswith(f"#### Proposal #{pids[0]} ")
    assert not [b for b in at.button if b.key in ("rev_accept", "rev_reject", "rev_duplicate", "rev_skip")]
    assert any("Sign in" in i.value for i in at.info)
    at.radio(key="rev_mode").set_value("grid").run()
    ok(at)
    assert not [b for b in at.button if (b.key or "").startswith("rev_g_")]


def test_uncertain_first_shows_the_proposal_nearest_the_boundary(proposed):
    """Accepted 0.95 and rejected 0.5 put the boundary at 0.725: the open 0.8 (0.075 away) comes before 0.6
    (0.125) and 0.9 (0.175); by best score 0.9 would be first."""
    from vislink.graph.proposals import accept_proposal, reject_proposal
    from vislink.store import session_scope

    cid, _, pids = proposed
    with session_scope() as s:
        accept_proposal(s, pids[0], collection_id=cid)
        reject_proposal(s, pids[4], collection_id=cid)
    at = _review(order="uncertain first")
    ok(at)
    assert _shown(at).startswith(f"#### Proposal #{pids[2]} · score 0.800")
    assert any("nearest score 0.725" in c.value for c in at.caption)
    at.selectbox(key="rev_order").set_value("best score").run()
    assert _shown(at).startswith(f"#### Proposal #{pids[1]} · score 0.900")


def test_grid_decides_any_of_its_proposals(proposed):
    _, ids, pids = proposed
    at = _review()
    at.radio(key="rev_mode").set_value("grid").run()
    ok(at)
    at.button(key=f"rev_g_reject_{pids[3]}").click().run()
    ok(at)
    assert _link(ids, "work00.jpg", "work01.jpg") == "negative"
    assert _status(pids[0]) == "open"


def test_a_refused_reject_says_why_and_leaves_the_proposal_open(proposed):
    """The two were grouped after the proposals were built: a negative link inside a group is refused by the
    graph's rules, the page shows its message, and nothing is stored."""
    from vislink.graph import create_group
    from vislink.store import session_scope

    _, ids, pids = proposed
    with session_scope() as s:
        create_group(s, [ids["work00.jpg"], ids["work00_copy.jpg"]])
    at = _review()
    at.button(key="rev_reject").click().run()
    ok(at)
    assert any(e.value.startswith("reject: ") and "are both in group" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert _status(pids[0]) == "open" and _link(ids, "work00.jpg", "work00_copy.jpg") is None
