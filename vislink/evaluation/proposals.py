"""Building proposed links over a whole collection (``vislink proposals build``, docs/discovery.md).

Every indexed image of the variant searches its top ``k``: exactly, in memory (``ranking.all_pairs_neighbours``:
the stored vectors read once, blocks of one matrix product) while the vectors fit in ``ALL_PAIRS_MAX_FLOATS``;
beyond, batched ``query_batch`` searches through ``ranking.nearest_neighbours`` with the index's HNSW graph. The
rule (``rule="mutual"``, the default): a pair is a candidate when the two are **mutual nearest neighbours** (each
in the other's top ``k``) and their cosine similarity is at least ``min_score``; its rank is the worse of the two
ranks. ``rule="either"`` keeps a pair when either is in the other's top ``k`` (rank: the better of the two);
benchmarks/proposals.py compares the two. Options: ``cross_artist`` keeps only pairs whose artists differ
(unknown artists count as different); ``date_order`` only pairs of which one is dated strictly before the other
(the later can be a copy of the earlier); ``school`` / ``form`` search among the images of one school or form
only; ``verify`` keeps only pairs that local features verify geometrically (``vislink.local``). The graph's
exclusions (linked, refused, one group, same file, decided) and the storage are
``vislink.graph.proposals.store_proposals``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import select

from vislink.config import get_settings
from vislink.errors import ConfigError, NotFound, VislinkError
from vislink.evaluation.ranking import all_pairs_neighbours, nearest_neighbours
from vislink.graph.proposals import Candidate, store_proposals
from vislink.index import AnyOf
from vislink.store import Image, ImageDescriptor, get_collection, get_variant, session_scope

log = logging.getLogger(__name__)

DEFAULT_K = 10
# --min-score by variant, measured with benchmarks/proposals.py on paintings_linked (groups hidden, mutual top 10):
# the threshold with precision ~1 that keeps the most true pairs (docs/discovery.md). Sum-pooled VGG16 scores run
# high (unrelated paintings score 0.5-0.7), SSCD's low (unrelated ~0.1): one number cannot serve both.
MEASURED_MIN_SCORES = {"vgg16-pool5-sum": 0.75, "sscd-distilled": 0.5}
DEFAULT_MIN_SCORE = 0.5  # variants not measured: an SSCD-like threshold; check `proposals list` and set --min-score
DEFAULT_RULE = "mutual"
RULES = ("mutual", "either")
# Exact all-pairs search in memory up to this many float32s of vectors (512 MB: 250,000 x 512, 62,500 x 2048);
# each block of rows is sized so that its score matrix holds at most ALL_PAIRS_BLOCK_FLOATS (256 MB).
ALL_PAIRS_MAX_FLOATS = 128 * 2**20
ALL_PAIRS_BLOCK_FLOATS = 64 * 2**20
# Images searched between two progress reports / cancellation checks of a build job.
PROGRESS_CHUNK = 1024


@dataclass
class BuildReport:
    collection: str
    variant: str
    k: int
    min_score: float
    rule: str = DEFAULT_RULE
    n_images: int = 0
    n_mutual: int = 0  # pairs the rule keeps above min_score, before the options and the graph's exclusions
    n_cross_artist_dropped: int = 0
    n_date_dropped: int = 0
    n_unverified_dropped: int = 0
    restricted_to: str = ""  # "school Italian", "form painting": only those images were searched
    stored: int = 0
    replaced: int = 0
    excluded: dict = field(default_factory=dict)

    def summary(self) -> str:
        excluded = ", ".join(f"{n} {why}" for why, n in sorted(self.excluded.items())) or "none"
        extra = []
        if self.n_cross_artist_dropped:
            extra.append(f"{self.n_cross_artist_dropped} same-artist dropped")
        if self.n_date_dropped:
            extra.append(f"{self.n_date_dropped} not in date order dropped")
        if self.n_unverified_dropped:
            extra.append(f"{self.n_unverified_dropped} unverified dropped")
        what = "mutual pairs" if self.rule == "mutual" else "pairs (either in the other's top k)"
        among = f" ({self.restricted_to})" if self.restricted_to else ""
        return (f"{self.collection} / {self.variant}: {self.n_images} images{among} searched (top {self.k}), "
                f"{self.n_mutual} {what} with score >= {self.min_score:g}"
                + (f" ({'; '.join(extra)})" if extra else "")
                + f"; excluded: {excluded}; {self.stored} open proposals stored ({self.replaced} replaced)")

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("collection", "variant", "k", "min_score", "rule", "n_images",
                                              "n_mutual", "n_cross_artist_dropped", "n_date_dropped",
                                              "n_unverified_dropped", "restricted_to", "stored", "replaced",
                                              "excluded")}


def mutual_pairs(neighbours: dict[int, list[tuple[int, float]]], min_score: float) -> list[Candidate]:
    """The rule: pairs each in the other's list, with a score >= ``min_score``; rank = the worse of the two."""
    rank_of = {q: {pid: r for r, (pid, _s) in enumerate(hits, start=1)} for q, hits in neighbours.items()}
    out = []
    for q, hits in neighbours.items():
        for r, (pid, score) in enumerate(hits, start=1):
            if q < pid and score >= min_score and q in rank_of.get(pid, {}):
                out.append(Candidate(q, pid, score, max(r, rank_of[pid][q])))
    return out


