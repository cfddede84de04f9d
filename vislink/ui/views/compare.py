"""Compare two images: side by side, overlaid (blend slider, a flicker between them, or a swipe), their metadata,
and buttons that link them (positive, negative, duplicate) through the graph module. The left one can be the
search query itself when it is not in the collection (an upload, a region, an uploaded example).

Aligned (the default): local features of both are matched and a transform estimated (``vislink.local``, B tried
mirrored too); when verified, the right image is warped onto the left one, so that blend, flicker and swipe
superpose a detail, a mirrored copy or an engraving where it belongs, and the matched region is outlined on both.
When verification fails, a "not aligned" notice says so and the overlay stretches the right image instead."""

from __future__ import annotations

import streamlit as st
from PIL import Image as PILImage
from PIL import ImageOps

from vislink.errors import VislinkError
from vislink.ui import auth, data, pairview, services
from vislink.ui import components as ui

st.title("Compare")

SIZE = pairview.SIZE
OTHER = "an image of the collection (by id)"


def _link_buttons(a: data.ImageInfo, b: data.ImageInfo) -> None:
    current = data.link_between(a.id, b.id)
    groups = data.groups_of([a.id, b.id])
    same = set(groups.get(a.id, ())) & set(groups.get(b.id, ()))
    st.markdown(f"**Link:** {current.type if current else 'none'}"
                + (f" · both in {data.group(min(same)).label}" if same else ""))
    annotator = auth.require()
    if annotator is None:
        return
    note = st.text_input("Note for the link", value=(current.note or "") if current else "", key="cmp_note")
    cols = st.columns(4)
    for col, kind in zip(cols, ("positive", "negative", "duplicate")):
        if col.button(f"Link as {kind}", key=f"cmp_link_{kind}", type="primary" if kind == "positive" else "secondary"):
            with ui.guard("linking"):
                services.set_link(a.id, b.id, kind, annotator.id, note)
                ui.flash(f"Images {a.id} and {b.id} linked as {kind}.")
    if current and cols[3].button("Remove link", key="cmp_unlink"):
        with ui.guard("unlinking"):
            services.remove_link(a.id, b.id, annotator.id)
            ui.flash(f"Link between {a.id} and {b.id} removed.")


def _left_side(column) -> ui.Side | None:
    """The search query's image(s) offered as the left one (an upload, a region, examples), or None: an id."""
    sides: list[ui.Side] = st.session_state.get("compare_sides") or []
    if not sides:
        return None
    labels = [s.label for s in sides] + [OTHER]
    if st.session_state.get("cmp_left") not in labels:
        st.session_state["cmp_left"] = labels[0]
    choice = column.selectbox("Left image", labels, key="cmp_left", persist_state="session",
                              help="The search query, one of its examples, or any image of the collection by id.")
    side = None if choice == OTHER else sides[labels.index(choice)]
    if side is not None and side.image_id is not None:
        st.session_state["cmp_a"] = int(side.image_id)  # before the id input exists in this run
    return side


def _detail_box(b_id: int) -> tuple[int, ...] | None:
    """The box a detail search matched in the right image (set by *compare* on a result that has one)."""
    held = st.session_state.get("compare_box")
    return tuple(held[1]) if held and int(held[0]) == int(b_id) else None


def _zoom(b: data.ImageInfo, box, fallback: PILImage.Image | None) -> None:
    """The matched detail of the right image, zoomed (from the stored file; the thumbnail if it is unreadable)."""
    try:
        from vislink.ui.thumbs import resolve_image_path

        full = services.decode_image(resolve_image_path(b.file_path), b.label)
        size = services.full_size(full)
    except (VislinkError, OSError, TypeError):
        full, size = fallback, ui.stored_size(b, fallback.size) if fallback is not None else (1, 1)
    if full is None:
        return
    zoomed = ui.zoom_on(full, box, size)
    zoomed.thumbnail((SIZE, SIZE))
    st.columns(3)[2].image(zoomed, width="stretch",
                           caption=f"the matched detail of #{b.id}, at {ui.box_text(box)} (zoomed)")


