"""Search page: by an uploaded image, an image of the collection, a region of either, or several
positive / negative examples; metadata filters applied inside Qdrant; mirrored copies; paged results."""

from __future__ import annotations

import io
import time

import streamlit as st

from vislink.errors import VislinkError
from vislink.ui import auth, data, services
from vislink.ui import components as ui

st.title("Search")

QUERY = "search_query"
CACHE = "search_cache"
PAGE = "search_page"


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _preview(img, caption: str, where) -> None:
    small = img.copy()
    small.thumbnail((256, 256))
    where.image(small, caption=caption)


def _crop(img, key: str):
    """A region of ``img`` chosen with the cropper (the full image when the cropper is not available)."""
    try:
        from streamlit_cropper import st_cropper
    except ImportError:  # optional widget: without it, the region is the whole image
        st.caption("streamlit-cropper is not installed: searching with the whole image")
        return img
    st.caption("Drag the box over the region to search for.")
    return st_cropper(img, realtime_update=True, box_color="#e4572e", return_type="image", key=key)


def _ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(",", " ").split())
    except ValueError:
        raise VislinkError(f"image ids must be whole numbers separated by commas or spaces, got {text!r}") from None


def _query_input(info: data.CollectionInfo, side) -> services.Query | None:
    """The query widgets; previews go to ``side`` (the column next to them)."""
    mode = st.radio("Query", ["Upload an image", "An image of the collection", "Several examples"],
                    horizontal=True, key="search_mode")
    region = False
    if mode != "Several examples":
        region = st.toggle("Search a region (crop)", key="search_region",
                           help="Crop a detail: the paper's links are often a figure copied, not the whole work.")
    if mode == "Upload an image":
        upload = st.file_uploader("Query image", type=["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp", "gif"],
                                  key="search_upload")
        if upload is None:
            return None
        raw = upload.getvalue()
        img = services.read_upload(upload.name, raw)
        if region:
            img = _crop(img, "search_crop_upload")
        _preview(img, upload.name + (" (region)" if region else ""), side)
        # The validated upload is searched as it came (no re-encoding); a region as a PNG of the crop.
        return services.Query(image=_png(img) if region else raw, label=upload.name + (" (region)" if region else ""))
    if mode == "An image of the collection":
        left, right = st.columns([3, 1])
        text = left.text_input("Find by artist or title", key="search_find")
        st.session_state.setdefault("search_pick_id", 0)  # set by "Search with it" on an image page
        typed = right.number_input("or image id", min_value=0, step=1, key="search_pick_id")
        matches = data.find_images(info.id, text, limit=50)
        if typed:
            image_id = int(typed)
        elif matches:
            image_id = st.selectbox("Image", [m.id for m in matches], key="search_pick",
                                    format_func=lambda i: next(m.label for m in matches if m.id == i))
        else:
            st.info("No image matches.")
            return None
        picked = data.image(image_id)
        if picked.collection_id != info.id:
            st.warning(f"Image {image_id} is in another collection; searching {info.name} with it anyway.")
        if region:
            from vislink.encoder.images import open_rgb
            from vislink.ui.thumbs import resolve_image_path

            img = _crop(open_rgb(resolve_image_path(picked.file_path)), f"search_crop_{image_id}")
            _preview(img, f"region of {picked.label}", side)
            return services.Query(image=_png(img), label=f"region of #{image_id}")
        ui.show_image(picked, 256, side, caption=picked.label)
        return services.Query(image_id=image_id, label=picked.label)
    # Several examples: Qdrant's recommendation API (average of positives, pushed away from negatives).
    chosen = ui.basket()
    note, button = st.columns([3, 1])
    note.caption(f"{len(chosen)} image(s) selected in the results; they are the default positive examples.")
    # The input's value lives in session state (set before the input exists in this run), never in value=.
    clicked = button.button("Use the selection", key="search_use_selection", disabled=not chosen)
    if clicked or "search_pos" not in st.session_state:
        st.session_state["search_pos"] = " ".join(map(str, chosen))
    pos_text = st.text_input("Positive example ids", key="search_pos")
    neg_text = st.text_input("Negative example ids", key="search_neg")
    uploads = st.file_uploader("Positive example images (uploads)", accept_multiple_files=True,
                               type=["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp"], key="search_pos_uploads")
    images = []
    for upload in uploads or []:
        services.read_upload(upload.name, upload.getvalue())  # size limit and content check
        images.append(upload.getvalue())
    images = tuple(images)
    positive, negative = _ids(pos_text), _ids(neg_text)
    if not positive and not images:
        return None
    return services.Query(positive=positive, negative=negative, positive_images=images,
                          label=f"{len(positive) + len(images)} positive, {len(negative)} negative example(s)")


