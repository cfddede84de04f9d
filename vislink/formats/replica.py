"""The Replica project's files (EPFL: expert links between artworks; vislink uses those between Web Gallery of
Art images). Every stage reads them through this module.

- ``links.csv``: ``uid1,uid2[,group]``, one link per row.
- ``images.csv``: ``uid, group, wga_page_url, wga_image_url, ..., set``, one image per row; ``group`` is the
  connected component of the links, ``set`` the image's part (train, val, test) or empty.
- ``morpho_dataset.csv``, the morphograph as published in ``ludovicaschaerf/pattern_clusters``: one row per
  (link, image end) with ``uid``, ``path`` (``../data/WGA/images/<wga path>`` for WGA images), ``img1``,
  ``img2``, ``type`` and ``cluster_file`` (``Original`` for the experts' own annotation).

Values are stripped; files may be UTF-8 (with or without BOM), Windows-1252 or ISO-8859-1. A missing file
raises ``NotFound``, a malformed one ``FormatError`` (file, line, reason).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from vislink.formats.text import decode_text
from vislink.errors import FormatError, NotFound
from vislink.formats.wga import wga_path_from_url

LINK_COLUMNS = ("uid1", "uid2")
IMAGE_COLUMNS = ("uid", "wga_image_url")
MORPHOGRAPH_COLUMNS = ("uid", "path", "img1", "img2", "cluster_file")
# Where a WGA image sits in the morphograph's ``path`` column: ../data/WGA/images/<wga path>.
MORPHOGRAPH_WGA_MARK = "/WGA/images/"


@dataclass(frozen=True)
class ReplicaImageRow:
    """One row of ``images.csv``. ``group`` and ``part`` are empty strings when the row has none."""

    uid: str
    wga_path: str
    group: str
    part: str
    line: int


@dataclass(frozen=True)
class ReplicaLink:
    """One row of ``links.csv``; ``group`` is empty when the file has no group column."""

    uid1: str
    uid2: str
    group: str
    line: int


@dataclass(frozen=True)
class ReplicaFiles:
    """``links.csv`` and ``images.csv`` read together: every link's two uids are rows of the images file."""

    links_csv: Path
    images_csv: Path
    links: list[ReplicaLink]
    images: list[ReplicaImageRow]

    def wga_paths(self) -> dict[str, str]:
        """uid -> WGA path (a uid listed twice keeps its last row, as a dict of the rows would)."""
        return {row.uid: row.wga_path for row in self.images}


def _rows(path: Path | str, required: tuple[str, ...], what: str) -> list[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV file with the ``required`` columns; ``what`` names the file in error messages."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"Replica file not found: {path} (no such file)")
    try:
        text = decode_text(path.read_bytes(), str(path))
    except OSError as exc:
        raise FormatError(path, f"cannot read the file ({exc.strerror or exc})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in required if c not in columns]
    if missing:
        raise FormatError(path, f"missing column(s) {', '.join(missing)} in the header: not a {what} "
                                f"(found: {', '.join(columns) or 'no header'})")
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items()
                                           if isinstance(k, str)}))
    except csv.Error as exc:
        raise FormatError(path, f"malformed CSV ({exc})", reader.line_num) from exc
    return rows


def read_replica_links(path: Path | str) -> list[ReplicaLink]:
    """The links of a Replica ``links.csv``."""
    links = []
    for line, row in _rows(path, LINK_COLUMNS, "Replica links file"):
        for column in LINK_COLUMNS:
            if not row[column]:
                raise FormatError(path, f"empty {column}", line)
        links.append(ReplicaLink(row["uid1"], row["uid2"], row.get("group", ""), line))
    return links


def read_replica_images(path: Path | str) -> list[ReplicaImageRow]:
    """The images of a Replica ``images.csv``, each with its WGA path (read from ``wga_image_url``)."""
    images = []
    for line, row in _rows(path, IMAGE_COLUMNS, "Replica images file"):
        wga_path = wga_path_from_url(row["wga_image_url"])
        if wga_path is None:
            raise FormatError(path, f"uid {row['uid']}: wga_image_url {row['wga_image_url']!r} is not a WGA "
                                    "/art/ URL", line)
        images.append(ReplicaImageRow(row["uid"], wga_path, row.get("group", ""), row.get("set", "").lower(), line))
    return images


def read_replica_files(links_csv: Path | str, images_csv: Path | str | None = None) -> ReplicaFiles:
    """``links.csv`` and its ``images.csv`` (default: the one next to it), checked against each other: a link
    to a uid the images file does not list is a ``FormatError`` on that link's line."""
    links_csv = Path(links_csv)
    images_csv = Path(images_csv) if images_csv else links_csv.with_name("images.csv")
    links = read_replica_links(links_csv)
    images = read_replica_images(images_csv)
    uids = {row.uid for row in images}
    for link in links:
        for uid in (link.uid1, link.uid2):
            if uid not in uids:
                raise FormatError(links_csv, f"uid {uid} is not in {images_csv}", link.line)
    return ReplicaFiles(links_csv, images_csv, links, images)


def is_replica_links_csv(path: Path | str) -> bool:
    """Whether ``path`` looks like a Replica ``links.csv`` (its header has uid1 and uid2); False when unreadable."""
    try:
        with Path(path).open(encoding="utf-8-sig", errors="replace") as fh:
            header = [c.strip() for c in fh.readline().strip().split(",")]
    except OSError:
        return False
    return all(c in header for c in LINK_COLUMNS)


def replica_wga_links(morpho_csv: Path | str) -> list[tuple[str, str]]:
    """Positive links whose two ends are WGA images, as sorted pairs of WGA paths, from Replica's
    ``morpho_dataset.csv`` (rows of the original annotation, ``cluster_file == "Original"``)."""
    wga_path: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for _, row in _rows(morpho_csv, MORPHOGRAPH_COLUMNS, "Replica morphograph file"):
        if MORPHOGRAPH_WGA_MARK in row["path"]:
            wga_path[row["uid"]] = row["path"].split(MORPHOGRAPH_WGA_MARK, 1)[1]
        if row["cluster_file"] == "Original" and (row.get("type") or "POSITIVE").upper() == "POSITIVE":
            pairs.append((row["img1"], row["img2"]))
    links = {tuple(sorted((wga_path[a], wga_path[b]))) for a, b in pairs
             if a in wga_path and b in wga_path and wga_path[a] != wga_path[b]}
    return sorted(links)
