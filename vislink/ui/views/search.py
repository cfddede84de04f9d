"""Search page: by an uploaded image, an image of the collection, a region of either, or several
positive / negative examples; metadata filters applied inside Qdrant; mirrored copies; paged results.

The results shown are always those of the query and the settings on screen: settings (filters, mirrored,
variant, page size) apply to the results at once, and when the query on screen is no longer the one searched
the results give way to a note until *Search* is pressed."""

from __future__ import annotations

import hashlib
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
PENDING = "search_pending"  # set by "Search with it" on an image page: search at once
KEPT_UPLOAD = "search_upload_kept"  # (name, bytes) of the last uploaded query: a file uploader forgets it
RESTORED = "search_upload_restored"  # the kept upload stands in for the empty uploader
SAME_AS_QUERY = 0.9995  # a score this high is the query's own picture
VERIFY_TOPS = (20, 50, 100, 200)  # how many top results "Verify the top results" re-ranks (50: about 1 s)


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


def _crop_box(img, key: str):
    """(the crop, its box x, y, w, h in the image file's full-size pixels) chosen with the cropper, for a
    -regions variant (the whole image without the cropper)."""
    width, height = services.full_size(img)
    try:
        from streamlit_cropper import st_cropper
    except ImportError:
        st.caption("streamlit-cropper is not installed: searching with the whole image")
        return img, (0, 0, width, height)
    st.caption("Drag the box over the region to search for: it is matched against the stored regions of every "
               "image (the variant stores regions), and each result shows where the detail lies in it.")
    piece, rect = st_cropper(img, realtime_update=True, box_color="#e4572e", return_type="both", key=key)
    sx, sy = width / img.width, height / img.height  # the cropper's box is in the decoded (maybe reduced) pixels
    box = (round(rect["left"] * sx), round(rect["top"] * sy), max(1, round(rect["width"] * sx)),
           max(1, round(rect["height"] * sy)))
    return piece, box


def _ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(",", " ").split())
    except ValueError:
        raise VislinkError(f"image ids must be whole numbers separated by commas or spaces, got {text!r}") from None


def _uploaded() -> tuple[str, bytes] | None:
    """The uploaded query: the uploader's file, or the one kept from before a visit to another page."""
    returned = "search_upload" not in st.session_state  # its state went with the visit to another page
    upload = st.file_uploader("Query image", type=["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp", "gif"],
                              key="search_upload")
    if upload is not None:
        st.session_state[KEPT_UPLOAD] = (upload.name, upload.getvalue())
        st.session_state[RESTORED] = False
        return st.session_state[KEPT_UPLOAD]
    kept = st.session_state.get(KEPT_UPLOAD)
    if kept and (returned or st.session_state.get(RESTORED)):
        st.session_state[RESTORED] = True
        note, button = st.columns([3, 1])
        note.caption(f"Query: **{kept[0]}**, uploaded before. Upload another image to replace it.")
        if not button.button("Forget it", key="search_forget_upload"):
            return kept
    st.session_state.pop(KEPT_UPLOAD, None)
    st.session_state[RESTORED] = False
    return None


