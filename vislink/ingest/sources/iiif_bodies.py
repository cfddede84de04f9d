"""What a IIIF canvas is painted with, and whether it is an image.

A painting annotation's body is an image only when it is an ``Image`` (v2 ``dctypes:Image``), a ``Choice`` holding
images (the default, else the first, is taken; the other options are kept), or a ``SpecificResource`` whose
``source`` (v2 ``full``) is an image, with its selector's region (``xywh=`` fragment, ``ImageApiSelector`` region)
and rotation. Sound, Video, Text and other bodies are not images: the canvas has "no image"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from vislink.ingest.sources.iiif_image import ImageService, service_from_entry
from vislink.ingest.sources.iiif_metadata import lang_text

_IMAGE_EXT = {"jpg", "jpeg", "png", "gif", "tif", "tiff", "jp2", "j2k", "jpx", "webp", "bmp", "avif"}
_MEDIA_EXT = {"mp3": "Sound", "m4a": "Sound", "wav": "Sound", "ogg": "Sound", "oga": "Sound", "flac": "Sound",
              "aac": "Sound", "mp4": "Video", "m4v": "Video", "webm": "Video", "mov": "Video", "mpd": "Video",
              "m3u8": "Video", "ogv": "Video", "txt": "Text", "html": "Text", "htm": "Text", "vtt": "Text",
              "pdf": "Text", "xml": "Text"}
_KINDS = {"image": "Image", "stillimage": "Image", "sound": "Sound", "audio": "Sound", "video": "Video",
          "movingimage": "Video", "text": "Text", "textualbody": "Text", "dataset": "Dataset", "model": "Model",
          "physicalobject": "PhysicalObject"}


class BadShape(ValueError):
    """A part of a IIIF document does not have the shape the Presentation API gives it."""


@dataclass
class PaintedImage:
    """A canvas's image: the resource's id (its URL without a service), its Image API service, the resource, the
    region and rotation a selector asks for, and the other options of a Choice."""

    id: str | None
    service: ImageService | None
    resource: dict
    region: str | None = None
    rotation: str | None = None
    alternatives: list[dict[str, Any]] = field(default_factory=list)


def as_list(value: Any, what: str) -> list:
    """``value`` as a list: a single object stands for a list of one (``"sequences": {...}``); None is empty; any
    other shape is a ``BadShape`` naming ``what``."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    raise BadShape(f"{what} is a {type(value).__name__}, not a list of objects")


def kind_of(doc: dict) -> str:
    kind = doc.get("type") or doc.get("@type") or ""
    if isinstance(kind, list):
        kind = kind[0] if kind else ""
    return str(kind).split(":")[-1]  # sc:Manifest -> Manifest, dctypes:Image -> Image


def id_of(doc: dict) -> str | None:
    value = doc.get("id") or doc.get("@id")
    return str(value) if isinstance(value, (str, int)) and value != "" else None


def media_kind(resource: dict) -> str | None:
    """Image, Sound, Video, Text, ... from the resource's type, else its format, its file extension or an image
    service; None when nothing says."""
    kind = _KINDS.get(kind_of(resource).lower())
    if kind:
        return kind
    fmt = str(resource.get("format") or "").lower()
    for prefix, name in (("image/", "Image"), ("audio/", "Sound"), ("video/", "Video"), ("text/", "Text"),
                         ("application/dash", "Video"), ("application/vnd.apple.mpegurl", "Video"),
                         ("application/pdf", "Text")):
        if fmt.startswith(prefix):
            return name
    ext = urlsplit(id_of(resource) or "").path.rsplit(".", 1)[-1].lower()
    if ext in _IMAGE_EXT:
        return "Image"
    if ext in _MEDIA_EXT:
        return _MEDIA_EXT[ext]
    if _image_service(resource) is not None:
        return "Image"
    return None


