"""Annotate: groups (make one from the selection, find one by title, add and remove members, merge, title and
notes), typed pairs, uploads of new images into a collection, and undo. Every edit goes through
``vislink.graph`` with the version the page loaded, so a concurrent edit shows a conflict message instead of
being overwritten."""

from __future__ import annotations

import streamlit as st

from vislink.errors import VislinkError
from vislink.ui import auth, data, services
from vislink.ui import components as ui

st.title("Annotate")


NEXT_GROUP = "ann_group_next"  # the group to show after an edit (set before the picker exists in the next run)


def _show_group_next(group_id: int | None) -> None:
    """Show this group in the editor after the rerun, with an empty "Add image ids"."""
    st.session_state[NEXT_GROUP] = group_id


def _selection(annotator) -> None:
    chosen = ui.basket()
    st.subheader(f"Selection ({len(chosen)})")
    if not chosen:
        st.caption("Select images on the Search or Browse pages; they gather here.")
        return
    infos = data.images_by_ids(chosen)
    ui.grid([ui.Cell(i + 1, None, infos[x]) for i, x in enumerate(chosen) if x in infos], key="ann_sel",
            columns=ui.per_row())
    c1, c2 = st.columns(2)
    if c1.button("Clear selection", key="ann_clear"):
        chosen.clear()
        st.rerun()
    if annotator is not None:
        with c2.form("ann_new_group", border=False):
            title = st.text_input("New group's title", key="ann_new_name",
                                  placeholder="default: the images' common artist and title")
            note = st.text_area("Note", key="ann_new_note", height=68)
            if st.form_submit_button("Create a group from the selection"):
                with ui.guard("grouping"):
                    group_id = services.create_group(chosen, annotator.id, title, note)
                    n = len(chosen)
                    chosen.clear()
                    _show_group_next(group_id)
                    ui.flash(f"{ui.group_name(data.group(group_id))} created with {n} images.")


def _pick_group(info: data.CollectionInfo) -> data.GroupInfo | None:
    if NEXT_GROUP in st.session_state:  # after an edit: that group, and the search that hid it cleared
        wanted = st.session_state.pop(NEXT_GROUP)
        st.session_state.pop("ann_group_find", None)
        for key in [k for k in st.session_state if str(k).startswith(("ann_add_", "ann_name_", "ann_notes_"))]:
            del st.session_state[key]  # "Add image ids" starts from the selection again, title and notes as saved
        if wanted is not None:
            st.session_state["ann_group_pick"] = wanted
    find = st.text_input("Find a group", key="ann_group_find", persist_state="session", placeholder="a title, or #12")
    groups = data.list_groups(info.id, text=find)
    if not groups:
        st.caption("No group matches." if find.strip() else "No group in this collection yet.")
        return None
    by_id = {g.id: g for g in groups}
    if st.session_state.get("ann_group_pick") not in by_id:
        st.session_state["ann_group_pick"] = groups[0].id
    group_id = st.selectbox("Group", list(by_id), key="ann_group_pick", persist_state="session",
                            format_func=lambda g: f"{by_id[g].label} ({len(by_id[g].member_ids)} images)",
                            help="Type to filter by title; newest first.")
    return data.group(group_id)


