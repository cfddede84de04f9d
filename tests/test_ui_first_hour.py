"""Issue #13, "the first hour of an art historian", items 1-5, 7, 9 and 10 on the real app script (AppTest): the
demo collection of tests/demo_collection.py ingested with random VGG16 weights into a temporary data folder
(each work has a re-encoded copy and a mirrored copy). Items 6 and what needs a browser are in
test_ui_browser.py; 8 in test_graph_view.py and test_ui.py; 11 in test_ui.py."""

from __future__ import annotations

import pytest

import test_ui_support as support
from test_ui_support import app, errors, jpeg, ok, result_ids, signed_in, texts


@pytest.fixture
def ui_env(tmp_path_factory, monkeypatch):
    env, teardown = support.restore(tmp_path_factory, monkeypatch)
    yield env
    teardown()


def _subheaders(at) -> list[str]:
    return [h.value for h in at.subheader]


def _search_picked(at, image_id: int):
    at.radio(key="search_mode").set_value("An image of the collection").run()
    at.number_input(key="search_pick_id").set_value(image_id).run()
    at.button(key="search_go").click().run()
    ok(at)
    return at


# -- 1. settings and results stay together across pages ----------------------------------------------------

def test_search_settings_survive_a_visit_to_another_page(ui_env):
    from vislink.ui import data

    _, made, ids = ui_env
    query = ids["work00.jpg"]
    at = _search_picked(app().run(), query)
    artist = data.image(ids["work01.jpg"]).artist
    at.multiselect(key="search_f_artist").set_value([artist]).run()
    at.checkbox(key="search_mirrored").check().run()
    ok(at)
    shown = result_ids(at)
    assert shown and all(data.image(i).artist == artist for i in shown)
    at.switch_page("views/compare.py").run()
    ok(at)
    at.switch_page("views/search.py").run()  # back, as through the sidebar
    ok(at)
    assert at.radio(key="search_mode").value == "An image of the collection"
    assert at.number_input(key="search_pick_id").value == query
    assert at.multiselect(key="search_f_artist").value == [artist]
    assert at.checkbox(key="search_mirrored").value is True
    assert any(h.startswith(f"Results for #{query} ") for h in _subheaders(at))
    assert result_ids(at) == shown  # the filtered, mirrored ranking, not the plain one


def test_an_uploaded_query_survives_a_visit_to_another_page(ui_env):
    _, made, ids = ui_env
    at = app().run()
    at.file_uploader(key="search_upload").upload("q.jpg", jpeg(made.folder / "work02_copy.jpg"), "image/jpeg").run()
    at.button(key="search_go").click().run()
    shown = result_ids(at)
    at.switch_page("views/browse.py").run()
    at.switch_page("views/search.py").run()
    ok(at)
    assert "Results for q.jpg" in _subheaders(at) and result_ids(at) == shown
    assert "q.jpg" in texts(at) and not at.button(key="search_go").disabled


def test_results_never_answer_another_query(ui_env):
    """Picking another image without pressing Search: the old results go, a note says why."""
    _, made, ids = ui_env
    at = _search_picked(app().run(), ids["work00.jpg"])
    assert result_ids(at)
    at.number_input(key="search_pick_id").set_value(ids["work02.jpg"]).run()
    ok(at)
    assert result_ids(at) == [] and not [h for h in _subheaders(at) if h.startswith("Results for")]
    assert any("press **Search**" in i.value for i in at.info)
    at.button(key="search_go").click().run()
    assert result_ids(at)[0] == ids["work02_copy.jpg"]


# -- 2. "Search with it" searches ------------------------------------------------------------------------

def test_search_with_it_shows_the_new_image_results(ui_env):
    _, made, ids = ui_env
    at = _search_picked(app().run(), ids["work00.jpg"])
    other = ids["work02.jpg"]
    at.session_state["browse_image"] = other
    at.switch_page("views/browse.py").run()
    at.button(key="br_search").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Search"]
    assert any(h.startswith(f"Results for #{other} ") for h in _subheaders(at)), _subheaders(at)
    found = result_ids(at)
    assert other not in found and found[0] == ids["work02_copy.jpg"]