def main() -> None:
    ui.show_flash()
    pair = st.session_state.get("compare") or (0, 0)
    # Values live in session state (other pages set them), never also in value=: Streamlit warns otherwise.
    st.session_state.setdefault("cmp_a", int(pair[0]))
    st.session_state.setdefault("cmp_b", int(pair[1]))
    c1, c2 = st.columns(2)
    side = _left_side(c1)
    query_image = side.image if side is not None and side.image_id is None else None
    a_id = 0
    if query_image is None:
        a_id = c1.number_input("Left image id", min_value=0, step=1, key="cmp_a", persist_state="session")
    b_id = c2.number_input("Right image id", min_value=0, step=1, key="cmp_b", persist_state="session")
    if not (a_id or query_image) or not b_id:
        st.info("Choose two images (or press *compare* on a search result).")
        return
    with ui.guard():
        a = data.image(int(a_id)) if query_image is None else None
        b = data.image(int(b_id))
        st.session_state["compare"] = (a.id if a else 0, b.id)
        controls = st.columns(5)
        align_on = controls[0].toggle("Align", value=True, key="cmp_align", persist_state="session",
                                      help="Match local features (SIFT, RANSAC) and warp the right image onto the "
                                           "left one; mirrored copies are found by themselves.")
        check = None
        if align_on:
            try:
                check = pairview.verification(a.id if a is not None else None,
                                              query_image if a is None else None, b.id)
            except (VislinkError, OSError) as exc:  # a missing file: shown as not aligned, the page stays usable
                st.warning(f"Not aligned: {exc}", icon=":material/crop_free:")
        aligned = check is not None and check.verified
        mirror = controls[1].checkbox("Mirror the right image", key="cmp_mirror", persist_state="session",
                                      disabled=aligned, help="Copies are often mirrored (prints reverse the design). "
                                      "Aligned images need no mirror: the transform already holds it.")
        flicker = controls[2].toggle("Flicker", key="cmp_flicker", persist_state="session",
                                     help="Alternate the two images instead of blending them.")
        swipe = controls[3].toggle("Swipe", key="cmp_swipe", persist_state="session", disabled=flicker,
                                   help="The left image left of a line, the right one (warped onto it) right of it; "
                                        "the slider moves the line.")
        alpha = controls[4].slider("Swipe position" if swipe else "Blend (left → right)", 0.0, 1.0, 0.5, 0.05,
                                   key="cmp_alpha", persist_state="session", disabled=flicker)
        if check is not None:
            if aligned:
                st.success(check.summary().capitalize() + ". Red: where the right image lies on the left one; "
                           "green: the matched region.", icon=":material/join:")
            else:
                st.warning(f"Not aligned: {check.reason} ({check.inliers} inliers of {check.matches} matches). "
                           "The overlay stretches the right image to the left one's size.",
                           icon=":material/crop_free:")
        img_a = pairview.open_thumb(a) if a is not None else pairview.from_bytes(query_image)
        img_b = pairview.open_thumb(b)
        if img_b is not None and mirror and not aligned:
            img_b = ImageOps.mirror(img_b)
        shown_a, shown_b = img_a, img_b
        if aligned and img_a is not None and img_b is not None:
            from vislink.local import align

            shown_a, shown_b = align.outline_a(img_a, check), align.outline_b(img_b, check)
        detail = _detail_box(b.id)
        if detail is not None and shown_b is not None and not (mirror and not aligned):
            shown_b = ui.draw_box(shown_b, detail, ui.stored_size(b, shown_b.size))
        # Left, overlay, right in one row: the eye goes from each to the superposition.
        cols = st.columns(3)
        left_label = a.label if a is not None else f"the query: {side.label}"
        for col, label, img in ((cols[0], left_label, shown_a), (cols[2], b.label, shown_b)):
            if img is not None:
                col.image(img, caption=label, width="stretch")
            else:
                col.caption("(no picture)")
        if img_a is not None and img_b is not None and aligned:
            overlay, caption = pairview.aligned_overlay(img_a, img_b, check, alpha, flicker, swipe)
            cols[1].image(overlay, width="stretch", caption=caption)
        elif img_a is not None and img_b is not None:
            cols[1].image(pairview.overlay(img_a, img_b, alpha, flicker, swipe), width="stretch",
                          caption="flicker" if flicker else f"{'swipe' if swipe else 'overlay'}, {alpha:.0%} right"
                          + " (not aligned: stretched)")
        if detail is not None:
            _zoom(b, detail, img_b)
        meta = st.columns(2)
        with meta[0]:
            if a is not None:
                ui.metadata_table(a)
                if st.button("open", key=f"cmp_open_{a.id}_True"):
                    ui.open_image(a.id)
            else:
                st.markdown(f"**{side.label}**: the search query, not an image of the collection.")
        with meta[1]:
            ui.metadata_table(b)
            if st.button("open", key=f"cmp_open_{b.id}_False"):
                ui.open_image(b.id)
        if a is not None:
            _link_buttons(a, b)
        else:
            st.info("Links join two images of the collection: to link the query, upload it into the collection "
                    "(Annotate page), then compare it from there.", icon=":material/link_off:")


main()
