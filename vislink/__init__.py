"""vislink: find visual links between artworks.

The public Python API is re-exported lazily so that ``import vislink`` stays cheap
(no torch, no database) — see ``vislink.search`` once the search stage is installed.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy re-export: importing torch or opening Qdrant only when asked for.
    if name == "search":
        from vislink.search import search

        return search
    raise AttributeError(f"module 'vislink' has no attribute {name!r}")
