"""End to end in a real browser: `vislink ui` serves the demo data folder (a small ingested collection and an
annotator account) from a subprocess on 127.0.0.1; headless Chromium (Debian's, driven by Playwright) signs
in, uploads an image, sees its results, makes a group of two of them, compares an upload with a result, keeps
the search's settings through the sidebar, searches from an image page and opens an image from the link graph,
saving screenshots; any request to another host than the server fails the test (issue #13 items 1, 2, 4, 6, 8)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

import test_ui_support as support


@pytest.fixture
def ui_env(tmp_path_factory, monkeypatch):
    env, teardown = support.restore(tmp_path_factory, monkeypatch)
    yield env
    teardown()


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
    """The demo data folder served by `vislink ui` in a subprocess: (url, demo, image ids, tmp_path)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does): browser test not run")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from vislink.index import close_all

    _, made, ids = ui_env
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
        yield url, made, ids, tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Browser:
    """Headless Chromium on one page, refusing (and noting) every request to a host other than the server's:
    the UI must work offline, without Streamlit's telemetry or an icon from a font CDN (issue #13 item 6)."""

    def __init__(self, pw, shots: Path):
        self.browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        self.context = self.browser.new_context(viewport={"width": 1400, "height": 1100})
        self.outside: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.shots = shots

    def _route(self, route) -> None:
        url = route.request.url
        if urlparse(url).hostname in ("127.0.0.1", "localhost") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def idle(self) -> None:
        """Wait until the app has finished its run (Streamlit's running indicator gone)."""
        from playwright.sync_api import expect

        self.page.wait_for_timeout(300)  # the indicator appears shortly after an interaction
        expect(self.page.get_by_test_id("stStatusWidget")).to_have_count(0)

    def thumbnails_loaded(self, cards: str) -> None:
        self.page.wait_for_function(
            "(sel) => { const imgs = [...document.querySelectorAll(sel + ' img')];"
            " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }", arg=cards)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / name), full_page=False)

    def sidebar(self, page: str) -> None:
        from playwright.sync_api import expect

        self.page.get_by_test_id("stSidebarNav").get_by_role("link", name=page).click()
        expect(self.page.get_by_role("heading", name=page, exact=True)).to_be_visible()
        self.idle()

    def sign_in(self, name: str, password: str) -> None:
        """Sign in with the sidebar form and wait until the sidebar says so."""
        from playwright.sync_api import expect

        self.page.get_by_role("textbox", name="Annotator").fill(name)
        self.page.get_by_role("textbox", name="Password").fill(password)
        self.page.get_by_role("button", name="Sign in", exact=True).click()
        expect(self.page.get_by_text("Signed in as")).to_be_visible()

    def close(self) -> None:
        self.browser.close()


CARDS = '[class*="st-key-search_card_"]'
# The screenshots docs/ui.md shows (VISLINK_UI_SCREENSHOTS=docs/img copies these there).
DOC_SHOTS = ("search.png", "compare.png", "annotate.png", "browse.png")


RESULTS = '[class*="st-key-search_sel_"]'  # each result's select box (keyed by its image id)


def _card_ids(page) -> list[int]:
    """Image ids of the results shown, in order."""
    return page.eval_on_selector_all(RESULTS, "els => els.map(e => Number([...e.classList].find("
                                              "c => c.startsWith('st-key-search_sel_')).split('_').pop()))")


def _copy_shots(shots: Path) -> None:
    target = os.environ.get("VISLINK_UI_SCREENSHOTS")  # docs/img when refreshing the docs' pictures
    if target:
        for name in DOC_SHOTS:
            if (shots / name).is_file():
                shutil.copy(shots / name, Path(target) / name)


