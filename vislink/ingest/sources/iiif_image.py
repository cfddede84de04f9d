"""IIIF Image API services (1.0, 1.1, 2.x, 3.0) as manifests and ``info.json`` documents describe them, and the
image URL that asks one for a picture at the encoder's working size.

- Version: 3 (``ImageService3``, ``image/3`` context), 2 (``ImageService2``, ``image/2``), 1 (``image/1`` context,
  ``library.stanford.edu/iiif/image-api/1.x`` contexts, profiles and ``dcterms:conformsTo``; a 1.0 ``info.json``
  without context, with an ``identifier``).
- URL: ``{id}/{region}/{size}/{rotation}/{quality}.jpg``, quality ``native`` (1.x) or ``default`` (2.x, 3.0);
  the whole image is ``full`` (1.x, 2.x) / ``max`` (3.0).
- Size (``size_parameter``): the long side at most ``max_size`` (more for a very elongated image, so that its short
  side keeps ``MIN_SHORTER_SIDE``; never over ``MAX_LONGER_SIDE``), never upscaled, inside maxWidth / maxHeight /
  maxArea, with only the syntaxes the compliance level allows. When the size is not known from ``info.json``
  (an estimate from the canvas, or nothing), level 2 gets ``!max_size,max_size`` (the server fits the box),
  level 1 ``w,`` / ``,h`` from the estimate, so the full-resolution file is never asked for blindly.
- Region and rotation from a ``SpecificResource`` selector: a pixel region needs level 1, a rotation by 90s
  level 2; what the level cannot serve is left out of the URL and named in ``not_applied``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

_V1_MARKERS = ("image/1/", "image-api/1", "library.stanford.edu/iiif/image-api")

# A very elongated image (a scroll of 62651 x 1976) fitted to max_size on its long side would be a strip of 32 px:
# the long side may then grow, up to the encoders' own cap on it, until the short side reaches the largest
# working side of vislink's encoders (SSCD's 288; pool5 uses 256).
MIN_SHORTER_SIDE = 288
MAX_LONGER_SIDE = 4096  # vislink.encoder.images caps the longer side of every input at this


def long_side_for(width: int, height: int, max_size: int) -> int:
    """The long side to ask for: ``max_size``, or more for an elongated image (see MIN_SHORTER_SIDE)."""
    shorter, longer = min(width, height), max(width, height)
    if shorter * max_size >= MIN_SHORTER_SIDE * longer:
        return max_size
    return max(max_size, min(MAX_LONGER_SIDE, math.ceil(longer * MIN_SHORTER_SIDE / shorter)))


@dataclass
class ImageService:
    """An IIIF Image API service as a manifest or its info.json describes it."""

    id: str
    version: int = 2  # Image API major version: 1, 2 or 3
    level: int | None = None  # compliance level, None when not stated
    width: int | None = None
    height: int | None = None
    max_width: int | None = None
    max_height: int | None = None
    max_area: int | None = None
    sizes: list[tuple[int, int]] = field(default_factory=list)
    from_info: bool = False  # True once completed from info.json (the size is then the image's own)

    @property
    def info_url(self) -> str:
        return f"{self.id.rstrip('/')}/info.json"

    @property
    def quality(self) -> str:
        return "native" if self.version == 1 else "default"

    @property
    def full(self) -> str:
        return "max" if self.version >= 3 else "full"

    def image_url(self, max_size: int = 1024, region: str | None = None, rotation: str | None = None) -> str:
        return self.request(max_size, region, rotation)[0]

    def request(self, max_size: int = 1024, region: str | None = None,
                rotation: str | None = None) -> tuple[str, list[str]]:
        """(image URL, what of the region / rotation asked for the level could not serve)."""
        not_applied = []
        region_param, dims = "full", (self.width, self.height)
        if region and region not in ("full", "max"):
            if self.level == 0:
                not_applied.append(f"region {region} (level 0 serves only the full image)")
            else:
                region_param, dims = region, self.region_size(region)
        rotation_param = "0"
        if rotation and rotation not in ("0", "0.0"):
            quarter = re.fullmatch(r"(!?)(90|180|270)(?:\.0*)?", rotation.strip())
            if quarter and not quarter.group(1) and (self.level is None or self.level >= 2):
                rotation_param = quarter.group(2)
            else:
                not_applied.append(f"rotation {rotation} (level {self.level} serves rotations by 90 degrees "
                                   "only at level 2, mirroring not at all)")
        size = self.size_parameter(max_size, *dims, whole=region_param == "full")
        url = f"{self.id.rstrip('/')}/{region_param}/{size}/{rotation_param}/{self.quality}.jpg"
        return url, not_applied

    def region_size(self, region: str) -> tuple[int | None, int | None]:
        """The pixel size of an Image API region (``x,y,w,h``, ``pct:x,y,w,h``, ``square``), when computable."""
        W, H = self.width, self.height
        m = re.fullmatch(r"\s*(pct:)?([\d.]+),([\d.]+),([\d.]+),([\d.]+)\s*", region)
        if m and not m.group(1):
            x, y, w, h = (float(v) for v in m.groups()[1:])
            if W and H:  # clipped to the image, as the server does
                w, h = min(w, W - x), min(h, H - y)
            return (int(w), int(h)) if w > 0 and h > 0 else (None, None)
        if m and W and H:
            return int(W * float(m.group(4)) / 100), int(H * float(m.group(5)) / 100)
        if region == "square" and W and H:
            return min(W, H), min(W, H)
        return None, None

    def size_parameter(self, max_size: int = 1024, width: int | None = None, height: int | None = None, *,
                       whole: bool = True) -> str:
        """The size segment fetching the image (or a region of ``width`` x ``height``) at most ``max_size`` on its
        long side (never upscaled), within the service's limits, using only what its compliance level allows."""
        W, H = (width, height) if width or height else (self.width, self.height)
        level = self.level
        if level == 0 or (level is None and self.sizes and whole):
            return self._listed_size(W, H, max_size) if whole else self.full
        confined = level is None or level >= 2
        if not (W and H) or not self.from_info:
            # The size is an estimate (the canvas) or unknown: let the server fit the box when it can.
            if confined:
                side = long_side_for(W, H, max_size) if W and H else max_size
                return f"!{side},{side}"
            if not (W and H):
                return f"{max_size},"
        side = long_side_for(W, H, max_size)
        limits = [side / W, side / H]
        server = [v for v in ((self.max_width or 0) / W, (self.max_height or self.max_width or 0) / H,
                              math.sqrt((self.max_area or 0) / (W * H))) if v > 0]
        scale = min([1.0, *limits, *server])
        if server and min(server) <= scale:
            scale *= 0.995  # the server rounds the other side; stay safely inside its limits
        if scale >= 1.0:
            return self.full
        if W >= H:  # (the epsilon: 62651 * (1024 / 62651) is 1023.99...)
            return f"{max(1, int(W * scale + 1e-6))},"
        return f",{max(1, int(H * scale + 1e-6))}"

    def _listed_size(self, W: int | None, H: int | None, max_size: int) -> str:
        if not self.sizes or not (W and H):
            return self.full
        scale = min(1.0, max_size / W, max_size / H)
        wanted = max(W, H) * scale
        allowed = [(w, h) for w, h in self.sizes if w <= W and h <= H]
        big_enough = sorted((max(w, h), w, h) for w, h in allowed if max(w, h) >= wanted)
        _, w, h = big_enough[0] if big_enough else max((max(w, h), w, h) for w, h in allowed or self.sizes)
        return f"{w}," if self.version < 3 else f"{w},{h}"


