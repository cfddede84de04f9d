"""The search stage: a query image (a file, a PIL image, bytes, a region crop, a stored image by id, positive
and negative examples) -> the nearest images of a collection, filtered inside Qdrant and joined with their SQL
metadata. It depends only on config, store, index and encoder.

``search`` and ``SearchResult`` (``query``); ``build_filter`` and ``parse_filter_args`` (``filters``)."""

from vislink.search.filters import EXACT_FIELDS, build_filter, parse_filter_args
from vislink.search.query import SearchResult, search

__all__ = ["EXACT_FIELDS", "SearchResult", "build_filter", "parse_filter_args", "search"]
