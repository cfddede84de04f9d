"""IIIF Presentation API 2.x and 3.0 manifests and collections (walked recursively), from a URL or a file.

Each canvas (the first of each manifest, or all) painted with an image becomes an item whose ``url`` asks the
image's IIIF Image API service (1.x, 2.x, 3.0; ``iiif_image``) for a picture at the encoder's working size. The
services' ``info.json`` documents are fetched concurrently (per host, within the Fetcher's rate limit) and
respected; when one cannot be fetched the canvas gives the size. What a canvas is painted with (an image, a
Choice, a SpecificResource with a region or a rotation, or sound, video, text) is read by ``iiif_bodies``; labels
and metadata by ``iiif_metadata``. A malformed document is one skipped entry (``bad-manifest``), never the end
of a walk."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vislink.errors import FetchError
from vislink.ingest.sources.base import ItemStream, SourceError, SourceItem, finish_metadata
from vislink.ingest.sources.iiif_bodies import BadShape, PaintedImage, as_list, id_of, kind_of, painted_image
from vislink.ingest.sources.iiif_image import ImageService, positive_int, service_from_info
from vislink.ingest.sources.iiif_metadata import lang_text, metadata_fields

__all__ = ["ImageService", "NotFollowed", "iiif_items", "lang_text"]

log = logging.getLogger(__name__)

_CHUNK = 32  # canvases whose info.json documents are fetched together
_MALFORMED = (BadShape, KeyError, IndexError, TypeError, AttributeError, ValueError)


def iiif_items(url_or_path: str | Path, all_canvases: bool = False, fetcher=None, *, max_size: int = 1024,
               language: str = "en", max_depth: int = 8, info_per_host: int = 4) -> ItemStream:
    """Items for the canvases of an IIIF manifest, or of every manifest reachable from a collection.

    ``all_canvases``: every canvas of each manifest, else the first. ``fetcher``: a ``Fetcher`` for
    manifests, ``info.json`` documents (cached) — a default one on the data folder's cache when None.
    ``max_size``: the long side of the image requested from the Image API. ``language``: preferred language
    of labels and metadata. ``info_per_host``: info.json downloads at once to one host. The top document must
    load (``SourceError``/``FetchError`` otherwise); a manifest of a collection that cannot be loaded or is
    malformed, or a canvas without an image, is reported in ``skipped``. ``stream.seconds`` is the time the last
    iteration took (documents and info.json included)."""
    walker = _Walker(fetcher, max_size, language, all_canvases, max_depth, info_per_host)
    ref = str(url_or_path)
    top = walker.load(ref, named_by_user=True)

    def produce(stream: ItemStream) -> Iterator[SourceItem]:
        started = time.monotonic()
        walker.reset()
        try:
            if kind_of(top) not in ("Manifest", "Collection"):
                raise SourceError(f"{ref}: not a IIIF manifest or collection (type {kind_of(top) or 'missing'})")
            yield from walker.walk(top, ref, stream, depth=0, parent=None)
        finally:
            stream.seconds = time.monotonic() - started

    stream = ItemStream(produce, f"IIIF {ref}")
    stream.seconds = 0.0
    return stream


class NotFollowed(SourceError):
    """A reference inside a IIIF document that vislink does not follow (not http(s))."""


class _Walker:
    def __init__(self, fetcher, max_size: int, language: str, all_canvases: bool, max_depth: int,
                 info_per_host: int):
        self._fetcher = fetcher
        self.max_size, self.language, self.all_canvases, self.max_depth = max_size, language, all_canvases, max_depth
        self.info_per_host = info_per_host
        self.reset()

    def reset(self) -> None:
        self.seen: set[str] = set()
        self.canvas_owner: dict[str, str] = {}  # canvas id -> the manifest that gave it first in this walk
        self.down_hosts: dict[str, str] = {}  # image servers that did not answer: their info.json is not asked for

    @property
    def fetcher(self):
        if self._fetcher is None:
            from vislink.ingest.fetch import Fetcher

            self._fetcher = Fetcher()
        return self._fetcher

    def load(self, ref: str, *, named_by_user: bool = False, prefetched: dict[str, Any] | None = None) -> dict:
        """The JSON document at ``ref`` (or its result in ``prefetched``). Only the document the user named may be a
        local file: a reference found inside a document (fetched or local) is followed only when it is http(s), so
        that a document served by someone else can never make vislink read this machine's files."""
        if prefetched and ref in prefetched:
            doc = prefetched[ref]
            if isinstance(doc, Exception):
                raise doc
        elif re.match(r"https?://", ref):
            doc = self.fetcher.fetch_json(ref)
        elif not named_by_user:
            raise NotFollowed(f"{ref or '(no id)'}: a reference inside a IIIF document must be an http(s) URL; "
                              "local files are read only when named on the command line")
        else:
            from vislink.ingest.fetch import decode_json

            path = Path(ref[len("file://"):] if ref.startswith("file://") else ref).expanduser()
            try:
                doc, _ = decode_json(path.read_bytes())
            except OSError as exc:
                raise SourceError(f"{path}: cannot read the IIIF document ({exc.strerror or exc})") from exc
            except ValueError as exc:
                raise SourceError(f"{path}: the IIIF document is {exc}") from exc
        if not isinstance(doc, dict):
            raise SourceError(f"{ref}: not a IIIF document (a JSON object is expected, not a "
                              f"{type(doc).__name__})")
        return doc

    def walk(self, doc: dict, ref: str, stream: ItemStream, depth: int, parent: str | None) -> Iterator[SourceItem]:
        kind = kind_of(doc)
        doc_id = id_of(doc) or ref
        if doc_id in self.seen:  # collections may list each other
            return
        self.seen.add(doc_id)
        if kind == "Manifest":
            yield from self.manifests_items([(doc, doc_id)], stream, parent)
            return
        if kind != "Collection":
            stream.skip(doc_id, "bad-manifest", f"{ref}: not a IIIF manifest or collection (type {kind or 'missing'})")
            return
        if depth >= self.max_depth:
            stream.skip(doc_id, "too-deep", f"collections nested more than {self.max_depth} levels")
            return
        try:
            members = _members(doc)
        except _MALFORMED as exc:
            stream.skip(doc_id, "bad-manifest", f"{doc_id}: {_why(exc)}")
            return
        # Members referenced by id are fetched together (per host, within the rate limit), _CHUNK at a time;
        # consecutive manifests are then read together, so that their info.json documents are fetched together.
        for start in range(0, len(members), _CHUNK):
            chunk = members[start:start + _CHUNK]
            prefetched = self.prefetch([id_of(m) for m in chunk if isinstance(m, dict) and not _is_complete(m)])
            batch: list[tuple[dict, str]] = []
            for member in chunk:
                full, member_id = self.member(member, doc_id, stream, prefetched)
                if full is None:
                    continue
                manifest_id = id_of(full) or member_id or doc_id
                if kind_of(full) == "Manifest":
                    if manifest_id not in self.seen:
                        self.seen.add(manifest_id)
                        batch.append((full, manifest_id))
                    continue
                yield from self.manifests_items(batch, stream, doc_id)  # in the collection's order
                batch = []
                yield from self.walk(full, member_id or doc_id, stream, depth + 1, doc_id)
            yield from self.manifests_items(batch, stream, doc_id)

    def member(self, member: Any, collection_id: str, stream: ItemStream,
               prefetched: dict[str, Any]) -> tuple[dict | None, str | None]:
        """A collection's member as a whole document (embedded, or fetched by its id), or (None, id) when it is
        skipped (with its reason)."""
        if not isinstance(member, dict):
            stream.skip(collection_id, "bad-manifest", f"{collection_id}: a member is a {type(member).__name__}, "
                        "not an object")
            return None, None
        member_id = id_of(member)
        try:
            return (member if _is_complete(member) else self.load(member_id or "", prefetched=prefetched)), member_id
        except NotFollowed as exc:
            stream.skip(member_id or "?", "not-followed", str(exc))
        except FetchError as exc:
            stream.skip(member_id or "?", "fetch-failed", str(exc))
        except SourceError as exc:
            stream.skip(member_id or "?", "bad-manifest", str(exc))
        return None, member_id

    def prefetch(self, refs: list[str | None]) -> dict[str, Any]:
        """url -> JSON document or its FetchError, for the http(s) references among ``refs``, fetched at once."""
        urls = [r for r in dict.fromkeys(refs) if r and re.match(r"https?://", r)]
        if len(urls) < 2 or not hasattr(self.fetcher, "fetch_json_many"):
            return {}
        return self.fetcher.fetch_json_many(urls, per_host=self.info_per_host)

    def manifests_items(self, manifests: list[tuple[dict, str]], stream: ItemStream,
                        parent: str | None) -> Iterator[SourceItem]:
        """The items of consecutive manifests: their canvases read first, then the images' info.json documents
        fetched together (_CHUNK canvases at a time), then the items in order."""
        found = []
        for doc, manifest_id in manifests:
            try:
                found += self.manifest_canvases(doc, manifest_id, stream)
            except _MALFORMED as exc:  # one bad manifest never ends the walk
                stream.skip(manifest_id, "bad-manifest", f"{manifest_id}: {_why(exc)}")
        for start in range(0, len(found), _CHUNK):
            chunk = found[start:start + _CHUNK]
            infos = self.fetch_infos([entry[-1].service for entry in chunk if entry[-1].service is not None])
            for manifest_id, common, index, canvas, canvas_id, image in chunk:
                try:
                    item = self.item(manifest_id, common, index, canvas, canvas_id, image, infos, stream, parent)
                except _MALFORMED as exc:
                    stream.skip(canvas_id, "bad-manifest", f"{manifest_id}: canvas {canvas_id}: {_why(exc)}")
                    continue
                if item is not None:
                    yield item

    def manifest_canvases(self, doc: dict, manifest_id: str, stream: ItemStream) -> list[tuple]:
        """(manifest id, shared metadata, index, canvas, canvas id, its image) of the chosen canvases painted with
        an image; the others are skipped with their reason."""
        version = _version(doc)
        common = self.describe(doc, version)
        canvases = _canvases(doc, version)
        if not canvases:
            stream.skip(manifest_id, "no-image", "the manifest has no canvas")
            return []
        found = []
        for index, canvas in enumerate(canvases if self.all_canvases else canvases[:1]):
            canvas_id = (id_of(canvas) if isinstance(canvas, dict) else None) or f"{manifest_id}#canvas={index}"
            if not isinstance(canvas, dict):
                stream.skip(canvas_id, "bad-manifest", f"{manifest_id}: canvas {index} is a "
                            f"{type(canvas).__name__}, not an object")
                continue
            try:
                image = painted_image(canvas, version)
            except _MALFORMED as exc:
                stream.skip(canvas_id, "bad-manifest", f"{manifest_id}: canvas {canvas_id}: {_why(exc)}")
                continue
            if isinstance(image, str):
                stream.skip(canvas_id, "no-image", image)
                continue
            found.append((manifest_id, common, index, canvas, canvas_id, image))
        return found

    def item(self, manifest_id: str, common: dict, index: int, canvas: dict, canvas_id: str, image: PaintedImage,
             infos: dict[str, Any], stream: ItemStream, parent: str | None) -> SourceItem | None:
        url, not_applied, service = image.id, [], image.service
        if service is not None:
            service = self.complete(service, image.resource, canvas, infos.get(service.info_url),
                                    turned=str(image.rotation or "").lstrip("!").split(".")[0] in ("90", "270"))
            url, not_applied = service.request(self.max_size, image.region, image.rotation)
        elif image.region or image.rotation:
            not_applied = [f"region {image.region or 'full'}, rotation {image.rotation or 0} (no Image API "
                           "service: the whole file is taken)"]
        if not url:
            stream.skip(canvas_id, "no-image", "the image has no id")
            return None
        if not re.match(r"https?://", url):  # a document never points vislink at a local file
            stream.skip(canvas_id, "bad-url", f"image {url!r} is not an http(s) URL")
            return None
        # Canvas ids are meant to be unique, but multi-volume collections reuse them: a canvas id already given
        # by another manifest of this walk is scoped by its manifest (the first keeps the plain id).
        owner = self.canvas_owner.setdefault(canvas_id, manifest_id)
        source_ref = canvas_id if owner == manifest_id else f"{manifest_id}#canvas={canvas_id}"
        metadata = {k: v for k, v in common.items() if k != "extra"}
        extra = dict(common["extra"])
        extra.update({"iiif_manifest": manifest_id, "iiif_canvas": canvas_id, "canvas_index": index,
                      "canvas_label": self.text(canvas.get("label")),
                      "iiif_image_service": service.id if service else None,
                      "iiif_image_api": service.version if service else None,
                      "iiif_region": image.region, "iiif_rotation": image.rotation,
                      "iiif_not_applied": not_applied or None, "iiif_choice": image.alternatives or None})
        if parent:
            extra["iiif_collection"] = parent
        return SourceItem(source_ref, finish_metadata(metadata, {k: v for k, v in extra.items() if v is not None}),
                          url=url)

    def fetch_infos(self, services: list[ImageService]) -> dict[str, Any]:
        """info.json URL -> document or the FetchError, fetched concurrently; hosts found down are not asked."""
        from urllib.parse import urlsplit

        urls = [s.info_url for s in services if re.match(r"https?://", s.info_url)]
        asked = [u for u in urls if urlsplit(u).netloc.lower() not in self.down_hosts]
        if len(asked) > 1 and hasattr(self.fetcher, "fetch_json_many"):
            results = self.fetcher.fetch_json_many(asked, per_host=self.info_per_host)
        else:
            results = {}
            for url in asked:
                try:
                    results[url] = self.fetcher.fetch_json(url)
                except FetchError as exc:
                    results[url] = exc
        for url, result in results.items():
            if getattr(result, "reason", None) in ("connect-error", "timeout"):
                self.down_hosts.setdefault(urlsplit(url).netloc.lower(), str(result))
        for url in urls:
            host = urlsplit(url).netloc.lower()
            results.setdefault(url, FetchError(f"{url}: not asked, {host} did not answer before "
                                               f"({self.down_hosts.get(host)})"))
        return results

    def describe(self, doc: dict, version: int) -> dict[str, Any]:
        """Image fields and extra shared by the manifest's canvases."""
        metadata, pairs = metadata_fields(doc.get("metadata"), self.language)
        label = self.text(doc.get("label"))
        if label:
            metadata["title"] = label
        if "date_text" not in metadata and isinstance(doc.get("navDate"), str):
            year = re.match(r"(\d{3,4})-", doc["navDate"])
            if year:
                metadata["year_start"] = metadata["year_end"] = int(year.group(1))
        extra = {"iiif_version": version, "iiif_metadata": pairs}
        if version >= 3:
            statement = doc.get("requiredStatement")
            extra["summary"] = self.text(doc.get("summary"))
            extra["attribution"] = self.text(statement.get("value") if isinstance(statement, dict) else None)
            extra["rights"] = doc.get("rights") if isinstance(doc.get("rights"), str) else None
        else:
            extra["summary"] = self.text(doc.get("description"))
            extra["attribution"] = self.text(doc.get("attribution"))
            extra["rights"] = doc.get("license") if isinstance(doc.get("license"), (str, list)) else None
        metadata["extra"] = {k: v for k, v in extra.items() if v}
        return metadata

    def complete(self, service: ImageService, body: dict, canvas: dict, info: Any, *,
                 turned: bool = False) -> ImageService:
        """The service with its size and limits from its info.json; the size from the canvas when that failed
        (its sides swapped when the image is painted turned by 90 or 270 degrees)."""
        if isinstance(info, dict):
            return service_from_info(info, service)
        log.warning("%s: no info.json (%s); the size comes from the canvas", service.id,
                    info if info is not None else "not fetched")
        width, height = positive_int(canvas.get("width")), positive_int(canvas.get("height"))
        if turned:
            width, height = height, width
        service.width = width or service.width or positive_int(body.get("width"))
        service.height = height or service.height or positive_int(body.get("height"))
        return service

    def text(self, value: Any) -> str | None:
        return lang_text(value, self.language)