def _group_editor(group: data.GroupInfo, info: data.CollectionInfo, annotator) -> None:
    # Every rerun reloads the group, so the version the user *saw* is the one kept from the last render:
    # an edit made elsewhere in between is then a conflict, not silently built upon.
    seen_key = f"ann_seen_version_{group.id}"
    seen = st.session_state.get(seen_key, group.version)
    st.session_state[seen_key] = group.version
    st.markdown(f"#### {ui.group_name(group)}")
    st.caption(f"{len(group.member_ids)} images · version {group.version}" + (f" · {group.note}" if group.note else ""))
    infos = data.images_by_ids(group.member_ids)
    cells = [ui.Cell(i + 1, None, infos[m]) for i, m in enumerate(group.member_ids) if m in infos]
    ui.grid(cells, key=f"ann_g{group.id}", columns=ui.per_row())
    if annotator is None:
        return
    # Each action in its own guard: a refused edit says why and leaves the rest of the editor (merge, title) there.
    cols = st.columns(3)
    remove = cols[0].selectbox("Remove a member", group.member_ids, key=f"ann_rm_pick_{group.id}")
    if cols[0].button("Remove", key=f"ann_rm_{group.id}") and remove is not None:
        with ui.guard("removing"):
            services.remove_member(group.id, remove, annotator.id, seen)
            ui.flash(f"Image {remove} removed from group #{group.id}.")
    add_key = f"ann_add_{group.id}"
    if add_key not in st.session_state:  # the selection's images, as a suggestion (in state, not value=)
        st.session_state[add_key] = " ".join(str(i) for i in ui.basket() if i not in group.member_ids)
    add_text = cols[1].text_input("Add image ids", key=add_key)
    if cols[1].button("Add", key=f"ann_add_btn_{group.id}"):
        with ui.guard("adding"):
            ids = _ids(add_text)
            services.add_members(group.id, ids, annotator.id, seen)
            ui.basket().clear()
            _show_group_next(group.id)
            ui.flash(f"Added {len(ids)} image(s) to group #{group.id}.")
    if cols[2].button("Delete the group", key=f"ann_del_{group.id}"):
        with ui.guard("deleting"):
            services.delete_group(group.id, annotator.id, seen)
            _show_group_next(None)
            ui.flash(f"Group #{group.id} deleted.")
    _merge(group, info, annotator, seen)
    with st.form(f"ann_note_{group.id}", border=False):
        title = st.text_input("Title", value=group.title or "", key=f"ann_name_{group.id}",
                              help="Shown wherever the group is named. Empty: the images' common artist and title.")
        note = st.text_area("Notes", value=group.note or "", key=f"ann_notes_{group.id}")
        if st.form_submit_button("Save title and notes"):
            with ui.guard("saving"):
                services.set_group_note(group.id, title, note, annotator.id, seen)
                _show_group_next(group.id)
                ui.flash(f"Group #{group.id} saved.")


def _ids(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise VislinkError(f"image ids are whole numbers separated by commas or spaces, not {text!r}") from None


def _merge(group: data.GroupInfo, info: data.CollectionInfo, annotator, seen: int) -> None:
    """Merge other groups into this one: what the "already in group N" message asks for."""
    others = {g.id: g for g in data.list_groups(info.id) if g.id != group.id}
    if not others:
        return
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.multiselect(f"Merge into {ui.group_name(group)}", list(others), key=f"ann_merge_{group.id}",
                              format_func=lambda g: f"{others[g].label} ({len(others[g].member_ids)} images)",
                              help="Their images move into this group, which keeps its title; they are deleted. "
                                   "Undo brings them back.")
    if right.button("Merge", key=f"ann_merge_btn_{group.id}", disabled=not chosen):
        with ui.guard("merging"):
            versions = {group.id: seen, **{g: others[g].version for g in chosen}}
            services.merge_groups(group.id, chosen, annotator.id, versions)
            _show_group_next(group.id)
            ui.flash(f"Merged {', '.join(others[g].label for g in chosen)} into {ui.group_name(group)}.")


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


UPLOAD_REJECTED = "ann_upload_rejected"  # (files, [(name, reason)]) of the last upload, shown until the next one


def _upload(info: data.CollectionInfo) -> None:
    st.subheader(f"Upload images into {info.name}")
    files = st.file_uploader("Images", accept_multiple_files=True, key="ann_upload",
                             type=["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp", "gif"])
    if files and st.button("Upload and index", key="ann_upload_go"):
        done, rejected = [], []
        for f in files:
            try:
                image = services.upload_to_collection(info.name, f.name, f.getvalue())
            except (VislinkError, OSError) as exc:  # one bad file never costs the others
                rejected.append((f.name, ui.error_text(exc)))
            else:
                done.append(image.id)
        # Kept in session state: the rerun that shows the successes would otherwise wipe the errors.
        st.session_state[UPLOAD_REJECTED] = (len(files), rejected)
        if done:
            ui.basket().extend(i for i in done if i not in ui.basket())
            ui.flash(f"Uploaded and searchable: {', '.join(f'#{i}' for i in done)} (added to the selection).")
    total, rejected = st.session_state.get(UPLOAD_REJECTED) or (0, [])
    if rejected:
        st.error(f"{len(rejected)} of {total} files not uploaded:", icon=":material/broken_image:")
        for name, reason in rejected:
            st.error(f"{name}: {reason}")


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
            _group_editor(group, info, annotator)
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
