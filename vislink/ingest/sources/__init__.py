"""Where images come from. Each source is a function returning an ``ItemStream``: an iterable of
``SourceItem`` that also reports, in ``skipped``, what it had to leave out (missing files, bad URLs...).

- ``folder_items(root, metadata_csv=None)``: a local folder, recursively;
- ``upload_item(filename, data)``: one uploaded file (a single ``SourceItem``);
- ``wga_catalog_items(catalog, images_root=None, where=..., timeframe=..., limit=...)``: the Web Gallery of Art;
- ``iiif_items(url_or_path, all_canvases=False, fetcher=...)``: IIIF manifests and collections;
- ``url_csv_items(csv_path)``: a CSV of image URLs.
"""

from vislink.ingest.sources.base import IMAGE_FIELDS, ItemStream, SkippedItem, SourceError, SourceItem
from vislink.ingest.sources.folder import IMAGE_EXTENSIONS, folder_items
from vislink.ingest.sources.iiif import ImageService, iiif_items, lang_text
from vislink.ingest.sources.upload import sanitize_filename, upload_item
from vislink.ingest.sources.urlcsv import url_csv_items
from vislink.ingest.sources.wga import WGA_COLUMNS, read_wga_catalog, wga_catalog_items, wga_paths

__all__ = [
    "IMAGE_EXTENSIONS", "IMAGE_FIELDS", "ImageService", "ItemStream", "SkippedItem", "SourceError", "SourceItem",
    "WGA_COLUMNS", "folder_items", "iiif_items", "lang_text", "read_wga_catalog", "sanitize_filename",
    "upload_item", "url_csv_items", "wga_catalog_items", "wga_paths",
]