@pytest.mark.browser
def test_sign_in_upload_search_group_and_compare_in_chromium(served):
    from playwright.sync_api import expect, sync_playwright

    url, made, ids, tmp_path = served
    expect.set_options(timeout=TIMEOUT_MS)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        b = Browser(pw, shots)
        page = b.page
        try:
            page.goto(url)
            expect(page.get_by_role("heading", name="Search")).to_be_visible()
            b.idle()
            assert b.outside == [], f"the first page asked other hosts: {b.outside}"  # e.g. a tab icon

            # Sign in with the annotator account (the sidebar form).
            b.sign_in("demo", made.annotator[1])

            # Upload a query image and search: it is a file of the collection, and the page says so (item 5).
            page.locator("input[type=file]").first.set_input_files(str(made.folder / "work01.jpg"))
            search = page.get_by_role("button", name="Search", exact=True)
            expect(search).to_be_enabled()
            search.click()
            expect(page.get_by_text("Results for work01.jpg")).to_be_visible()
            expect(page.get_by_text(f"This image is in the collection: #{ids['work01.jpg']}")).to_be_visible()
            expect(page.get_by_text("ranks 1–20")).to_be_visible()
            expect(page.get_by_text("Composition 2 (copy)").first).to_be_visible()
            b.idle()
            b.thumbnails_loaded(CARDS)
            page.get_by_role("heading", name="Results for work01.jpg").scroll_into_view_if_needed()
            page.mouse.wheel(0, -260)  # the query's picture above the results
            page.wait_for_timeout(300)
            b.shot("search.png")

            # Select the first two results and make a group of them.
            boxes = page.get_by_text("select", exact=True)
            expect(boxes.first).to_be_visible()
            boxes.nth(0).click()
            expect(page.get_by_text("Selection: 1 image(s)")).to_be_visible()
            page.get_by_text("select", exact=True).nth(1).click()
            expect(page.get_by_text("Selection: 2 image(s)")).to_be_visible()
            page.get_by_role("button", name="Create a group").click()
            expect(page.get_by_text("created with 2 images")).to_be_visible()
            b.shot("group.png")

            # The group on the Annotate page, under its title (item 7).
            b.sidebar("Annotate")
            expect(page.get_by_text("Group #1 (Bruegel, Pieter the Elder, Composition 2)").first).to_be_visible()
            b.thumbnails_loaded('[class*="st-key-ann_g1_card_"]')
            b.shot("annotate.png")

            # An uploaded query that is not in the collection can be compared with a result (item 4).
            b.sidebar("Search")
            png = tmp_path / "my scan.png"
            from PIL import Image

            Image.open(made.folder / "work01_copy.jpg").save(png)
            page.locator("input[type=file]").first.set_input_files(str(png))
            expect(page.get_by_role("button", name="Search", exact=True)).to_be_enabled()
            b.idle()
            page.get_by_role("button", name="Search", exact=True).click()
            expect(page.get_by_text("Results for my scan.png")).to_be_visible()
            b.idle()
            first = page.locator(CARDS).first
            first.hover()
            first.get_by_role("button", name="⋯").click()
            page.get_by_role("button", name="compare with the query").click()
            expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible()
            expect(page.get_by_text("the query: my scan.png")).to_be_visible()
            expect(page.get_by_text("Links join two images of the collection")).to_be_visible()
            b.idle()
            b.shot("compare.png")

            # No traceback and no Streamlit warning box anywhere on the way.
            expect(page.locator("[data-testid=stException]")).to_have_count(0)
            expect(page.get_by_text("Session State API")).to_have_count(0)
        finally:
            b.close()
    assert b.outside == [], f"the UI asked hosts other than its server: {b.outside}"

    from vislink.ui import data

    groups = data.list_groups()
    assert len(groups) == 1 and len(groups[0].member_ids) == 2
    assert (shots / "search.png").stat().st_size > 10_000
    _copy_shots(shots)


