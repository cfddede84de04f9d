"""Free-text artwork dates -> a year range, for filtering searches by period.

Catalog dates are written by people: ``1598``, ``1598.0`` (a spreadsheet number), ``1545-50``, ``c. 1500``,
``before 1520``, ``1630s``, ``c. 1510-15``, ``after 1600``, ``16th century``, ``June 1888, Arles``,
``1614-15 (cast 1620)``, ``-``, ``1890-01-01`` (an ISO date: 1890), ``[ca. 1460-1490]``. Every date expression
found in the text is turned into a span and the result is the union of the spans (``1614-15 (cast 1620)`` ->
1614-1620). Text with no recognisable year gives ``(None, None)``; whatever the input, a returned range has
``start <= end``.

Vague expressions are widened the way museum cataloguing practice does (CDWA's "earliest/latest date"),
so that a period filter still finds them:

- ``c. 1500`` -> 1495-1505 (``CIRCA_YEARS`` either side), ``c. 1510-15`` -> 1505-1520;
- ``before 1520`` -> 1510-1520 and ``after 1600`` -> 1600-1610 (``OPEN_YEARS``);
- ``1630s`` -> 1630-1639; ``early 1630s`` -> 1630-1633, ``mid-1630s`` -> 1633-1636, ``late 1630s`` -> 1636-1639;
- ``16th century`` -> 1500-1599 (the colloquial "1500s"); ``early``/``mid``/``late`` take a third of it,
  ``first half of the``/``second half of the`` a half; ``15th-16th centuries`` -> 1400-1599.

Years outside ``MIN_YEAR..MAX_YEAR`` are treated as noise (``1.0``, ``162628.0`` are typing slips in the WGA
catalog), and so are years after an apostrophe (``'622``). BC dates give ``(None, None)``.
"""

from __future__ import annotations

import re

CIRCA_YEARS = 5
OPEN_YEARS = 10
MIN_YEAR = 100
MAX_YEAR = 2100

_CENTURY_RE = re.compile(
    r"(?P<part>early|mid|late|beginning\s+of(?:\s+the)?|end\s+of(?:\s+the)?|"
    r"first\s+half\s+of(?:\s+the)?|second\s+half\s+of(?:\s+the)?)?[\s-]*"
    r"(?<!\d)(?P<c1>\d{1,2})(?:st|nd|rd|th)"
    r"(?:\s*(?:-|/|and|or|to)\s*(?P<c2>\d{1,2})(?:st|nd|rd|th))?"
    r"\s*centur(?:y|ies)"
)

# A qualifier, then a year (3-4 digits, optionally a decade "1630s"), then optionally "-" or "/" and an end year
# written in full or abbreviated (1545-50, 1503-5), itself optionally qualified (1510-after 1520).
_QUALIFIER = (
    r"(?:\b(?:c|ca|circa)\b\s*[.,-]?|\baround\b|\babout\b\.?|\bapprox(?:imately|\.)?|"
    r"\bsoon\s+after\b|\bnot\s+before\b|\bnot\s+after\b|\bbefore\b|\bafter\b|\bby\b)"
)
_YEAR_RE = re.compile(
    rf"(?P<q1>{_QUALIFIER})?\s*(?P<part>\bearly\b|\bmid\b|\blate\b)?[\s-]*"
    r"(?<![\d'%])(?P<y1>\d{3,4})(?P<d1>'?s)?(?![\d%])"
    rf"(?:\s*[-/]\s*(?P<q2>{_QUALIFIER})?\s*(?P<y2>\d{{1,4}})(?P<d2>'?s)?(?![\d%]))?"
)

_BC_RE = re.compile(r"\b(?:b\.?\s?c\.?|bce)(?![a-z])")
_FLOAT_RE = re.compile(r"(\d+)\.0+")
# An ISO 8601 date or date-time (IIIF navDate, "Date Created: 1890-01-01"): its year, not 1890-1901.
_ISO_DATE_RE = re.compile(r"(?<![\d/])(\d{4})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
                          r"(?:t[\d:.]+(?:z|[+-][\d:]+)?)?(?!\d)")
_CIRCA = {"c", "ca", "circa", "around", "about", "approx", "approximately"}
_BEFORE = {"before", "by", "not after"}
_AFTER = {"after", "soon after", "not before"}


