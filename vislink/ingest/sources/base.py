"""What every source yields (``SourceItem``), how it reports what it had to leave out (``ItemStream``), and the
shared helpers: metadata columns mapped onto ``Image`` fields, CSV files read whatever their encoding and
delimiter."""

from __future__ import annotations

import csv
import io
import logging
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vislink.formats.text import decode_text  # noqa: F401 - sources decode through it (re-exported)
from vislink.errors import VislinkError
from vislink.ingest.dates import parse_year_range

log = logging.getLogger(__name__)

# Image columns a source may fill; everything else goes into ``extra``.
IMAGE_FIELDS: tuple[str, ...] = (
    "artist", "artist_dates", "title", "date_text", "year_start", "year_end", "technique", "location",
    "form", "type", "school", "timeframe",
)
_INT_FIELDS = {"year_start", "year_end"}

# Column names people write for these fields (lower case, spaces and hyphens as underscores). The WGA
# catalog's own names are here, so a folder's metadata CSV can use them too.
FIELD_ALIASES: dict[str, str] = {
    "author": "artist", "creator": "artist", "painter": "artist", "maker": "artist",
    "born_died": "artist_dates", "life_dates": "artist_dates",
    "date": "date_text", "dated": "date_text", "year": "date_text",
    "medium": "technique", "materials": "technique", "technique_and_dimensions": "technique",
    "repository": "location", "museum": "location", "holding_institution": "location",
    "object_type": "type", "genre": "type",
}


class SourceError(VislinkError):
    """A source (folder, catalog, CSV, manifest) could not be read; the message names it and says why."""


@dataclass
class SourceItem:
    """One image to ingest. ``source_ref`` identifies it inside its collection (a relative path, a URL, an IIIF
    canvas id) and stays the same from one run to the next; the bytes are at ``local_path`` or, when that is
    None, at ``url``. ``metadata`` holds ``Image`` columns (``IMAGE_FIELDS``, only those known) and always an
    ``extra`` dict."""

    source_ref: str
    metadata: dict[str, Any] = field(default_factory=dict)
    local_path: Path | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if not self.source_ref:
            raise SourceError("a source item needs a source_ref")
        if self.local_path is None and not self.url:
            raise SourceError(f"{self.source_ref}: a source item needs a local_path or a url")
        if self.local_path is not None:
            self.local_path = Path(self.local_path)
        self.metadata.setdefault("extra", {})

    def image_columns(self) -> dict[str, Any]:
        """The metadata as keyword arguments for ``vislink.store.models.Image`` (fields and ``extra``)."""
        cols = {k: v for k, v in self.metadata.items() if k in IMAGE_FIELDS}
        cols["extra"] = dict(self.metadata.get("extra") or {})
        return cols


@dataclass(frozen=True)
class SkippedItem:
    """A row or entry a source could not turn into an item. ``reason`` is a short key: ``missing-image``,
    ``missing-file``, ``bad-url``, ``duplicate``, ``no-image``, ``fetch-failed``, ``not-an-image``, ``broken-link``,
    ``bad-name``."""

    source_ref: str
    reason: str
    detail: str = ""


class ItemStream(Iterable[SourceItem]):
    """The items of a source, produced lazily, plus what the source left out on the way.

    Iterate it like a list of ``SourceItem``; after (or during) iteration ``skipped`` lists what was left out
    and ``counts()`` sums it by reason. Iterating again starts over (the report is reset)."""

    def __init__(self, produce: Callable[[ItemStream], Iterator[SourceItem]], description: str):
        self._produce = produce
        self.description = description
        self.skipped: list[SkippedItem] = []
        self.yielded = 0

    def __iter__(self) -> Iterator[SourceItem]:
        self.skipped = []
        self.yielded = 0
        for item in self._produce(self):
            self.yielded += 1
            yield item
        if self.skipped:
            counts = ", ".join(f"{n} {reason}" for reason, n in self.counts().most_common())
            examples = "; ".join(f"{s.source_ref} ({s.reason})" for s in self.skipped[:3])
            log.warning("%s: %d items, %d left out (%s), e.g. %s", self.description, self.yielded,
                        len(self.skipped), counts, examples)

    def skip(self, source_ref: str, reason: str, detail: str = "") -> None:
        self.skipped.append(SkippedItem(source_ref, reason, detail))
        log.debug("%s: skipped %s: %s %s", self.description, source_ref, reason, detail)

    def counts(self) -> Counter:
        return Counter(s.reason for s in self.skipped)

    def __repr__(self) -> str:
        return f"ItemStream({self.description!r}, yielded={self.yielded}, skipped={len(self.skipped)})"


