"""Review: the proposed links of ``vislink proposals build`` (docs/discovery.md), one at a time in the aligned
compare view (or a few at once in a grid), with Accept / Reject / Skip / Duplicate buttons that also answer keys,
in the order chosen (uncertain first: the active-learning order; best score; newest), and the counts done / left
and per annotator. Verdicts need a signed-in annotator; each is an audited graph edit (docs/review.md)."""

from __future__ import annotations

import streamlit as st

from vislink.errors import VislinkError
from vislink.graph.titles import display_artist
from vislink.ui import auth, data, pairview
from vislink.ui import components as ui
from vislink.ui import review

st.title("Review")

GRID_SIZE = 6  # proposals per page of the grid: a screenful of pairs at thumbnail size
# Verdict buttons: (verdict, label, key binding, primary). "R" and "C" are reserved by Streamlit: reject is X.
BUTTONS = (("accept", "Accept", "A", True), ("reject", "Reject", "X", False), ("duplicate", "Duplicate", "D", False))
LAST = "rev_last"  # (proposal id, annotator id) of this session's last verdict: what "Undo" takes back


def _skipped(cid: int, variant: str) -> set[int]:
    """Proposals this browser session skipped, per collection and variant: skipping stores nothing, so another
    annotator still gets them; they come back with "Show the skipped ones again" (or a new session)."""
    return st.session_state.setdefault("rev_skipped", {}).setdefault((cid, variant), set())


def _counts(cid: int, variant: str, annotator):
    counts = review.counts(cid, variant)
    mine = counts.by_annotator.get(annotator.name, {}) if annotator is not None else {}
    cols = st.columns(3)
    cols[0].metric("Left", counts.left)
    cols[1].metric("Done", counts.done)
    cols[2].metric("By you", sum(mine.values()))
    if counts.by_annotator:
        lines = [f"**{name or '(no annotator)'}** · " + " · ".join(f"{n} {status}" for status, n in per.items())
                 for name, per in sorted(counts.by_annotator.items(), key=lambda kv: kv[0] or "")]
        with st.expander("Verdicts per annotator"):
            st.markdown("  \n".join(lines))
    return counts


def _order_note(cid: int, variant: str, order: str) -> None:
    if review.ORDERS[order] != "uncertain":
        return
    b = review.boundary(cid, variant)
    why = (f"the midpoint of the median score of {b.n_positive} accepted / duplicate and {b.n_negative} "
           "rejected verdicts" if b.source == "verdicts" else
           "the median open score: no accepted and rejected verdicts to separate yet")
    st.caption(f"Uncertain first: proposals nearest score {b.score:.3f} ({why}) come first.")


def _title(info: data.ImageInfo) -> str:
    artist = display_artist(info.artist) or "unknown artist"
    return f"{artist}, *{info.title or 'untitled'}*" + (f" ({info.date_text})" if info.date_text else "")


def _pair_view(a: data.ImageInfo, b: data.ImageInfo) -> None:
    """The two side by side, and between them B over A: warped onto it when local features verify the pair (the
    Compare page's alignment, ``ui.pairview``), else stretched."""
    controls = st.columns([1, 3])
    align_on = controls[0].toggle("Align", value=True, key="rev_align", persist_state="session",
                                  help="Match local features (SIFT, RANSAC) and warp the right image onto the left.")
    alpha = controls[1].slider("Blend (left → right)", 0.0, 1.0, 0.5, 0.05, key="rev_alpha", persist_state="session")
    check = None
    if align_on:
        try:
            check = pairview.verification(a.id, None, b.id)
        except (VislinkError, OSError) as exc:  # a missing file: shown as not aligned, the page stays usable
            st.warning(f"Not aligned: {exc}", icon=":material/crop_free:")
    aligned = check is not None and check.verified
    if check is not None:
        if aligned:
            st.success(check.summary().capitalize() + ".", icon=":material/join:")
        else:
            st.warning(f"Not aligned: {check.reason} ({check.inliers} inliers of {check.matches} matches).",
                       icon=":material/crop_free:")
    img_a, img_b = pairview.open_thumb(a), pairview.open_thumb(b)
    shown_a, shown_b = img_a, img_b
    if aligned and img_a is not None and img_b is not None:
        from vislink.local import align

        shown_a, shown_b = align.outline_a(img_a, check), align.outline_b(img_b, check)
    cols = st.columns(3)
    for col, info, img in ((cols[0], a, shown_a), (cols[2], b, shown_b)):
        if img is not None:
            col.image(img, caption=info.label, width="stretch")
        else:
            col.caption("(no picture)")
    if img_a is not None and img_b is not None:
        if aligned:
            overlay, caption = pairview.aligned_overlay(img_a, img_b, check, alpha, False, False)
        else:
            overlay, caption = pairview.overlay(img_a, img_b, alpha, False), f"overlay, {alpha:.0%} right (stretched)"
        cols[1].image(overlay, width="stretch", caption=caption)


def _verdict(p, verdict: str, annotator, cid: int, note: str | None, join: bool) -> None:
    with ui.guard(verdict):
        message = review.decide(p.id, verdict, annotator.id, collection_id=cid, note=note, join_group=join)
        st.session_state[LAST] = (p.id, annotator.id)
        ui.flash(message)


