"""Ingestion: sources of images (``vislink.ingest.sources``), downloads with a cache (``fetch``), date parsing
(``dates``), and the per-image pipeline and workers built on them."""
