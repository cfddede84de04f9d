"""Compare two images: side by side, overlaid (blend slider, or a flicker between them), their metadata,
and buttons that link them (positive, negative, duplicate) through the graph module."""

from __future__ import annotations

import io

import streamlit as st
from PIL import Image as PILImage
from PIL import ImageOps

from vislink.ui import auth, data, services
from vislink.ui import components as ui

st.title("Compare")

SIZE = 512  # the largest thumbnail: enough to judge a copy, never the full scan


def _open(info: data.ImageInfo) -> PILImage.Image | None:
    path = ui.thumb_files([info], SIZE)[0]
    return PILImage.open(path).convert("RGB") if path else None


def _overlay(a: PILImage.Image, b: PILImage.Image, alpha: float, flicker: bool) -> bytes | PILImage.Image:
    # Both at the size of the first, so that a copy at another resolution lines up.
    b = b.resize(a.size, PILImage.Resampling.BILINEAR)
    if flicker:
        buf = io.BytesIO()
        a.save(buf, "GIF", save_all=True, append_images=[b], duration=600, loop=0)
        return buf.getvalue()
    return PILImage.blend(a, b, alpha)


def _link_buttons(a: data.ImageInfo, b: data.ImageInfo) -> None:
    current = data.link_between(a.id, b.id)
    groups = data.groups_of([a.id, b.id])
    same = set(groups.get(a.id, ())) & set(groups.get(b.id, ()))
    st.markdown(f"**Link:** {current.type if current else 'none'}"
                + (f" · both in group #{min(same)}" if same else ""))
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


def main() -> None:
    ui.show_flash()
    pair = st.session_state.get("compare") or (0, 0)
    # Values live in session state (other pages set them), never also in value=: Streamlit warns otherwise.
    st.session_state.setdefault("cmp_a", int(pair[0]))
    st.session_state.setdefault("cmp_b", int(pair[1]))
    c1, c2 = st.columns(2)
    a_id = c1.number_input("Left image id", min_value=0, step=1, key="cmp_a")
    b_id = c2.number_input("Right image id", min_value=0, step=1, key="cmp_b")
    if not a_id or not b_id:
        st.info("Choose two images (or press *compare* on a search result).")
        return
    with ui.guard():
        a, b = data.image(int(a_id)), data.image(int(b_id))
        st.session_state["compare"] = (a.id, b.id)
        controls = st.columns(3)
        mirror = controls[0].checkbox("Mirror the right image", key="cmp_mirror",
                                      help="Copies are often mirrored (prints reverse the design).")
        flicker = controls[1].toggle("Flicker", key="cmp_flicker",
                                     help="Alternate the two images instead of blending them.")
        alpha = controls[2].slider("Blend (left → right)", 0.0, 1.0, 0.5, 0.05, key="cmp_alpha", disabled=flicker)
        img_a, img_b = _open(a), _open(b)
        if img_b is not None and mirror:
            img_b = ImageOps.mirror(img_b)
        # Left, overlay, right in one row: the eye goes from each to the superposition.
        cols = st.columns(3)
        for col, info, img in ((cols[0], a, img_a), (cols[2], b, img_b)):
            if img is not None:
                col.image(img, caption=info.label, width="stretch")
            else:
                col.caption("(no picture)")
        if img_a is not None and img_b is not None:
            cols[1].image(_overlay(img_a, img_b, alpha, flicker), width="stretch",
                          caption="flicker" if flicker else f"overlay, {alpha:.0%} right")
        meta = st.columns(2)
        for col, info in ((meta[0], a), (meta[1], b)):
            with col:
                ui.metadata_table(info)
                if st.button("open", key=f"cmp_open_{info.id}_{col is meta[0]}"):
                    ui.open_image(info.id)
        _link_buttons(a, b)


main()