def _why(exc: Exception) -> str:
    """A malformed document's problem in words (a KeyError alone would say ``0``)."""
    if isinstance(exc, BadShape):
        return str(exc)
    return f"malformed document ({type(exc).__name__}: {exc})"


def _version(doc: dict) -> int:
    context = doc.get("@context")
    contexts = context if isinstance(context, list) else [context]
    text = " ".join(str(c) for c in contexts if isinstance(c, str))
    if "presentation/3" in text:
        return 3
    if "presentation/2" in text:
        return 2
    return 3 if "type" in doc and "@type" not in doc else 2


def _members(doc: dict) -> list:
    if _version(doc) >= 3 and "items" in doc:
        return as_list(doc.get("items"), "the collection's items")
    members = []
    for key in ("members", "collections", "manifests"):
        members.extend(as_list(doc.get(key), f"the collection's {key}"))
    return members


def _is_complete(member: dict) -> bool:
    kind = kind_of(member)
    if kind == "Manifest":
        return bool(member.get("items") or member.get("sequences"))
    return bool(member.get("items") or member.get("members") or member.get("manifests") or member.get("collections"))


def _canvases(doc: dict, version: int) -> list:
    if version >= 3:
        items = as_list(doc.get("items"), "the manifest's items")
        return [c for c in items if not isinstance(c, dict) or kind_of(c) in ("Canvas", "")]
    sequences = as_list(doc.get("sequences"), "the manifest's sequences")
    if not sequences:
        return []
    if not isinstance(sequences[0], dict):
        raise BadShape(f"its first sequence is a {type(sequences[0]).__name__}, not an object")
    return as_list(sequences[0].get("canvases"), "the sequence's canvases")
