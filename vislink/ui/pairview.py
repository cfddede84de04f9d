"""The pieces of the side-by-side / aligned compare view that more than one page draws (the Compare page, the
Review page): the cached verification of one image onto another, the thumbnails they are shown at, and the
overlays (blend, flicker, swipe), aligned by the verification's transform or stretched when there is none."""

from __future__ import annotations

import io

import streamlit as st
from PIL import Image as PILImage

from vislink.ui import data
from vislink.ui import components as ui

SIZE = 512  # the largest thumbnail: enough to judge a copy, never the full scan


@st.cache_data(max_entries=64, show_spinner="Matching local features…")
def verification(a_id: int | None, a_bytes: bytes | None, b_id: int):
    """Verification of B onto A (stored images' features from the data folder's feature cache); A is a stored
    image (``a_id``) or an image that is not in the collection (``a_bytes``)."""
    from vislink.encoder.images import open_rgb
    from vislink.local import extract
    from vislink.local.matching import verify
    from vislink.search.verify import query_features

    a = extract(open_rgb(a_bytes)) if a_bytes is not None else query_features(image_id=a_id)
    return verify(a, query_features(image_id=b_id))


def aligned_overlay(img_a, img_b, v, alpha: float, flicker: bool, swipe: bool):
    """B warped onto A by the verification ``v``: blended, flickered or swiped; returns (image, caption)."""
    from vislink.local import align

    warped, mask = align.warp_onto(img_a, img_b, v)
    if flicker:
        return align.flicker_gif(img_a, warped, mask), "flicker, the right image warped onto the left"
    if swipe:
        return align.swipe(img_a, warped, mask, alpha), f"swipe at {alpha:.0%}: left | right warped onto it"
    return align.blend(img_a, warped, mask, alpha), f"the right image warped onto the left, {alpha:.0%} right"


def open_thumb(info: data.ImageInfo) -> PILImage.Image | None:
    """The image's ``SIZE`` thumbnail, decoded (None: no picture)."""
    path = ui.thumb_files([info], SIZE)[0]
    return PILImage.open(path).convert("RGB") if path else None


def from_bytes(raw: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(raw)).convert("RGB")
    img.thumbnail((SIZE, SIZE))
    return img


def overlay(a: PILImage.Image, b: PILImage.Image, alpha: float, flicker: bool,
            swipe: bool = False) -> bytes | PILImage.Image:
    """The unaligned overlay: B stretched to A's size, blended, swiped or flickered (a GIF's bytes)."""
    # Both at the size of the first, so that a copy at another resolution lines up.
    b = b.resize(a.size, PILImage.Resampling.BILINEAR)
    if swipe and not flicker:
        from vislink.local import align

        return align.swipe(a, b, PILImage.new("L", a.size, 255), alpha)
    if flicker:
        buf = io.BytesIO()
        a.save(buf, "GIF", save_all=True, append_images=[b], duration=600, loop=0)
        return buf.getvalue()
    return PILImage.blend(a, b, alpha)