def normalise_column(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").replace(".", " ").split())


def metadata_from_row(row: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> dict[str, Any]:
    """Map a row's columns onto Image fields (by name or alias, case-insensitive); the rest goes into
    ``extra`` under its original name. Empty values are dropped; the year range comes from the date text when
    the row gives none."""
    return finish_metadata(*map_columns(row, ignore=ignore))


def map_columns(row: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(fields, extra)``: the row's values that name Image fields, and the others (see ``metadata_from_row``)."""
    ignored = {normalise_column(c) for c in ignore}
    metadata: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for column, value in row.items():
        if column is None:  # csv.DictReader puts surplus cells under None
            continue
        key = normalise_column(column)
        if key in ignored:
            continue
        value = clean_value(value)
        if value is None:
            continue
        fieldname = key if key in IMAGE_FIELDS else FIELD_ALIASES.get(key)
        if fieldname and fieldname not in metadata:
            metadata[fieldname] = value
        else:
            extra[column.strip()] = value
    for name in _INT_FIELDS & metadata.keys():
        try:
            metadata[name] = int(float(metadata[name]))
        except (TypeError, ValueError):
            extra[name] = metadata.pop(name)
    return metadata, extra


def finish_metadata(metadata: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill the year range from ``date_text`` when missing, clip strings to their column sizes (the full text
    kept in ``extra``), and attach ``extra``."""
    extra = dict(extra or {})
    if "date_text" in metadata and "year_start" not in metadata and "year_end" not in metadata:
        start, end = parse_year_range(metadata["date_text"])
        if start is not None:
            metadata["year_start"], metadata["year_end"] = start, end
    for name, limit in _column_limits().items():
        value = metadata.get(name)
        if isinstance(value, str) and len(value) > limit:
            extra[f"{name}_full"] = value
            metadata[name] = value[: limit - 1] + "\u2026"
    metadata["extra"] = extra
    return metadata


def clean_value(value: Any) -> Any:
    """Strip strings (NFC), turn empty ones into None; spreadsheet floats that are whole numbers into ints."""
    if value is None:
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        value = unicodedata.normalize("NFC", value).strip()
        return value or None
    return value


_LIMITS: dict[str, int] | None = None


def _column_limits() -> dict[str, int]:
    """Sizes of the Image table's string columns: PostgreSQL refuses longer values, SQLite would not say."""
    global _LIMITS
    if _LIMITS is None:
        from vislink.store.models import Image

        _LIMITS = {
            name: Image.__table__.c[name].type.length
            for name in IMAGE_FIELDS
            if getattr(Image.__table__.c[name].type, "length", None)
        }
    return _LIMITS


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a CSV file from its header line: the most frequent of , ; and tab outside quotes."""
    counts = {d: 0 for d in ",;\t"}
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: Path | str, *, data: bytes | None = None) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file, whatever its encoding (UTF-8, cp1252, ISO-8859-1) and delimiter
    (comma, semicolon, tab)."""
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{path}: cannot read the CSV file ({exc.strerror or exc})") from exc
    text = decode_text(data, str(path))
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        raise SourceError(f"{path}: the CSV file is empty or has no header line")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(first_line))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise SourceError(f"{path}: malformed CSV at line {reader.line_num} ({exc})") from exc
    header = list(reader.fieldnames or [])
    return header, rows


def find_column(header: Iterable[str], *names: str) -> str | None:
    """The header's column matching one of ``names`` (case-insensitive), in the order of ``names``."""
    by_key = {normalise_column(h): h for h in header}
    for name in names:
        if normalise_column(name) in by_key:
            return by_key[normalise_column(name)]
    return None
