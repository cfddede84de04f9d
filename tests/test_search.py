"""Search filters: what users type (CLI --filter, UI widgets) -> index filters. No model needed."""

from __future__ import annotations

import pytest

from vislink.errors import ConfigError
from vislink.index import AnyOf, Range, filter_matches
from vislink.search import build_filter, parse_filter_args


def test_exact_fields_and_repeats_become_any_of():
    flt = build_filter(parse_filter_args(["artist=TIZIANO Vecellio", "school=Italian", "school=Venetian",
                                          "form=painting"]))
    assert flt == {"artist": "TIZIANO Vecellio", "school": AnyOf(("Italian", "Venetian")), "form": "painting"}


@pytest.mark.parametrize("value, start_lte, end_gte", [
    ("1500-1550", 1550, 1500), ("1550", 1550, 1550), ((1500, 1550), 1550, 1500), ("1500-", None, 1500),
    ("-1550", 1550, None), (1520, 1520, 1520),
])
def test_year_means_overlapping_range(value, start_lte, end_gte):
    flt = build_filter({"year": value})
    assert flt.get("year_start") == (Range(lte=start_lte) if start_lte is not None else None)
    assert flt.get("year_end") == (Range(gte=end_gte) if end_gte is not None else None)


def test_year_overlap_semantics_on_payloads():
    flt = build_filter({"year": "1500-1550"})
    assert filter_matches(flt, {"year_start": 1540, "year_end": 1560})  # overlaps the end
    assert filter_matches(flt, {"year_start": 1480, "year_end": 1505})  # overlaps the start
    assert not filter_matches(flt, {"year_start": 1551, "year_end": 1560})
    assert not filter_matches(flt, {"year_start": None, "year_end": None})  # undated: left out


def test_bad_filters_name_the_problem():
    with pytest.raises(ConfigError, match="field=value"):
        parse_filter_args(["artist"])
    with pytest.raises(ConfigError, match="unknown search filter 'colour'"):
        build_filter({"colour": "red"})
    with pytest.raises(ConfigError, match="year filter"):
        build_filter({"year": "about 1500"})
    assert build_filter({"artist": "", "school": None}) is None


def test_search_needs_a_query(vislink_env):
    from vislink.search import search

    with pytest.raises(ConfigError, match="needs a query"):
        search(collection="x")
