"""Web Gallery of Art image paths and URLs.

A WGA path names an image inside WGA's ``/art/`` tree: ``a/aachen/allegory.jpg`` is served at
``https://www.wga.hu/art/a/aachen/allegory.jpg``. Collections, Replica's files and the benchmarks all match
images by this path."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

ART_MARK = "/art/"
WGA_BASE_URL = "https://www.wga.hu"
SAFE_PATH = re.compile(r"[A-Za-z0-9_\-./~]+")


def wga_path_from_url(url: str) -> str | None:
    """``http://www.wga.hu/art/a/aachen/allegory.jpg`` -> ``a/aachen/allegory.jpg`` (None if not a WGA art URL)."""
    if not url or ART_MARK not in url:
        return None
    return url.split(ART_MARK, 1)[1].split("?", 1)[0].strip("/") or None


def wga_image_url(wga_path: str, base_url: str) -> str:
    """Where ``base_url`` (``https://www.wga.hu`` or a mirror of its tree) serves the image ``wga_path``."""
    return f"{base_url.rstrip('/')}{ART_MARK}{wga_path}"


def wga_path_from_page_url(page_url: str) -> str | None:
    """The image a WGA catalog page shows: ``https://www.wga.hu/html/a/aachen/allegory.html`` ->
    ``a/aachen/allegory.jpg`` (None when it is not a safe ``/html/...html`` page path)."""
    path = urlsplit(page_url.strip()).path
    if not (path.startswith("/html/") and path.endswith(".html")):
        return None
    wga_path = path[len("/html/"):-len(".html")] + ".jpg"
    if not SAFE_PATH.fullmatch(wga_path) or ".." in wga_path.split("/"):
        return None
    return wga_path
