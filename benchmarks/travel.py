"""How much of the WGA catalog the travel map can place (issue #19 item 4, docs/travel.md), what a lookup costs,
and how long the drawing takes: every LOCATION of ../shared/data/wga/catalog_2018.csv through
``vislink.formats.places``, then ``travel_plot.render`` of a synthetic travel of N members.

    python benchmarks/travel.py                      # the shared catalog, a 20-member drawing
    python benchmarks/travel.py --catalog FILE.csv --members 50

Prints the share of rows and of distinct LOCATION values placed in a city, the same without the rows that name
no place (private or various collections, "-"), the share placed by city or school region together (what the map
shows), the most frequent reasons for no place, the gazetteer's load time, the per-lookup time (uncached and
cached), and the median time of ``render`` over 3 runs for members with 128 px thumbnails (random pixels), dated
and placed at random among the catalog's resolved places, in one group.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vislink.formats import places  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=ROOT.parent / "shared" / "data" / "wga" / "catalog_2018.csv")
    parser.add_argument("--top", type=int, default=15, help="How many reasons for no place to list.")
    parser.add_argument("--members", type=int, default=20, help="Members of the synthetic drawing.")
    args = parser.parse_args()
    with open(args.catalog, encoding="utf-8") as fh:
        rows = [(r["LOCATION"], r["SCHOOL"]) for r in csv.DictReader(fh)]

    t0 = time.perf_counter()
    places.find_city("Paris")  # loads the gazetteer
    load_s = time.perf_counter() - t0
    distinct = list(dict.fromkeys(loc for loc, _ in rows))
    t0 = time.perf_counter()
    found = {loc: places.resolve_location(loc) for loc in distinct}
    uncached_ms = (time.perf_counter() - t0) / len(distinct) * 1000
    t0 = time.perf_counter()
    for loc, _ in rows:
        places.resolve_location(loc)
    cached_us = (time.perf_counter() - t0) / len(rows) * 1e6

    n = len(rows)
    in_city = sum(found[loc].place is not None for loc, _ in rows)
    nowhere = sum(found[loc].reason in set(places.NO_PLACE.values()) for loc, _ in rows)
    on_map = sum(places.place_of(loc, school).place is not None for loc, school in rows)
    print(f"catalog {args.catalog.name}: {n} rows, {len(distinct)} distinct LOCATION values")
    print(f"placed in a city: {in_city} rows ({100 * in_city / n:.1f}%), "
          f"{sum(r.place is not None for r in found.values())} distinct values "
          f"({100 * sum(r.place is not None for r in found.values()) / len(distinct):.1f}%)")
    print(f"rows naming no place (private or various collections, '-'): {nowhere} ({100 * nowhere / n:.1f}%); "
          f"of the others, placed in a city: {100 * in_city / (n - nowhere):.1f}%")
    print(f"on the map by city or school region: {on_map} rows ({100 * on_map / n:.1f}%)")
    print(f"gazetteer load {load_s:.2f} s; lookup {uncached_ms:.3f} ms uncached, {cached_us:.2f} us cached")
    reasons = Counter(found[loc].reason for loc, _ in rows if found[loc].place is None)
    print(f"most frequent reasons for no city (rows), top {args.top}:")
    for reason, count in reasons.most_common(args.top):
        print(f"  {count:6}  {reason}")
    render_time(args.members, [found[loc].place for loc, _ in rows if found[loc].place is not None])


def render_time(n: int, placed: list) -> None:
    import statistics
    import tempfile

    import numpy as np
    from PIL import Image

    from vislink.graph.travel import Travel, TravelMember, date_order
    from vislink.graph.travel_plot import render

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        members = []
        for k in range(n):
            path = Path(tmp) / f"{k}.jpg"
            Image.fromarray((rng.random((96, 128, 3)) * 255).astype("uint8")).save(path)
            year = 1450 + int(rng.integers(0, 250))
            place = placed[int(rng.integers(0, len(placed)))]
            members.append(TravelMember(k, f"w{k}.jpg", f"ARTIST {k}", "Title", str(year), year, year + 5, None,
                                        "Italian", "painting", place.to_dict(), "", str(path), 1))
        travel = Travel("group", "synthetic", 1, members=date_order(members))
        times, size = [], 0
        for _ in range(3):
            t0 = time.perf_counter()
            size = len(render(travel))
            times.append(time.perf_counter() - t0)
    print(f"render: {n} members with thumbnails, median {statistics.median(times):.2f} s, PNG {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
