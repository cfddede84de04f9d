"""IIIF Presentation API 2.x and 3.0 manifests and collections (walked recursively), from a URL or a file.

Each canvas (the first of each manifest, or all) becomes an item whose ``url`` asks the canvas image's IIIF
Image API service for a sized image. The service's ``info.json`` is read first and respected: compliance
level (level 0 serves only ``full``/``max`` and the listed ``sizes``), ``maxWidth``/``maxHeight``/``maxArea``,
no upscaling. Without a service, the painting annotation's image (``body.id`` / ``resource.@id``) is used.
Labels and metadata may be v3 language maps (``{"en": ["..."]}``) or v2 strings / ``@value`` lists."""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vislink.errors import FetchError
from vislink.ingest.sources.base import ItemStream, SourceError, SourceItem, finish_metadata, map_columns

log = logging.getLogger(__name__)


@dataclass
class ImageService:
    """An IIIF Image API service as a manifest or its info.json describes it."""

    id: str
    version: int = 2  # Image API major version
    level: int | None = None  # compliance level, None when not stated
    width: int | None = None
    height: int | None = None
    max_width: int | None = None
    max_height: int | None = None
    max_area: int | None = None
    sizes: list[tuple[int, int]] = field(default_factory=list)
    from_info: bool = False  # True once completed from info.json

    def image_url(self, max_size: int = 1024) -> str:
        return f"{self.id.rstrip('/')}/full/{self.size_parameter(max_size)}/0/default.jpg"

    def size_parameter(self, max_size: int = 1024) -> str:
        """The size segment fetching the image at most ``max_size`` on its long side (never upscaled), within
        the service's limits, using only what its compliance level allows."""
        full = "full" if self.version < 3 else "max"
        if not (self.width and self.height):
            # Nothing to compute with: let a level 2 server fit the box (v2's customary request), else ask
            # for what every level serves.
            return f"!{max_size},{max_size}" if self.version < 3 and self.level in (None, 2) else full
        W, H = self.width, self.height
        limits = [max_size / W, max_size / H]
        server = [v for v in ((self.max_width or 0) / W, (self.max_height or self.max_width or 0) / H,
                              math.sqrt((self.max_area or 0) / (W * H))) if v > 0]
        scale = min([1.0, *limits, *server])
        if server and min(server) <= scale:
            scale *= 0.995  # the server rounds the other side; stay safely inside its limits
        if self.level == 0 or (self.level is None and self.sizes):
            return self._listed_size(W, H, scale, full)
        if scale >= 1.0:
            return full
        if W >= H:
            return f"{max(1, int(W * scale))},"
        return f",{max(1, int(H * scale))}"

    def _listed_size(self, W: int, H: int, scale: float, full: str) -> str:
        if not self.sizes:
            return full
        wanted = max(W, H) * scale
        allowed = [(w, h) for w, h in self.sizes if w <= W and h <= H]
        big_enough = sorted((max(w, h), w, h) for w, h in allowed if max(w, h) >= wanted)
        _, w, h = big_enough[0] if big_enough else max((max(w, h), w, h) for w, h in allowed or self.sizes)
        return f"{w}," if self.version < 3 else f"{w},{h}"


def iiif_items(url_or_path: str | Path, all_canvases: bool = False, fetcher=None, *, max_size: int = 1024,
               language: str = "en", max_depth: int = 8) -> ItemStream:
    """Items for the canvases of an IIIF manifest, or of every manifest reachable from a collection.

    ``all_canvases``: every canvas of each manifest, else the first. ``fetcher``: a ``Fetcher`` for
    manifests, ``info.json`` documents (cached) — a default one on the data folder's cache when None.
    ``max_size``: the long side of the image requested from the Image API. ``language``: preferred language
    of labels and metadata. The top document must load (``SourceError``/``FetchError`` otherwise); a manifest
    of a collection that cannot be loaded, or a canvas without an image, is reported in ``skipped``."""
    walker = _Walker(fetcher, max_size, language, all_canvases, max_depth)
    ref = str(url_or_path)
    top = walker.load(ref, named_by_user=True)

    def produce(stream: ItemStream) -> Iterator[SourceItem]:
        walker.seen.clear()
        yield from walker.walk(top, ref, stream, depth=0, parent=None)

    return ItemStream(produce, f"IIIF {ref}")