def either_pairs(neighbours: dict[int, list[tuple[int, float]]], min_score: float) -> list[Candidate]:
    """The looser rule: pairs one of which is in the other's list, score >= ``min_score``; rank = the better."""
    best: dict[tuple[int, int], Candidate] = {}
    for q, hits in neighbours.items():
        for r, (pid, score) in enumerate(hits, start=1):
            if score < min_score or pid == q:
                continue
            key = (min(q, pid), max(q, pid))
            seen = best.get(key)
            if seen is None or r < seen.rank:
                best[key] = Candidate(key[0], key[1], score, r)
    return sorted(best.values(), key=lambda c: (c.a, c.b))


def in_date_order(a: tuple[int | None, int | None], b: tuple[int | None, int | None]) -> bool:
    """True when one of two (year_start, year_end) spans ends strictly before the other begins: the later can
    be a copy of the earlier. Undated (no year at all) or overlapping spans: False."""
    def span(d):
        lo = d[0] if d[0] is not None else d[1]
        hi = d[1] if d[1] is not None else d[0]
        return lo, hi

    (a_lo, a_hi), (b_lo, b_hi) = span(a), span(b)
    if a_lo is None or b_lo is None:
        return False
    return a_hi < b_lo or b_hi < a_lo


def _one_value(session, coll_id: int, column, wanted: str, what: str) -> tuple:
    """The stored spellings of ``wanted`` (case-insensitive) in ``column`` of the collection; an error listing
    the known values when there is none."""
    values = [v for v in session.scalars(select(column).where(Image.collection_id == coll_id, column.is_not(None))
                                         .distinct()) if v]
    match = tuple(v for v in values if v.strip().lower() == wanted.strip().lower())
    if not match:
        known = ", ".join(sorted(values)[:30]) or "none recorded"
        raise ConfigError(f"no image of this collection has {what} {wanted!r}; known: {known}")
    return match


def default_min_score(variant: str) -> float:
    """The measured threshold of ``variant`` (``MEASURED_MIN_SCORES``), else ``DEFAULT_MIN_SCORE``."""
    return MEASURED_MIN_SCORES.get(variant, DEFAULT_MIN_SCORE)


