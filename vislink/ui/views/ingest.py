"""Ingest page: a folder on the server, uploaded files or zips, a IIIF manifest or collection URL, or a WGA catalog
file becomes an ingest job run by this server process's job holder (docs/jobs.md); its progress (rate, ETA,
failures with reasons) updates live while the other pages stay usable."""

from __future__ import annotations

import streamlit as st

from vislink.ui import auth, components, services

SOURCES = ("A folder on the server", "Uploaded files or zips", "A IIIF manifest or collection URL",
           "A WGA catalog file on the server")

st.title("Ingest")
st.caption("Add images to a collection. The work runs in the background, in this server's process (it holds the "
           "index); `vislink ingest` from a shell queues its work here too. Re-running skips what is done.")

signed = auth.current()
if signed is None:
    # A job reads files on the server and writes to the collections: an annotator account is needed.
    st.info("Sign in (sidebar) to ingest: adding images needs an annotator account.")
collection = st.text_input("Collection", key="ing_collection", help="Created on first ingest.")
mode = st.radio("Source", SOURCES, key="ing_mode", horizontal=True)
source = None
if mode == SOURCES[0]:
    path = st.text_input("Folder (walked recursively)", key="ing_folder")
    metadata = st.text_input("Metadata CSV (optional: a file/path column and artist, title, date...)",
                             key="ing_metadata")
    if path.strip():
        source = {"kind": "folder", "root": path.strip(), "metadata": metadata.strip() or None}
elif mode == SOURCES[1]:
    uploads = st.file_uploader("Images or zips of images", accept_multiple_files=True, key="ing_uploads")
    if uploads:
        source = {"kind": "uploads", "files": uploads}
elif mode == SOURCES[2]:
    url = st.text_input("Manifest or collection URL", key="ing_iiif")
    every = st.checkbox("Every canvas (not only the first)", key="ing_all_canvases")
    if url.strip():
        source = {"kind": "iiif", "manifest": url.strip(), "all_canvases": every}
else:
    catalog = st.text_input("Catalog file (catalog.xls, data_xls.zip or CSV)", key="ing_wga")
    root = st.text_input("Local WGA image tree (optional; default: download from www.wga.hu)", key="ing_wga_root")
    if catalog.strip():
        source = {"kind": "wga", "catalog": catalog.strip(), "images_root": root.strip() or None}

if st.button("Queue the ingest", key="ing_go", type="primary", disabled=source is None or signed is None):
    with components.guard("ingest"):
        if source["kind"] == "uploads":
            folder = services.save_uploads([(f.name, f.getvalue()) for f in source["files"]])
            source = {"kind": "folder", "root": str(folder)}
        job_id = services.queue_ingest(collection, source, requested_by=f"{signed.name} (UI)")
        st.session_state["ing_job"] = job_id
        st.success(f"Queued job {job_id}.")


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f", ETA {seconds:.0f} s" if seconds < 120 else f", ETA {seconds / 60:.0f} min"


@st.fragment(run_every=1.0)
def _jobs() -> None:
    jobs = services.recent_jobs(10)
    if not jobs:
        st.info("No job yet.")
        return
    for job in jobs:
        args = job.arguments
        src = args.get("source") or {}
        what = src.get("root") or src.get("manifest") or src.get("catalog") or args.get("variant") or ""
        with st.container(border=True):
            st.markdown(f"**Job {job.id}** · {job.kind} · {args.get('collection', '')} · `{what}` · **{job.state}**")
            c = job.counts
            if job.progress_total:
                fraction = min(1.0, job.progress_done / job.progress_total)
                rate = f", {job.rate:.2f} images/s" if job.rate else ""
                st.progress(fraction, text=f"{job.progress_done} / {job.progress_total}{rate}{_eta(job.eta_seconds)}")
            if c:
                st.caption(f"{c.get('done', 0)} added, {c.get('skipped', 0)} skipped, {c.get('failed', 0)} failed"
                           + "".join(f" · {reason}: {n}" for reason, n in sorted(c.get("failures_by_reason",
                                                                                         {}).items())))
            if job.state == "failed" and job.message:
                st.error(job.message)
            if job.errors:
                with st.expander(f"Failures ({len(job.errors)} listed)"):
                    for ref, reason in job.errors:
                        st.markdown(f"- `{ref}`: {reason}")
            lines = (job.result or {}).get("lines") if job.state == "done" else None
            if lines:  # what the command prints at its end: an ingest's summary, an index build's recall and ef
                with st.expander("Summary"):
                    for line in lines:
                        st.text(line)
            if job.state in ("queued", "running") and signed is not None:
                if st.button("Cancel", key=f"ing_cancel_{job.id}"):
                    with components.guard("cancel"):
                        services.cancel_job(job.id)


st.subheader("Jobs")
_jobs()