class NotFollowed(SourceError):
    """A reference inside a IIIF document that vislink does not follow (not http(s))."""


class _Walker:
    def __init__(self, fetcher, max_size: int, language: str, all_canvases: bool, max_depth: int):
        self._fetcher = fetcher
        self.max_size, self.language, self.all_canvases, self.max_depth = max_size, language, all_canvases, max_depth
        self.seen: set[str] = set()

    @property
    def fetcher(self):
        if self._fetcher is None:
            from vislink.ingest.fetch import Fetcher

            self._fetcher = Fetcher()
        return self._fetcher

    def load(self, ref: str, *, named_by_user: bool = False) -> dict:
        """The JSON document at ``ref``. Only the document the user named may be a local file: a reference found
        inside a document (fetched or local) is followed only when it is http(s), so that a document served by
        someone else can never make vislink read this machine's files."""
        if re.match(r"https?://", ref):
            doc = self.fetcher.fetch_json(ref)
        elif not named_by_user:
            raise NotFollowed(f"{ref or '(no id)'}: a reference inside a IIIF document must be an http(s) URL; "
                              "local files are read only when named on the command line")
        else:
            path = Path(ref[len("file://"):] if ref.startswith("file://") else ref).expanduser()
            try:
                doc = json.loads(path.read_text(encoding="utf-8-sig"))
            except OSError as exc:
                raise SourceError(f"{path}: cannot read the IIIF document ({exc.strerror or exc})") from exc
            except ValueError as exc:
                raise SourceError(f"{path}: not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise SourceError(f"{ref}: not a IIIF document (a JSON object is expected)")
        return doc

    def walk(self, doc: dict, ref: str, stream: ItemStream, depth: int, parent: str | None) -> Iterator[SourceItem]:
        kind = _type(doc)
        doc_id = _id(doc) or ref
        if doc_id in self.seen:  # collections may list each other
            return
        self.seen.add(doc_id)
        if kind == "Manifest":
            yield from self.manifest_items(doc, doc_id, stream, parent)
            return
        if kind != "Collection":
            raise SourceError(f"{ref}: not a IIIF manifest or collection (type {kind or 'missing'})")
        if depth >= self.max_depth:
            stream.skip(doc_id, "too-deep", f"collections nested more than {self.max_depth} levels")
            return
        for member in _members(doc):
            member_id = _id(member)
            try:
                # A member may be embedded whole, or only referenced by id (then it is fetched).
                full = member if _is_complete(member) else self.load(member_id or "")
            except NotFollowed as exc:
                stream.skip(member_id or "?", "not-followed", str(exc))
                continue
            except (FetchError, SourceError) as exc:
                stream.skip(member_id or "?", "fetch-failed", str(exc))
                continue
            try:
                yield from self.walk(full, member_id or doc_id, stream, depth + 1, doc_id)
            except SourceError as exc:
                stream.skip(member_id or "?", "bad-manifest", str(exc))

    def manifest_items(self, doc: dict, manifest_id: str, stream: ItemStream,
                       parent: str | None) -> Iterator[SourceItem]:
        version = _version(doc)
        common = self.describe(doc, version)
        canvases = _canvases(doc, version)
        if not canvases:
            stream.skip(manifest_id, "no-image", "the manifest has no canvas")
            return
        for index, canvas in enumerate(canvases if self.all_canvases else canvases[:1]):
            canvas_id = _id(canvas) or f"{manifest_id}#canvas={index}"
            found = _canvas_image(canvas, version)
            if found is None:
                stream.skip(canvas_id, "no-image", "no painting annotation with an image")
                continue
            image_id, service, body = found
            url = image_id
            if service is not None:
                service = self.complete(service, body, canvas)
                url = service.image_url(self.max_size)
            if not url:
                stream.skip(canvas_id, "no-image", "the image has no id")
                continue
            if not re.match(r"https?://", url):  # a document never points vislink at a local file
                stream.skip(canvas_id, "bad-url", f"image {url!r} is not an http(s) URL")
                continue
            metadata = {k: v for k, v in common.items() if k != "extra"}
            extra = dict(common["extra"])
            extra.update({"iiif_manifest": manifest_id, "iiif_canvas": canvas_id, "canvas_index": index,
                          "canvas_label": self.text(canvas.get("label")),
                          "iiif_image_service": service.id if service else None})
            if parent:
                extra["iiif_collection"] = parent
            yield SourceItem(canvas_id, finish_metadata(metadata, {k: v for k, v in extra.items()
                                                                   if v is not None}), url=url)

    def describe(self, doc: dict, version: int) -> dict[str, Any]:
        """Image fields and extra shared by the manifest's canvases."""
        pairs, by_english_label = {}, {}
        for entry in doc.get("metadata") or []:
            if isinstance(entry, dict):
                label, value = self.text(entry.get("label")), self.text(entry.get("value"))
                if label and value:
                    pairs.setdefault(label, value)
                    # Field names are English: match on the English label, keep the value in the chosen language.
                    by_english_label.setdefault(lang_text(entry.get("label"), "en") or label, value)
        metadata, _ = map_columns(by_english_label)  # every pair also stays in extra["iiif_metadata"]
        label = self.text(doc.get("label"))
        if label:
            metadata["title"] = label
        if "date_text" not in metadata and isinstance(doc.get("navDate"), str):
            year = re.match(r"(\d{3,4})-", doc["navDate"])
            if year:
                metadata["year_start"] = metadata["year_end"] = int(year.group(1))
        extra = {"iiif_version": version, "iiif_metadata": pairs}
        if version >= 3:
            extra["summary"] = self.text(doc.get("summary"))
            extra["attribution"] = self.text((doc.get("requiredStatement") or {}).get("value"))
            extra["rights"] = doc.get("rights")
        else:
            extra["summary"] = self.text(doc.get("description"))
            extra["attribution"] = self.text(doc.get("attribution"))
            extra["rights"] = doc.get("license")
        metadata["extra"] = {k: v for k, v in extra.items() if v}
        return metadata

    def complete(self, service: ImageService, body: dict, canvas: dict) -> ImageService:
        """Fill the service's size and limits from its info.json; from the manifest when that fails."""
        try:
            info = self.fetcher.fetch_json(f"{service.id.rstrip('/')}/info.json")
        except FetchError as exc:
            log.warning("%s: no info.json (%s); choosing the image size from the manifest", service.id, exc)
            service.width = _int(body.get("width")) or _int(canvas.get("width"))
            service.height = _int(body.get("height")) or _int(canvas.get("height"))
            return service
        return _service_from_info(info, service)

    def text(self, value: Any) -> str | None:
        return lang_text(value, self.language)


def lang_text(value: Any, language: str = "en") -> str | None:
    """Plain text of a IIIF label or value: a v3 language map, a v2 string, ``{"@value", "@language"}`` or a
    list of those, in ``language`` when available (else language-neutral, else any); HTML tags removed."""
    if value is None:
        return None
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, dict) and "@value" in value:
        texts = [str(value["@value"])]
    elif isinstance(value, dict):  # v3 language map
        key = next((k for k in (language, "none", "@none") if k in value), None)
        if key is None:
            key = next((k for k in value if k.split("-")[0] == language), next(iter(value), None))
        texts = value.get(key) or [] if key is not None else []
        texts = [texts] if isinstance(texts, str) else [str(t) for t in texts]
    elif isinstance(value, list):
        entries = [v if isinstance(v, dict) else {"@value": v} for v in value]
        chosen = [e for e in entries if str(e.get("@language", "")).split("-")[0] == language] or \
                 [e for e in entries if "@language" not in e] or entries
        texts = [str(e.get("@value", "")) for e in chosen]
    else:
        texts = [str(value)]
    cleaned = [html.unescape(re.sub(r"<[^>]+>", " ", t)) for t in texts]
    joined = "; ".join(" ".join(t.split()) for t in cleaned if t.strip())
    return joined or None


