"""The Streamlit app, page by page, with streamlit.testing.v1.AppTest: the real app script, a real SQLite
store and qdrant-client local index in a temporary data folder, real JPEGs ingested with random VGG16
weights (vislink.ui.demo: each work has a re-encoded copy and a mirrored copy, the known links).
At the end, the same end to end in headless Chromium against `vislink ui` in a subprocess."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image as PILImage

APP_TIMEOUT = 120  # the first run in a process loads the encoder


@pytest.fixture(scope="session")
def ui_template(tmp_path_factory):
    """The demo collection ingested once per test session into ``root/home``, kept pristine in
    ``root/pristine``. Tests restore ``home`` from it: the same path every time, so the stored file paths
    stay valid and the encoder (cached per data folder) loads once."""
    root = tmp_path_factory.mktemp("ui-template")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        _point_settings(mp, home)
        import vislink.graph.annotators as annotators

        mp.setattr(annotators, "BCRYPT_ROUNDS", 4)  # the account's hash; checks read the cost from it
        from vislink.index import close_all
        from vislink.ui import demo

        made = demo.populate(root / "images", n_compositions=3)
        ids = demo.image_ids(made)
        close_all()  # the local index holds a lock on its folder
    _reset()
    shutil.copytree(home, root / "pristine")
    return home, root / "pristine", made, ids


def _point_settings(mp, home: Path) -> None:
    mp.setenv("VISLINK_HOME", str(home))
    mp.setenv("VISLINK_DB_URL", f"sqlite:///{home / 'vislink.db'}")
    mp.setenv("VISLINK_INDEX_BACKEND", "qdrant-local")
    mp.setenv("VISLINK_WEIGHTS", "random")
    mp.setenv("VISLINK_THREADS", "2")
    mp.delenv("QDRANT_URL", raising=False)
    _reset()


def _reset() -> None:
    from vislink.config import reset_settings
    from vislink.store import db

    reset_settings()
    # get_engine(None) is cached under the key None, whatever the settings say: forget it with them.
    db.get_engine.cache_clear()


@pytest.fixture
def ui_env(ui_template, tmp_path, monkeypatch):
    """The template data folder restored to its pristine state, the settings pointing at it."""
    home, pristine, made, ids = ui_template
    shutil.rmtree(home)
    shutil.copytree(pristine, home)
    _point_settings(monkeypatch, home)
    yield home, made, ids
    import streamlit as st

    from vislink.index import close_all

    st.cache_resource.clear()  # index clients of this folder
    close_all()
    _reset()


def _app():
    from streamlit.testing.v1 import AppTest

    from vislink.ui import APP_PATH

    at = AppTest.from_file(str(APP_PATH), default_timeout=APP_TIMEOUT)
    return at


def _ok(at) -> None:
    assert not at.exception, [e.message for e in at.exception]


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def _errors(at) -> list[str]:
    return [e.value for e in at.error] + [w.value for w in at.warning]


def _signed_in(at, annotator_name="demo"):
    from sqlalchemy import select

    from vislink.store import Annotator, session_scope
    from vislink.ui.services import SignedIn

    with session_scope() as session:
        row = session.scalar(select(Annotator).where(Annotator.name == annotator_name))
        at.session_state["annotator"] = SignedIn(row.id, row.name, row.display_name)
    return at


def _result_ids(at, key="search") -> list[int]:
    """Image ids of the result cells in display order (their select checkboxes' keys)."""
    prefix = f"{key}_sel_"
    return [int(c.key[len(prefix):]) for c in at.checkbox if c.key and c.key.startswith(prefix)]


def _jpeg(path: Path) -> bytes:
    return path.read_bytes()


# -- search ------------------------------------------------------------------------------------

def test_every_page_renders_without_data(vislink_env):
    _reset()
    at = _app().run()
    _ok(at)
    assert any("No collection yet" in i.value for i in at.info)
    for page in ("views/compare.py", "views/annotate.py", "views/browse.py", "views/evaluation.py"):
        at.switch_page(page).run()
        _ok(at)


def test_search_by_an_image_of_the_collection(ui_env):
    _, made, ids = ui_env
    at = _app().run()
    _ok(at)
    at.radio(key="search_mode").set_value("An image of the collection").run()
    at.number_input(key="search_pick_id").set_value(ids["work01.jpg"]).run()
    at.button(key="search_go").click().run()
    _ok(at)
    found = _result_ids(at)
    assert ids["work01.jpg"] not in found  # the query itself is never a result
    assert len(found) == len(ids) - 1
    assert found[0] == ids["work01_copy.jpg"]  # the re-encoded copy is the nearest
    text = _texts(at)
    assert "**#1**" in text and "Composition 2 (copy)" in text


def test_search_by_upload_and_metadata_filters(ui_env):
    _, made, ids = ui_env
    at = _app().run()
    at.file_uploader(key="search_upload").upload("query.jpg", _jpeg(made.folder / "work02.jpg"), "image/jpeg").run()
    _ok(at)
    at.button(key="search_go").click().run()
    _ok(at)
    found = _result_ids(at)
    assert found[0] == ids["work02.jpg"]  # an upload is not in the collection: its stored twin comes first
    assert len(found) == len(ids)
    # A filter on school, applied inside the index: only Flemish works remain.
    at.multiselect(key="search_f_school").set_value(["Flemish"]).run()
    _ok(at)
    from vislink.ui import data

    filtered = _result_ids(at)
    infos = data.images_by_ids(filtered)
    assert filtered and all(infos[i].meta.get("school") == "Flemish" for i in filtered)
    assert len(filtered) < len(ids)
    # A year range (overlap with the works' dates).
    at.multiselect(key="search_f_school").set_value([]).run()
    at.checkbox(key="search_use_years").check().run()
    at.slider(key="search_years").set_value((1300, 1330)).run()
    _ok(at)
    years = data.images_by_ids(_result_ids(at))
    assert years and all(1300 <= int(i.meta["date_text"]) <= 1330 for i in years.values())


def test_search_rejects_bad_uploads(ui_env, monkeypatch):
    at = _app().run()
    at.file_uploader(key="search_upload").upload("fake.jpg", b"this is not an image" * 10, "image/jpeg").run()
    assert any("not-an-image" in e for e in _errors(at)), _errors(at)
    assert at.button(key="search_go").disabled
    monkeypatch.setenv("VISLINK_MAX_UPLOAD_MB", "1")
    _reset()
    big = io.BytesIO()
    PILImage.effect_noise((900, 900), 60).convert("RGB").save(big, "PNG")  # noise does not compress
    assert big.tell() > 1024 * 1024
    at.file_uploader(key="search_upload").upload("big.png", big.getvalue(), "image/png").run()
    assert any("too-large" in e for e in _errors(at)), _errors(at)


def test_search_a_region_mirrored_and_by_examples(ui_env):
    _, made, ids = ui_env
    at = _app().run()
    at.file_uploader(key="search_upload").upload("q.jpg", _jpeg(made.folder / "work00.jpg"), "image/jpeg").run()
    at.toggle(key="search_region").set_value(True).run()
    _ok(at)
    at.button(key="search_go").click().run()
    _ok(at)
    assert "Results for q.jpg (region)" in [h.value for h in at.subheader]
    assert len(_result_ids(at)) == len(ids)
    at.checkbox(key="search_mirrored").check().run()
    _ok(at)
    assert len(_result_ids(at)) == len(ids)
    # Several examples: two positives, one negative; none of them comes back.
    at.radio(key="search_mode").set_value("Several examples").run()
    pos, neg = [ids["work00.jpg"], ids["work00_copy.jpg"]], [ids["work02.jpg"]]
    at.text_input(key="search_pos").input(" ".join(map(str, pos))).run()
    at.text_input(key="search_neg").input(str(neg[0])).run()
    at.button(key="search_go").click().run()
    _ok(at)
    found = _result_ids(at)
    assert found and not set(found) & set(pos + neg)
    assert found[0] == ids["work00_mirror.jpg"]


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
    at = _app().run()
    at.text_input(key="auth_name").input("demo")
    at.text_input(key="auth_password").input("wrong-password")
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert any("wrong password" in e.value for e in at.error)
    assert "annotator" not in at.session_state
    at.text_input(key="auth_password").input("demo-password")
    next(b for b in at.button if b.label == "Sign in").click().run()
    _ok(at)
    assert at.session_state["annotator"].name == "demo"
    assert "Signed in as **Demo annotator**" in _texts(at)


def test_compare_and_link(ui_env):
    from vislink.ui import data

    _, made, ids = ui_env
    a, b = ids["work00.jpg"], ids["work00_mirror.jpg"]
    at = _app()
    at.session_state["compare"] = (a, b)
    at.switch_page("views/compare.py").run()
    _ok(at)
    assert "Sign in" in " ".join(i.value for i in at.info)  # read-only without an annotator
    assert not [x for x in at.button if x.key == "cmp_link_positive"]
    _signed_in(at).run()
    at.slider(key="cmp_alpha").set_value(0.3).run()
    at.toggle(key="cmp_flicker").set_value(True).run()
    _ok(at)
    at.button(key="cmp_link_duplicate").click().run()
    _ok(at)
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
    at = _app()
    _signed_in(at)
    at.session_state["basket"] = list(members)
    at.switch_page("views/annotate.py").run()
    _ok(at)
    at.text_input(key="ann_new_name").input("Composition 2 and copies")
    next(b for b in at.button if b.label == "Create a group from the selection").click().run()
    _ok(at)
    [group] = data.list_groups()
    assert group.member_ids == tuple(sorted(members)) and group.name == "Composition 2 and copies"
    assert at.session_state["basket"] == []
    # Add the mirrored copy, then write a note.
    at.text_input(key=f"ann_add_{group.id}").input(str(ids["work01_mirror.jpg"]))
    at.button(key=f"ann_add_btn_{group.id}").click().run()
    _ok(at)
    assert ids["work01_mirror.jpg"] in data.group(group.id).member_ids
    at.text_area(key=f"ann_notes_{group.id}").input("the mirrored one is a print")
    next(b for b in at.button if b.label == "Save name and notes").click().run()
    _ok(at)
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
    _ok(at)
    assert ids["work01_copy.jpg"] not in data.group(group.id).member_ids
    at.button(key="ann_undo").click().run()
    _ok(at)
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

    at = _app()
    _signed_in(at)
    at.switch_page("views/annotate.py").run()
    img = PILImage.effect_mandelbrot((120, 90), (-2, -1.2, 1, 1.2), 60).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    at.file_uploader(key="ann_upload").upload("../../etc/new work.jpg", buf.getvalue(), "image/jpeg").run()
    at.button(key="ann_upload_go").click().run()
    _ok(at)
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
        edits.create_group(session, [ids["work02.jpg"], ids["work02_copy.jpg"]], name="pair")
        edits.set_link(session, ids["work02.jpg"], ids["work02_mirror.jpg"], "positive", "mirrored print")
    at = _app()
    at.switch_page("views/browse.py").run()
    _ok(at)
    assert len(_result_ids(at, "br_grid")) == len(ids)
    at.text_input(key="br_text").input("copy").run()
    assert len(_result_ids(at, "br_grid")) == 3
    at.session_state["browse_image"] = ids["work02.jpg"]
    at.run()
    _ok(at)
    assert _result_ids(at, "br_links") == [ids["work02_mirror.jpg"]]
    assert "mirrored print" in _texts(at)
    charts = at.get("graphviz_chart")
    assert charts, "the group's graph is drawn"
    dot = charts[0].proto.spec
    assert f"{ids['work02_copy.jpg']} -- " in dot or f"-- {ids['work02_copy.jpg']}" in dot


def test_evaluation_dashboard(ui_env):
    from vislink.store import EvaluationQueryResult, EvaluationRun, session_scope

    with session_scope() as session:
        for k, (variant, r20) in enumerate((("vgg16-pool5-max", 0.4), ("vgg16-pool5-sum", 0.5),
                                            ("vgg16-pool5-max", 0.45))):
            run = EvaluationRun(variant_name=variant, benchmark="demo", n_queries=6, n_gallery=9,
                                metrics={"R@1": r20 / 4, "R@20": r20, "R@100": min(1.0, r20 * 2), "mAP": r20 / 2})
            session.add(run)
            session.flush()
            session.add(EvaluationQueryResult(run_id=run.id, query_ref=f"q{k}", n_targets=2, weight=0.47,
                                              average_precision=0.5, target_ranks=[1, None]))
    at = _app()
    at.switch_page("views/evaluation.py").run()
    _ok(at)
    table1 = at.dataframe[0].value.set_index("method")  # the paper's Table 1 layout, latest run per variant
    assert table1.loc["vgg16-pool5-max", "R[20]"] == 0.45 and table1.loc["vgg16-pool5-sum", "R[100]"] == 1.0
    assert "R[1]" not in table1.columns
    history = at.dataframe[1].value
    assert len(history) == 3 and list(history.columns[:6]) == ["run", "variant", "R@1", "R@20", "R@100", "mAP"]
    assert len(at.tabs) == 2  # one table per variant
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # the recall curves
    assert "1, -" in at.dataframe[-1].value.to_string()  # per-query target ranks, '-' past the cut-off


def test_recall_curve_parsing():
    from vislink.ui.data import recall_curves

    metrics = {"R@1": 0.1, "R[20]": 0.5, "recall@1": 0.2, "mAP": 0.3, "val": {"R@5": 0.2}}
    assert recall_curves(metrics) == {"R": {1: 0.1, 20: 0.5}, "recall": {1: 0.2}, "val.R": {5: 0.2}}


# -- end to end in Chromium ------------------------------------------------------------------------

CHROMIUM = Path(os.environ.get("VISLINK_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 120_000  # the server's first search loads the encoder

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"vislink ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"vislink ui did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def served(ui_env, tmp_path):
    """The demo data folder served by `vislink ui` in a subprocess."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does): browser test not run")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from vislink.index import close_all

    _, made, _ = ui_env
    close_all()  # the server process opens the local index; one process at a time
    port = _free_port()
    exe = Path(sys.executable).with_name("vislink")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vislink.cli"]
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*cmd, "ui", "--host", "127.0.0.1", "--port", str(port)], env=dict(os.environ),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url, made, tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.browser
def test_sign_in_upload_search_and_group_in_chromium(served):
    from playwright.sync_api import expect, sync_playwright

    url, made, tmp_path = served
    expect.set_options(timeout=TIMEOUT_MS)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            expect(page.get_by_role("heading", name="Search")).to_be_visible()

            # Sign in with the annotator account (the sidebar form).
            page.get_by_role("textbox", name="Annotator").fill("demo")
            page.get_by_role("textbox", name="Password").fill(made.annotator[1])
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_text("Signed in as")).to_be_visible()

            # Upload a query image and search.
            page.locator("input[type=file]").first.set_input_files(str(made.folder / "work01.jpg"))
            search = page.get_by_role("button", name="Search", exact=True)
            expect(search).to_be_enabled()
            search.click()
            expect(page.get_by_text("Results for work01.jpg")).to_be_visible()
            expect(page.get_by_text("ranks 1–20")).to_be_visible()
            expect(page.get_by_text("Composition 2 (copy)").first).to_be_visible()
            page.screenshot(path=str(shots / "search.png"), full_page=False)

            # Select the first two results and make a group of them.
            boxes = page.get_by_text("select", exact=True)
            expect(boxes.first).to_be_visible()
            boxes.nth(0).click()
            expect(page.get_by_text("Selection: 1 image(s)")).to_be_visible()
            page.get_by_text("select", exact=True).nth(1).click()
            expect(page.get_by_text("Selection: 2 image(s)")).to_be_visible()
            page.get_by_role("button", name="Create a group").click()
            expect(page.get_by_text("created with 2 images")).to_be_visible()
            page.screenshot(path=str(shots / "group.png"), full_page=False)
        finally:
            browser.close()

    from vislink.ui import data

    groups = data.list_groups()
    assert len(groups) == 1 and len(groups[0].member_ids) == 2
    assert (shots / "search.png").stat().st_size > 10_000
    target = os.environ.get("VISLINK_UI_SCREENSHOTS")  # docs/img when refreshing the README's pictures
    if target:
        for shot in shots.iterdir():
            shutil.copy(shot, Path(target) / shot.name)


def test_oidc_identities_map_to_annotators(vislink_env):
    from vislink.errors import VislinkError
    from vislink.ui import services

    first = services.sign_in_oidc("anna+art@example.org", "Anna K.")
    assert (first.name, first.label, first.via) == ("anna-art@example.org", "Anna K.", "oidc")
    assert services.sign_in_oidc("anna+art@example.org", "Anna K.").id == first.id  # matched by e-mail
    with pytest.raises(VislinkError):
        services.sign_in_oidc(None, "no address")
    with pytest.raises(VislinkError):
        services.sign_in("anna-art@example.org", "")  # an OIDC-only account has no password to sign in with
    at = _app()
    at.secrets["auth"] = {"client_id": "x", "client_secret": "y", "redirect_uri": "http://127.0.0.1/oauth2callback",
                          "cookie_secret": "z", "server_metadata_url": "http://127.0.0.1/.well-known"}
    at.run()
    _ok(at)
    assert any(b.label == "Sign in with your identity provider" for b in at.button)
