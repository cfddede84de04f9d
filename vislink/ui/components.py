"""Widgets shared by the pages: error display, the settings kept across pages, collection and variant pickers,
thumbnails, metadata, the result grid and the selection ("basket") that carries images from search to
annotation."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Sequence

import streamlit as st

from vislink.config import get_settings
from vislink.errors import BadImage, ConflictError, NotFound, VislinkError
from vislink.graph.titles import display_artist
from vislink.ui import data, thumbs

log = logging.getLogger(__name__)

# Page files, relative to app.py: st.switch_page takes these.
SEARCH_PAGE = "views/search.py"
COMPARE_PAGE = "views/compare.py"
ANNOTATE_PAGE = "views/annotate.py"
BROWSE_PAGE = "views/browse.py"
EVALUATION_PAGE = "views/evaluation.py"

# The settings of every page (filters, modes, picked ids...) are widgets with ``persist_state="session"``: they
# survive a visit to another page. Without it Streamlit forgets a widget's value once a run does not draw it, and
# the Search page came back with its mode and filters reset while its results stayed. Buttons and file uploaders
# cannot persist; the Search page keeps its uploaded query itself.


@lru_cache(maxsize=1)
def app_icon():
    """The tab's icon, drawn here: a named or emoji icon makes the browser fetch a picture from the internet."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse((4, 14, 40, 50), outline=(228, 87, 46, 255), width=7)
    draw.ellipse((24, 14, 60, 50), outline=(51, 51, 51, 255), width=7)
    return img


@contextmanager
def guard(what: str = "") -> Iterator[None]:
    """The UI's one place that turns vislink errors into messages (never a traceback)."""
    try:
        yield
    except ConflictError as exc:
        st.error(f"Conflict: {exc}", icon=":material/sync_problem:")
    except BadImage as exc:
        st.error(f"Cannot use {exc.path}: {exc.reason}" + (f" ({exc.detail})" if exc.detail else ""),
                 icon=":material/broken_image:")
    except NotFound as exc:
        st.warning(str(exc))
    except VislinkError as exc:
        st.error((f"{what}: " if what else "") + str(exc))


def error_text(exc: Exception) -> str:
    """An error as one line for a list of per-file errors: a bad image's reason and detail, else the message."""
    if isinstance(exc, BadImage):
        return exc.reason + (f" ({exc.detail})" if exc.detail else "")
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return str(exc)


def flash(message: str) -> None:
    """A success message shown once, after the rerun that follows an edit."""
    st.session_state.setdefault("flash", []).append(message)
    st.rerun()


def show_flash() -> None:
    for message in st.session_state.pop("flash", []):
        st.success(message)


# -- session selection -------------------------------------------------------------------------

def basket() -> list[int]:
    return st.session_state.setdefault("basket", [])


def toggle_basket(image_id: int) -> None:
    items = basket()
    if image_id in items:
        items.remove(image_id)
    else:
        items.append(image_id)


@dataclass(frozen=True)
class Side:
    """What the Compare page can show on its left: an image of the collection (``image_id``), or a search query
    that is not in it (``image``: an upload, a region, an uploaded example)."""

    label: str
    image_id: int | None = None
    image: bytes | None = None


def open_compare(left: int | Side, right: int, sides: Sequence[Side] = (),
                 box: Sequence[int] | None = None) -> None:
    """The Compare page with ``left`` and ``right``; ``sides``: the query's images offered as the left one;
    ``box``: where the query's detail lies in ``right`` (x, y, w, h in its stored pixels), outlined and zoomed."""
    st.session_state["compare_box"] = (int(right), tuple(int(v) for v in box)) if box else None
    sides = list(sides) or ([left] if isinstance(left, Side) else [])
    left = left if isinstance(left, Side) else Side(f"#{left}", image_id=int(left))
    st.session_state["compare_sides"] = sides
    st.session_state["compare"] = (left.image_id or 0, int(right))
    # The Compare page's inputs keep their own state: set them too, or a revisit shows the old pair.
    if sides:
        st.session_state["cmp_left"] = left.label
    else:
        st.session_state.pop("cmp_left", None)
    if left.image_id is not None:
        st.session_state["cmp_a"] = int(left.image_id)
    st.session_state["cmp_b"] = int(right)
    st.switch_page(COMPARE_PAGE)


