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
# The first folder of WGA's /art/ tree: an initial (a/aachen/...) or one of its zzz* sections (zzzarchi/...).
TOP_FOLDER = re.compile(r"[a-z]|zzz[a-z]+")


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


def wga_path_in(ref: str) -> str | None:
    """The WGA path inside any reference to a WGA image: a wga.hu ``/art/`` URL, or a file path laid out like WGA's
    tree wherever it sits (``images/a/albani/1/dianacte.jpg`` or ``C:\\wga\\a\\albani\\1\\dianacte.jpg`` ->
    ``a/albani/1/dianacte.jpg``): the part from the first folder named like WGA's top folders, when at least an
    artist folder and a file follow it. None when ``ref`` holds no such path."""
    if not ref:
        return None
    if "://" in ref:  # only WGA's own URLs: another site's /art/ folder is not WGA's tree
        return wga_path_from_url(ref) if "wga.hu" in urlsplit(ref).netloc else None
    parts = [p for p in ref.replace("\\", "/").split("/") if p and p != "."]
    for i, part in enumerate(parts[:-2]):
        if TOP_FOLDER.fullmatch(part):
            path = "/".join(parts[i:])
            return path if SAFE_PATH.fullmatch(path) and ".." not in parts[i:] else None
    return None
