"""Annotate: groups (make one from the selection, add and remove members, name and notes), typed pairs,
uploads of new images into a collection, and undo. Every edit goes through ``vislink.graph`` with the
version the page loaded, so a concurrent edit shows a conflict message instead of being overwritten."""

from __future__ import annotations

import streamlit as st

from vislink.ui import auth, data, services
from vislink.ui import components as ui

st.title("Annotate")


def _selection(annotator) -> None:
    chosen = ui.basket()
    st.subheader(f"Selection ({len(chosen)})")
    if not chosen:
        st.caption("Select images on the Search or Browse pages; they gather here.")
        return
    infos = data.images_by_ids(chosen)
    ui.grid([ui.Cell(i + 1, None, infos[x]) for i, x in enumerate(chosen) if x in infos], key="ann_sel", columns=6)
    c1, c2 = st.columns(2)
    if c1.button("Clear selection", key="ann_clear"):
        chosen.clear()
        st.rerun()
    if annotator is not None:
        with c2.form("ann_new_group", border=False):
            name = st.text_input("New group's name (optional)", key="ann_new_name")
            note = st.text_area("Note", key="ann_new_note", height=68)
            if st.form_submit_button("Create a group from the selection"):
                with ui.guard("grouping"):
                    group_id = services.create_group(chosen, annotator.id, name, note)
                    n = len(chosen)
                    chosen.clear()
                    st.session_state["ann_group"] = group_id
                    ui.flash(f"Group #{group_id} created with {n} images.")


def _pick_group(info: data.CollectionInfo) -> data.GroupInfo | None:
    groups = data.list_groups(info.id)
    if not groups:
        st.caption("No group in this collection yet.")
        return None
    ids = [g.id for g in groups]
    wanted = st.session_state.get("ann_group")
    group_id = st.selectbox("Group", ids, index=ids.index(wanted) if wanted in ids else 0, key="ann_group_pick",
                            format_func=lambda g: next(f"{x.label} ({len(x.member_ids)} images)"
                                                       for x in groups if x.id == g))
    st.session_state["ann_group"] = group_id
    return data.group(group_id)


def _group_editor(group: data.GroupInfo, annotator) -> None:
    # Every rerun reloads the group, so the version the user *saw* is the one kept from the last render:
    # an edit made elsewhere in between is then a conflict, not silently built upon.
    seen_key = f"ann_seen_version_{group.id}"
    seen = st.session_state.get(seen_key, group.version)
    st.session_state[seen_key] = group.version
    st.caption(f"version {group.version}" + (f" · {group.note}" if group.note else ""))
    infos = data.images_by_ids(group.member_ids)
    cells = [ui.Cell(i + 1, None, infos[m]) for i, m in enumerate(group.member_ids) if m in infos]
    ui.grid(cells, key=f"ann_g{group.id}", columns=6)
    if annotator is None:
        return
    with ui.guard("editing the group"):
        cols = st.columns(3)
        remove = cols[0].selectbox("Remove a member", group.member_ids, key=f"ann_rm_pick_{group.id}")
        if cols[0].button("Remove", key=f"ann_rm_{group.id}") and remove is not None:
            services.remove_member(group.id, remove, annotator.id, seen)
            ui.flash(f"Image {remove} removed from group #{group.id}.")
        extra = [i for i in ui.basket() if i not in group.member_ids]
        add_text = cols[1].text_input("Add image ids", value=" ".join(map(str, extra)), key=f"ann_add_{group.id}")
        if cols[1].button("Add", key=f"ann_add_btn_{group.id}"):
            ids = [int(x) for x in add_text.replace(",", " ").split()]
            services.add_members(group.id, ids, annotator.id, seen)
            ui.basket().clear()
            ui.flash(f"Added {len(ids)} image(s) to group #{group.id}.")
        if cols[2].button("Delete the group", key=f"ann_del_{group.id}"):
            services.delete_group(group.id, annotator.id, seen)
            ui.flash(f"Group #{group.id} deleted.")
        with st.form(f"ann_note_{group.id}", border=False):
            name = st.text_input("Title", value=group.title or "", key=f"ann_name_{group.id}")
            note = st.text_area("Notes", value=group.note or "", key=f"ann_notes_{group.id}")
            if st.form_submit_button("Save name and notes"):
                services.set_group_note(group.id, name, note, annotator.id, seen)
                ui.flash(f"Group #{group.id} saved.")


def _pair(annotator) -> None:
    st.subheader("Mark a pair")
    with st.form("ann_pair", border=False):
        cols = st.columns(4)
        a = cols[0].number_input("Image", min_value=0, step=1, key="ann_pair_a")
        b = cols[1].number_input("Image ", min_value=0, step=1, key="ann_pair_b")
        kind = cols[2].selectbox("Link", ["positive", "negative", "duplicate"], key="ann_pair_kind")
        note = cols[3].text_input("Note", key="ann_pair_note")
        if st.form_submit_button("Save the link") and a and b:
            with ui.guard("linking"):
                services.set_link(int(a), int(b), kind, annotator.id, note)
                ui.flash(f"Images {a} and {b} linked as {kind}.")


def _upload(info: data.CollectionInfo) -> None:
    st.subheader(f"Upload images into {info.name}")
    files = st.file_uploader("Images", accept_multiple_files=True, key="ann_upload",
                             type=["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp", "gif"])
    if files and st.button("Upload and index", key="ann_upload_go"):
        done = []
        for f in files:
            with ui.guard(f"uploading {f.name}"):
                image = services.upload_to_collection(info.name, f.name, f.getvalue())
                done.append(image.id)
        if done:
            ui.basket().extend(i for i in done if i not in ui.basket())
            ui.flash(f"Uploaded and searchable: {', '.join(f'#{i}' for i in done)} (added to the selection).")


def main() -> None:
    ui.show_flash()
    annotator = auth.require()
    info = ui.pick_collection("ann_collection")
    if info is None:
        return
    _selection(annotator)
    st.divider()
    st.subheader("Groups")
    with ui.guard():
        group = _pick_group(info)
        if group is not None:
            _group_editor(group, annotator)
    if annotator is None:
        return
    st.divider()
    _pair(annotator)
    st.divider()
    _upload(info)
    st.divider()
    if st.button("Undo my last edit", key="ann_undo"):
        with ui.guard("undo"):
            ui.flash(services.undo_last(annotator.id))


main()