def _one(p, infos: dict[int, data.ImageInfo], annotator, cid: int, position: str) -> None:
    a, b = infos.get(p.image_a), infos.get(p.image_b)
    if a is None or b is None:
        st.warning(f"Proposal #{p.id}: an image of it is gone.")
        return
    st.markdown(f"#### Proposal #{p.id} · score {p.score:.3f} · rank {p.rank}")
    st.caption(f"{position} · variant {p.variant}" + (f" · {p.distance:.3f} from the boundary"
                                                      if p.distance is not None else ""))
    if annotator is not None:  # the verdict first: above the images, reachable without scrolling
        _verdict_row(p, annotator, cid)
    _pair_view(a, b)
    meta = st.columns(2)
    for col, info in ((meta[0], a), (meta[1], b)):
        with col:
            st.markdown(_title(info))
            ui.metadata_table(info)
    if st.button("Open in Compare (flicker, swipe)", key="rev_compare", icon=":material/compare:"):
        ui.open_compare(a.id, b.id)


def _verdict_row(p, annotator, cid: int) -> None:
    cols = st.columns([3, 1, 1, 1, 1], vertical_alignment="bottom")
    note = cols[0].text_input("Note for the link", key=f"rev_note_{p.id}", placeholder="optional: why")
    for col, (verdict, label, key, primary) in zip(cols[1:], BUTTONS):
        if col.button(label, key=f"rev_{verdict}", shortcut=key, type="primary" if primary else "secondary",
                      width="stretch"):
            _verdict(p, verdict, annotator, cid, note, st.session_state.get("rev_join", False))
    if cols[4].button("Skip", key="rev_skip", shortcut="S", width="stretch",
                      help="Next proposal; nothing is stored, this one stays open for everybody."):
        _skipped(cid, p.variant).add(p.id)
        st.rerun()


def _grid(queue, infos: dict[int, data.ImageInfo], annotator, cid: int) -> None:
    """Several proposals at thumbnail size, each with its own buttons (no alignment: open one to align it)."""
    paths = ui.thumb_files([infos.get(i) for p in queue for i in (p.image_a, p.image_b)])
    for n, p in enumerate(queue):
        with st.container(border=True, key=f"rev_row_{p.id}"):
            cols = st.columns([2, 2, 3, 2])
            for col, path, image_id in ((cols[0], paths[2 * n], p.image_a), (cols[1], paths[2 * n + 1], p.image_b)):
                if path:
                    col.image(str(path), width="stretch")
                else:
                    col.caption("(no picture)")
                if image_id in infos:
                    col.caption(infos[image_id].short_caption)
            cols[2].markdown(f"**#{p.id}** · score {p.score:.3f} · rank {p.rank}")
            if annotator is None:
                continue
            for verdict, label, _, primary in BUTTONS:
                if cols[3].button(label, key=f"rev_g_{verdict}_{p.id}", type="primary" if primary else "secondary",
                                  width="stretch"):
                    _verdict(p, verdict, annotator, cid, None, st.session_state.get("rev_join", False))


def main() -> None:
    ui.show_flash()
    annotator = auth.require()
    info = ui.pick_collection("rev_collection")
    if info is None:
        return
    with ui.guard():
        variants = review.variants_with_proposals(info.id)
        if not variants:
            st.info(f"No proposals in {info.name} yet: `vislink proposals build -c {info.name} -v VARIANT` "
                    "proposes links (docs/discovery.md).")
            return
        if st.session_state.get("rev_variant") not in variants:  # another collection's, kept by persist_state
            st.session_state.pop("rev_variant", None)
        top = st.columns([2, 2, 1, 1])
        variant = top[0].selectbox("Proposals of variant", variants, key="rev_variant", persist_state="session")
        order = top[1].selectbox("Order", list(review.ORDERS), key="rev_order", persist_state="session",
                                 help="Uncertain first: the verdicts that teach the most (nearest the score at "
                                      "which accepted and rejected verdicts part), then best score.")
        mode = top[2].radio("Show", ["one", "grid"], key="rev_mode", persist_state="session", horizontal=True)
        top[3].toggle("Join groups", key="rev_join", persist_state="session",
                      help="An accepted (or duplicate) pair also ends in one group: a new group, the other joins "
                           "the group of the one that is in one, or the second's group merged into the first's.")
        counts = _counts(info.id, variant, annotator)
        _order_note(info.id, variant, order)
        skipped = _skipped(info.id, variant)
        queue = review.queue(info.id, variant, order, limit=GRID_SIZE if mode == "grid" else 1,
                             skip=frozenset(skipped))
        last = st.session_state.get(LAST)
        if annotator is not None and last and last[1] == annotator.id and \
                st.button("Undo my last verdict", key="rev_undo", shortcut="U"):
            with ui.guard("undo"):
                message = review.undo(last[0], annotator.id, collection_id=info.id)
                st.session_state.pop(LAST, None)
                ui.flash(message)
        if not queue:
            if skipped:
                st.info(f"Only the {len(skipped)} proposal(s) you skipped are left.")
                if st.button("Show the skipped ones again", key="rev_unskip"):
                    skipped.clear()
                    st.rerun()
            else:
                st.success("Nothing left to review for this variant.")
            return
        infos = data.images_by_ids([i for p in queue for i in (p.image_a, p.image_b)])
        if mode == "grid":
            _grid(queue, infos, annotator, info.id)
        else:
            _one(queue[0], infos, annotator, info.id,
                 f"{counts.left} open" + (f", {len(skipped)} skipped by you" if skipped else ""))


main()
