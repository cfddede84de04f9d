"""Text files as institutions export them: UTF-8 (with or without BOM), Windows-1252 or ISO-8859-1 (WGA's text
catalog, spreadsheets saved on Windows). One decoder for every CSV vislink reads."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

ENCODINGS = ("utf-8", "cp1252", "latin-1")  # tried in this order; latin-1 decodes any bytes


def decode_text(data: bytes, name: str = "") -> str:
    """``data`` as text in the first of ``ENCODINGS`` that decodes it, a UTF-8 byte order mark dropped."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ENCODINGS[:-1]:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding != "utf-8":
            log.debug("%s: not UTF-8, read as %s", name or "text", encoding)
        return text
    log.debug("%s: read as %s", name or "text", ENCODINGS[-1])
    return data.decode(ENCODINGS[-1])