def _type(doc: dict) -> str:
    kind = doc.get("type") or doc.get("@type") or ""
    if isinstance(kind, list):
        kind = kind[0] if kind else ""
    return str(kind).split(":")[-1]  # sc:Manifest -> Manifest


def _id(doc: dict) -> str | None:
    value = doc.get("id") or doc.get("@id")
    return str(value) if value else None


def _version(doc: dict) -> int:
    context = doc.get("@context")
    contexts = context if isinstance(context, list) else [context]
    text = " ".join(str(c) for c in contexts if isinstance(c, str))
    if "presentation/3" in text:
        return 3
    if "presentation/2" in text:
        return 2
    return 3 if "type" in doc and "@type" not in doc else 2


def _members(doc: dict) -> list[dict]:
    if _version(doc) >= 3 and isinstance(doc.get("items"), list):
        return [m for m in doc["items"] if isinstance(m, dict)]
    members = []
    for key in ("members", "collections", "manifests"):
        members.extend(m for m in doc.get(key) or [] if isinstance(m, dict))
    return members


def _is_complete(member: dict) -> bool:
    kind = _type(member)
    if kind == "Manifest":
        return bool(member.get("items") or member.get("sequences"))
    return bool(member.get("items") or member.get("members") or member.get("manifests") or member.get("collections"))