def _query_input(info: data.CollectionInfo, side, variant: str | None = None) -> services.Query | None:
    """The query widgets; previews go to ``side`` (the column next to them). On a variant that stores regions
    (``-regions``), a region is matched against the stored regions and "Match regions (auto)" matches the
    query's own regions (docs/detail.md); on any other variant a region is a crop compared with whole images."""
    mode = st.radio("Query", ["Upload an image", "An image of the collection", "Several examples"],
                    horizontal=True, key="search_mode", persist_state="session")
    region = auto = False
    detail = services.stores_regions(variant)
    if mode != "Several examples":
        region = st.toggle("Search a region (crop)", key="search_region", persist_state="session",
                           help="Crop a detail: the paper's links are often a figure copied, not the whole work.")
        if detail and not region:
            auto = st.toggle("Match regions (auto)", key="search_auto", persist_state="session",
                             help="Each region of the query (the whole image, then a grid of squares) is matched "
                                  "against the stored regions: a photo holding several paintings finds each.")
    if mode == "Upload an image":
        uploaded = _uploaded()
        if uploaded is None:
            return None
        name, raw = uploaded
        img = services.read_upload(name, raw)
        if detail and region:
            piece, box = _crop_box(img, "search_crop_upload")
            label = f"{name} (region {','.join(map(str, box))})"
            _preview(piece, label, side)
            return services.Query(image=raw, region=box, label=label, extra={"crop": _png(piece)})
        if auto:
            _preview(img, f"{name} (regions auto)", side)
            return services.Query(image=raw, auto=True, label=f"{name} (regions auto)")
        if region:
            img = _crop(img, "search_crop_upload")
        label = name + (" (region)" if region else "")
        _preview(img, label, side)
        # The validated upload is searched as it came (no re-encoding); a region as a PNG of the crop.
        return services.Query(image=_png(img) if region else raw, label=label,
                              extra={"uploaded": not region})
    if mode == "An image of the collection":
        left, right = st.columns([3, 1])
        text = left.text_input("Find by artist or title", key="search_find", persist_state="session")
        st.session_state.setdefault("search_pick_id", 0)  # set by "Search with it" on an image page
        typed = right.number_input("or image id", min_value=0, step=1, key="search_pick_id", persist_state="session")
        matches = data.find_images(info.id, text, limit=50)
        if typed:
            image_id = int(typed)
        elif matches:
            image_id = st.selectbox("Image", [m.id for m in matches], key="search_pick", persist_state="session",
                                    format_func=lambda i: next(m.label for m in matches if m.id == i))
        else:
            st.info("No image matches.")
            return None
        picked = data.image(image_id)
        if picked.collection_id != info.id:
            st.warning(f"Image {image_id} is in another collection; searching {info.name} with it anyway.")
        if detail and region:
            from vislink.ui.thumbs import resolve_image_path

            piece, box = _crop_box(services.decode_image(resolve_image_path(picked.file_path), picked.label),
                                   f"search_crop_{image_id}")
            label = f"region {','.join(map(str, box))} of #{image_id}"
            _preview(piece, label, side)
            return services.Query(image_id=image_id, region=box, label=label, extra={"crop": _png(piece)})
        if auto:
            ui.show_image(picked, 256, side, caption=picked.label)
            return services.Query(image_id=image_id, auto=True, label=f"{picked.label} (regions auto)")
        if region:
            from vislink.ui.thumbs import resolve_image_path

            img = _crop(services.decode_image(resolve_image_path(picked.file_path), picked.label),
                        f"search_crop_{image_id}")
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
    pos_text = st.text_input("Positive example ids", key="search_pos", persist_state="session")
    neg_text = st.text_input("Negative example ids", key="search_neg", persist_state="session")
    uploads = st.file_uploader("Positive example images (uploads)", accept_multiple_files=True,
                               type=["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp"], key="search_pos_uploads")
    images, names = [], []
    for upload in uploads or []:
        try:
            services.read_upload(upload.name, upload.getvalue())  # size limit and content check
        except VislinkError as exc:  # each bad file is named with its reason; the good ones are still used
            st.error(f"{upload.name}: {ui.error_text(exc)} (not used as an example)", icon=":material/broken_image:")
            continue
        images.append(upload.getvalue())
        names.append(upload.name)
    positive, negative = _ids(pos_text), _ids(neg_text)
    if not positive and not images:
        return None
    return services.Query(positive=positive, negative=negative, positive_images=tuple(images),
                          label=f"{len(positive) + len(images)} positive, {len(negative)} negative example(s)",
                          extra={"upload_names": tuple(names)})


def _filters(info: data.CollectionInfo) -> tuple[dict | None, bool, int, int, int | None]:
    side = st.sidebar
    side.markdown("**Filters** (applied inside Qdrant)")
    values = {}
    for facet in data.FACETS:
        options = data.facet_values(info.id, facet)
        values[facet] = side.multiselect(facet.capitalize(), options, key=f"search_f_{facet}",
                                         persist_state="session") if options else []
    years = None
    bounds = data.year_bounds(info.id)
    if bounds and bounds[0] < bounds[1] and side.checkbox("Filter by years", key="search_use_years",
                                                          persist_state="session"):
        st.session_state.setdefault("search_years", bounds)  # in session state, not value=: kept across pages
        years = side.slider("Years", bounds[0], bounds[1], key="search_years", persist_state="session")
    mirrored = side.checkbox("Mirrored too", key="search_mirrored", persist_state="session",
                             help="Search with the image and its mirror, keep each result's best similarity.")
    verify = None
    if side.checkbox("Verify the top results", key="search_verify", persist_state="session",
                     help="Geometric re-ranking: the top results are matched with the query by local features "
                          "(SIFT, RANSAC, mirrored too) and the verified ones, copies and details of the same "
                          "picture, come first by number of matching points. About 1 s for the top 50."):
        verify = side.select_slider("Results verified", VERIFY_TOPS, value=50, key="search_verify_top",
                                    persist_state="session")
    page_size = side.selectbox("Results per page", [20, 50, 100], key="search_page_size", persist_state="session")
    st.session_state.setdefault("search_per_row", 6)
    per_row = side.select_slider("Results per row", ui.PER_ROW, key="search_per_row", persist_state="session")
    flt = data.build_filter(values["artist"], values["school"], values["form"], values["type"], years)
    return flt, mirrored, page_size, per_row, verify


def _twin(query: services.Query, info: data.CollectionInfo) -> data.ImageInfo | None:
    """The image of the collection stored from exactly the uploaded bytes, if any."""
    if query.image is None or not query.extra.get("uploaded"):
        return None
    found = data.images_with_sha256(info.id, hashlib.sha256(query.image).hexdigest())
    return found[0] if found else None


