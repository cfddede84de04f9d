"""The Streamlit app, page by page, with streamlit.testing.v1.AppTest: the real app script, a real SQLite
store and the embedded index (qdrant-edge) in a temporary data folder, real JPEGs ingested with random VGG16
weights (tests/demo_collection.py: each work has a re-encoded copy and a mirrored copy, the known links)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage, ImageOps

import test_ui_support as support
from test_ui_support import app, errors, jpeg, ok, reset, result_ids, signed_in, texts


@pytest.fixture
def ui_env(tmp_path_factory, monkeypatch):
    """The demo data folder, restored to its pristine state for this test."""
    env, teardown = support.restore(tmp_path_factory, monkeypatch)
    yield env
    teardown()


# -- search ------------------------------------------------------------------------------------

def test_every_page_renders_without_data(vislink_env):
    reset()
    at = app().run()
    ok(at)
    assert any("No collection yet" in i.value for i in at.info)
    for page in ("views/compare.py", "views/annotate.py", "views/browse.py", "views/evaluation.py"):
        at.switch_page(page).run()
        ok(at)


def test_search_by_an_image_of_the_collection(ui_env):
    _, made, ids = ui_env
    at = app().run()
    ok(at)
    at.radio(key="search_mode").set_value("An image of the collection").run()
    at.number_input(key="search_pick_id").set_value(ids["work01.jpg"]).run()
    at.button(key="search_go").click().run()
    ok(at)
    found = result_ids(at)
    assert ids["work01.jpg"] not in found  # the query itself is never a result
    assert len(found) == len(ids) - 1
    assert found[0] == ids["work01_copy.jpg"]  # the re-encoded copy is the nearest
    text = texts(at)
    assert "**#1**" in text and "Composition 2 (copy)" in text
    # "compare" on a result opens the Compare page with the pair; "Search with it" on an image page comes back.
    at.button(key=f"search_cmp_{found[0]}").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Compare"] and at.session_state["compare"] == (ids["work01.jpg"], found[0])
    assert at.number_input(key="cmp_b").value == found[0]
    at.button(key=f"cmp_open_{found[0]}_False").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Browse"]
    at.button(key="br_search").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Search"] and at.number_input(key="search_pick_id").value == found[0]


def test_search_by_upload_and_metadata_filters(ui_env):
    _, made, ids = ui_env
    at = app().run()
    at.file_uploader(key="search_upload").upload("query.jpg", jpeg(made.folder / "work02.jpg"), "image/jpeg").run()
    ok(at)
    at.button(key="search_go").click().run()
    ok(at)
    found = result_ids(at)
    assert found[0] == ids["work02.jpg"]  # an upload is not in the collection: its stored twin comes first
    assert len(found) == len(ids)
    # A filter on school, applied inside the index: only Flemish works remain.
    at.multiselect(key="search_f_school").set_value(["Flemish"]).run()
    ok(at)
    from vislink.ui import data

    filtered = result_ids(at)
    infos = data.images_by_ids(filtered)
    assert filtered and all(infos[i].meta.get("school") == "Flemish" for i in filtered)
    assert len(filtered) < len(ids)
    # A year range (overlap with the works' dates).
    at.multiselect(key="search_f_school").set_value([]).run()
    at.checkbox(key="search_use_years").check().run()
    at.slider(key="search_years").set_value((1300, 1330)).run()
    ok(at)
    years = data.images_by_ids(result_ids(at))
    assert years and all(1300 <= int(i.meta["date_text"]) <= 1330 for i in years.values())


def test_search_rejects_bad_uploads(ui_env, monkeypatch):
    at = app().run()
    at.file_uploader(key="search_upload").upload("fake.jpg", b"this is not an image" * 10, "image/jpeg").run()
    assert any("not-an-image" in e for e in errors(at)), errors(at)
    assert at.button(key="search_go").disabled
    monkeypatch.setenv("VISLINK_MAX_UPLOAD_MB", "1")
    reset()
    big = io.BytesIO()
    PILImage.effect_noise((900, 900), 60).convert("RGB").save(big, "PNG")  # noise does not compress
    assert big.tell() > 1024 * 1024
    at.file_uploader(key="search_upload").upload("big.png", big.getvalue(), "image/png").run()
    assert any("too-large" in e for e in errors(at)), errors(at)


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")  # lossless: what is cropped or mirrored back is exactly the stored image's pixels
    return buf.getvalue()


def _shown_scores(at) -> list[float]:
    """The scores printed under the results ("**#1** · 0.987"), in display order."""
    return [float(m.value.split("·")[1]) for m in at.markdown if str(m.value).startswith("**#") and "·" in m.value]


def test_search_a_region_uses_the_crop(ui_env):
    """The query is work02 with work01 pasted over its centre, where the cropper's default box lies (the centre
    60%: AppTest has no front end to move it). The region is work01 itself: it comes first with a score of ~1;
    the whole image is a mixture that no stored work matches that well."""
    _, made, ids = ui_env
    canvas = PILImage.open(made.folder / "work02.jpg").convert("RGB")
    w, h = canvas.size
    box = (int(w * 0.2), int(h * 0.2), int(w * 0.8), int(h * 0.8))  # streamlit-cropper's default box
    inset = PILImage.open(made.folder / "work01.jpg").convert("RGB").resize((box[2] - box[0], box[3] - box[1]))
    canvas.paste(inset, box[:2])
    at = app().run()
    at.file_uploader(key="search_upload").upload("q.png", _png(canvas), "image/png").run()
    at.button(key="search_go").click().run()
    ok(at)
    assert "Results for q.png" in [h.value for h in at.subheader]
    whole, whole_scores = result_ids(at), _shown_scores(at)
    at.toggle(key="search_region").set_value(True).run()
    ok(at)
    at.button(key="search_go").click().run()
    ok(at)
    assert "Results for q.png (region)" in [h.value for h in at.subheader]
    region, region_scores = result_ids(at), _shown_scores(at)
    assert len(region) == len(whole) == len(ids) and len(region_scores) == len(region)
    assert region[:2] == [ids["work01.jpg"], ids["work01_copy.jpg"]] and region_scores[0] >= 0.999, region_scores
    assert whole_scores[whole.index(ids["work01.jpg"])] <= 0.995, whole_scores
    assert region != whole


def test_search_mirrored_finds_the_mirror_of_a_stored_image(ui_env):
    """The query is the mirror of work00_copy (whose mirror is not stored): "Mirrored too" searches with its
    mirror, exactly work00_copy's pixels, so work00_copy comes first with ~1; without, the stored mirror of
    the original (work00_mirror) is nearer and work00_copy scores clearly lower."""
    _, made, ids = ui_env
    query = ImageOps.mirror(PILImage.open(made.folder / "work00_copy.jpg").convert("RGB"))
    at = app().run()
    at.file_uploader(key="search_upload").upload("m.png", _png(query), "image/png").run()
    at.button(key="search_go").click().run()
    ok(at)
    plain, plain_scores = result_ids(at), _shown_scores(at)
    target = ids["work00_copy.jpg"]
    at.checkbox(key="search_mirrored").check().run()
    ok(at)
    mirrored, mirrored_scores = result_ids(at), _shown_scores(at)
    assert len(mirrored) == len(plain) == len(ids)
    assert mirrored[0] == target and mirrored_scores[0] >= 0.999, mirrored_scores
    assert plain[0] == ids["work00_mirror.jpg"] and plain.index(target) > 0
    assert plain_scores[plain.index(target)] <= mirrored_scores[0] - 0.008, plain_scores


def test_search_by_examples(ui_env):
    _, made, ids = ui_env
    at = app().run()
    # Several examples: two positives, one negative; none of them comes back.
    at.radio(key="search_mode").set_value("Several examples").run()
    pos, neg = [ids["work00.jpg"], ids["work00_copy.jpg"]], [ids["work02.jpg"]]
    at.text_input(key="search_pos").input(" ".join(map(str, pos))).run()
    at.text_input(key="search_neg").input(str(neg[0])).run()
    at.button(key="search_go").click().run()
    ok(at)
    found = result_ids(at)
    assert found and not set(found) & set(pos + neg)
    assert found[0] == ids["work00_mirror.jpg"]
    # Ticked results become the positive examples on request.
    at.checkbox(key=f"search_sel_{found[1]}").check().run()
    at.button(key="search_use_selection").click().run()
    ok(at)
    assert at.text_input(key="search_pos").value == str(found[1])


def test_search_paging_goes_past_a_block(ui_env, monkeypatch):
    """Pages are cut from blocks of results; a page that spans two blocks equals one long search."""
    from vislink.search import search
    from vislink.ui import services

    _, made, ids = ui_env
    monkeypatch.setattr(services, "BLOCK", 4)
    query = services.Query(image_id=ids["work01.jpg"])
    cache: dict = {}
    pages = [services.search_page(query, collection="demo", variant=None, flt=None, mirrored=False, page=p,
                                  page_size=3, cache=cache) for p in range(4)]
    whole = search(image_id=ids["work01.jpg"], collection="demo", limit=50)
    assert [r.image_id for page in pages for r in page] == [r.image_id for r in whole]
    assert len(whole) == len(ids) - 1 == 8
    assert [r.rank for r in pages[1]] == [4, 5, 6]  # from blocks 0 and 1
    assert [r.rank for r in pages[2]] == [7, 8] and pages[3] == []
    assert len(cache) == 3  # blocks 0, 1 and the empty block 2: paging never searched twice


# -- sign-in, compare and annotation ---------------------------------------------------------------

def test_sign_in_with_password(ui_env):
    at = app().run()
    at.text_input(key="auth_name").input("demo")
    at.text_input(key="auth_password").input("wrong-password")
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert any("wrong password" in e.value for e in at.error)
    assert "annotator" not in at.session_state
    at.text_input(key="auth_password").input("demo-password")
    next(b for b in at.button if b.label == "Sign in").click().run()
    ok(at)
    assert at.session_state["annotator"].name == "demo"
    assert "Signed in as **Demo annotator**" in texts(at)


def test_compare_and_link(ui_env):
    from vislink.ui import data

    _, made, ids = ui_env
    a, b = ids["work00.jpg"], ids["work00_mirror.jpg"]
    at = app()
    at.session_state["compare"] = (a, b)
    at.switch_page("views/compare.py").run()
    ok(at)
    assert "Sign in" in " ".join(i.value for i in at.info)  # read-only without an annotator
    assert not [x for x in at.button if x.key == "cmp_link_positive"]
    signed_in(at).run()
    at.slider(key="cmp_alpha").set_value(0.3).run()
    at.toggle(key="cmp_flicker").set_value(True).run()
    ok(at)
    at.button(key="cmp_link_duplicate").click().run()
    ok(at)
    assert data.link_between(a, b).type == "duplicate"
    assert any("linked as duplicate" in s.value for s in at.success)
    at.button(key="cmp_link_positive").click().run()
    assert data.link_between(a, b).type == "positive"
    from sqlalchemy import func, select

    from vislink.store import AuditEvent, session_scope

    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2


def test_annotate_groups_notes_and_conflicts(ui_env):
    from vislink.ui import data

    _, made, ids = ui_env
    members = [ids["work01.jpg"], ids["work01_copy.jpg"]]
    at = app()
    signed_in(at)
    at.session_state["basket"] = list(members)
    at.switch_page("views/annotate.py").run()
    ok(at)
    at.text_input(key="ann_new_name").input("Composition 2 and copies")
    next(b for b in at.button if b.label == "Create a group from the selection").click().run()
    ok(at)
    [group] = data.list_groups()
    assert group.member_ids == tuple(sorted(members)) and group.title == "Composition 2 and copies"
    assert at.session_state["basket"] == []
    # Add the mirrored copy, then write a note.
    at.text_input(key=f"ann_add_{group.id}").input(str(ids["work01_mirror.jpg"]))
    at.button(key=f"ann_add_btn_{group.id}").click().run()
    ok(at)
    assert ids["work01_mirror.jpg"] in data.group(group.id).member_ids
    at.text_area(key=f"ann_notes_{group.id}").input("the mirrored one is a print")
    next(b for b in at.button if b.label == "Save title and notes").click().run()
    ok(at)
    assert data.group(group.id).note == "the mirrored one is a print"
    # Somebody else edits the group after this page loaded it: removing now is a conflict, said as such.
    from vislink.graph import edits
    from vislink.graph.annotators import create_annotator
    from vislink.store import session_scope

    with session_scope() as session:
        other = create_annotator(session, "other", None)
        edits.update_group(session, group.id, note="changed elsewhere", annotator_id=other.id)
    at.selectbox(key=f"ann_rm_pick_{group.id}").set_value(ids["work01_copy.jpg"])
    at.button(key=f"ann_rm_{group.id}").click().run()
    assert any("Conflict" in e.value and "other" in e.value for e in at.error), [e.value for e in at.error]
    assert ids["work01_copy.jpg"] in data.group(group.id).member_ids
    # After a reload (the rerun read the new version) the removal goes through; then undo it.
    at.run()
    at.selectbox(key=f"ann_rm_pick_{group.id}").set_value(ids["work01_copy.jpg"])
    at.button(key=f"ann_rm_{group.id}").click().run()
    ok(at)
    assert ids["work01_copy.jpg"] not in data.group(group.id).member_ids
    at.button(key="ann_undo").click().run()
    ok(at)
    assert ids["work01_copy.jpg"] in data.group(group.id).member_ids
    # A negative pair inside the group is refused by the graph module, and the page says why.
    at.number_input(key="ann_pair_a").set_value(ids["work01.jpg"])
    at.number_input(key="ann_pair_b").set_value(ids["work01_copy.jpg"])
    at.selectbox(key="ann_pair_kind").set_value("negative")
    next(b for b in at.button if b.label == "Save the link").click().run()
    assert any("negative pair" in e.value for e in at.error), [e.value for e in at.error]


def test_upload_into_the_collection_is_searchable_at_once(ui_env, tmp_path):
    from vislink.search import search
    from vislink.ui import data

    at = app()
    signed_in(at)
    at.switch_page("views/annotate.py").run()
    img = PILImage.effect_mandelbrot((120, 90), (-2, -1.2, 1, 1.2), 60).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    at.file_uploader(key="ann_upload").upload("../../etc/new work.jpg", buf.getvalue(), "image/jpeg").run()
    at.button(key="ann_upload_go").click().run()
    ok(at)
    [new_id] = at.session_state["basket"]
    info = data.image(new_id)
    assert info.status == "done"
    assert Path(info.file_path).name.startswith(info.sha256)  # stored under its hash, not the given name
    assert "etc" not in info.file_path
    hits = search(img, collection="demo", limit=1)
    assert hits[0].image_id == new_id
    # Not an image: refused with the reason, nothing stored.
    before = data.count_images(info.collection_id)
    at.file_uploader(key="ann_upload").upload("bad.png", b"\x89PNG\r\n\x1a\n garbage", "image/png").run()
    at.button(key="ann_upload_go").click().run()
    assert any("bad.png" in e.value for e in at.error)
    assert data.count_images(info.collection_id) == before


# -- browse and evaluation -------------------------------------------------------------------------

def test_browse_collection_and_image_page(ui_env):
    from vislink.graph import edits
    from vislink.store import session_scope

    _, made, ids = ui_env
    with session_scope() as session:
        group_id = edits.create_group(session, [ids["work02.jpg"], ids["work02_copy.jpg"]], title="pair").id
        edits.set_link(session, ids["work02.jpg"], ids["work02_mirror.jpg"], "positive", "mirrored print")
    at = app()
    at.switch_page("views/browse.py").run()
    ok(at)
    assert len(result_ids(at, "br_grid")) == len(ids)
    at.text_input(key="br_text").input("copy").run()
    assert len(result_ids(at, "br_grid")) == 3
    at.session_state["browse_image"] = ids["work02.jpg"]
    at.run()
    ok(at)
    assert result_ids(at, "br_links") == [ids["work02_mirror.jpg"]]
    assert "mirrored print" in texts(at)
    svg = support.graph_svg(at)  # the group as a hub with its two images, the explicit link between images
    for name in ("work02.jpg", "work02_copy.jpg", "work02_mirror.jpg"):
        assert f'data-image="{ids[name]}"' in svg
    assert svg.count('class="hub"') == 1 and f">#{group_id} pair</text>" in svg.split('class="hub"')[1]
    assert svg.count('class="edge member"') == 2
    assert svg.count('class="edge positive"') == 1 and "<title>positive: mirrored print</title>" in svg


def test_evaluation_dashboard(ui_env):
    """Table 1 as `vislink evaluate` prints it: R[n] and mAP in %, its D and queries columns, and R[n] columns
    chosen by the gallery's size (84 images: up to R[20]; R[50] and R[100] say nothing there)."""
    from vislink.evaluation.records import load_run
    from vislink.evaluation.reports import format_table
    from vislink.store import EvaluationQueryResult, EvaluationRun, session_scope

    with session_scope() as session:
        for k, (variant, r20) in enumerate((("vgg16-pool5-max", 0.4), ("vgg16-pool5-sum", 0.5),
                                            ("vgg16-pool5-max", 0.45))):
            run = EvaluationRun(variant_name=variant, benchmark="demo", n_queries=1, n_gallery=84,
                                params={"dimension": 512, "cutoffs": [1, 5, 10, 20, 50, 100]},
                                metrics={"R@1": 0.25, "R@5": 0.3, "R@10": 0.35, "R@20": r20, "R@50": 0.9,
                                         "R@100": 1.0, "mAP": r20 / 2})
            session.add(run)
            session.flush()
            session.add(EvaluationQueryResult(run_id=run.id, query_ref=f"q{k}", n_targets=2, weight=0.47,
                                              average_precision=0.5, target_ranks=[1, None]))
        cli = format_table([load_run(session, run.id)], (1, 5, 10, 20)).splitlines()[-1].split()
    at = app()
    at.switch_page("views/evaluation.py").run()
    ok(at)
    table1 = at.dataframe[0].value.set_index("method")  # the paper's Table 1 layout, latest run per variant
    assert list(table1.columns) == ["D", "R[1]", "R[5]", "R[10]", "R[20]", "mAP", "queries"]
    row = table1.loc["vgg16-pool5-max"]
    assert (row["R[1]"], row["R[20]"], row["mAP"], row["D"], row["queries"]) == (25.0, 45.0, 22.5, 512, 1)
    assert cli == ["vgg16-pool5-max", "512", "25.0", "30.0", "35.0", "45.0", "22.5", "1"]  # the CLI's own numbers
    shown = [f"{table1.loc[row.name, c]:.1f}" if c.startswith("R[") or c == "mAP" else str(table1.loc[row.name, c])
             for c in table1.columns]
    assert [row.name, *shown] == cli
    history = at.dataframe[1].value
    assert len(history) == 3 and list(history.columns[:5]) == ["run", "variant", "R@1", "R@5", "R@10"]
    assert sorted(history["R@20"]) == [40.0, 45.0, 50.0]  # in % there too
    assert len(at.tabs) == 2  # one table per variant
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # the recall curves
    assert "1, -" in at.dataframe[-1].value.to_string()  # per-query target ranks, '-' past the cut-off


