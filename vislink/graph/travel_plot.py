"""Draw a pattern's travel (``vislink.graph.travel.Travel``) as one PNG: a timeline above (x = year, each member
a thumbnail or a dot with its artist and date, linked members joined earlier to later) and a map below (a plain
equirectangular projection of the members' places, a latitude/longitude grid, thumbnails at their cities or
school regions, arrows from earlier to later members).

Matplotlib's Agg backend, as ``graph.stats`` uses: no display and no network (no tiles, no fonts or outlines
fetched: the map has no country borders, only the grid and the place names).
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from pathlib import Path

from vislink.graph.travel import Travel, TravelMember

THUMB_PX = 56  # a thumbnail's longer side on the drawing (pixels at DPI)
ITEM_PX = 84  # a timeline item's width with its caption: the room between two of one row
DPI = 100
WIDTH_IN = 12.0
MAP_IN = 6.2
LANE_IN = 1.0  # a timeline row: a thumbnail and its two lines of caption
UNDATED_PER_ROW = 6
MIN_SPAN_DEG = 6.0  # the map shows at least this many degrees each way, so that one city is not a blank zoom
ARROW = {"positive": ("#333333", "-"), "duplicate": ("#333333", "-"), "group": ("#8a7f6a", "--")}
SCHOOL_COLOUR, CITY_COLOUR, DOT_COLOUR = "#b07d2b", "#4b6c9c", "#999999"


def _picture(member: TravelMember):
    """The member's thumbnail as an array of at most THUMB_PX, or None (no file, unreadable)."""
    if not member.thumbnail:
        return None
    import numpy as np
    from PIL import Image as PILImage

    try:
        with PILImage.open(member.thumbnail) as img:
            img = img.convert("RGB")
            img.thumbnail((THUMB_PX, THUMB_PX))
            return np.asarray(img)
    except (OSError, ValueError):
        return None


def _tidy_date(text: str | None) -> str | None:
    """A catalog date as a caption: a spreadsheet number shown as a year ("1566.0" -> "1566")."""
    return re.sub(r"^(\d{3,4})\.0+$", r"\1", text.strip()) if text else text


