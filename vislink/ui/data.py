"""Read-only queries the pages need, returning plain dataclasses (cacheable, detached from sessions).

Every *edit* goes through ``vislink.graph`` (audit, versions, conflicts). Questions about the graph (links,
groups, how results relate to the query) are ``vislink.graph.queries``, stored evaluation runs
``vislink.evaluation.records.recent_runs``; this module opens their sessions and reads collections and
images itself, with plain SQL, so that a page of 20 results costs one query per kind of information.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import func, or_, select

from vislink.errors import NotFound
from vislink.evaluation.records import RunInfo, recent_runs
from vislink.graph import queries
from vislink.graph.queries import GroupInfo, LinkInfo
from vislink.graph.titles import display_artist
from vislink.store import (
    Collection,
    DescriptorVariant,
    EvaluationQueryResult,
    EvaluationRun,
    Image,
    ImageStatus,
    get_collection,
    get_variant,
    session_scope,
)

# Metadata an art historian reads first, in this order (the image page, Compare, a result's details).
META_FIELDS = ("artist", "artist_dates", "title", "date_text", "technique", "location", "form", "type", "school",
               "timeframe")
# Where the image comes from and what the machine knows of it: shown folded away.
TECHNICAL_FIELDS = ("source_ref", "width", "height")
# extra keys that hold the web page of the work at its source, best first (WGA page, IIIF manifest, a URL column).
SOURCE_LINK_KEYS = ("wga_page_url", "page_url", "iiif_manifest", "url", "source_url")
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
    meta: dict[str, Any] = field(default_factory=dict)  # META_FIELDS that have a value, in that order
    technical: dict[str, Any] = field(default_factory=dict)  # TECHNICAL_FIELDS with a value
    source_link: str | None = None  # the work's page at its source (http/https), when known

    @property
    def label(self) -> str:
        return f"#{self.id} {display_artist(self.artist) or 'unknown artist'}: {self.title or 'untitled'}"

    @property
    def short_caption(self) -> str:
        """One short line for a thumbnail: artist (softened capitals), title, date, each cut to fit."""
        artist = _cut(display_artist(self.artist) or "unknown artist", 28)
        parts = [artist, _cut(self.title or "untitled", 40)] + ([self.date_text] if self.date_text else [])
        return " · ".join(parts)


def _cut(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1].rstrip() + "…"


def _source_link(img: Image) -> str | None:
    extra = img.extra or {}
    for value in [*(extra.get(k) for k in SOURCE_LINK_KEYS), img.source_ref]:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    return None


def _image_info(img: Image) -> ImageInfo:
    return ImageInfo(id=img.id, collection_id=img.collection_id, sha256=img.sha256, file_path=img.file_path,
                     status=img.status.value if hasattr(img.status, "value") else str(img.status),
                     artist=img.artist, title=img.title, date_text=img.date_text,
                     meta={k: getattr(img, k) for k in META_FIELDS if getattr(img, k) not in (None, "")},
                     technical={k: getattr(img, k) for k in TECHNICAL_FIELDS if getattr(img, k) not in (None, "")},
                     source_link=_source_link(img))


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


def images_with_sha256(collection_id: int, sha256: str) -> list[ImageInfo]:
    """Images of a collection stored from exactly these bytes (an upload that is already there)."""
    with session_scope() as s:
        return [_image_info(img) for img in s.scalars(select(Image).where(
            Image.collection_id == collection_id, Image.sha256 == sha256).order_by(Image.id))]


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


def list_groups(collection_id: int | None = None, limit: int = 500, text: str = "") -> list[GroupInfo]:
    """Groups, newest first; ``text`` finds them by title or number."""
    with session_scope() as s:
        return queries.list_groups(s, collection_id, limit, text=text)


def link_status(query_id: int | None, result_ids: Sequence[int]) -> dict[int, str]:
    """A short text per result about its link or group relation to the query (``vislink.graph.link_status``)."""
    with session_scope() as s:
        return queries.link_status(s, query_id, result_ids)


# -- what a score means -------------------------------------------------------------------------

def index_collection(collection: str, variant: str | None) -> tuple[str, str]:
    """``(variant name, Qdrant collection)`` of a collection's variant (None: its default one)."""
    with session_scope() as s:
        var = get_variant(s, get_collection(s, collection), variant)
        return var.name, var.qdrant_collection


