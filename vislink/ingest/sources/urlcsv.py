"""A CSV of image URLs (column ``url``) with metadata columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from vislink.ingest.sources.base import ItemStream, SourceError, SourceItem, find_column, metadata_from_row, read_csv

URL_COLUMNS = ("url", "image_url", "image")


def url_csv_items(csv_path: Path | str) -> ItemStream:
    """One item per row: ``source_ref`` and ``url`` are the row's ``url`` (http or https); the other columns
    become Image fields when their names match (``artist``, ``title``, ``date``...) and ``extra`` otherwise.
    Rows with an empty or non-HTTP URL (``bad-url``) and repeated URLs (``duplicate``, the first row wins)
    are reported in the stream's ``skipped``. Encoding (UTF-8, Latin-1) and delimiter (, ; tab) are detected."""
    path = Path(csv_path).expanduser()
    header, rows = read_csv(path)
    column = find_column(header, *URL_COLUMNS)
    if column is None:
        raise SourceError(f"{path}: the CSV needs a 'url' column (found: {', '.join(header)})")

    def produce(stream: ItemStream) -> Iterator[SourceItem]:
        seen: set[str] = set()
        for line, row in enumerate(rows, start=2):
            url = (row.get(column) or "").strip()
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                stream.skip(url or f"{path.name}:{line}", "bad-url", f"line {line}: not an http(s) URL")
                continue
            if url in seen:
                stream.skip(url, "duplicate", f"line {line}: the URL was listed before")
                continue
            seen.add(url)
            yield SourceItem(url, metadata_from_row(row, ignore=(column,)), url=url)

    return ItemStream(produce, f"URL list {path}")
