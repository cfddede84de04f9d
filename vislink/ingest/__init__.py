"""Ingestion: sources of images (``vislink.ingest.sources``), downloads with a cache (``fetch``), date parsing
(``dates``), and the per-image pipeline and workers built on them.

The pipeline's entry points are re-exported lazily (importing ``vislink.ingest`` stays cheap):
``ingest``, ``ingest_upload`` (``runner``, the local runner), ``IngestSummary`` (``pipeline``),
``add_variant`` (``reencode``), ``DEFAULT_VARIANTS`` (``collections``), ``enqueue`` (``queue``)."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ingest": "vislink.ingest.runner",
    "ingest_upload": "vislink.ingest.runner",
    "IngestSummary": "vislink.ingest.pipeline",
    "add_variant": "vislink.ingest.reencode",
    "DEFAULT_VARIANTS": "vislink.ingest.collections",
    "enqueue": "vislink.ingest.queue",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vislink.ingest' has no attribute {name!r}")
