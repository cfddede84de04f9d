"""The Compare page aligned (Streamlit AppTest on the demo collection, tests/demo_collection.py): a mirrored copy
is verified and warped onto its original (blend, swipe, flicker), an unrelated pair gets the 'not aligned'
notice and the stretched overlay."""

from __future__ import annotations

import pytest

import test_ui_support as support
from test_ui_support import app, ok


@pytest.fixture
def ui_env(tmp_path_factory, monkeypatch):
    env, teardown = support.restore(tmp_path_factory, monkeypatch)
    yield env
    teardown()


def _captions(at) -> str:
    return " | ".join(" ".join(img.captions or []) for img in at.get("image"))


def _compare(a: int, b: int):
    at = app()
    at.session_state["compare"] = (a, b)
    return at.switch_page("views/compare.py").run()


def test_mirrored_copy_is_aligned_and_warped(ui_env):
    _, _, ids = ui_env
    at = _compare(ids["work01.jpg"], ids["work01_mirror.jpg"])  # 20 inliers (flat synthetic shapes: few keypoints)
    ok(at)
    notice = " ".join(s.value for s in at.success)
    assert "Aligned mirrored" in notice and "inliers" in notice, notice
    assert "the right image warped onto the left" in _captions(at), _captions(at)
    assert at.checkbox(key="cmp_mirror").disabled  # the transform holds the mirror
    at.toggle(key="cmp_swipe").set_value(True).run()
    ok(at)
    assert "swipe at 50%" in _captions(at)
    at.toggle(key="cmp_flicker").set_value(True).run()
    ok(at)


def test_unrelated_pair_is_not_aligned(ui_env):
    _, _, ids = ui_env
    at = _compare(ids["work00.jpg"], ids["work01.jpg"])
    ok(at)
    assert any("Not aligned" in w.value for w in at.warning)
    assert "(not aligned: stretched)" in _captions(at)
    at.toggle(key="cmp_align").set_value(False).run()
    ok(at)
    assert not any("Not aligned" in w.value for w in at.warning)


def test_search_page_verify_switch(ui_env):
    """The Search page's 'Verify the top results': the verified results are marked with their matching points."""
    from test_ui_support import result_ids

    _, _, ids = ui_env
    at = app().run()
    at.radio(key="search_mode").set_value("An image of the collection").run()
    at.number_input(key="search_pick_id").set_value(ids["work01.jpg"]).run()
    at.checkbox(key="search_verify").check().run()
    at.select_slider(key="search_verify_top").set_value(20).run()
    at.button(key="search_go").click().run()
    ok(at)
    shown = result_ids(at)
    assert shown[0] == ids["work01_mirror.jpg"], shown  # verified (20 points), though the copy scores higher
    marks = [c.value for c in at.caption if "verified: " in c.value]
    assert marks and any("mirrored" in m for m in marks), marks