def build_proposals(collection: str, variant: str, *, k: int = DEFAULT_K, min_score: float | None = None,
                    rule: str = DEFAULT_RULE, cross_artist: bool = False, date_order: bool = False,
                    school: str | None = None, form: str | None = None, verify: bool = False,
                    batch_size: int = 64, exact: bool | None = None, index=None, db_url: str | None = None,
                    on_progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Search every indexed image of ``variant`` (of ``school`` / ``form`` only, when given), keep the pairs
    ``rule`` keeps with score >= ``min_score``, apply the options, and replace the variant's open proposals by
    them (verdicts are kept). ``min_score=None``: the variant's ``default_min_score``. ``exact``: None or True
    search exactly in memory while the vectors fit (``ALL_PAIRS_MAX_FLOATS``); beyond, None uses the index's
    graph and True the index's exact scan (slow); False always searches the index with its graph.
    ``on_progress(done, total)`` is called after each chunk of images searched (a job reports it and stops
    there when cancelled)."""
    from vislink.index import open_index

    if k < 1:
        raise VislinkError(f"--k must be >= 1, got {k}")
    if rule not in RULES:
        raise ConfigError(f"unknown proposal rule {rule!r}; known: {', '.join(RULES)}")
    settings = get_settings()
    db_url = db_url or settings.database_url
    flt: dict = {}
    restricted = []
    with session_scope(db_url) as session:
        coll = get_collection(session, collection)
        var = get_variant(session, coll, variant)
        coll_id, var_id, qname, var_name, dim = coll.id, var.id, var.qdrant_collection, var.name, var.dimension
        if var.layer == "bow":
            raise VislinkError(f"variant {variant} is a bag of words (sparse): proposals need a dense variant")
        q = (select(ImageDescriptor.image_id).join(Image, Image.id == ImageDescriptor.image_id)
             .where(ImageDescriptor.variant_id == var_id, Image.collection_id == coll_id))
        for wanted, column, what in ((school, Image.school, "school"), (form, Image.form, "form")):
            if wanted:
                values = _one_value(session, coll_id, column, wanted, what)
                q = q.where(column.in_(values))
                flt[what] = values[0] if len(values) == 1 else AnyOf(values)
                restricted.append(f"{what} {' / '.join(values)}")
        ids = list(session.scalars(q.order_by(ImageDescriptor.image_id)))
        rows = session.execute(select(Image.id, Image.artist, Image.year_start, Image.year_end)
                               .where(Image.collection_id == coll_id)).all()
    artists = {r.id: r.artist for r in rows}
    dates = {r.id: (r.year_start, r.year_end) for r in rows}
    if min_score is None:
        min_score = default_min_score(var_name)
        if var_name not in MEASURED_MIN_SCORES:
            log.warning("no measured --min-score for %s: using %g (docs/discovery.md)", var_name, min_score)
    report = BuildReport(collection, var_name, k, float(min_score), rule=rule, n_images=len(ids),
                         restricted_to=", ".join(restricted))
    index = index or open_index(settings)
    if not index.collection_exists(qname):
        raise NotFound(f"the index has no collection {qname} for variant {variant} of {collection!r}: "
                       "re-ingest or reconcile the collection")
    if on_progress:
        on_progress(0, len(ids))
    if exact is not False and len(ids) * dim <= ALL_PAIRS_MAX_FLOATS:
        # The ids are the variant's images of the school / form asked for: searching among them is the filter.
        block = max(64, min(PROGRESS_CHUNK, ALL_PAIRS_BLOCK_FLOATS // max(len(ids), 1)))
        neighbours = all_pairs_neighbours(index, qname, ids, k, block=block, on_block=on_progress)
    else:
        neighbours = {}
        for start in range(0, len(ids), PROGRESS_CHUNK):
            neighbours.update(nearest_neighbours(index, qname, ids[start:start + PROGRESS_CHUNK], k,
                                                 batch_size=batch_size, exact=bool(exact), flt=flt or None))
            if on_progress:
                on_progress(min(start + PROGRESS_CHUNK, len(ids)), len(ids))
    candidates = (mutual_pairs if rule == "mutual" else either_pairs)(neighbours, float(min_score))
    report.n_mutual = len(candidates)
    if cross_artist:
        kept = [c for c in candidates if not (artists.get(c.a) and artists.get(c.a) == artists.get(c.b))]
        report.n_cross_artist_dropped = len(candidates) - len(kept)
        candidates = kept
    if date_order:
        kept = [c for c in candidates if in_date_order(dates.get(c.a, (None, None)), dates.get(c.b, (None, None)))]
        report.n_date_dropped = len(candidates) - len(kept)
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
