"""A single uploaded file (from the UI or an API): its bytes are written under a name made of their sha256,
never under the name the user chose; that name is cleaned and kept as metadata only."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

from vislink.errors import BadImage
from vislink.ingest.sources.base import SourceItem

_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")


def sanitize_filename(filename: str | None, max_length: int = 200) -> str:
    """A display name from a user-supplied file name: the last path component, no control or reserved
    characters, no leading dots, NFC, at most ``max_length`` characters; ``upload`` when nothing is left."""
    name = unicodedata.normalize("NFC", str(filename or ""))
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if len(name) > max_length:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: max_length - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:max_length]
    return name or "upload"


def upload_item(filename: str | None, data: bytes, *, cache_dir: Path | str | None = None,
                max_bytes: int | None = None) -> SourceItem:
    """A ``SourceItem`` for uploaded bytes. They are written (once) to ``<cache_dir>/uploads/<sha256>``;
    ``source_ref`` is ``upload:<sha256>``, so the same bytes uploaded twice are the same item.

    ``cache_dir`` defaults to the data folder's cache; ``max_bytes`` to the ``VISLINK_MAX_UPLOAD_MB`` setting.
    Raises ``BadImage`` (``empty-file``, ``too-large``) before writing anything."""
    display = sanitize_filename(filename)
    if cache_dir is None or max_bytes is None:
        from vislink.config import get_settings

        settings = get_settings()
        cache_dir = settings.cache_dir if cache_dir is None else cache_dir
        max_bytes = settings.max_upload_mb * 1024 * 1024 if max_bytes is None else max_bytes
    if not data:
        raise BadImage(display, "empty-file", "the upload has no bytes")
    if len(data) > max_bytes:
        raise BadImage(display, "too-large", f"{len(data)} bytes, the limit is {max_bytes}")
    digest = hashlib.sha256(data).hexdigest()
    folder = Path(cache_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest
    if not (path.is_file() and path.stat().st_size == len(data)):
        # Write to a temporary file in the same folder, then rename: a reader never sees half a file, and
        # two processes storing the same upload both end with the full file.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{digest[:16]}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    metadata = {"extra": {"original_filename": display, "sha256": digest, "size": len(data)}}
    return SourceItem(f"upload:{digest}", metadata, local_path=path)
