"""Evaluate a collection's descriptor variants the paper's way, against the vector index it is searched in.

Queries: the images of the split's test part that have targets, their targets: the images linked to them in
the confirmed link graph (group cliques, positive and duplicate links). The search space is the whole
collection (train and val images, distractors included), searched exactly; the query never counts. Every
run is stored in SQL (``EvaluationRun`` and one ``EvaluationQueryResult`` per query) with the variant, the
weights' sha256, the split, the code version and the time.
"""

from __future__ import annotations

import logging
from typing import Sequence

from sqlalchemy import select

from vislink.config import get_settings
from vislink.errors import MissingSplit, NotFound, VislinkError
from vislink.evaluation.metrics import DEFAULT_CUTOFFS
from vislink.evaluation.ranking import EvalQuery, rank_sparse_targets, rank_targets
from vislink.evaluation.records import RunReport, code_version, store_run
from vislink.store import get_collection, get_variant, session_scope
from vislink.store import collection_variants as stored_variants
from vislink.store.models import (
    Collection,
    Image,
    ImageDescriptor,
    Split,
    SplitMember,
    SplitPart,
    utcnow,
)

log = logging.getLogger(__name__)


def _db_url(db_url: str | None) -> str:
    # The URL is resolved once per evaluation, so that its reads and its stored run go to the same database.
    return db_url or get_settings().database_url


def collection_variants(collection: str, *, db_url: str | None = None) -> list[str]:
    """Names of the descriptor variants a collection has (what ``evaluate`` runs when given none)."""
    with session_scope(_db_url(db_url)) as session:
        return [v.name for v in stored_variants(session, get_collection(session, collection))]


def require_split(collection: str, split: str | None, *, db_url: str | None = None) -> None:
    """``MissingSplit`` unless ``collection`` has a split named ``split`` (None: no split needed)."""
    if split is None:
        return
    with session_scope(_db_url(db_url)) as session:
        coll = get_collection(session, collection)
        names = list(session.scalars(select(Split.name).where(Split.collection_id == coll.id)))
    if split not in names:
        raise MissingSplit(collection, split, names)


def build_queries(session, collection_id: int, variant_id: int, *, split: str | None = "default",
                  part: str = "test") -> tuple[list[EvalQuery], int]:
    """The queries of a collection and the number of its indexed images.

    ``split=None`` makes every indexed image with targets a query (a collection without a split)."""
    from vislink.graph.build import build_graph

    indexed = set(session.scalars(select(ImageDescriptor.image_id).where(ImageDescriptor.variant_id == variant_id)))
    if split is None:
        candidates = indexed
    else:
        split_row = session.scalar(select(Split).where(Split.collection_id == collection_id, Split.name == split))
        if split_row is None:
            names = session.scalars(select(Split.name).where(Split.collection_id == collection_id)).all()
            raise MissingSplit(session.get(Collection, collection_id).name, split, names)
        try:
            part_value = SplitPart(part)
        except ValueError:
            raise VislinkError(f"unknown split part {part!r}; use one of "
                               f"{', '.join(p.value for p in SplitPart)}") from None
        candidates = set(session.scalars(select(SplitMember.image_id).where(
            SplitMember.split_id == split_row.id, SplitMember.part == part_value))) & indexed
    graph = build_graph(session, collection_id)
    targets_of: dict[int, tuple[int, ...]] = {}
    for image_id in sorted(candidates):
        if image_id in graph:
            targets = tuple(sorted(n for n in graph.neighbors(image_id) if n in indexed and n != image_id))
            if targets:
                targets_of[image_id] = targets
    refs: dict[int, str] = {}
    if targets_of:
        refs = {i: ref for i, ref in session.execute(select(Image.id, Image.source_ref)
                                                     .where(Image.id.in_(list(targets_of))))}
    queries = [EvalQuery(query_id=i, targets=t, ref=refs.get(i), image_id=i) for i, t in targets_of.items()]
    return queries, len(indexed)