def _short(text: str | None, n: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[:n - 1].rstrip() + "…"


def _place_node(ax, xy, picture, colour: str, zorder: int = 3) -> None:
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    if picture is None:
        ax.plot(*xy, "o", color=colour, markersize=9, markeredgecolor="white", zorder=zorder)
        return
    box = AnnotationBbox(OffsetImage(picture, zoom=1.0), xy, frameon=True, pad=0.15, zorder=zorder,
                         bboxprops={"edgecolor": colour, "linewidth": 1.5})
    ax.add_artist(box)


def _clearance(picture) -> float:
    """How far (points) an arrow stops from a member's centre: outside its thumbnail, so the head shows."""
    if picture is None:
        return 7.0
    return math.hypot(*picture.shape[:2]) / 2 * 72 / DPI + 5  # half its diagonal: clear of a corner too


def _lanes(xs: list[float], width: float) -> list[int]:
    """A lane per x so that two items of one lane are at least ``width`` apart (greedy, in x order)."""
    ends: list[float] = []
    lanes = [0] * len(xs)
    for k in sorted(range(len(xs)), key=lambda k: xs[k]):
        lane = next((i for i, end in enumerate(ends) if xs[k] - end >= width), len(ends))
        if lane == len(ends):
            ends.append(xs[k])
        ends[lane] = xs[k]
        lanes[k] = lane
    return lanes


def timeline_rows(travel: Travel) -> tuple[dict[int, float], dict[int, int], float, float]:
    """Where the timeline puts each member: (x, lane) and the x range. Dated members at their year, in lanes so
    that thumbnails do not overlap; the undated in a block of their own after the last year, side by side."""
    dated = [m for m in travel.members if m.year is not None]
    undated = [m for m in travel.members if m.year is None]
    if dated:
        lo, hi = min(m.year_start for m in dated), max(m.year_end or m.year_start for m in dated)
    else:
        lo, hi = 0, 0
    span = max(hi - lo, 10)
    axis_px = WIDTH_IN * DPI * 0.85
    if undated:  # the undated block takes its own columns of the axis, as wide as the dated items
        columns = min(len(undated), UNDATED_PER_ROW) + 1
        span = span * axis_px / max(axis_px - columns * ITEM_PX, axis_px / 3)
    per_item = span * ITEM_PX / axis_px  # one item's width, in years
    x = {m.id: m.year for m in dated}
    lanes = dict(zip([m.id for m in dated], _lanes([m.year for m in dated], per_item)))
    start = hi + per_item
    for k, m in enumerate(undated):
        x[m.id] = start + (k % UNDATED_PER_ROW) * per_item
        lanes[m.id] = k // UNDATED_PER_ROW
    right = max(x.values(), default=hi)
    return x, lanes, lo - 0.6 * per_item, right + 0.6 * per_item


def _timeline(ax, travel: Travel, pictures: dict) -> None:
    x, lanes, left, right = timeline_rows(travel)
    dated = [m for m in travel.members if m.year is not None]
    undated = [m for m in travel.members if m.year is None]
    n_lanes = max(lanes.values(), default=0) + 1
    for m in dated:  # a year range is a line with end ticks through its item
        if m.year_end is not None and m.year_end > m.year_start:
            ax.plot([m.year_start, m.year_end], [lanes[m.id]] * 2, color="#b9b1a2", linewidth=2, zorder=1,
                    marker="|", markersize=12, markeredgewidth=2)
    for a, b, kind in travel.arrows():
        colour, style = ARROW.get(kind, ARROW["positive"])
        ax.annotate("", xy=(x[b], lanes[b]), xytext=(x[a], lanes[a]), zorder=2,
                    arrowprops={"arrowstyle": "-|>", "color": colour, "linestyle": style,
                                "shrinkA": _clearance(pictures.get(a)), "shrinkB": _clearance(pictures.get(b)),
                                "linewidth": 1.2, "connectionstyle": "arc3,rad=-0.2"})
    for m in travel.members:
        _place_node(ax, (x[m.id], lanes[m.id]), pictures.get(m.id), CITY_COLOUR if m.year is not None else DOT_COLOUR)
        ax.annotate(f"{_short(m.label, 16)}\n{_short(_tidy_date(m.date) or 'undated', 16)}", (x[m.id], lanes[m.id]),
                    xytext=(0, -THUMB_PX / 2 - 3), textcoords="offset points", ha="center", va="top", fontsize=7)
    ax.set_xlim(left, right)
    ax.set_ylim(n_lanes - 0.35, -0.75)
    ax.set_yticks([])
    boundary = right
    if undated:
        first = min(x[m.id] for m in undated)
        if dated:  # a line between the last year and the undated block
            boundary = (first + max(m.year_end or m.year_start for m in dated)) / 2
            ax.axvline(boundary, color="#dddddd", linewidth=1)
        else:
            boundary = left
        ax.text((first + max(x[m.id] for m in undated)) / 2, -0.62, "undated", ha="center", fontsize=8,
                color="#777777")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))
    # Years on the axis only under the dated part: the undated block has none.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}" if v < boundary else ""))
    ax.set_xlabel("year")
    ax.set_title(f"{travel.title}: {len(travel.members)} works by date" + (" (nearest part)" if travel.truncated
                                                                             else ""), fontsize=11)


def figure_height(travel: Travel) -> float:
    """The drawing's height in inches: the map and as many timeline rows as the members need."""
    _, lanes, _, _ = timeline_rows(travel)
    return MAP_IN + 0.9 + LANE_IN * (max(lanes.values(), default=0) + 1)


def _spread(points: dict[int, tuple[float, float]], radius: float) -> dict[int, tuple[float, float]]:
    """Members at one place are put on a small ring around it, so that their thumbnails do not hide each other."""
    at: dict[tuple[float, float], list[int]] = defaultdict(list)
    for member_id, xy in points.items():
        at[xy].append(member_id)
    out = {}
    for (lon, lat), ids in at.items():
        for k, member_id in enumerate(ids):
            if len(ids) == 1:
                out[member_id] = (lon, lat)
                continue
            angle = 2 * math.pi * k / len(ids) + math.pi / 2
            out[member_id] = (lon + radius * math.cos(angle), lat + radius * math.sin(angle))
    return out