def painted_image(canvas: dict, version: int) -> PaintedImage | str:
    """The canvas's image, or why it has none (a short text: "painted with Sound (…/a.mp3)")."""
    if version >= 3:
        bodies = []
        for page in as_list(canvas.get("items"), "the canvas's items"):
            if not isinstance(page, dict):
                raise BadShape("an annotation page of the canvas is not an object")
            annotations = [a for a in as_list(page.get("items"), "an annotation page's items") if isinstance(a, dict)]
            painting = [a for a in annotations if _painting(a)] or annotations
            bodies += [b for a in painting for b in as_list(a.get("body"), "an annotation's body")]
    else:
        bodies = [r for a in as_list(canvas.get("images"), "the canvas's images") if isinstance(a, dict)
                  for r in as_list(a.get("resource"), "an image annotation's resource")]
    others = []
    for body in bodies:
        if not isinstance(body, dict):
            continue
        found = resolve(body, lenient=version < 3)
        if isinstance(found, PaintedImage):
            return found
        others.append(found)
    if others:
        return "painted with " + ", ".join(dict.fromkeys(others))
    return "no painting annotation"


def _painting(annotation: dict) -> bool:
    motivation = annotation.get("motivation")
    motivations = motivation if isinstance(motivation, list) else [motivation]
    return any(str(m).split(":")[-1] == "painting" for m in motivations)


def resolve(body: dict, *, lenient: bool = False) -> PaintedImage | str:
    """The image a body stands for, or what it is instead. ``lenient`` (v2 ``images``, images by definition):
    a resource that does not say what it is counts as an image."""
    kind = kind_of(body)
    if kind == "Choice":
        options = [o for o in ([body.get("default")] if isinstance(body.get("default"), dict) else [])
                   + as_list(body.get("items"), "a Choice's items") + as_list(body.get("item"), "a Choice's items")
                   if isinstance(o, dict)]
        resolved = [(o, resolve(o, lenient=lenient)) for o in options]
        images = [(o, r) for o, r in resolved if isinstance(r, PaintedImage)]
        if not images:
            return ", ".join(dict.fromkeys(str(r) for _, r in resolved)) or "an empty Choice"
        chosen = images[0][1]
        chosen.alternatives = [_describe(o, r) for o, r in images[1:]]
        return chosen
    if kind == "SpecificResource":
        source = body.get("source") if "source" in body else body.get("full")
        if isinstance(source, str):
            source = {"id": source}
        if not isinstance(source, dict):
            return "a SpecificResource without a source"
        found = resolve(source, lenient=lenient)
        if isinstance(found, PaintedImage):
            region, rotation = selector_region(body.get("selector"))
            found.region, found.rotation = region or found.region, rotation or found.rotation
        return found
    media = media_kind(body)
    if media == "Image" or (media is None and lenient):
        service = _image_service(body)
        if service is None and not id_of(body):
            return "an image without an id"
        return PaintedImage(id_of(body), service, body)
    what = media or kind or "a resource of unknown type"
    return f"{what} ({id_of(body) or 'no id'})"


def selector_region(selector: Any) -> tuple[str | None, str | None]:
    """(Image API region, rotation) from a selector or a list of selectors: ``xywh=x,y,w,h`` fragments
    (``pixel:``, ``percent:``) and ``ImageApiSelector`` ``region`` / ``rotation``."""
    region = rotation = None
    for sel in as_list(selector, "a selector"):
        if not isinstance(sel, dict):
            continue
        kind = kind_of(sel)
        if kind == "ImageApiSelector":
            region = str(sel["region"]).strip() if sel.get("region") else region
            rotation = str(sel["rotation"]).strip() if sel.get("rotation") not in (None, "") else rotation
        elif kind == "FragmentSelector" or "value" in sel:
            m = re.search(r"xywh=(pixel:|percent:)?\s*([\d.]+),([\d.]+),([\d.]+),([\d.]+)", str(sel.get("value")))
            if m:
                numbers = ",".join(_number(v) for v in m.groups()[1:])
                region = f"pct:{numbers}" if m.group(1) == "percent:" else numbers
    return region, rotation


def _number(text: str) -> str:
    value = float(text)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _image_service(resource: dict) -> ImageService | None:
    for entry in as_list(resource.get("service"), "a resource's service"):
        if isinstance(entry, dict):
            service = service_from_entry(entry)
            if service is not None:
                return service
    return None


def _describe(option: dict, image: PaintedImage) -> dict[str, Any]:
    out = {"id": image.id, "label": lang_text(option.get("label")),
           "service": image.service.id if image.service else None}
    return {k: v for k, v in out.items() if v}
