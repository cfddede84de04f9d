"""Streamlit entry point: ``streamlit run vislink/ui/app.py`` (``vislink ui`` does it with the right settings).

The pages are scripts in ``views/`` under ``st.navigation``; the sidebar's account box is shared by all.
"""

from pathlib import Path

import streamlit as st

from vislink.ui import auth, components, services

VIEWS = Path(__file__).resolve().parent / "views"

# A local icon: a named or emoji one makes the browser fetch a picture from fonts.gstatic.com.
st.set_page_config(page_title="vislink", page_icon=components.app_icon(), layout="wide")

pages = [
    st.Page(VIEWS / "search.py", title="Search", icon=":material/image_search:", default=True),
    st.Page(VIEWS / "compare.py", title="Compare", icon=":material/compare:"),
    st.Page(VIEWS / "annotate.py", title="Annotate", icon=":material/edit:"),
    st.Page(VIEWS / "review.py", title="Review", icon=":material/fact_check:"),
    st.Page(VIEWS / "browse.py", title="Browse", icon=":material/photo_library:"),
    st.Page(VIEWS / "travel.py", title="Travel", icon=":material/timeline:"),
    st.Page(VIEWS / "evaluation.py", title="Evaluation", icon=":material/monitoring:"),
    st.Page(VIEWS / "ingest.py", title="Ingest", icon=":material/add_photo_alternate:"),
]
navigation = st.navigation(pages)
with components.guard("vector index"):
    services.index()  # opened once per process (st.cache_resource); a locked or unreachable index says so here
    services.job_holder()  # runs queued jobs (Ingest page, `vislink ingest` from a shell) in background threads
services.prewarm_in_background()
st.sidebar.markdown("### vislink\nVisual links between artworks")
auth.sidebar()
navigation.run()
