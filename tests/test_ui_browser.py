"""End to end in a real browser: `vislink ui` serves the demo data folder (a small ingested collection and an
annotator account) from a subprocess on 127.0.0.1; headless Chromium (Debian's, driven by Playwright) signs
in, uploads an image, sees its results and makes a group of two of them, saving screenshots."""

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
            # No traceback and no Streamlit warning box anywhere on the way.
            expect(page.locator("[data-testid=stException]")).to_have_count(0)
            expect(page.get_by_text("Session State API")).to_have_count(0)
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
