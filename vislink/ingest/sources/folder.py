"""A local folder of images, walked recursively, with an optional metadata CSV keyed by relative path."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from vislink.ingest.sources.base import ItemStream, SourceError, SourceItem, find_column, metadata_from_row, read_csv

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".bmp", ".webp"})
# Image formats vislink cannot decode: listed as "not-an-image" so that a user sees why they were left out.
OTHER_IMAGE_EXTENSIONS = frozenset({".svg", ".heic", ".heif", ".avif", ".psd", ".pdf", ".raw", ".cr2", ".nef",
                                    ".dng", ".jp2", ".jxl"})
PATH_COLUMNS = ("file", "path", "filename", "relative_path")


def folder_items(root: Path | str, metadata_csv: Path | str | None = None, *,
                 extensions: Iterable[str] = IMAGE_EXTENSIONS, follow_symlinks: bool = False) -> ItemStream:
    """Every image file under ``root`` (recursively, in sorted order; hidden files and folders skipped), as
    items whose ``source_ref`` is the path relative to ``root`` in POSIX form (``sub/a.jpg``).

    ``metadata_csv``: a CSV (any of , ; tab; UTF-8 or Latin-1) with a ``file`` or ``path`` column holding
    those relative paths; its other columns become Image fields when their names match (``artist``, ``title``,
    ``date``...), the rest go into ``extra``. CSV rows naming no image under ``root`` are reported in the
    stream's ``skipped`` (reason ``missing-file``), not fatal; so are files in formats vislink cannot decode
    (``not-an-image``: svg, heic...), broken or looping symbolic links (``broken-link``) and names that are not
    valid text in the file system's encoding (``bad-name``): one odd file never stops the folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder")
    root = root.resolve()
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    rows, duplicates = _read_metadata(Path(metadata_csv)) if metadata_csv is not None else ({}, [])

    def produce(stream: ItemStream) -> Iterator[SourceItem]:
        seen: set[str] = set()
        for path in _walk(root, exts, follow_symlinks, stream):
            rel = _key(path.relative_to(root).as_posix())
            seen.add(rel)
            row = rows.get(rel)
            metadata = metadata_from_row(row[1], ignore=(row[0],)) if row else {"extra": {}}
            yield SourceItem(rel, metadata, local_path=path)
        for rel in rows.keys() - seen:
            stream.skip(rel, "missing-file", f"named in {metadata_csv} but no image file under {root}")
        for rel in duplicates:
            stream.skip(rel, "duplicate", f"more than one row in {metadata_csv}; the first is used")

    return ItemStream(produce, f"folder {root}")


def _read_metadata(path: Path) -> tuple[dict[str, tuple[str, dict[str, str]]], list[str]]:
    """Rows by relative path (with the name of the path column), and the paths named more than once."""
    header, table = read_csv(path)
    column = find_column(header, *PATH_COLUMNS)
    if column is None:
        raise SourceError(f"{path}: the metadata CSV needs a 'file' or 'path' column (found: {', '.join(header)})")
    rows: dict[str, tuple[str, dict[str, str]]] = {}
    dups: list[str] = []
    for row in table:
        rel = _key(row.get(column) or "")
        if not rel:
            continue
        if rel in rows:
            dups.append(rel)
            continue
        rows[rel] = (column, row)
    return rows, dups


def _key(rel: str) -> str:
    """One spelling per relative path: forward slashes, no ./ prefix, NFC (macOS writes names in NFD)."""
    rel = unicodedata.normalize("NFC", rel.strip().replace("\\", "/"))
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    return "/".join(parts)


def _walk(root: Path, exts: set[str], follow_symlinks: bool, stream: ItemStream) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_symlinks):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):  # ._x.jpg resource forks, editor droppings
                continue
            path = Path(dirpath, name)
            ext = os.path.splitext(name)[1].lower()
            if ext not in exts:
                if ext in OTHER_IMAGE_EXTENSIONS:
                    stream.skip(_shown(root, path), "not-an-image", f"{ext} files cannot be decoded")
                continue
            if not _valid_text(name):
                stream.skip(_shown(root, path), "bad-name", "the file name is not valid text (rename the file)")
                continue
            if path.is_symlink() and not path.exists():  # dangling, or a loop (exists() is then False too)
                stream.skip(_shown(root, path), "broken-link", f"a symbolic link to {os.readlink(path)!r}")
                continue
            if path.is_file():
                yield path


def _valid_text(name: str) -> bool:
    # os.walk hands undecodable bytes over as surrogates: such a name cannot be stored or shown as text.
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _shown(root: Path, path: Path) -> str:
    """A relative path that can always be printed and stored (undecodable bytes as \\xNN)."""
    rel = os.fsencode(path.relative_to(root).as_posix())
    return rel.decode("utf-8", errors="backslashreplace")