@dataclass(frozen=True)
class ScoreScale:
    """The similarities of pairs of a collection's own images (a sample), to say how high a score is *for this
    variant*: max-pool and sum-pool scores live on different scales, and a random pair of paintings already
    scores 0.6 with some. ``pairs`` is sorted ascending."""

    variant: str
    n_images: int
    pairs: tuple[float, ...]

    @classmethod
    def from_vectors(cls, variant: str, vectors: np.ndarray) -> ScoreScale:
        """Every pair of these (l2-normalised) descriptors."""
        vectors = np.asarray(vectors, dtype=np.float32)
        n = len(vectors)
        if n < 2:
            return cls(variant, n, ())
        sims = vectors @ vectors.T
        upper = sims[np.triu_indices(n, k=1)]
        return cls(variant, n, tuple(float(x) for x in np.sort(upper)))

    def top_fraction(self, score: float) -> float | None:
        """The fraction of pairs that score at least ``score`` (None without a sample)."""
        if not self.pairs:
            return None
        return (len(self.pairs) - bisect_left(self.pairs, float(score) - 1e-9)) / len(self.pairs)

    def hint(self, score: float | None) -> str:
        """"top 0.5%": how rare a score this high is among the collection's pairs ("" without a sample)."""
        if score is None or len(self.pairs) < 10:
            return ""
        fraction = self.top_fraction(score)
        if fraction == 0:
            return f"above all {len(self.pairs)} pairs"
        pct = 100 * fraction
        return f"top {pct:.1f}%" if pct < 10 else f"top {pct:.0f}%"

    def quantile(self, q: float) -> float | None:
        if not self.pairs:
            return None
        return self.pairs[min(len(self.pairs) - 1, int(q * len(self.pairs)))]

    def legend(self) -> str:
        """One sentence for the results' header."""
        if len(self.pairs) < 10:
            return f"Scores are cosine similarities ({self.variant})."
        return (f"Scores are cosine similarities ({self.variant}); among {len(self.pairs):,} pairs of "
                f"{self.n_images} of this collection's images, 1% score above {self.quantile(0.99):.3f} and half "
                f"above {self.quantile(0.5):.3f}: \"top 1%\" under a result is how rare its score is here.")


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


def run_dimensions(run_ids: Iterable[int]) -> dict[int, int | None]:
    """run id -> descriptor dimension D (stored with the run's parameters), for Table 1."""
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return {}
    with session_scope() as s:
        return {rid: (params or {}).get("dimension") for rid, params in
                s.execute(select(EvaluationRun.id, EvaluationRun.params).where(EvaluationRun.id.in_(ids)))}


def best_variant(collection: str, variants: Sequence[str]) -> str | None:
    """The variant with the best stored evaluation of ``collection`` (mAP, then R@20), or None."""
    from vislink.evaluation.records import best_variant as best

    with session_scope() as s:
        return best(s, collection, list(variants))


def table1_cutoffs(available: Iterable[int], n_gallery: int) -> list[int]:
    """The R[n] columns of Table 1 for a gallery of ``n_gallery`` images (``vislink evaluate`` uses the same)."""
    from vislink.evaluation.reports import table1_cutoffs as columns

    return columns(available, n_gallery)


def table1(runs: Sequence[RunInfo], dimensions: dict[int, int | None] | None = None
           ) -> tuple[list[str], list[list[Any]]]:
    """The paper's Table 1 as ``vislink evaluate`` prints it: method, D, R[n]... and mAP in percent (one
    decimal), queries; the R[n] columns chosen by the size of the galleries (``table1_cutoffs``)."""
    dimensions = dimensions or {}
    available = {n for run in runs for n in recall_curves(run.metrics).get("R", {})}
    gallery = min((run.n_gallery for run in runs if run.n_gallery), default=0)
    cutoffs = table1_cutoffs(available, gallery)
    header = ["method", "D", *(f"R[{n}]" for n in cutoffs), "mAP", "queries"]
    rows = []
    for run in runs:
        curve = recall_curves(run.metrics).get("R", {})
        value = run.metrics.get("mAP")
        rows.append([run.variant_name, dimensions.get(run.id),
                     *(_percent(curve.get(n)) for n in cutoffs),
                     _percent(value if isinstance(value, (int, float)) else None), run.n_queries])
    return header, rows


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * float(value), 1)


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