def open_image(image_id: int) -> None:
    st.session_state["browse_image"] = int(image_id)
    st.query_params.pop("image", None)  # the address of the image page shown before, if any
    st.switch_page(BROWSE_PAGE)


def group_name(group: data.GroupInfo) -> str:
    """"Group #16 (Leonardo da Vinci, Mona Lisa)", or "Group #16" when untitled: for messages."""
    return f"Group #{group.id}" + (f" ({group.title})" if group.title else "")


# -- pickers -----------------------------------------------------------------------------------

def pick_collection(key: str, container=None) -> data.CollectionInfo | None:
    where = container or st
    collections = data.list_collections()
    if not collections:
        where.info("No collection yet: ingest one (`vislink ingest folder ...`) or upload images on the "
                   "Annotate page.")
        return None
    names = [c.name for c in collections]
    if st.session_state.get(key) not in names:
        default = st.session_state.get("collection")
        st.session_state[key] = default if default in names else names[0]
    name = where.selectbox("Collection", names, key=key, persist_state="session",
                           format_func=lambda n: f"{n} ({next(c.n_images for c in collections if c.name == n)} images)")
    st.session_state["collection"] = name
    return next(c for c in collections if c.name == name)


def pick_variant(info: data.CollectionInfo, key: str, container=None) -> str | None:
    where = container or st
    if not info.variants:
        where.warning(f"Collection {info.name} has no descriptor variant yet.")
        return None
    if st.session_state.get(key) not in info.variants:
        st.session_state.pop(key, None)
    # A first visit opens on the variant with the best stored evaluation of this collection (else its first).
    best = data.best_variant(info.name, info.variants)
    return where.selectbox("Descriptor variant", info.variants, key=key, persist_state="session",
                           index=info.variants.index(best) if best in info.variants else 0,
                           help="Each variant is its own Qdrant collection (the paper's Table 1 rows); the "
                                "default is the one with the best stored evaluation.")


# -- thumbnails and metadata -------------------------------------------------------------------

def thumb_files(infos: Sequence[data.ImageInfo | None], size: int = thumbs.DEFAULT_SIZE) -> list:
    return thumbs.thumbnails([(i.file_path, i.sha256) if i else (None, None) for i in infos], size,
                             get_settings())


def show_image(info: data.ImageInfo | None, size: int = 512, container=None, caption: str | None = None) -> None:
    where = container or st
    path = thumb_files([info], size)[0] if info else None
    if path is None:
        where.caption("(no picture)")
    else:
        where.image(str(path), caption=caption)


META_LABELS = {"artist_dates": "artist's dates", "date_text": "date", "timeframe": "period"}


def metadata_table(info: data.ImageInfo, container=None) -> None:
    """What an art historian reads first (artist, title, date, technique, location, form, school, the source's
    page); the technical fields (id, source reference, size, status) folded away under them."""
    where = container or st
    rows = []
    for key, value in info.meta.items():
        text = display_artist(value) if key == "artist" else str(value)
        rows.append((META_LABELS.get(key, key), _md(text)))
    if info.source_link:
        rows.append(("source", f"[{_md(_host(info.source_link))}]({info.source_link.replace(')', '%29')})"))
    where.markdown("  \n".join(f"**{k}** · {v}" for k, v in rows) or "*(no metadata)*")
    tech = [("image id", str(info.id)), ("status", info.status)]
    tech += [(k.replace("_", " "), str(v)) for k, v in info.technical.items()]
    if info.sha256:
        tech.append(("sha256", info.sha256))
    with where.expander("Technical details"):
        st.markdown("  \n".join(f"**{k}** · {_md(v)}" for k, v in tech))