def evaluate_collection(collection: str, variant: str, *, split: str | None = "default", part: str = "test",
                        cutoffs: Sequence[int] = DEFAULT_CUTOFFS, max_depth: int | None = None,
                        batch_size: int = 64, index=None, db_url: str | None = None, store: bool = True,
                        progress: bool = True) -> RunReport:
    """Evaluate one descriptor variant of a collection; store the run unless ``store=False``.

    ``<variant>+verify[K]``: the variant's ranking with each query's top K re-ranked by geometric verification
    (``evaluation.verify``; the stored images' local features from the data folder's feature cache)."""
    from vislink.index import open_index
    from vislink.local.rerank import parse_reranked

    started = utcnow()
    db_url = _db_url(db_url)
    base_variant, verify_top = parse_reranked(variant)
    with session_scope(db_url) as session:
        coll = get_collection(session, collection)
        var = get_variant(session, coll, base_variant)
        queries, n_indexed = build_queries(session, coll.id, var.id, split=split, part=part)
        coll_id, var_id, qname = coll.id, var.id, var.qdrant_collection
        dimension, weights_name, weights_sha = var.dimension, var.weights_name, var.weights_sha256
        layer = var.layer
    if not queries:
        raise VislinkError(f"nothing to evaluate in {collection!r} ({variant}): no "
                           f"{'image' if split is None else part + ' image of split ' + repr(split)} "
                           "has an indexed linked image (import or annotate links, and assign a split)")
    index = index or open_index(get_settings())
    if not index.collection_exists(qname):
        raise NotFound(f"the index has no collection {qname} for variant {variant} of {collection!r}: "
                       "re-ingest or reconcile the collection")
    n_gallery = index.count(qname)
    if n_gallery != n_indexed:
        log.warning("%s: the index holds %d points, the store lists %d encoded images: reconcile the collection",
                    qname, n_gallery, n_indexed)
    cutoffs = tuple(sorted(set(cutoffs)))
    if layer == "bow":  # a bag of visual words (sift-bow): sparse vectors
        results = rank_sparse_targets(index, qname, queries, depth=max(cutoffs), max_depth=max_depth,
                                      progress=progress)
    else:
        results = rank_targets(index, qname, queries, depth=max(cutoffs), max_depth=max_depth,
                               batch_size=batch_size, progress=progress)
    verify_params = {}
    if verify_top is not None:
        from vislink.evaluation.verify import top_candidates, verified_results
        from vislink.search.verify import stored_features

        candidates = top_candidates(index, qname, queries, verify_top, sparse=layer == "bow")
        needed = sorted({q.query_id for q in queries} | {p for ids in candidates.values() for p in ids})
        known = stored_features(needed, settings=get_settings(), db_url=db_url)
        results, verify_params = verified_results(results, candidates, known.get, verify_top, progress=progress)
    report = RunReport(
        variant=variant, results=results, n_gallery=n_gallery, dimension=dimension, collection=collection,
        split_name=split, weights_name=weights_name, weights_sha256=weights_sha, cutoffs=cutoffs,
        params={"part": part, "max_depth": max_depth, "index_backend": getattr(index, "name", None),
                "qdrant_collection": qname, **verify_params},
        code_version=code_version(), started_at=started, finished_at=utcnow(),
    )
    if store:
        with session_scope(db_url) as session:
            store_run(session, report, collection_id=coll_id, variant_id=var_id)
    log.info("%s %s: %d queries, %d in the gallery, R@20 %.3f", collection, variant, report.n_queries, n_gallery,
             report.metrics.get("R@20", float("nan")))
    return report


def evaluate_variants(collection: str, variants: Sequence[str] | None = None, **kwargs) -> list[RunReport]:
    """Evaluate several variants (default: every variant of the collection), one stored run each."""
    names = list(variants) if variants else collection_variants(collection, db_url=kwargs.get("db_url"))
    if not names:
        raise NotFound(f"collection {collection!r} has no descriptor variants yet (ingest images first)")
    return [evaluate_collection(collection, v, **kwargs) for v in names]