# -- 3. after "Group created", the editor shows that group ------------------------------------------------

def test_the_group_editor_shows_the_group_just_created(ui_env):
    from vislink.graph import edits
    from vislink.store import session_scope
    from vislink.ui import data

    _, made, ids = ui_env
    with session_scope() as session:
        old = edits.create_group(session, [ids["work00.jpg"], ids["work00_copy.jpg"]]).id
    at = signed_in(app())
    at.session_state["basket"] = [ids["work01.jpg"], ids["work01_copy.jpg"]]
    at.switch_page("views/annotate.py").run()
    ok(at)
    assert at.selectbox(key="ann_group_pick").value == old
    assert at.text_input(key=f"ann_add_{old}").value == f"{ids['work01.jpg']} {ids['work01_copy.jpg']}"
    next(b for b in at.button if b.label == "Create a group from the selection").click().run()
    ok(at)
    new = max(g.id for g in data.list_groups())
    assert at.selectbox(key="ann_group_pick").value == new
    assert at.text_input(key=f"ann_add_{new}").value == ""
    assert any(f"Group #{new} (" in s.value and "created with 2 images" in s.value for s in at.success)
    assert f"Group #{new}" in texts(at)


# -- 4. compare the query with a result, whatever the query ----------------------------------------------

def test_an_uploaded_query_can_be_compared_with_a_result(ui_env):
    _, made, ids = ui_env
    at = app().run()
    at.file_uploader(key="search_upload").upload("my scan.png", support.png_of(made.folder / "work01_copy.jpg"),
                                                 "image/png").run()  # not a file of the collection
    at.button(key="search_go").click().run()
    found = result_ids(at)
    at.button(key=f"search_cmp_{found[1]}").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Compare"]
    assert at.selectbox(key="cmp_left").value == "my scan.png"
    captions = _image_captions(at)
    assert captions[0] == "the query: my scan.png" and captions[2].startswith(f"#{found[1]} "), captions
    # The superposition of the two: warped onto the query when they verify (Align is on by default), stretched
    # over it when they do not.
    assert captions[1].startswith(("the right image warped onto the left", "overlay")), captions


def test_a_region_and_examples_can_be_compared_with_a_result(ui_env):
    _, made, ids = ui_env
    at = app().run()
    at.file_uploader(key="search_upload").upload("q.jpg", jpeg(made.folder / "work01.jpg"), "image/jpeg").run()
    at.toggle(key="search_region").set_value(True).run()
    at.button(key="search_go").click().run()
    found = result_ids(at)
    at.button(key=f"search_cmp_{found[0]}").click().run()
    ok(at)
    assert at.selectbox(key="cmp_left").value == "q.jpg (region)"
    assert _image_captions(at)[0] == "the query: q.jpg (region)"
    # Several examples, one of them uploaded: each example can be the left image.
    at.switch_page("views/search.py").run()
    at.radio(key="search_mode").set_value("Several examples").run()
    at.text_input(key="search_pos").input(str(ids["work00.jpg"])).run()
    at.file_uploader(key="search_pos_uploads").upload("ex.jpg", jpeg(made.folder / "work00_copy.jpg"),
                                                      "image/jpeg").run()
    at.button(key="search_go").click().run()
    found = result_ids(at)
    at.button(key=f"search_cmp_{found[0]}").click().run()
    ok(at)
    assert at.selectbox(key="cmp_left").options[:2] == [f"example #{ids['work00.jpg']}", "example ex.jpg"]
    assert at.number_input(key="cmp_a").value == ids["work00.jpg"]  # an example of the collection: by id


# -- 5. an upload that is already in the collection says so ----------------------------------------------

