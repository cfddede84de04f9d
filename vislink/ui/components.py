"""Widgets shared by the pages: error display, collection and variant pickers, thumbnails, the result
grid and the selection ("basket") that carries images from search to annotation."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import streamlit as st

from vislink.config import get_settings
from vislink.errors import BadImage, ConflictError, NotFound, VislinkError
from vislink.ui import data, thumbs

log = logging.getLogger(__name__)

# Page files, relative to app.py: st.switch_page takes these.
SEARCH_PAGE = "views/search.py"
COMPARE_PAGE = "views/compare.py"
ANNOTATE_PAGE = "views/annotate.py"
BROWSE_PAGE = "views/browse.py"
EVALUATION_PAGE = "views/evaluation.py"


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


def open_compare(a: int, b: int) -> None:
    st.session_state["compare"] = (int(a), int(b))
    # The Compare page's id inputs keep their own state: set them too, or a revisit shows the old pair.
    st.session_state["cmp_a"], st.session_state["cmp_b"] = int(a), int(b)
    st.switch_page(COMPARE_PAGE)


def open_image(image_id: int) -> None:
    st.session_state["browse_image"] = int(image_id)
    st.switch_page(BROWSE_PAGE)


# -- pickers -----------------------------------------------------------------------------------

def pick_collection(key: str, container=None) -> data.CollectionInfo | None:
    where = container or st
    collections = data.list_collections()
    if not collections:
        where.info("No collection yet: ingest one (`vislink ingest folder ...`) or upload images on the "
                   "Annotate page.")
        return None
    names = [c.name for c in collections]
    default = st.session_state.get("collection")
    index = names.index(default) if default in names else 0
    name = where.selectbox("Collection", names, index=index, key=key,
                           format_func=lambda n: f"{n} ({next(c.n_images for c in collections if c.name == n)} images)")
    st.session_state["collection"] = name
    return next(c for c in collections if c.name == name)


def pick_variant(info: data.CollectionInfo, key: str, container=None) -> str | None:
    where = container or st
    if not info.variants:
        where.warning(f"Collection {info.name} has no descriptor variant yet.")
        return None
    return where.selectbox("Descriptor variant", info.variants, key=key,
                           help="Each variant is its own Qdrant collection (the paper's Table 1 rows).")


# -- thumbnails --------------------------------------------------------------------------------

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


def metadata_table(info: data.ImageInfo, container=None) -> None:
    where = container or st
    rows = [("image id", str(info.id)), ("status", info.status)] + [(k.replace("_", " "), str(v))
                                                                     for k, v in info.meta.items()]
    where.markdown("  \n".join(f"**{k}** · {_md(v)}" for k, v in rows))


def _md(text: str) -> str:
    # Metadata is shown as Markdown: characters that would format it are escaped.
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


# -- results -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    rank: int
    score: float | None
    info: data.ImageInfo
    status: str = ""


def grid(cells: Sequence[Cell], *, key: str, columns: int = 5, query_id: int | None = None,
         selectable: bool = True) -> None:
    """Thumbnails with rank, score, artist, title, date and link status; select, compare, open."""
    if not cells:
        st.info("No results.")
        return
    paths = thumb_files([c.info for c in cells], thumbs.DEFAULT_SIZE)
    selected = basket()
    for start in range(0, len(cells), columns):
        cols = st.columns(columns)
        for col, cell, path in zip(cols, cells[start:start + columns], paths[start:start + columns]):
            with col.container(border=True):
                if path is not None:
                    st.image(str(path))
                else:
                    st.caption("(no picture)")
                score = f" · {cell.score:.3f}" if cell.score is not None else ""
                st.markdown(f"**#{cell.rank}**{score}")
                info = cell.info
                st.caption(f"{info.artist or 'unknown artist'}  \n*{info.title or 'untitled'}*  \n"
                           f"{info.date_text or ''} · id {info.id}")
                if cell.status:
                    st.caption(f":material/link: {cell.status}")
                if selectable:
                    sel_key = f"{key}_sel_{info.id}"
                    st.session_state[sel_key] = info.id in selected
                    st.checkbox("select", key=sel_key, on_change=toggle_basket, args=(info.id,))
                if query_id is not None and st.button("compare", key=f"{key}_cmp_{info.id}", width="stretch",
                                                      icon=":material/compare:"):
                    open_compare(query_id, info.id)
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