def parse_year_range(text: object) -> tuple[int, int] | tuple[None, None]:
    """The year range a catalog date denotes, or ``(None, None)`` when it names no usable year."""
    if text is None:
        return None, None
    if isinstance(text, float) and text.is_integer():
        text = str(int(text))
    s = str(text).strip().lower().replace("\u2013", "-").replace("\u2014", "-")
    if _BC_RE.search(s):  # no negative years in the store: a BC date has no usable range
        return None, None
    s = _ISO_DATE_RE.sub(r"\1", s)
    match = _FLOAT_RE.fullmatch(s)
    if match:  # a spreadsheet number: 1598.0
        s = match.group(1)
    spans: list[tuple[int, int]] = []
    s = _CENTURY_RE.sub(lambda m: _century_span(m, spans), s)
    for m in _YEAR_RE.finditer(s):
        span = _year_span(m)
        if span is not None:
            spans.append(span)
    if not spans:
        return None, None
    return min(a for a, _ in spans), max(b for _, b in spans)


def parse_timeframe(text: object) -> tuple[int, int] | tuple[None, None]:
    """WGA's TIMEFRAME bin (``1501-1550``, ``0801-0850``) as a year range."""
    m = re.fullmatch(r"\s*(\d{3,4})\s*-\s*(\d{3,4})\s*", str(text or ""))
    if not m:
        return None, None
    a, b = int(m.group(1)), int(m.group(2))
    return (a, b) if a <= b else (b, a)


def _century_span(m: re.Match, spans: list[tuple[int, int]]) -> str:
    c1 = int(m.group("c1"))
    c2 = int(m.group("c2")) if m.group("c2") else None
    if not 1 <= c1 <= 21 or (c2 is not None and not 1 <= c2 <= 21):
        return " "
    start = (c1 - 1) * 100
    if c2 is not None:
        lo, hi = sorted((c1, c2))
        spans.append(((lo - 1) * 100, hi * 100 - 1))
        return " "
    part = re.sub(r"\s+", " ", m.group("part") or "")
    offsets = {
        "": (0, 99), "early": (0, 32), "beginning of": (0, 32), "beginning of the": (0, 32),
        "mid": (33, 66), "late": (67, 99), "end of": (67, 99), "end of the": (67, 99),
        "first half of": (0, 49), "first half of the": (0, 49),
        "second half of": (50, 99), "second half of the": (50, 99),
    }[part]
    spans.append((max(start + offsets[0], 1), start + offsets[1]))
    # Blank the match out so that its digits are not read again as a year.
    return " "


def _qualifier(raw: str | None) -> str:
    return re.sub(r"[\s.,-]+", " ", raw or "").strip()


def _year_span(m: re.Match) -> tuple[int, int] | None:
    y1 = int(m.group("y1"))
    if not MIN_YEAR <= y1 <= MAX_YEAR:
        return None
    start, end = y1, y1
    if m.group("d1") and y1 % 10 == 0:
        start, end = y1, y1 + 9
        part = m.group("part")
        if part == "early":
            end = y1 + 3
        elif part == "mid":
            start, end = y1 + 3, y1 + 6
        elif part == "late":
            start = y1 + 6
    q1 = _qualifier(m.group("q1"))
    q2 = _qualifier(m.group("q2"))
    if m.group("y2"):
        y2 = _full_end_year(m.group("y1"), m.group("y2"))
        if y2 is not None:
            if m.group("d2") and y2 % 10 == 0:
                y2 += 9
            start, end = min(start, y2), max(end, y2)
            if q2 in _AFTER:
                end += OPEN_YEARS
            elif q2 in _CIRCA and q1 not in _CIRCA:
                end += CIRCA_YEARS
    if q1 in _CIRCA:  # c. 1510-15: the whole span is approximate
        start -= CIRCA_YEARS
        end += CIRCA_YEARS
    elif q1 in _BEFORE:
        start -= OPEN_YEARS
    elif q1 in _AFTER:
        end += OPEN_YEARS
    return start, end


def _full_end_year(y1: str, y2: str) -> int | None:
    """The end of ``1545-50`` is 1550, of ``1503-5`` 1505, of ``1598-02`` 1602; a full year is itself."""
    if len(y2) >= len(y1):
        full = int(y2)
    else:
        full = int(y1[: len(y1) - len(y2)] + y2)
        if full < int(y1):
            rolled = full + 10 ** len(y2)
            # Across a decade or century boundary (1598-02). A rollover giving a long span is a slip; keep
            # the digits as written and let the caller order the two ends.
            if rolled - int(y1) <= 20:
                full = rolled
    if not MIN_YEAR <= full <= MAX_YEAR:
        return None
    return full