def test_an_upload_already_in_the_collection_is_marked(ui_env):
    _, made, ids = ui_env
    twin = ids["work02.jpg"]
    at = signed_in(app()).run()
    at.file_uploader(key="search_upload").upload("from disk.jpg", jpeg(made.folder / "work02.jpg"), "image/jpeg").run()
    at.button(key="search_go").click().run()
    ok(at)
    assert any(f"This image is in the collection: #{twin}" in i.value for i in at.info), [i.value for i in at.info]
    assert result_ids(at)[0] == twin
    assert "this is the query (the same file)" in texts(at)
    # Compared by its id, so that the pair can be linked.
    at.button(key=f"search_cmp_{ids['work02_copy.jpg']}").click().run()
    ok(at)
    assert at.number_input(key="cmp_a").value == twin and at.button(key="cmp_link_positive")
    # A file that is not in the collection is not marked.
    at.switch_page("views/search.py").run()
    at.file_uploader(key="search_upload").upload("other.png", support.png_of(made.folder / "work02.jpg"),
                                                 "image/png").run()
    at.button(key="search_go").click().run()
    assert not [i for i in at.info if "in the collection" in i.value]


# -- 7. groups are named by their titles, found by them, merged -------------------------------------------

def test_groups_have_titles_in_results_and_pickers_and_merge(ui_env):
    from vislink.graph import edits
    from vislink.store import session_scope
    from vislink.ui import data

    _, made, ids = ui_env
    with session_scope() as session:
        first = edits.create_group(session, [ids["work01.jpg"], ids["work01_copy.jpg"]]).id
        second = edits.create_group(session, [ids["work01_mirror.jpg"]], title="The mirrored print").id
    title = data.group(first).title
    assert title == "Bruegel, Pieter the Elder, Composition 2"  # common artist (the earliest) and title
    at = _search_picked(app().run(), ids["work00.jpg"])
    assert f"group #{first} {title}" in texts(at)  # a result's link status names its group
    at = signed_in(at)
    at.switch_page("views/annotate.py").run()
    ok(at)
    picker = at.selectbox(key="ann_group_pick")
    assert f"#{first} {title} (2 images)" in picker.options
    at.text_input(key="ann_group_find").input("mirrored").run()
    assert at.selectbox(key="ann_group_pick").options == [f"#{second} The mirrored print (1 images)"]
    at.text_input(key="ann_group_find").input("").run()
    at.selectbox(key="ann_group_pick").set_value(first).run()
    at.multiselect(key=f"ann_merge_{first}").set_value([second]).run()
    at.button(key=f"ann_merge_btn_{first}").click().run()
    ok(at)
    assert [g.id for g in data.list_groups()] == [first] and len(data.group(first).member_ids) == 3
    assert any("Merged" in s.value for s in at.success)


def test_adding_an_image_of_another_group_points_to_the_merge(ui_env):
    from vislink.graph import edits
    from vislink.store import session_scope

    _, made, ids = ui_env
    with session_scope() as session:
        first = edits.create_group(session, [ids["work01.jpg"], ids["work01_copy.jpg"]]).id
        edits.create_group(session, [ids["work01_mirror.jpg"], ids["work02.jpg"]])
    at = signed_in(app())
    at.switch_page("views/annotate.py").run()
    at.selectbox(key="ann_group_pick").set_value(first).run()
    at.text_input(key=f"ann_add_{first}").input(str(ids["work01_mirror.jpg"])).run()
    at.button(key=f"ann_add_btn_{first}").click().run()
    assert any("merge the groups" in e for e in errors(at)), errors(at)
    assert at.multiselect(key=f"ann_merge_{first}")  # and the merge is right there


# -- 9. a dense grid, with a sense of what a score means -------------------------------------------------

