"""Finding collections and images by the names people use: a collection name, an image id, its
``source_ref``, its WGA path (``a/aachen/allegory.jpg``) or its content (``sha256:<hex>``)."""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from vislink.errors import NotFound, VislinkError
from vislink.formats.wga import wga_path_from_url, wga_path_in
from vislink.store.lookup import get_collection  # noqa: F401 - re-exported by vislink.graph
from vislink.store.models import Image

REF_KINDS = ("auto", "id", "source_ref", "wga_path")
SHA256_REF = "sha256:"  # a ref by content: sha256:<hex> of the file's bytes


def wga_path_of(image: Image) -> str | None:
    """The image's WGA path however it came in: ``extra["wga_path"]`` as the WGA catalog source sets it, else the
    path inside its source_ref (a WGA ``/art/`` URL from a URL list, or a folder laid out like WGA's tree)."""
    extra = image.extra or {}
    if extra.get("wga_path"):
        return str(extra["wga_path"])
    return wga_path_in(image.source_ref or "")


class ImageResolver:
    """Resolves image refs of one collection, loading its (id, source_ref, wga_path) once.

    ``auto`` tries source_ref, then WGA path, then a numeric image id: a source_ref is the most
    specific name, ids differ between databases."""

    def __init__(self, session: Session, collection_id: int, kind: str = "auto"):
        if kind not in REF_KINDS:
            raise VislinkError(f"unknown image ref kind {kind!r}; use one of {', '.join(REF_KINDS)}")
        self.kind = kind
        self.by_id: dict[int, Image] = {}
        self.by_source: dict[str, int] = {}
        self.by_wga: dict[str, int] = {}
        self.by_sha: dict[str, int] = {}
        copies: list[tuple[str, int]] = []
        for image in session.scalars(select(Image).where(Image.collection_id == collection_id)):
            self.by_id[image.id] = image
            self.by_source[image.source_ref] = image.id
            path = wga_path_of(image)
            if path:
                self.by_wga.setdefault(path, image.id)
            if image.sha256:
                self.by_sha.setdefault(image.sha256, image.id)
            elif (image.extra or {}).get("sha256") and image.duplicate_of_id:
                copies.append((image.extra["sha256"], image.duplicate_of_id))  # a copy stands for its original
        for sha, original in copies:
            self.by_sha.setdefault(sha, original)

    def get(self, ref) -> int | None:
        """The image id for ``ref``, or None when the collection has no such image."""
        if ref is None:
            return None
        text = str(ref).strip()
        if not text:
            return None
        if text.startswith(SHA256_REF):
            return self.by_sha.get(text[len(SHA256_REF):].lower())
        if self.kind in ("auto", "source_ref") and text in self.by_source:
            return self.by_source[text]
        if self.kind in ("auto", "wga_path"):
            path = wga_path_from_url(text) or text
            if path in self.by_wga:
                return self.by_wga[path]
        if self.kind in ("auto", "id") and text.isdigit() and int(text) in self.by_id:
            return int(text)
        return None

    def require(self, ref) -> int:
        image_id = self.get(ref)
        if image_id is None:
            raise NotFound(f"no image {ref!r} in this collection (tried {self._tried()})")
        return image_id

    def ref_of(self, image_id: int, kind: str = "source_ref") -> str:
        """The ref written on export: ``source_ref`` (default), ``wga_path`` (falls back to source_ref) or ``id``."""
        image = self.by_id[image_id]
        if kind == "id":
            return str(image_id)
        if kind == "wga_path":
            return wga_path_of(image) or image.source_ref
        return image.source_ref

    def _tried(self) -> str:
        return "source_ref, WGA path, image id" if self.kind == "auto" else self.kind


def collection_of_images(session: Session, image_ids: Iterable[int]) -> int:
    """The one collection these images belong to; NotFound for unknown ids, an error if they are mixed."""
    ids = sorted(set(int(i) for i in image_ids))
    if not ids:
        raise VislinkError("no images given")
    rows = session.execute(select(Image.id, Image.collection_id).where(Image.id.in_(ids))).all()
    found = {row.id: row.collection_id for row in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"no image with id {', '.join(map(str, missing[:10]))}")
    collections = set(found.values())
    if len(collections) > 1:
        raise VislinkError(f"images {ids[:10]} belong to different collections; a group or link stays in one")
    return collections.pop()
