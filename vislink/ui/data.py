"""Read-only queries the pages need, returning plain dataclasses (cacheable, detached from sessions).

Every *edit* goes through ``vislink.graph`` (audit, versions, conflicts). Questions about the graph (links,
groups, how results relate to the query) are ``vislink.graph.queries``, stored evaluation runs
``vislink.evaluation.records.recent_runs``; this module opens their sessions and reads collections and
images itself, with plain SQL, so that a page of 20 results costs one query per kind of information.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from sqlalchemy import func, or_, select

from vislink.errors import NotFound
from vislink.evaluation.records import RunInfo, recent_runs
from vislink.graph import queries
from vislink.graph.queries import GroupInfo, LinkInfo
from vislink.store import (
    Collection,
    DescriptorVariant,
    EvaluationQueryResult,
    Image,
    ImageStatus,
    get_collection,
    session_scope,
)

# Metadata shown for an image, in this order.
META_FIELDS = ("artist", "artist_dates", "title", "date_text", "technique", "location", "form", "type", "school",
               "timeframe", "source_ref", "width", "height")
# Payload fields the search page can filter on (all have payload indexes, so Qdrant applies them).
FACETS = ("artist", "school", "form", "type")


@dataclass(frozen=True)
class CollectionInfo:
    id: int
    name: str
    description: str | None
    n_images: int
    variants: tuple[str, ...]


@dataclass(frozen=True)
class ImageInfo:
    id: int
    collection_id: int
    sha256: str | None
    file_path: str | None
    status: str
    artist: str | None = None
    title: str | None = None
    date_text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"#{self.id} {self.artist or 'unknown artist'}: {self.title or 'untitled'}"


def _image_info(img: Image) -> ImageInfo:
    return ImageInfo(id=img.id, collection_id=img.collection_id, sha256=img.sha256, file_path=img.file_path,
                     status=img.status.value if hasattr(img.status, "value") else str(img.status),
                     artist=img.artist, title=img.title, date_text=img.date_text,
                     meta={k: getattr(img, k) for k in META_FIELDS if getattr(img, k) not in (None, "")})


# -- collections -------------------------------------------------------------------------------

def list_collections() -> list[CollectionInfo]:
    with session_scope() as s:
        counts = dict(s.execute(select(Image.collection_id, func.count()).where(Image.status == ImageStatus.done)
                                .group_by(Image.collection_id)).all())
        variants: dict[int, list[str]] = defaultdict(list)
        for cid, name in s.execute(select(DescriptorVariant.collection_id, DescriptorVariant.name)
                                   .order_by(DescriptorVariant.id)):
            variants[cid].append(name)
        return [CollectionInfo(c.id, c.name, c.description, counts.get(c.id, 0), tuple(variants[c.id]))
                for c in s.scalars(select(Collection).order_by(Collection.name))]


def collection_by_name(name: str) -> CollectionInfo:
    for info in list_collections():
        if info.name == name:
            return info
    with session_scope() as s:
        get_collection(s, name)  # raises the one "unknown collection" message
    raise NotFound(f"unknown collection {name!r}")  # removed meanwhile


def facet_values(collection_id: int, facet: str, limit: int = 5000) -> list[str]:
    """Distinct non-empty values of a metadata field in a collection (for filter widgets)."""
    if facet not in FACETS:
        raise ValueError(f"{facet} is not a filterable field ({', '.join(FACETS)})")
    column = getattr(Image, facet)
    with session_scope() as s:
        rows = s.execute(select(column).where(Image.collection_id == collection_id, column.is_not(None), column != "")
                         .distinct().order_by(column).limit(limit))
        return [r[0] for r in rows]


def year_bounds(collection_id: int) -> tuple[int, int] | None:
    with session_scope() as s:
        lo, hi = s.execute(select(func.min(Image.year_start), func.max(func.coalesce(Image.year_end, Image.year_start)))
                           .where(Image.collection_id == collection_id)).one()
    return (int(lo), int(hi)) if lo is not None and hi is not None else None


def build_filter(artists: Sequence[str] = (), schools: Sequence[str] = (), forms: Sequence[str] = (),
                 types: Sequence[str] = (), years: tuple[int, int] | None = None) -> dict[str, Any] | None:
    """The ``filters`` of ``vislink.search.search`` for the search page's widgets: a tuple of values
    matches any of them; ``year`` keeps works whose date range overlaps the chosen years."""
    flt: dict[str, Any] = {}
    for key, values in (("artist", artists), ("school", schools), ("form", forms), ("type", types)):
        if values:
            flt[key] = tuple(values)
    if years is not None:
        flt["year"] = (int(years[0]), int(years[1]))
    return flt or None


# -- images ------------------------------------------------------------------------------------

def images_by_ids(ids: Iterable[int]) -> dict[int, ImageInfo]:
    ids = sorted({int(i) for i in ids})
    if not ids:
        return {}
    with session_scope() as s:
        return {img.id: _image_info(img) for img in s.scalars(select(Image).where(Image.id.in_(ids)))}


def image(image_id: int) -> ImageInfo:
    found = images_by_ids([image_id])
    if image_id not in found:
        raise NotFound(f"no image with id {image_id}")
    return found[image_id]


def find_images(collection_id: int, text: str = "", *, limit: int = 50, offset: int = 0) -> list[ImageInfo]:
    """Encoded images of a collection whose artist or title contains ``text`` (case-insensitive)."""
    with session_scope() as s:
        q = select(Image).where(Image.collection_id == collection_id, Image.status == ImageStatus.done)
        if text.strip():
            pattern = f"%{text.strip().lower()}%"
            q = q.where(or_(func.lower(Image.artist).like(pattern), func.lower(Image.title).like(pattern)))
        return [_image_info(img) for img in s.scalars(q.order_by(Image.id).offset(offset).limit(limit))]


def count_images(collection_id: int, text: str = "") -> int:
    with session_scope() as s:
        q = select(func.count()).select_from(Image).where(Image.collection_id == collection_id,
                                                           Image.status == ImageStatus.done)
        if text.strip():
            pattern = f"%{text.strip().lower()}%"
            q = q.where(or_(func.lower(Image.artist).like(pattern), func.lower(Image.title).like(pattern)))
        return int(s.execute(q).scalar_one())


# -- links and groups (the graph's own read-only queries, in a session of their own) -----------

def links_of(image_id: int) -> list[LinkInfo]:
    with session_scope() as s:
        return queries.image_links(s, image_id)


def link_between(a: int, b: int) -> LinkInfo | None:
    with session_scope() as s:
        return queries.link_info(s, a, b)


def groups_of(image_ids: Iterable[int]) -> dict[int, list[int]]:
    """image id -> ids of the groups it belongs to."""
    with session_scope() as s:
        return queries.group_memberships(s, image_ids)


def group(group_id: int) -> GroupInfo:
    with session_scope() as s:
        return queries.group_info(s, group_id)


def list_groups(collection_id: int | None = None, limit: int = 500) -> list[GroupInfo]:
    with session_scope() as s:
        return queries.list_groups(s, collection_id, limit)


def link_status(query_id: int | None, result_ids: Sequence[int]) -> dict[int, str]:
    """A short text per result about its link or group relation to the query (``vislink.graph.link_status``)."""
    with session_scope() as s:
        return queries.link_status(s, query_id, result_ids)


# -- evaluation --------------------------------------------------------------------------------

def evaluation_runs(limit: int = 500) -> list[RunInfo]:
    with session_scope() as s:
        return recent_runs(s, limit=limit)


def evaluation_query_results(run_id: int, limit: int = 2000) -> list[dict[str, Any]]:
    with session_scope() as s:
        rows = s.scalars(select(EvaluationQueryResult).where(EvaluationQueryResult.run_id == run_id)
                         .order_by(EvaluationQueryResult.id).limit(limit))
        return [{"query": r.query_ref or r.query_image_id, "targets": r.n_targets, "weight": round(r.weight, 4),
                 "AP": None if r.average_precision is None else round(r.average_precision, 4),
                 "target ranks": ", ".join("-" if x is None else str(x) for x in (r.target_ranks or []))}
                for r in rows]


# R@20 (weighted, the paper's), recall@20 (unweighted; vislink.evaluation.metrics.summarize), also R[20].
_RECALL = re.compile(r"^(r|recall)\W*(\d+)\W*$", re.IGNORECASE)


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Nested metric dicts as ``outer.inner`` keys; only numbers are kept."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def recall_curves(metrics: dict) -> dict[str, dict[int, float]]:
    """``{series: {n: value}}`` from a run's metrics: series ``R`` (R@n keys), ``recall`` (recall@n keys),
    prefixed by the outer key for nested metrics (``test.R``)."""
    curves: dict[str, dict[int, float]] = defaultdict(dict)
    for key, value in flatten(metrics).items():
        prefix, _, last = key.rpartition(".")
        match = _RECALL.match(last)
        if match:
            name = "R" if match.group(1).lower() == "r" else "recall"
            curves[f"{prefix}.{name}" if prefix else name][int(match.group(2))] = value
    return dict(curves)
