"""Shared by the UI tests (not a test module of its own): the demo data folder, built once per test session
and restored before each test, and small AppTest helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from vislink_testenv import use_data_folder

APP_TIMEOUT = 120  # the first run in a process loads the encoder
_TEMPLATE: dict = {}


def template(tmp_path_factory):
    """The demo collection ingested once per test session into ``root/home``, kept pristine in
    ``root/pristine`` (cached here, so that both UI test modules share one build). Tests restore ``home``
    from it: the same path every time, so the stored file paths stay valid and the encoder (cached per
    data folder) loads once."""
    if "built" in _TEMPLATE:
        return _TEMPLATE["built"]
    root = tmp_path_factory.mktemp("ui-template")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        point_settings(mp, home)
        import vislink.graph.annotators as annotators

        mp.setattr(annotators, "BCRYPT_ROUNDS", 4)  # the account's hash; checks read the cost from it
        import demo_collection as demo
        from vislink.index import close_all

        made = demo.populate(root / "images", n_compositions=3)
        ids = demo.image_ids(made)
        close_all()  # the local index holds a lock on its folder
    reset()
    shutil.copytree(home, root / "pristine")
    _TEMPLATE["built"] = (home, root / "pristine", made, ids)
    return _TEMPLATE["built"]


def point_settings(mp, home: Path) -> None:
    use_data_folder(mp, home, weights="random")


def reset() -> None:
    from vislink.config import reset_settings
    from vislink.store import db

    reset_settings()
    db.dispose_engines()


def restore(tmp_path_factory, monkeypatch):
    """The template data folder restored to its pristine state, the settings pointing at it; returns
    ``(home, demo, ids)`` and a teardown function."""
    home, pristine, made, ids = template(tmp_path_factory)
    shutil.rmtree(home)
    shutil.copytree(pristine, home)
    point_settings(monkeypatch, home)

    def teardown() -> None:
        import streamlit as st

        from vislink.index import close_all
        from vislink.ui import services

        services.drain_background()  # thumbnails of next pages, made in a thread, before the folder is reset
        st.cache_resource.clear()  # index clients of this folder
        close_all()
        reset()

    return (home, made, ids), teardown


def app():
    from streamlit.testing.v1 import AppTest

    from vislink.ui import APP_PATH

    at = AppTest.from_file(str(APP_PATH), default_timeout=APP_TIMEOUT)
    return at


def ok(at) -> None:
    assert not at.exception, [e.message for e in at.exception]


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def errors(at) -> list[str]:
    return [e.value for e in at.error] + [w.value for w in at.warning]


def signed_in(at, annotator_name="demo"):
    from sqlalchemy import select

    from vislink.store import Annotator, session_scope
    from vislink.ui.services import SignedIn

    with session_scope() as session:
        row = session.scalar(select(Annotator).where(Annotator.name == annotator_name))
        at.session_state["annotator"] = SignedIn(row.id, row.name, row.display_name)
    return at


def result_ids(at, key="search") -> list[int]:
    """Image ids of the result cells in display order (their select checkboxes' keys)."""
    prefix = f"{key}_sel_"
    return [int(c.key[len(prefix):]) for c in at.checkbox if c.key and c.key.startswith(prefix)]


def jpeg(path: Path) -> bytes:
    return path.read_bytes()


def png_of(path: Path) -> bytes:
    """The same picture in another file (PNG): not the stored bytes."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def graph_svg(at) -> str:
    """The SVG the Browse page draws its link graph with (the vislink_graph component's data)."""
    import json

    drawn = [json.loads(c.proto.json)["svg"] for c in at.get("bidi_component")
             if c.proto.component_name == "vislink_graph"]
    assert len(drawn) == 1, f"{len(drawn)} link graphs drawn"
    return drawn[0]
