"""The Review page's keys in a real browser (issue #19 item 2): `vislink ui` serves the demo data folder with
stored proposals, headless Chromium signs in, opens Review and presses A (accept), X (reject) and S (skip);
the store must show the verdicts. AppTest (tests/test_ui_review.py) clicks buttons; only a browser presses keys.
Uses tests/test_ui_browser.py's server fixture and browser; skipped, saying why, without Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from test_ui_browser import TIMEOUT_MS, Browser, served, ui_env  # noqa: F401 - fixtures used by name

VARIANT = "vgg16-pool5-max"
PAIRS = (("work00.jpg", "work00_copy.jpg", 0.95), ("work01.jpg", "work01_mirror.jpg", 0.9),
         ("work02.jpg", "work02_copy.jpg", 0.8))


def _store(ids) -> list[int]:
    from vislink.graph.proposals import Candidate, store_proposals
    from vislink.store import Collection, LinkProposal, session_scope

    with session_scope() as s:
        cid = s.scalar(select(Collection.id).where(Collection.name == "demo"))
        store_proposals(s, cid, VARIANT, [Candidate(ids[a], ids[b], score, 1) for a, b, score in PAIRS])
        by_pair = {(p.image_a_id, p.image_b_id): p.id for p in s.scalars(select(LinkProposal))}
    return [by_pair[(min(ids[a], ids[b]), max(ids[a], ids[b]))] for a, b, _ in PAIRS]


def _statuses(pids) -> list[str]:
    from vislink.store import LinkProposal, ProposalStatus, session_scope

    with session_scope() as s:
        return [ProposalStatus(s.get(LinkProposal, p).status).value for p in pids]


def _note(pid: int) -> str | None:
    from vislink.store import Link, LinkProposal, session_scope

    with session_scope() as s:
        return s.get(Link, s.get(LinkProposal, pid).link_id).note


@pytest.mark.browser
def test_review_keys_accept_reject_and_skip_in_chromium(served):
    from playwright.sync_api import expect, sync_playwright

    url, made, ids, tmp_path = served
    pids = _store(ids)
    expect.set_options(timeout=TIMEOUT_MS)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        b = Browser(pw, shots)
        page = b.page
        try:
            page.goto(url)
            expect(page.get_by_role("heading", name="Search")).to_be_visible()
            b.sign_in("demo", made.annotator[1])
            b.idle()
            b.sidebar("Review")
            page.get_by_role("combobox", name="Order").click()
            page.get_by_role("option", name="best score").click()
            b.idle()

            def shown(pid: int):
                expect(page.get_by_role("heading", name=f"Proposal #{pid} ", exact=False)).to_be_visible()
                expect(page.get_by_role("button", name="Accept")).to_be_visible()  # the run has drawn the buttons
                b.idle()
                page.get_by_role("heading", name="Review", exact=True).click()  # focus off any input

            shown(pids[0])
            b.thumbnails_loaded("main")
            b.shot("review.png")
            if os.environ.get("VISLINK_UI_SCREENSHOTS"):  # docs/img when refreshing docs/review.md's picture
                shutil.copy(shots / "review.png", Path(os.environ["VISLINK_UI_SCREENSHOTS"]) / "review.png")
            # Typing the note (letters of the keys included) decides nothing: keys act outside text fields.
            page.get_by_role("textbox", name="Note for the link").click()
            page.keyboard.type("a sad axe")
            page.keyboard.press("Tab")
            b.idle()
            assert _statuses(pids) == ["open", "open", "open"]
            page.get_by_role("heading", name="Review", exact=True).click()
            page.keyboard.press("a")
            expect(page.get_by_text("accepted: a positive link")).to_be_visible()
            assert _note(pids[0]) == "a sad axe"
            shown(pids[1])
            page.keyboard.press("x")
            expect(page.get_by_text("rejected: a negative link")).to_be_visible()
            shown(pids[2])
            page.keyboard.press("s")
            expect(page.get_by_text("Only the 1 proposal(s) you skipped are left.")).to_be_visible()
            b.idle()
            assert _statuses(pids) == ["accepted", "rejected", "open"]
            assert b.outside == [], f"the Review page asked other hosts: {b.outside}"
        finally:
            b.close()
