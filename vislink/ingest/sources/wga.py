"""The Web Gallery of Art catalog, in each form WGA distributes it: ``catalog.xls`` (alone or inside its zip),
a UTF-8 comma CSV, and the semicolon text version in ISO-8859-1. Every column is kept; the image URL is
derived from the page URL (``/html/a/aachen/allegory.html`` -> ``/art/a/aachen/allegory.jpg``)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from vislink.formats.wga import WGA_BASE_URL, wga_image_url, wga_path_from_page_url
from vislink.ingest.dates import parse_timeframe
from vislink.ingest.sources.base import (
    ItemStream,
    SourceError,
    SourceItem,
    finish_metadata,
    normalise_column,
    read_csv,
)

WGA_COLUMNS = ("AUTHOR", "BORN-DIED", "TITLE", "DATE", "TECHNIQUE", "LOCATION", "URL", "FORM", "TYPE", "SCHOOL",
               "TIMEFRAME")
# Catalog column -> Image field. URL becomes source_ref and extra["wga_page_url"].
COLUMN_FIELDS = {
    "AUTHOR": "artist", "BORN-DIED": "artist_dates", "TITLE": "title", "DATE": "date_text",
    "TECHNIQUE": "technique", "LOCATION": "location", "FORM": "form", "TYPE": "type", "SCHOOL": "school",
    "TIMEFRAME": "timeframe",
}
_FIELD_COLUMNS = {field: column for column, field in COLUMN_FIELDS.items()}
_FLOAT_TEXT = re.compile(r"(\d+)\.0")


def read_wga_catalog(catalog: Path | str) -> list[dict[str, str]]:
    """The catalog's rows as dicts keyed by the 11 WGA column names (string values, stripped; a DATE that is
    a spreadsheet number, ``1598.0`` in the sheet or its CSV conversion, becomes ``1598``). Accepts ``.zip``
    (holding the .xls or a CSV), ``.xls``, and ``.csv``/``.txt`` in UTF-8 or ISO-8859-1 with comma, semicolon
    or tab."""
    path = Path(catalog).expanduser()
    if not path.is_file():
        raise SourceError(f"{path}: no such catalog file")
    name, data = path.name, None
    if path.suffix.lower() == ".zip":
        name, data = _zip_member(path)
    suffix = Path(name).suffix.lower()
    if suffix in (".xls", ".xlsx"):
        header, rows = _read_xls(path, name, data)
    else:
        header, raw = read_csv(path, data=data)
        rows = [[row.get(h) or "" for h in header] for row in raw]
    columns = _column_positions(path, header)
    out = []
    for cells in rows:
        row = {col: _cell_text(cells[i]) if i < len(cells) else "" for col, i in columns.items()}
        if not any(row.values()):
            continue
        m = _FLOAT_TEXT.fullmatch(row["DATE"])  # DATE 1598.0: a spreadsheet number after a CSV conversion
        if m:
            row["DATE"] = m.group(1)
        out.append(row)
    return out


def wga_paths(page_url: str, base_url: str = WGA_BASE_URL) -> tuple[str, str] | None:
    """``(wga_path, image_url)`` for a catalog page URL, or None when it is not a WGA ``/html/...html`` page.
    ``https://www.wga.hu/html/a/aachen/allegory.html`` -> ``("a/aachen/allegory.jpg",
    "https://www.wga.hu/art/a/aachen/allegory.jpg")``."""
    wga_path = wga_path_from_page_url(page_url)
    return None if wga_path is None else (wga_path, wga_image_url(wga_path, base_url))


def wga_catalog_items(catalog: Path | str, images_root: Path | str | None = None,
                      where: Mapping[str, str | Iterable[str]] | None = None, *,
                      timeframe: tuple[int | None, int | None] | str | None = None, limit: int | None = None,
                      base_url: str = WGA_BASE_URL) -> ItemStream:
    """Items for the catalog's rows, in catalog order.

    ``where``: column -> value or values (any of), case-insensitive; keys are WGA column names or Image field
    names (``{"FORM": "painting"}``, ``{"school": ["Italian", "Flemish"]}``); a TIMEFRAME value is a range
    (``{"TIMEFRAME": "1501-1600"}`` keeps the bins 1501-1550 and 1551-1600). ``timeframe``: keep rows whose
    TIMEFRAME bin lies inside the range (``(1500, 1650)`` keeps 1501-1550 ... 1601-1650; ``"1501-1600"``;
    an end may be None). ``limit``: at most this many items.

    Without ``images_root`` items carry the WGA image ``url``; with it (a folder laid out like WGA's ``/art/``
    tree) they carry ``local_path``, and rows whose file is absent are left out and reported in the stream's
    ``skipped`` (reason ``missing-image``). ``source_ref`` is always the WGA image URL, and ``extra`` holds
    ``wga_path`` and ``wga_page_url``."""
    rows = read_wga_catalog(catalog)
    tests = _where_tests(where or {})
    frame = parse_timeframe(timeframe) if isinstance(timeframe, str) else timeframe
    if isinstance(timeframe, str) and frame == (None, None):
        raise SourceError(f"timeframe {timeframe!r}: expected a range like 1501-1600")
    root = Path(images_root).expanduser().resolve() if images_root is not None else None
    if root is not None and not root.is_dir():
        raise SourceError(f"{root}: the images root is not a folder")

    def produce(stream: ItemStream) -> Iterator[SourceItem]:
        seen: set[str] = set()
        count = 0
        for row in rows:
            if limit is not None and count >= limit:
                return
            if not all(test(row) for test in tests) or not _in_timeframe(row["TIMEFRAME"], frame):
                continue
            paths = wga_paths(row["URL"], base_url)
            if paths is None:
                stream.skip(row["URL"] or f"{row['AUTHOR']}: {row['TITLE']}", "bad-url",
                            "not a WGA /html/...html page URL")
                continue
            wga_path, image_url = paths
            if image_url in seen:
                stream.skip(image_url, "duplicate", "the catalog has this URL more than once")
                continue
            seen.add(image_url)
            local_path = None
            if root is not None:
                local_path = root / wga_path
                if not local_path.is_file():
                    stream.skip(image_url, "missing-image", f"no file {local_path}")
                    continue
            metadata = {field: row[column] for column, field in COLUMN_FIELDS.items() if row[column]}
            metadata = finish_metadata(metadata, {"wga_page_url": row["URL"], "wga_path": wga_path})
            count += 1
            yield SourceItem(image_url, metadata, local_path=local_path,
                             url=None if local_path is not None else image_url)

    where_text = ", ".join(f"{k}={v}" for k, v in (where or {}).items())
    return ItemStream(produce, f"WGA catalog {Path(catalog).name}" + (f" ({where_text})" if where_text else ""))


def _zip_member(path: Path) -> tuple[str, bytes]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if Path(n).suffix.lower() in (".xls", ".xlsx", ".csv", ".txt")
                     and not Path(n).name.startswith((".", "__"))]
            if not names:
                raise SourceError(f"{path}: the zip holds no .xls or .csv catalog")
            return names[0], zf.read(names[0])
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{path}: not a readable zip file ({exc})") from exc


def _read_xls(path: Path, name: str, data: bytes | None) -> tuple[list[str], list[list]]:
    import xlrd

    if name.lower().endswith(".xlsx"):
        raise SourceError(f"{path}: .xlsx is not supported; save the sheet as .xls or CSV")
    try:
        book = xlrd.open_workbook(file_contents=data) if data is not None else xlrd.open_workbook(str(path))
    except (xlrd.XLRDError, OSError, ValueError) as exc:
        raise SourceError(f"{path}: cannot read the spreadsheet {name} ({exc})") from exc
    sheet = book.sheet_by_index(0)
    if sheet.nrows == 0:
        raise SourceError(f"{path}: the spreadsheet {name} is empty")
    header = [str(v) for v in sheet.row_values(0)]
    return header, [sheet.row_values(i) for i in range(1, sheet.nrows)]


def _column_positions(path: Path, header: list[str]) -> dict[str, int]:
    by_key = {normalise_column(h): i for i, h in enumerate(header)}
    positions, missing = {}, []
    for column in WGA_COLUMNS:
        i = by_key.get(normalise_column(column))
        if i is None:
            missing.append(column)
        else:
            positions[column] = i
    if missing:
        raise SourceError(f"{path}: not a WGA catalog: missing column(s) {', '.join(missing)} "
                          f"(found: {', '.join(header)})")
    return positions


def _cell_text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float):  # a spreadsheet number (DATE 1598.0)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value if value is not None else "").strip()


def _where_tests(where: Mapping[str, str | Iterable[str]]) -> list:
    tests = []
    for key, wanted in where.items():
        column = _resolve_column(key)
        values = {wanted.casefold()} if isinstance(wanted, str) else {str(v).casefold() for v in wanted}
        frames = [parse_timeframe(v) for v in values] if column == "TIMEFRAME" else []
        if frames and all(f != (None, None) for f in frames):
            # TIMEFRAME=1501-1600 means the bins inside that range (the catalog's bins are 50 years wide).
            tests.append(lambda row, fs=frames: any(_in_timeframe(row["TIMEFRAME"], f) for f in fs))
        else:
            tests.append(lambda row, c=column, vs=values: row[c].casefold() in vs)
    return tests


def _resolve_column(key: str) -> str:
    norm = normalise_column(key)
    for column in WGA_COLUMNS:
        if normalise_column(column) == norm:
            return column
    if norm in _FIELD_COLUMNS:
        return _FIELD_COLUMNS[norm]
    valid = ", ".join(WGA_COLUMNS + tuple(_FIELD_COLUMNS))
    raise SourceError(f"unknown WGA filter field {key!r}; valid: {valid}")


def _in_timeframe(value: str, frame: tuple[int | None, int | None] | None) -> bool:
    if not frame or frame == (None, None):
        return True
    start, end = parse_timeframe(value)
    if start is None:
        return False
    lo, hi = frame
    return (lo is None or start >= lo) and (hi is None or end <= hi)


__all__ = ["WGA_BASE_URL", "WGA_COLUMNS", "COLUMN_FIELDS", "read_wga_catalog", "wga_catalog_items", "wga_paths"]