def test_result_cards_are_dense_with_actions_in_their_menu(ui_env):
    _, made, ids = ui_env
    at = _search_picked(app().run(), ids["work01.jpg"])
    found = result_ids(at)
    # Per card: the thumbnail, one line of rank and score, one caption, "select" and a menu holding the rest.
    menus = [p for p in _blocks(at.main) if getattr(p, "type", "") == "popover"]
    assert len(menus) == len(found)
    for menu, image_id in zip(menus, found):
        keys = {w.key for w in _widgets(menu)}
        assert {f"search_cmp_{image_id}", f"search_open_{image_id}"} <= keys
    outside = [w.key for w in _widgets(at.main) if w.key and w.key.startswith("search_")
               and f"_{found[0]}" in w.key and not any(w.key == x.key for m in menus for x in _widgets(m))]
    assert outside == [f"search_sel_{found[0]}"]
    # How many per row is the user's choice.
    assert _first_row_width(at, found) == 6
    at.select_slider(key="search_per_row").set_value(4).run()
    assert _first_row_width(at, found) == 4
    # Each score says how rare it is among this collection's pairs; the header says how to read it.
    lines = [m.value for m in at.markdown if str(m.value).startswith("**#")]
    assert len(lines) == len(found) and all("top " in line or "above all" in line for line in lines), lines
    assert any("1% score above" in c.value for c in at.caption)


def _image_captions(at) -> list[str]:
    return [img.caption for b in _blocks(at.main) if getattr(b, "type", "") == "image" for img in b.proto.imgs]


def _blocks(node):
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _blocks(child)


def _widgets(node):
    return [b for b in _blocks(node) if getattr(b, "key", None) and b.type in ("button", "checkbox")]


def _first_row_width(at, found) -> int:
    """The number of result cards in the first row of the grid."""
    for block in _blocks(at.main):
        cols = list(getattr(block, "children", {}).values())
        if cols and all(getattr(c, "type", "") == "column" for c in cols):  # a row of st.columns
            if any(f"search_sel_{found[0]}" == w.key for c in cols for w in _widgets(c)):
                return len(cols)
    raise AssertionError("no grid row found")


def test_score_hints_come_from_the_collections_own_pairs():
    import numpy as np

    from vislink.ui.data import ScoreScale

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scale = ScoreScale.from_vectors("v", vectors)
    assert len(scale.pairs) == 30 * 29 // 2 and list(scale.pairs) == sorted(scale.pairs)
    assert scale.top_fraction(scale.pairs[-1]) == pytest.approx(1 / len(scale.pairs))
    assert scale.top_fraction(scale.pairs[0]) == 1.0
    assert scale.hint(1.0) == f"above all {len(scale.pairs)} pairs"
    assert scale.hint(scale.quantile(0.99)) == "top 1.1%"
    assert scale.hint(scale.quantile(0.5)) == "top 50%"
    assert ScoreScale.from_vectors("v", vectors[:3]).hint(0.9) == ""  # 3 pairs say nothing


# -- 10. what an art historian reads first -----------------------------------------------------------------

def test_metadata_shows_the_work_first_and_folds_the_technical_fields(ui_env):
    _, made, ids = ui_env
    at = app()
    at.session_state["browse_image"] = ids["work01_copy.jpg"]
    at.switch_page("views/browse.py").run()
    ok(at)
    [meta] = [m.value for m in at.markdown if str(m.value).startswith("**artist**")]
    lines = meta.split("  \n")
    assert [line.split(" · ")[0] for line in lines] == [
        "**artist**", "**title**", "**date**", "**technique**", "**location**", "**form**", "**type**", "**school**",
        "**source**"]
    assert lines[0] == "**artist** · Vermeer, Johannes" and lines[3] == "**technique** · Engraving"
    assert "(https://example.org/demo/work01_copy.html)" in lines[-1]
    for hidden in ("source ref", "width", "height", "status"):
        assert hidden not in meta
    [tech] = [e for e in at.expander if e.label == "Technical details"]
    folded = " ".join(str(m.value) for m in tech.markdown)
    assert "**source ref** · work01\\_copy.jpg" in folded and "**width** · 380" in folded