@pytest.mark.browser
def test_settings_search_with_it_and_the_graph_in_chromium(served):
    """Items 1, 2 and 8 in Chromium: the search's settings and results survive the sidebar's navigation;
    "Search with it" shows the new image's results; a node of the link graph opens its image."""
    from playwright.sync_api import expect, sync_playwright

    from vislink.graph import edits
    from vislink.store import session_scope
    from vislink.ui import data

    url, made, ids, tmp_path = served
    with session_scope() as session:  # a group and a link, for the graph
        edits.create_group(session, [ids["work02.jpg"], ids["work02_copy.jpg"], ids["work02_mirror.jpg"]])
        edits.set_link(session, ids["work02.jpg"], ids["work01.jpg"], "positive", "same cartoon")
    query, other = ids["work00.jpg"], ids["work02_copy.jpg"]
    artist = data.image(ids["work01.jpg"]).artist
    by_artist = [i for i in ids.values() if i != query and data.image(i).artist == artist]
    expect.set_options(timeout=TIMEOUT_MS)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        b = Browser(pw, shots)
        page = b.page
        try:
            page.goto(url)
            expect(page.get_by_role("heading", name="Search")).to_be_visible()
            page.get_by_text("An image of the collection", exact=True).click()
            b.idle()
            page.get_by_label("or image id").fill(str(query))
            page.keyboard.press("Enter")
            b.idle()
            page.get_by_role("button", name="Search", exact=True).click()
            expect(page.get_by_text(f"Results for #{query} ")).to_be_visible()
            # A filter and Mirrored (sidebar): the results follow them.
            page.get_by_text("Mirrored too", exact=True).click()
            b.idle()
            page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").first.click()
            page.get_by_role("option", name=artist).click()
            page.keyboard.press("Escape")
            b.idle()
            expect(page.locator(RESULTS)).to_have_count(len(by_artist))
            shown = _card_ids(page)
            assert sorted(shown) == sorted(by_artist)

            # Away and back through the sidebar: the same query, settings and results.
            b.sidebar("Compare")
            b.sidebar("Search")
            expect(page.get_by_role("checkbox", name="Mirrored too")).to_be_checked()
            expect(page.get_by_label("or image id")).to_have_value(str(query))
            expect(page.get_by_test_id("stSidebar").get_by_text(artist)).to_be_visible()  # the filter's chip
            expect(page.get_by_text(f"Results for #{query} ")).to_be_visible()
            expect(page.locator(RESULTS)).to_have_count(len(by_artist))
            assert _card_ids(page) == shown

            # "Search with it" on an image page searches with that image (item 2).
            b.sidebar("Browse")
            page.get_by_label("Open image id").fill(str(other))
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name=f"#{other} ")).to_be_visible()
            b.idle()
            page.get_by_role("button", name="Search with it").click()
            expect(page.get_by_role("heading", name="Search", exact=True)).to_be_visible()
            expect(page.get_by_text(f"Results for #{other} ")).to_be_visible()
            expect(page.get_by_label("or image id")).to_have_value(str(other))
            expect(page.get_by_text("The query changed since the last search")).to_have_count(0)

            # The link graph: a hub for the group, thumbnails; clicking one opens its image (item 8).
            b.sidebar("Browse")  # back on the page of the image searched with, a member of the group
            expect(page.get_by_role("heading", name=f"#{other} ")).to_be_visible()
            expect(page.get_by_role("heading", name="Its part of the link graph")).to_be_visible()
            node = page.locator(f'[data-image="{ids["work01.jpg"]}"]')
            expect(node).to_be_visible()
            expect(page.locator(".hub")).to_have_count(1)
            b.idle()
            page.locator(".vl-graph svg").scroll_into_view_if_needed()
            page.mouse.wheel(0, 200)  # the whole drawing, its caption under it
            page.wait_for_timeout(300)
            b.shot("browse.png")
            node.click()
            expect(page.get_by_role("heading", name=f"#{ids['work01.jpg']} ")).to_be_visible()
            expect(page.locator("[data-testid=stException]")).to_have_count(0)
            expect(page.get_by_text("Session State API")).to_have_count(0)
        finally:
            b.close()
    assert b.outside == [], f"the UI asked hosts other than its server: {b.outside}"
    _copy_shots(shots)