def test_table1_columns_follow_the_gallery_size():
    from vislink.ui.data import table1_cutoffs

    stored = (1, 5, 10, 20, 50, 100, 200)
    assert table1_cutoffs(stored, 9) == [1, 5]  # a tiny gallery: the two smallest still
    assert table1_cutoffs(stored, 84) == [1, 5, 10, 20]
    assert table1_cutoffs(stored, 1818) == list(stored)
    assert table1_cutoffs((20, 50, 100, 200), 84) == [20, 50]


def test_recall_curve_parsing():
    from vislink.ui.data import recall_curves

    metrics = {"R@1": 0.1, "R[20]": 0.5, "recall@1": 0.2, "mAP": 0.3, "val": {"R@5": 0.2}}
    assert recall_curves(metrics) == {"R": {1: 0.1, 20: 0.5}, "recall": {1: 0.2}, "val.R": {5: 0.2}}


def test_oidc_identities_map_to_annotators(vislink_env, monkeypatch):
    from vislink.config import reset_settings
    from vislink.errors import VislinkError
    from vislink.graph.annotators import create_annotator
    from vislink.store import session_scope
    from vislink.ui import services

    # By default an identity maps only to an annotator an administrator made with its e-mail (issue #16 item 6).
    with pytest.raises(VislinkError, match="no annotator has the e-mail anna\\+art@example.org.*annotator add"):
        services.sign_in_oidc("anna+art@example.org", "Anna K.")
    with session_scope() as session:
        create_annotator(session, "bruno", None, email="bruno@example.org")
    assert services.sign_in_oidc("bruno@example.org", "B.").name == "bruno"
    with pytest.raises(VislinkError, match="not verified"):
        services.sign_in_oidc("bruno@example.org", "B.", email_verified=False)
    monkeypatch.setenv("VISLINK_OIDC_SELF_REGISTER", "true")
    reset_settings()
    first = services.sign_in_oidc("anna+art@example.org", "Anna K.")
    assert (first.name, first.label, first.via) == ("anna-art@example.org", "Anna K.", "oidc")
    assert services.sign_in_oidc("anna+art@example.org", "Anna K.").id == first.id  # matched by e-mail
    with pytest.raises(VislinkError):
        services.sign_in_oidc(None, "no address")
    with pytest.raises(VislinkError):
        services.sign_in("anna-art@example.org", "")  # an OIDC-only account has no password to sign in with
    at = app()
    at.secrets["auth"] = {"client_id": "x", "client_secret": "y", "redirect_uri": "http://127.0.0.1/oauth2callback",
                          "cookie_secret": "z", "server_metadata_url": "http://127.0.0.1/.well-known"}
    at.run()
    ok(at)
    assert any(b.label == "Sign in with your identity provider" for b in at.button)