def _filters(info: data.CollectionInfo) -> tuple[dict | None, bool, int]:
    side = st.sidebar
    side.markdown("**Filters** (applied inside Qdrant)")
    values = {}
    for facet in data.FACETS:
        options = data.facet_values(info.id, facet)
        values[facet] = side.multiselect(facet.capitalize(), options, key=f"search_f_{facet}") if options else []
    years = None
    bounds = data.year_bounds(info.id)
    if bounds and bounds[0] < bounds[1] and side.checkbox("Filter by years", key="search_use_years"):
        years = side.slider("Years", bounds[0], bounds[1], bounds, key="search_years")
    mirrored = side.checkbox("Mirrored too", key="search_mirrored",
                             help="Search with the image and its mirror, keep each result's best similarity.")
    page_size = side.selectbox("Results per page", [20, 50, 100], key="search_page_size")
    flt = data.build_filter(values["artist"], values["school"], values["form"], values["type"], years)
    return flt, mirrored, page_size


def _selection_actions(query: services.Query) -> None:
    chosen = ui.basket()
    with st.expander(f"Selection: {len(chosen)} image(s)", expanded=bool(chosen)):
        if not chosen:
            st.caption("Tick results to select them, then group them here or on the Annotate page.")
            return
        st.write(", ".join(f"#{i}" for i in chosen))
        c1, c2, c3 = st.columns(3)
        if c1.button("Clear selection", key="search_clear"):
            chosen.clear()
            st.rerun()
        annotator = auth.current()
        with_query = [query.image_id] if query.image_id is not None and query.image_id not in chosen else []
        if c2.button("Create a group" + (" with the query" if with_query else ""), key="search_make_group",
                     disabled=annotator is None, help=None if annotator else "sign in to annotate"):
            with ui.guard("grouping"):
                group_id = services.create_group(with_query + chosen, annotator.id)
                n = len(with_query + chosen)
                chosen.clear()
                ui.flash(f"Group #{group_id} created with {n} images.")
        if c3.button("Open on the Annotate page", key="search_to_annotate"):
            st.switch_page(ui.ANNOTATE_PAGE)


def _prefetch_next(query, info, variant, flt, mirrored, page, page_size) -> None:
    """Thumbnails of the next two pages, made in the background from the block already fetched."""
    cache = st.session_state.get(CACHE, {})
    start = (page + 1) * page_size
    block = start // services.BLOCK
    rows = next((v for k, v in cache.items() if k[0] == query.key() and k[1] == info.name and k[-1] == block), [])
    offset = start - block * services.BLOCK
    upcoming = rows[offset:offset + 2 * page_size]
    if upcoming:
        infos = data.images_by_ids(r.image_id for r in upcoming)
        services.prefetch_thumbnails([(i.file_path, i.sha256) for i in infos.values()], ui.thumbs.DEFAULT_SIZE)


def main() -> None:
    ui.show_flash()
    info = ui.pick_collection("search_collection", st.sidebar)
    if info is None:
        return
    variant = ui.pick_variant(info, "search_variant", st.sidebar)
    if variant is None:
        return
    flt, mirrored, page_size = _filters(info)
    query = None
    left, right = st.columns([2, 1])
    with left:
        with ui.guard("query"):
            query = _query_input(info, right)
        go = st.button("Search", type="primary", key="search_go", disabled=query is None)
    if go:
        st.session_state[QUERY] = query
        st.session_state[PAGE] = 0
        st.session_state[CACHE] = {}
    query = st.session_state.get(QUERY)
    if query is None:
        return
    st.divider()
    st.subheader(f"Results for {query.label}")
    cache = st.session_state.setdefault(CACHE, {})
    page = st.session_state.get(PAGE, 0)
    with ui.guard("search"):
        started = time.perf_counter()
        results = services.search_page(query, collection=info.name, variant=variant, flt=flt, mirrored=mirrored,
                                       page=page, page_size=page_size, cache=cache)
        infos = data.images_by_ids(r.image_id for r in results)
        status = data.link_status(query.image_id, [r.image_id for r in results])
        cells = [ui.Cell(r.rank, r.score, infos[r.image_id], status.get(r.image_id, ""))
                 for r in results if r.image_id in infos]
        ui.pager(None, page_size, PAGE, more=len(results) == page_size)
        ui.grid(cells, key="search", query_id=query.image_id)
        st.caption(f"{len(cells)} results on this page, prepared in {(time.perf_counter() - started) * 1000:.0f} ms")
        _prefetch_next(query, info, variant, flt, mirrored, page, page_size)
        _selection_actions(query)


main()
