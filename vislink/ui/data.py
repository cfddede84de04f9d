"""Read-only queries the pages need, returning plain dataclasses (cacheable, detached from sessions).

Every *edit* goes through ``vislink.graph`` (audit, versions, conflicts); reading is done here with
plain SQL so that a page of 20 results costs one query per kind of information, never one per result.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, func, or_, select

from vislink.errors import NotFound
from vislink.store import (
    Collection,
    DescriptorVariant,
    EvaluationQueryResult,
    EvaluationRun,
    Group,
    GroupMember,
    Image,
    ImageStatus,
    Link,
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


@dataclass(frozen=True)
class LinkInfo:
    id: int
    other_id: int
    type: str
    note: str | None
    annotator_id: int | None


@dataclass(frozen=True)
class GroupInfo:
    id: int
    collection_id: int | None
    name: str | None
    note: str | None
    version: int
    member_ids: tuple[int, ...]


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


# -- links and groups --------------------------------------------------------------------------

def links_of(image_id: int) -> list[LinkInfo]:
    with session_scope() as s:
        rows = s.scalars(select(Link).where(or_(Link.image_a_id == image_id, Link.image_b_id == image_id))
                         .order_by(Link.id))
        return [LinkInfo(link.id, link.image_b_id if link.image_a_id == image_id else link.image_a_id,
                         link.type.value if hasattr(link.type, "value") else str(link.type), link.note,
                         link.annotator_id) for link in rows]


def link_between(a: int, b: int) -> LinkInfo | None:
    lo, hi = sorted((int(a), int(b)))
    with session_scope() as s:
        link = s.scalars(select(Link).where(Link.image_a_id == lo, Link.image_b_id == hi)).first()
        if link is None:
            return None
        return LinkInfo(link.id, hi if a == lo else lo, link.type.value, link.note, link.annotator_id)


def groups_of(image_ids: Iterable[int]) -> dict[int, list[int]]:
    """image id -> ids of the groups it belongs to."""
    ids = sorted({int(i) for i in image_ids})
    out: dict[int, list[int]] = defaultdict(list)
    if not ids:
        return out
    with session_scope() as s:
        for image_id, group_id in s.execute(select(GroupMember.image_id, GroupMember.group_id)
                                            .where(GroupMember.image_id.in_(ids)).order_by(GroupMember.group_id)):
            out[image_id].append(group_id)
    return out


def group(group_id: int) -> GroupInfo:
    with session_scope() as s:
        g = s.get(Group, int(group_id))
        if g is None:
            raise NotFound(f"no group with id {group_id}")
        members = tuple(sorted(m.image_id for m in g.members))
        return GroupInfo(g.id, g.collection_id, g.name, g.note, g.version, members)


def list_groups(collection_id: int | None = None, limit: int = 500) -> list[GroupInfo]:
    with session_scope() as s:
        q = select(Group).order_by(Group.id.desc()).limit(limit)
        if collection_id is not None:
            q = q.where(Group.collection_id == collection_id)
        return [GroupInfo(g.id, g.collection_id, g.name, g.note, g.version, tuple(sorted(m.image_id for m in g.members)))
                for g in s.scalars(q)]


def link_status(query_id: int | None, result_ids: Sequence[int]) -> dict[int, str]:
    """A short text per result: its link to the query (when the query is an image of the collection),
    whether it shares the query's group, and otherwise the group(s) it belongs to."""
    result_ids = [int(i) for i in result_ids]
    status: dict[int, list[str]] = {i: [] for i in result_ids}
    memberships = groups_of(result_ids + ([query_id] if query_id is not None else []))
    if query_id is not None:
        with session_scope() as s:
            rows = s.execute(select(Link.image_a_id, Link.image_b_id, Link.type).where(or_(
                and_(Link.image_a_id == query_id, Link.image_b_id.in_(result_ids)),
                and_(Link.image_b_id == query_id, Link.image_a_id.in_(result_ids)))))
            for a, b, kind in rows:
                other = b if a == query_id else a
                status[other].append(f"linked: {kind.value if hasattr(kind, 'value') else kind}")
        query_groups = set(memberships.get(query_id, ()))
    else:
        query_groups = set()
    for rid in result_ids:
        groups = memberships.get(rid, [])
        shared = [g for g in groups if g in query_groups]
        if shared:
            status[rid].append("in the query's group " + ", ".join(f"#{g}" for g in shared))
        elif groups:
            status[rid].append("group " + ", ".join(f"#{g}" for g in groups))
    return {rid: "; ".join(parts) for rid, parts in status.items()}


# -- evaluation --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunInfo:
    id: int
    variant_name: str
    benchmark: str | None
    collection: str | None
    started_at: datetime | None
    finished_at: datetime | None
    n_queries: int
    n_gallery: int
    weights_sha256: str | None
    split_name: str | None
    code_version: str | None
    metrics: dict[str, Any]


def evaluation_runs(limit: int = 500) -> list[RunInfo]:
    with session_scope() as s:
        names = dict(s.execute(select(Collection.id, Collection.name)).all())
        return [RunInfo(r.id, r.variant_name, r.benchmark, names.get(r.collection_id), r.started_at, r.finished_at,
                        r.n_queries, r.n_gallery, r.weights_sha256, r.split_name, r.code_version, dict(r.metrics or {}))
                for r in s.scalars(select(EvaluationRun).order_by(EvaluationRun.started_at.desc(), EvaluationRun.id.desc())
                                   .limit(limit))]


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