def _sides(query: services.Query, twin: data.ImageInfo | None) -> list[ui.Side]:
    """What the Compare page may put on the left for this query: its image(s), by id when in the collection."""
    crop = [ui.Side(query.label, image=query.extra["crop"])] if query.extra.get("crop") else []
    if query.image_id is not None:
        return crop + [ui.Side(f"#{query.image_id}" if crop else query.label, image_id=query.image_id)]
    if crop:
        return crop
    sides = []
    if twin is not None:
        sides.append(ui.Side(f"{query.label} = #{twin.id}", image_id=twin.id))
    if query.image is not None:
        sides.append(ui.Side(query.label, image=query.image))
    sides += [ui.Side(f"example #{i}", image_id=i) for i in query.positive]
    names = query.extra.get("upload_names") or ()
    sides += [ui.Side(f"example {names[k] if k < len(names) else k + 1}", image=b)
              for k, b in enumerate(query.positive_images)]
    return sides


def _selection_actions(query: services.Query, query_id: int | None) -> None:
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
        with_query = [query_id] if query_id is not None and query_id not in chosen else []
        if c2.button("Create a group" + (" with the query" if with_query else ""), key="search_make_group",
                     disabled=annotator is None, help=None if annotator else "sign in to annotate"):
            with ui.guard("grouping"):
                group_id = services.create_group(with_query + chosen, annotator.id)
                n = len(with_query + chosen)
                chosen.clear()
                ui.flash(f"{ui.group_name(data.group(group_id))} created with {n} images.")
        if c3.button("Open on the Annotate page", key="search_to_annotate"):
            st.switch_page(ui.ANNOTATE_PAGE)


def _prefetch_next(query, info, page, page_size) -> None:
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


def _results(query: services.Query, info: data.CollectionInfo, variant: str, flt, mirrored: bool, page_size: int,
             per_row: int, verify: int | None = None) -> None:
    twin = _twin(query, info)
    query_id = query.image_id if query.image_id is not None else (twin.id if twin else None)
    st.subheader(f"Results for {query.label}")
    if twin is not None:
        st.info(f"This image is in the collection: #{twin.id} ({twin.label.split(' ', 1)[1]}). It comes back as "
                "its own first result; links and groups below are shown against it.", icon=":material/info:")
    if query.is_detail and mirrored:
        st.caption("Mirrored does not apply to a region match yet: the regions are searched as they are.")
        mirrored = False
    cache = st.session_state.setdefault(CACHE, {})
    page = st.session_state.get(PAGE, 0)
    started = time.perf_counter()
    results = services.search_page(query, collection=info.name, variant=variant, flt=flt, mirrored=mirrored,
                                   page=page, page_size=page_size, cache=cache, verify=verify)
    infos = data.images_by_ids(r.image_id for r in results)
    status = data.link_status(query_id, [r.image_id for r in results])
    scale = services.score_scale(info.name, variant)
    cells = []
    for r in results:
        if r.image_id not in infos:
            continue
        mark = ""
        if twin is not None and r.image_id == twin.id:
            mark = "this is the query (the same file)"
        elif twin is None and query.image is not None and r.score is not None and r.score >= SAME_AS_QUERY:
            mark = "the query's own picture, it seems (score 1.000)"
        if not mark and getattr(r, "verified", None):
            mark = f"verified: {r.inliers} matching points" + (", mirrored" if r.mirrored else "")
        cells.append(ui.Cell(r.rank, r.score, infos[r.image_id], status.get(r.image_id, ""), scale.hint(r.score),
                             mark, box=tuple(r.box) if getattr(r, "box", None) else None,
                             query_box=tuple(r.query_box) if query.auto and getattr(r, "query_box", None) else None))
    st.caption(scale.legend())
    ui.pager(None, page_size, PAGE, more=len(results) == page_size)
    ui.grid(cells, key="search", columns=per_row, compare=_sides(query, twin))
    st.caption(f"{len(cells)} results on this page, prepared in {(time.perf_counter() - started) * 1000:.0f} ms")
    _prefetch_next(query, info, page, page_size)
    _selection_actions(query, query_id)


def main() -> None:
    ui.show_flash()
    info = ui.pick_collection("search_collection", st.sidebar)
    if info is None:
        return
    variant = ui.pick_variant(info, "search_variant", st.sidebar)
    if variant is None:
        return
    flt, mirrored, page_size, per_row, verify = _filters(info)
    query = None
    left, right = st.columns([2, 1])
    with left:
        with ui.guard("query"):
            query = _query_input(info, right, variant)
        go = st.button("Search", type="primary", key="search_go", disabled=query is None)
    if st.session_state.pop(PENDING, False) and query is not None:
        go = True
    if go:
        st.session_state[QUERY] = query
        st.session_state[PAGE] = 0
        st.session_state[CACHE] = {}
    searched = st.session_state.get(QUERY)
    if searched is None:
        return
    st.divider()
    if query is None or query.key() != searched.key():
        # Never the results of one query under another: they wait for the Search button.
        st.info(f"The query changed since the last search ({searched.label}): press **Search** for its results.",
                icon=":material/search:")
        return
    with ui.guard("search"):
        _results(searched, info, variant, flt, mirrored, page_size, per_row, verify)


main()