def _host(url: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return (parsed.netloc + parsed.path)[:60] or url[:60]


def _md(text: str) -> str:
    # Metadata is shown as Markdown: characters that would format it are escaped.
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


BOX_COLOUR = (228, 87, 46)  # the cropper's box colour: the matched detail reads as the query's region


def stored_size(info: data.ImageInfo, fallback: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the stored image (the pixels boxes are given in); ``fallback`` when not recorded."""
    width, height = info.technical.get("width"), info.technical.get("height")
    return (int(width), int(height)) if width and height else fallback


def draw_box(image, box: Sequence[float], size: tuple[int, int], colour=BOX_COLOUR):
    """A copy of ``image`` (a thumbnail or any resized view of a stored image of ``size`` pixels) with ``box``
    (x, y, w, h in the stored pixels) drawn on it as a rectangle, scaled to the image's size."""
    from PIL import ImageDraw

    out = image.convert("RGB").copy()
    sx, sy = out.width / max(1, size[0]), out.height / max(1, size[1])
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0, round(x * sx)), max(0, round(y * sy))
    x1, y1 = min(out.width - 1, round((x + w) * sx)), min(out.height - 1, round((y + h) * sy))
    line = max(2, round(min(out.size) / 90))
    ImageDraw.Draw(out).rectangle((x0, y0, max(x0, x1), max(y0, y1)), outline=colour, width=line)
    return out


def boxed_thumbnail(path, info: data.ImageInfo, box: Sequence[float]):
    """The thumbnail at ``path`` with the matched ``box`` drawn on it."""
    from PIL import Image

    with Image.open(path) as thumb:
        return draw_box(thumb, box, stored_size(info, thumb.size))


def zoom_on(image, box: Sequence[float], size: tuple[int, int], margin: float = 0.25):
    """The part of ``image`` (a view of a stored image of ``size`` pixels) around ``box``, with a ``margin`` of
    the box's size on each side."""
    sx, sy = image.width / max(1, size[0]), image.height / max(1, size[1])
    x, y, w, h = (float(v) for v in box)
    mx, my = w * margin, h * margin
    left, top = max(0, round((x - mx) * sx)), max(0, round((y - my) * sy))
    right, bottom = min(image.width, round((x + w + mx) * sx)), min(image.height, round((y + h + my) * sy))
    return image.crop((left, top, max(left + 1, right), max(top + 1, bottom)))


def box_text(box: Sequence[int]) -> str:
    return ",".join(str(int(v)) for v in box)


# -- results -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    rank: int
    score: float | None
    info: data.ImageInfo
    status: str = ""
    hint: str = ""  # how high the score is for this variant ("top 1%", data.ScoreScale.hint)
    mark: str = ""  # what the page knows of it besides ("this is the query: the same file")
    box: tuple[int, int, int, int] | None = None  # detail search: the matched box, x, y, w, h in the stored pixels
    query_box: tuple[int, int, int, int] | None = None  # regions="auto": the query region that found it


PER_ROW = (4, 5, 6, 8, 10)


def per_row() -> int:
    """Cards per row of every grid: the user's choice on the Search page (6 until then)."""
    value = st.session_state.get("search_per_row", 6)
    return value if value in PER_ROW else 6
# The menu of a card shows when the pointer is over the card (it stays reachable by keyboard: only faded).
_HOVER_CSS = """<style>
div[class*="st-key-{key}_card_"] div[data-testid="stPopover"] {{ opacity: 0.15; transition: opacity 0.15s; }}
div[class*="st-key-{key}_card_"]:hover div[data-testid="stPopover"],
div[class*="st-key-{key}_card_"] div[data-testid="stPopover"]:focus-within {{ opacity: 1; }}
</style>"""


def grid(cells: Sequence[Cell], *, key: str, columns: int = 6, compare: Sequence[Side] | None = None,
         selectable: bool = True) -> None:
    """A dense grid: thumbnail, rank and score (with its hint), one short caption and the link status; *select*
    under it, and the rest (details, compare with the query, open) in the card's menu (⋯), shown on hover.
    ``compare``: the query's sides (``Side``), when there is a query to compare with."""
    if not cells:
        st.info("No results.")
        return
    st.html(_HOVER_CSS.format(key=key))
    paths = thumb_files([c.info for c in cells], thumbs.DEFAULT_SIZE)
    selected = basket()
    for start in range(0, len(cells), columns):
        cols = st.columns(columns, gap="small")
        for col, cell, path in zip(cols, cells[start:start + columns], paths[start:start + columns]):
            _card(col, cell, path, key=key, compare=compare, selectable=selectable, selected=selected)


def _card(col, cell: Cell, path, *, key: str, compare, selectable: bool, selected: list[int]) -> None:
    info = cell.info
    with col.container(border=True, key=f"{key}_card_{info.id}", gap="small"):
        if path is not None and cell.box:
            try:
                st.image(boxed_thumbnail(path, info, cell.box), width="stretch")
            except OSError:  # an unreadable thumbnail: shown as the plain one
                st.image(str(path), width="stretch")
        elif path is not None:
            st.image(str(path), width="stretch")
        else:
            st.caption("(no picture)")
        score = f" · {cell.score:.3f}" if cell.score is not None else ""
        st.markdown(f"**#{cell.rank}**{score}" + (f" · :small[:gray[{cell.hint}]]" if cell.hint else ""))
        lines = [_md(info.short_caption)]
        if cell.box:
            lines.append(f":orange[:material/crop_free: detail at {box_text(cell.box)}]"
                         + (f" (query region {box_text(cell.query_box)})" if cell.query_box else ""))
        if cell.mark:
            lines.append(f":orange[:material/info: {_md(cell.mark)}]")
        if cell.status:
            lines.append(f":material/link: {_md(cell.status)}")
        st.caption("  \n".join(lines))
        row = st.container(horizontal=True, vertical_alignment="center", gap="small")
        with row:
            if selectable:
                sel_key = f"{key}_sel_{info.id}"
                st.session_state[sel_key] = info.id in selected
                st.checkbox("select", key=sel_key, on_change=toggle_basket, args=(info.id,))
            with st.popover("⋯", type="tertiary", help="details, compare, open", key=f"{key}_menu_{info.id}"):
                st.markdown(f"**{_md(display_artist(info.artist) or 'unknown artist')}**  \n"
                            f"*{_md(info.title or 'untitled')}*" + (f"  \n{_md(info.date_text)}" if info.date_text
                                                                    else "") + f"  \nimage #{info.id}")
                if cell.status:
                    st.caption(cell.status)
                if compare and st.button("compare with the query", key=f"{key}_cmp_{info.id}", width="stretch",
                                         icon=":material/compare:"):
                    open_compare(compare[0], info.id, compare, box=cell.box)
                if st.button("open", key=f"{key}_open_{info.id}", width="stretch", icon=":material/open_in_new:"):
                    open_image(info.id)


def pager(total_known: int | None, page_size: int, key: str, more: bool) -> int:
    """Previous / next buttons and the rank range; returns the 0-based page. ``more``: a next page exists."""
    page = st.session_state.setdefault(key, 0)
    left, mid, right = st.columns([1, 3, 1])
    if left.button("◀ previous", key=f"{key}_prev", disabled=page == 0):
        st.session_state[key] = page = max(0, page - 1)
        st.rerun()
    if right.button("next ▶", key=f"{key}_next", disabled=not more):
        st.session_state[key] = page = page + 1
        st.rerun()
    total = f" of {total_known}" if total_known is not None else ""
    mid.markdown(f"ranks {page * page_size + 1}–{(page + 1) * page_size}{total}")
    return page
