"""Catalog dates -> year ranges: hand cases from the WGA catalog, properties with hypothesis, and the real
catalog's DATE column as a whole."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vislink.ingest.dates import CIRCA_YEARS, MAX_YEAR, MIN_YEAR, OPEN_YEARS, parse_timeframe, parse_year_range

years = st.integers(min_value=MIN_YEAR + 20, max_value=MAX_YEAR - 20)


@pytest.mark.parametrize("text, expected", [
    ("1598", (1598, 1598)),
    ("1598.0", (1598, 1598)),
    (1598.0, (1598, 1598)),
    ("1545-50", (1545, 1550)),
    ("1503-5", (1503, 1505)),
    ("796-98", (796, 798)),
    ("1598-02", (1598, 1602)),  # across a century
    ("1545-1550", (1545, 1550)),
    ("c. 1500", (1500 - CIRCA_YEARS, 1500 + CIRCA_YEARS)),
    ("c.1500", (1495, 1505)),
    ("c 1500", (1495, 1505)),
    ("ca. 1500", (1495, 1505)),
    ("around 1500", (1495, 1505)),
    ("c. 1510-15", (1505, 1520)),
    ("before 1520", (1520 - OPEN_YEARS, 1520)),
    ("after 1600", (1600, 1600 + OPEN_YEARS)),
    ("soon after 1600", (1600, 1610)),
    ("1510-after 1520", (1510, 1530)),
    ("1630s", (1630, 1639)),
    ("1590s-1600s", (1590, 1609)),
    ("early 1630s", (1630, 1633)),
    ("mid-1630s", (1633, 1636)),
    ("late 1630s", (1636, 1639)),
    ("16th century", (1500, 1599)),
    ("9th century", (800, 899)),
    ("early 16th century", (1500, 1532)),
    ("mid-16th century", (1533, 1566)),
    ("late 15th century", (1467, 1499)),
    ("first half of the 16th century", (1500, 1549)),
    ("second half of the 16th century", (1550, 1599)),
    ("15th-16th centuries", (1400, 1599)),
    ("June 1888, Arles", (1888, 1888)),
    ("Winter 1887/88, Paris", (1887, 1888)),
    ("March-April 1889, Saint-Rémy", (1889, 1889)),
    ("1614-15 (cast 1620)", (1614, 1620)),
    ("1844/1852/1842", (1842, 1852)),
    ("begun 1450", (1450, 1450)),
    ("begun c. 1450", (1445, 1455)),
    ("1520 and after 1530", (1520, 1540)),
    ("0801-0850", (801, 850)),
    ("1545\u201350", (1545, 1550)),  # en dash
    ("-", (None, None)),
    ("", (None, None)),
    (None, (None, None)),
    ("undated", (None, None)),
    ("1.0", (None, None)),  # catalog slips: not a year
    ("162628.0", (None, None)),
    ("'622", (None, None)),
    ("15%-72", (None, None)),
    ("1/69-70", (None, None)),
    ("500 BC", (None, None)),
])
def test_hand_cases(text, expected):
    assert parse_year_range(text) == expected


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_any_text_gives_an_ordered_range_or_nothing(text):
    start, end = parse_year_range(text)
    assert (start is None) == (end is None)
    if start is not None:
        assert isinstance(start, int) and isinstance(end, int)
        assert start <= end
        assert MIN_YEAR - 100 <= start and end <= MAX_YEAR + 100


@given(st.lists(st.sampled_from(["c. ", "before ", "after ", "1", "5", "0", "9", "-", "/", "s", " ", ".0", "th",
                                 " century", "early ", "late ", "mid-", "(", ")", ",", "'", "and "]),
                max_size=14))
@settings(max_examples=200, deadline=None)
def test_date_like_noise_gives_an_ordered_range_or_nothing(tokens):
    start, end = parse_year_range("".join(tokens))
    assert (start is None) == (end is None)
    assert start is None or start <= end


@given(years)
def test_a_year_in_every_spelling(y):
    for text in (str(y), f"{y}.0", f" {y} ", float(y), f"June {y}, Arles", f"{y} (?)"):
        assert parse_year_range(text) == (y, y)


@given(years, st.integers(min_value=0, max_value=19))
def test_ranges_full_and_abbreviated(a, span):
    b = a + span
    assert parse_year_range(f"{a}-{b}") == (a, b)
    assert parse_year_range(f"{a}/{b}") == (a, b)
    if len(str(a)) == 4 and a // 100 == b // 100:
        assert parse_year_range(f"{a}-{str(b)[2:]}") == (a, b)
    if len(str(a)) == 4 and a // 10 == b // 10:
        assert parse_year_range(f"{a}-{str(b)[3:]}") == (a, b)


@given(years)
def test_qualifiers_keep_the_year_inside(y):
    assert parse_year_range(f"c. {y}") == (y - CIRCA_YEARS, y + CIRCA_YEARS)
    start, end = parse_year_range(f"before {y}")
    assert end == y and start < y
    start, end = parse_year_range(f"after {y}")
    assert start == y and end > y


@given(st.integers(min_value=MIN_YEAR // 10 + 1, max_value=MAX_YEAR // 10 - 1))
def test_decades(d):
    y = d * 10
    assert parse_year_range(f"{y}s") == (y, y + 9)
    assert parse_year_range(f"{y}'s") == (y, y + 9)


@given(st.integers(min_value=2, max_value=20), st.integers(min_value=0, max_value=3))
def test_centuries(c, extra):
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(c % 10 if c not in (11, 12, 13) else 0, "th")
    assert parse_year_range(f"{c}{suffix} century") == ((c - 1) * 100, c * 100 - 1)
    c2 = min(21, c + extra)
    suffix2 = {1: "st", 2: "nd", 3: "rd"}.get(c2 % 10 if c2 not in (11, 12, 13) else 0, "th")
    assert parse_year_range(f"{c}{suffix}-{c2}{suffix2} centuries") == ((c - 1) * 100, c2 * 100 - 1)


@given(years, years)
def test_union_of_two_dates(a, b):
    assert parse_year_range(f"{a} and {b}") == (min(a, b), max(a, b))


def test_timeframe():
    assert parse_timeframe("1501-1550") == (1501, 1550)
    assert parse_timeframe("0801-0850") == (801, 850)
    assert parse_timeframe("") == (None, None)
    assert parse_timeframe("sometime") == (None, None)


@pytest.mark.shared
def test_real_catalog_dates(shared_data):
    """Every DATE of the 2018 catalog: parsed into a sane range unless it names no year, and the range agrees
    with the row's TIMEFRAME bin (the artist's active period) for nearly all rows."""
    with open(shared_data / "wga" / "catalog_2018.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    parsed = far = unparsed_with_digits = 0
    for row in rows:
        start, end = parse_year_range(row["DATE"])
        if start is None:
            unparsed_with_digits += any(ch.isdigit() for ch in row["DATE"])
            continue
        assert start <= end, row["DATE"]
        parsed += 1
        t0, t1 = parse_timeframe(row["TIMEFRAME"])
        far += end < t0 - 100 or start > t1 + 100
    assert unparsed_with_digits < 30  # only the slips (1.0, 15%-72, 162628.0...)
    assert parsed > 0.89 * len(rows)  # the rest is "-" (unknown), about 10 %
    assert far < 0.002 * parsed
