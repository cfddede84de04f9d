"""The Streamlit app (``vislink ui``): search, compare, annotate, browse, evaluation.

``app.py`` is the entry point Streamlit runs; ``views/`` holds one script per page; ``services`` is the
only module that calls the other stages, ``data`` the read-only SQL queries, ``thumbs`` the thumbnail
cache (usable without Streamlit)."""

from pathlib import Path

APP_PATH = Path(__file__).resolve().parent / "app.py"
