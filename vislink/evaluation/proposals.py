"""Building proposed links over a whole collection (``vislink proposals build``, docs/discovery.md).

Every indexed image of the variant searches its top ``k`` (batched ``query_batch`` through
``ranking.nearest_neighbours``; exact up to ``EXACT_MAX_POINTS`` points, the index's HNSW graph beyond). The
rule: a pair is a candidate when the two are **mutual nearest neighbours** (each in the other's top ``k``) and
their cosine similarity is at least ``min_score``; its rank is the worse of the two ranks. ``cross_artist`` keeps
only pairs whose artists differ (unknown artists count as different); ``verify`` keeps only pairs that local
features verify geometrically (``vislink.local``). The graph's exclusions (linked, refused, one group, same
file, decided) and the storage are ``vislink.graph.proposals.store_proposals``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from vislink.config import get_settings
from vislink.errors import NotFound, VislinkError
from vislink.evaluation.ranking import nearest_neighbours
from vislink.graph.proposals import Candidate, store_proposals
from vislink.store import Image, ImageDescriptor, get_collection, get_variant, session_scope

log = logging.getLogger(__name__)

DEFAULT_K = 10
DEFAULT_MIN_SCORE = 0.5
EXACT_MAX_POINTS = 20_000


@dataclass
class BuildReport:
    collection: str
    variant: str
    k: int
    min_score: float
    n_images: int = 0
    n_mutual: int = 0  # mutual top-k pairs above min_score, before the options and the graph's exclusions
    n_cross_artist_dropped: int = 0
    n_unverified_dropped: int = 0
    stored: int = 0
    replaced: int = 0
    excluded: dict = field(default_factory=dict)

    def summary(self) -> str:
        excluded = ", ".join(f"{n} {why}" for why, n in sorted(self.excluded.items())) or "none"
        extra = []
        if self.n_cross_artist_dropped:
            extra.append(f"{self.n_cross_artist_dropped} same-artist dropped")
        if self.n_unverified_dropped:
            extra.append(f"{self.n_unverified_dropped} unverified dropped")
        return (f"{self.collection} / {self.variant}: {self.n_images} images searched (top {self.k}), "
                f"{self.n_mutual} mutual pairs with score >= {self.min_score:g}"
                + (f" ({'; '.join(extra)})" if extra else "")
                + f"; excluded: {excluded}; {self.stored} open proposals stored ({self.replaced} replaced)")


def mutual_pairs(neighbours: dict[int, list[tuple[int, float]]], min_score: float) -> list[Candidate]:
    """The rule: pairs each in the other's list, with a score >= ``min_score``; rank = the worse of the two."""
    rank_of = {q: {pid: r for r, (pid, _s) in enumerate(hits, start=1)} for q, hits in neighbours.items()}
    out = []
    for q, hits in neighbours.items():
        for r, (pid, score) in enumerate(hits, start=1):
            if q < pid and score >= min_score and q in rank_of.get(pid, {}):
                out.append(Candidate(q, pid, score, max(r, rank_of[pid][q])))
    return out


def build_proposals(collection: str, variant: str, *, k: int = DEFAULT_K, min_score: float = DEFAULT_MIN_SCORE,
                    cross_artist: bool = False, verify: bool = False, batch_size: int = 64, exact: bool | None = None,
                    index=None, db_url: str | None = None) -> BuildReport:
    """Search every indexed image of ``variant``, keep mutual top-``k`` pairs with score >= ``min_score``, and
    replace the variant's open proposals by them (verdicts are kept). ``exact=None``: exact search up to
    ``EXACT_MAX_POINTS`` points."""
    from vislink.index import open_index

    if k < 1:
        raise VislinkError(f"--k must be >= 1, got {k}")
    settings = get_settings()
    db_url = db_url or settings.database_url
    with session_scope(db_url) as session:
        coll = get_collection(session, collection)
        var = get_variant(session, coll, variant)
        coll_id, var_id, qname, var_name = coll.id, var.id, var.qdrant_collection, var.name
        if var.layer == "bow":
            raise VislinkError(f"variant {variant} is a bag of words (sparse): proposals need a dense variant")
        ids = list(session.scalars(select(ImageDescriptor.image_id).join(Image, Image.id == ImageDescriptor.image_id)
                                   .where(ImageDescriptor.variant_id == var_id, Image.collection_id == coll_id)
                                   .order_by(ImageDescriptor.image_id)))
        artists = dict(session.execute(select(Image.id, Image.artist).where(Image.collection_id == coll_id)).all())
    report = BuildReport(collection, var_name, k, float(min_score), n_images=len(ids))
    index = index or open_index(settings)
    if not index.collection_exists(qname):
        raise NotFound(f"the index has no collection {qname} for variant {variant} of {collection!r}: "
                       "re-ingest or reconcile the collection")
    if exact is None:
        exact = len(ids) <= EXACT_MAX_POINTS
    neighbours = nearest_neighbours(index, qname, ids, k, batch_size=batch_size, exact=exact)
    candidates = mutual_pairs(neighbours, float(min_score))
    report.n_mutual = len(candidates)
    if cross_artist:
        kept = [c for c in candidates if not (artists.get(c.a) and artists.get(c.a) == artists.get(c.b))]
        report.n_cross_artist_dropped = len(candidates) - len(kept)
        candidates = kept
    if verify and candidates:
        candidates = _verified(candidates, report, db_url)
    with session_scope(db_url) as session:
        counts = store_proposals(session, coll_id, var_name, candidates)
    report.stored, report.replaced, report.excluded = counts["stored"], counts["replaced"], counts["excluded"]
    log.info("%s", report.summary())
    return report


def _verified(candidates: list[Candidate], report: BuildReport, db_url: str) -> list[Candidate]:
    from vislink.local.matching import verify
    from vislink.search.verify import stored_features

    features = stored_features(sorted({i for c in candidates for i in (c.a, c.b)}), db_url=db_url)
    kept = []
    for c in candidates:
        fa, fb = features.get(c.a), features.get(c.b)
        if fa is not None and fb is not None and verify(fa, fb).verified:
            kept.append(c)
    report.n_unverified_dropped = len(candidates) - len(kept)
    return kept