def _map(ax, travel: Travel, pictures: dict) -> None:
    placed = [m for m in travel.members if m.place]
    if not placed:
        ax.text(0.5, 0.5, "no member has a known place", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    lons = [m.place["longitude"] for m in placed]
    lats = [m.place["latitude"] for m in placed]
    cx, cy = (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2
    half_w = max((max(lons) - min(lons)) / 2 * 1.25, MIN_SPAN_DEG / 2)
    half_h = max((max(lats) - min(lats)) / 2 * 1.25, MIN_SPAN_DEG / 2)
    # Equirectangular, with the aspect of the middle latitude: a degree of longitude is cos(lat) of one of latitude.
    # The span then grows to the panel's shape, so that a north-south pattern still gets a map as wide as the page.
    from matplotlib.ticker import MaxNLocator

    shrink = max(math.cos(math.radians(cy)), 0.2)
    panel = (WIDTH_IN * 0.88) / (MAP_IN * 0.8)  # the map panel's width / height, inside its labels
    half_w = max(half_w, half_h * panel / shrink)
    half_h = max(half_h, half_w * shrink / panel)
    ax.set_aspect(1 / shrink)
    ax.set_xlim(cx - half_w, cx + half_w)
    ax.set_ylim(cy - half_h, cy + half_h)
    ax.xaxis.set_major_locator(MaxNLocator(12, steps=[1, 2, 5, 10]))
    ax.yaxis.set_major_locator(MaxNLocator(8, steps=[1, 2, 5, 10]))
    ax.grid(True, color="#e4e0d6", linewidth=0.8)
    ax.set_facecolor("#fbfaf6")
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    points = _spread({m.id: (m.place["longitude"], m.place["latitude"]) for m in placed}, 0.06 * min(half_w, half_h))
    named: set[str] = set()
    for m in placed:  # the place's name once, at the place itself
        if m.place["name"] in named:
            continue
        named.add(m.place["name"])
        colour = SCHOOL_COLOUR if m.place["kind"] == "school" else CITY_COLOUR
        ax.plot(m.place["longitude"], m.place["latitude"], "s" if m.place["kind"] == "school" else "o",
                color=colour, markersize=4, zorder=2)
        ax.annotate(_short(m.place["name"], 34) + (" (region)" if m.place["kind"] == "school" else ""),
                    (m.place["longitude"], m.place["latitude"]), xytext=(0, THUMB_PX / 2 + 6),
                    textcoords="offset points", ha="center", fontsize=8, color=colour, zorder=4)
    for a, b, kind in travel.arrows():
        if a not in points or b not in points or points[a] == points[b]:
            continue
        colour, style = ARROW.get(kind, ARROW["positive"])
        ax.annotate("", xy=points[b], xytext=points[a], zorder=2,
                    arrowprops={"arrowstyle": "-|>", "color": colour, "linestyle": style,
                                "shrinkA": _clearance(pictures.get(a)), "shrinkB": _clearance(pictures.get(b)),
                                "linewidth": 1.4, "connectionstyle": "arc3,rad=0.15"})
    for m in placed:
        _place_node(ax, points[m.id], pictures.get(m.id),
                    SCHOOL_COLOUR if m.place["kind"] == "school" else CITY_COLOUR)
    missing = len(travel.members) - len(placed)
    ax.set_title("where: cities (blue) from GeoNames, school regions (ochre) approximate"
                 + (f"; {missing} without a place" if missing else ""), fontsize=9)


def render(travel: Travel) -> bytes:
    """The PNG of the timeline and the map, as bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # headless: the CLI and the UI server have no display
    from matplotlib.figure import Figure

    pictures = {m.id: _picture(m) for m in travel.members}
    height = figure_height(travel)
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    grid = fig.add_gridspec(2, 1, height_ratios=[height - MAP_IN, MAP_IN])
    _timeline(fig.add_subplot(grid[0]), travel, pictures)
    _map(fig.add_subplot(grid[1]), travel, pictures)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_png(travel: Travel, path: Path | str) -> Path:
    """Write the drawing to ``path`` (folders made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render(travel))
    return path
