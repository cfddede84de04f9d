"""The ``http_server`` fixture: a real HTTP server on 127.0.0.1 (tests/httpserver.py) serving a fresh folder.
Register it for the whole suite with ``pytest_plugins = ["conftest_http"]`` in tests/conftest.py; until then a
test module can ``from conftest_http import http_server``."""

from __future__ import annotations

import pytest

from httpserver import LocalHTTPServer


@pytest.fixture
def http_server(tmp_path):
    """A started ``LocalHTTPServer`` whose ``root`` (an empty folder, ``tmp_path / "www"``) is served at ``/``."""
    root = tmp_path / "www"
    root.mkdir()
    with LocalHTTPServer(root) as server:
        yield server
