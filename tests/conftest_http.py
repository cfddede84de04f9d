"""The ``http_server`` fixture: a real HTTP server on 127.0.0.1 (tests/httpserver.py) serving a fresh folder.
Register it for the whole suite with ``pytest_plugins = ["conftest_http"]`` in tests/conftest.py; until then a
test module can ``from conftest_http import http_server``.

Downloads refuse loopback addresses by default (vislink/ingest/netguard.py): the fixture allows 127.0.0.1 by
setting ``VISLINK_FETCH_ALLOW_HOSTS``, as an institution names its own IIIF server. ``guarded_http_server`` is the
same server without that setting (the SSRF tests)."""

from __future__ import annotations

import pytest

from httpserver import LocalHTTPServer


def _serve(tmp_path, monkeypatch, allow: str | None):
    from vislink.config import reset_settings

    if allow is None:
        monkeypatch.delenv("VISLINK_FETCH_ALLOW_HOSTS", raising=False)
    else:
        monkeypatch.setenv("VISLINK_FETCH_ALLOW_HOSTS", allow)
    reset_settings()
    root = tmp_path / "www"
    root.mkdir()
    return LocalHTTPServer(root)


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    """A started ``LocalHTTPServer`` whose ``root`` (an empty folder, ``tmp_path / "www"``) is served at ``/``;
    downloads may reach it (``VISLINK_FETCH_ALLOW_HOSTS=127.0.0.1``)."""
    from vislink.config import reset_settings

    with _serve(tmp_path, monkeypatch, "127.0.0.1") as server:
        yield server
    reset_settings()


@pytest.fixture
def guarded_http_server(tmp_path, monkeypatch):
    """The same server, with ``VISLINK_FETCH_ALLOW_HOSTS`` unset: downloads from it are refused by default."""
    from vislink.config import reset_settings

    with _serve(tmp_path, monkeypatch, None) as server:
        yield server
    reset_settings()