def _canvases(doc: dict, version: int) -> list[dict]:
    if version >= 3:
        return [c for c in doc.get("items") or [] if isinstance(c, dict) and _type(c) in ("Canvas", "")]
    sequences = doc.get("sequences") or []
    if not sequences or not isinstance(sequences[0], dict):
        return []
    return [c for c in sequences[0].get("canvases") or [] if isinstance(c, dict)]


def _canvas_image(canvas: dict, version: int) -> tuple[str | None, ImageService | None, dict] | None:
    """(image id, its image service, the image resource) of a canvas's first painting annotation."""
    if version >= 3:
        annotations = [a for page in canvas.get("items") or [] if isinstance(page, dict)
                       for a in page.get("items") or [] if isinstance(a, dict)]
        painting = [a for a in annotations if a.get("motivation") in ("painting", "sc:painting")] or annotations
        bodies = [b for a in painting for b in (a.get("body") if isinstance(a.get("body"), list) else [a.get("body")])]
    else:
        bodies = [a.get("resource") for a in canvas.get("images") or [] if isinstance(a, dict)]
    for body in bodies:
        if not isinstance(body, dict):
            continue
        if _type(body) == "Choice":  # alternatives (e.g. photographs under several lights): take the default
            options = ([body.get("default")] if body.get("default") else []) + list(body.get("items") or []) + \
                      list(body.get("item") or [])
            body = next((o for o in options if isinstance(o, dict)), None)
            if body is None:
                continue
        services = body.get("service") or []
        services = services if isinstance(services, list) else [services]
        service = next((s for s in (_service(x) for x in services if isinstance(x, dict)) if s), None)
        if service is not None or _id(body):
            return _id(body), service, body
    return None


def _service(entry: dict) -> ImageService | None:
    service_id = _id(entry)
    if not service_id:
        return None
    kind = _type(entry)
    context = str(entry.get("@context") or "")
    profile = entry.get("profile")
    profile_text = " ".join(p for p in (profile if isinstance(profile, list) else [profile]) if isinstance(p, str))
    if kind.startswith("ImageService"):
        version = int(kind[-1]) if kind[-1].isdigit() else 2
    elif "image/3" in context:
        version = 3
    elif "image/2" in context or "image/2" in profile_text or "image/1" in context:
        version = 2
    else:
        return None  # some other service (search, auth): not an image server
    level = re.search(r"level(\d)", profile_text)
    return ImageService(service_id, version=max(2, version), level=int(level.group(1)) if level else None)


def _service_from_info(info: dict, declared: ImageService) -> ImageService:
    context = str(info.get("@context") or "")
    version = 3 if "image/3" in context or info.get("type") == "ImageService3" else 2
    profile = info.get("profile")
    profiles = profile if isinstance(profile, list) else [profile]
    level = next((int(m.group(1)) for p in profiles if isinstance(p, str)
                  for m in [re.search(r"level(\d)", p)] if m), declared.level)
    limits: dict[str, Any] = {k: info.get(k) for k in ("maxWidth", "maxHeight", "maxArea")}
    for p in profiles:  # v2 puts them in the profile's description object
        if isinstance(p, dict):
            for k in limits:
                limits[k] = limits[k] or p.get(k)
    sizes = [(int(s["width"]), int(s["height"])) for s in info.get("sizes") or []
             if isinstance(s, dict) and _int(s.get("width")) and _int(s.get("height"))]
    return ImageService(
        id=_id(info) or declared.id, version=version, level=level,
        width=_int(info.get("width")), height=_int(info.get("height")),
        max_width=_int(limits["maxWidth"]), max_height=_int(limits["maxHeight"]), max_area=_int(limits["maxArea"]),
        sizes=sizes, from_info=True,
    )


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