def service_from_entry(entry: dict) -> ImageService | None:
    """The Image API service a manifest's ``service`` entry describes, or None (search, auth, other services)."""
    service_id = entry.get("id") or entry.get("@id")
    if not service_id or not isinstance(service_id, str):
        return None
    kind = entry.get("type") or entry.get("@type") or ""
    kind = str(kind[0] if isinstance(kind, list) and kind else kind)
    text = " ".join(_strings(entry.get("@context")) + _strings(entry.get("profile"))
                    + _strings(entry.get("dcterms:conformsTo")) + _strings(entry.get("conformsTo")))
    if kind.startswith("ImageService") and kind[-1:].isdigit():
        version = int(kind[-1])
    elif "image/3" in text:
        version = 3
    elif "image/2" in text:
        version = 2
    elif any(marker in text for marker in _V1_MARKERS):
        version = 1
    else:
        return None
    sizes = _sizes(entry.get("sizes"))
    return ImageService(_base_id(service_id), version=version, level=_level(text), width=positive_int(entry.get("width")),
                        height=positive_int(entry.get("height")), sizes=sizes)


def service_from_info(info: dict, declared: ImageService) -> ImageService:
    """The service completed from its ``info.json``: version, level, size, limits and listed sizes."""
    context = " ".join(_strings(info.get("@context")))
    profiles = info.get("profile")
    profiles = profiles if isinstance(profiles, list) else [profiles]
    text = " ".join([context, *_strings(profiles), *_strings(info.get("dcterms:conformsTo"))])
    if "image/3" in context or info.get("type") == "ImageService3":
        version = 3
    elif "image/2" in context:
        version = 2
    elif any(marker in context for marker in _V1_MARKERS) or ("identifier" in info and not context):
        version = 1
    else:
        version = declared.version
    limits: dict[str, Any] = {k: info.get(k) for k in ("maxWidth", "maxHeight", "maxArea")}
    for p in profiles:  # v2 puts them in the profile's description object
        if isinstance(p, dict):
            for k in limits:
                limits[k] = limits[k] or p.get(k)
    level = _level(text)
    return ImageService(
        id=_base_id(str(info.get("id") or info.get("@id") or declared.id)), version=version,
        level=level if level is not None else declared.level,
        width=positive_int(info.get("width")), height=positive_int(info.get("height")),
        max_width=positive_int(limits["maxWidth"]), max_height=positive_int(limits["maxHeight"]), max_area=positive_int(limits["maxArea"]),
        sizes=_sizes(info.get("sizes")) or declared.sizes, from_info=True,
    )


def _base_id(service_id: str) -> str:
    """A service id without the ``/info.json`` some publishers leave on it (the URL of the document, not the id)."""
    service_id = service_id.strip()
    return service_id[: -len("/info.json")] if service_id.endswith("/info.json") else service_id.rstrip("/")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _level(text: str) -> int | None:
    m = re.search(r"level\s*(\d)", text)
    return int(m.group(1)) if m else None


def _sizes(value: Any) -> list[tuple[int, int]]:
    if not isinstance(value, list):
        return []
    return [(int(s["width"]), int(s["height"])) for s in value
            if isinstance(s, dict) and positive_int(s.get("width")) and positive_int(s.get("height"))]


def positive_int(value: Any) -> int | None:
    """A width, height or limit as IIIF documents give it (int, float or string): a positive int, else None."""
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 else None
