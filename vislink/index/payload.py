"""What every vislink point carries as payload, and which payload fields are indexed for filtering."""

from __future__ import annotations

import re
from typing import Any

# field -> Qdrant payload index type. Searches filter on these inside Qdrant.
PAYLOAD_INDEXES: dict[str, str] = {
    "image_id": "integer",
    "collection": "keyword",
    "artist": "keyword",
    "year_start": "integer",
    "year_end": "integer",
    "school": "keyword",
    "form": "keyword",
    "type": "keyword",
}


def qdrant_collection_name(collection: str, variant: str) -> str:
    """The Qdrant collection holding one descriptor variant of one vislink collection."""
    # A pinned variant's '@' and ':' (vgg16-pool5-sum@ft:run) become '_', which no other variant name holds.
    slug = re.sub(r"[^a-z0-9_-]+", "-", f"{collection}_{re.sub('[@:]', '_', variant)}".lower()).strip("-")
    return f"vislink_{slug}"


def image_payload(image: Any, collection_name: str) -> dict[str, Any]:
    """The payload of an image's point (``image`` is a store ``Image``)."""
    return {
        "image_id": image.id,
        "collection": collection_name,
        "artist": image.artist,
        "year_start": image.year_start,
        "year_end": image.year_end,
        "school": image.school,
        "form": image.form,
        "type": image.type,
        "title": image.title,
    }
