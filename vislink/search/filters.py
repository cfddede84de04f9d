"""Search filters: what users type (``--filter artist=X``, a year range, a list of schools) turned into the
index's filter mappings, applied inside Qdrant."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from vislink.errors import ConfigError

# Filter fields that match exactly; `year` (and year_start / year_end given as a range) become Ranges.
EXACT_FIELDS = ("artist", "school", "form", "type", "collection", "image_id")


def build_filter(filters: Mapping[str, Any] | None):
    """User filters -> index filter. ``artist``/``school``/``form``/``type``: exact (a list or tuple: any
    of them). ``year``: ``1500``, ``"1500-1550"``, ``(1500, 1550)``: images whose year range overlaps it
    (``year_end >= start`` and ``year_start <= end``). ``year_start``/``year_end`` accept a value or a range."""
    from vislink.index import AnyOf, Range

    out: dict[str, Any] = {}
    for key, value in (filters or {}).items():
        if value is None or value == "":
            continue
        if key == "year":
            lo, hi = _year_bounds(value)
            if hi is not None:
                out["year_start"] = Range(lte=hi)
            if lo is not None:
                out["year_end"] = Range(gte=lo)
        elif key in ("year_start", "year_end"):
            if isinstance(value, Range):
                out[key] = value
            else:
                lo, hi = _year_bounds(value)
                out[key] = Range(gte=lo, lte=hi)
        elif key in EXACT_FIELDS:
            if isinstance(value, (list, tuple, set, frozenset)):
                out[key] = AnyOf(tuple(value))
            else:
                out[key] = int(value) if key == "image_id" else value
        else:
            raise ConfigError(f"unknown search filter {key!r}; valid: {', '.join(EXACT_FIELDS)}, year, "
                              "year_start, year_end")
    return out or None


def _year_bounds(value: Any) -> tuple[int | None, int | None]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (None if value[0] is None else int(value[0]), None if value[1] is None else int(value[1]))
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    text = str(value).strip()
    lo, sep, hi = text.partition("-")  # "-1550": up to 1550 (years BC: give a tuple, (-500, -400))
    try:
        if sep:
            return (int(lo) if lo.strip() else None, int(hi) if hi.strip() else None)
        return int(text), int(text)
    except ValueError:
        raise ConfigError(f"year filter {value!r}: use 1500, 1500-1550, 1500- or -1550") from None


def parse_filter_args(args: Sequence[str]) -> dict[str, Any]:
    """``["artist=X", "year=1500-1550"]`` (the CLI's ``--filter``) -> a filters mapping. Repeating a field
    makes it match any of the values."""
    out: dict[str, Any] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--filter {arg!r}: write field=value, e.g. artist=CARAVAGGIO or year=1590-1610")
        key, value = key.strip(), value.strip()
        if key in out and key in EXACT_FIELDS:
            prev = out[key]
            out[key] = (*prev, value) if isinstance(prev, tuple) else (prev, value)
        else:
            out[key] = value
    return out
