"""Detail search in the transformations benchmark (docs/detail.md): a ``-regions`` variant is ranked by its regions,
as ``search(regions="auto")`` ranks a collection: each region of the transformed query searched among the gallery's
stored regions (MaxSim of one query vector), every gallery image keeping its best, the whole gallery ranked (exact).

Costs one more pool5 pass per gallery image and per query beside the global vectors the benchmark caches (regions
are not cached)."""

from __future__ import annotations

from collections.abc import Sequence

from vislink.evaluation.metrics import target_ranks
from vislink.evaluation.ranking import EvalQuery, QueryResult

RANKING = "regions auto"  # the run's params["ranking"] for a -regions variant


def rank_by_regions(variant: str, gallery_images: Sequence, gallery_ids: Sequence[int], queries: Sequence[EvalQuery],
                    query_images: Sequence, *, weights=None) -> list[QueryResult]:
    """The rank of each query's targets among ``gallery_ids`` (the points of ``gallery_images``), queries given
    as images (``query_images``, one per query), both encoded as ``variant`` (a ``-regions`` variant)."""
    from vislink.encoder.regions import encode_regions
    from vislink.index.base import Point
    from vislink.index.numpy_index import NumpyIndex
    from vislink.search.detail import merge_region_hits

    stored = encode_regions(list(gallery_images), variant, weights=weights)
    index = NumpyIndex()
    index.create_collection(variant, int(stored[0].vectors.shape[1]), regions=True)
    index.upsert(variant, [Point(int(i), r.vector) for i, r in zip(gallery_ids, stored)],
                 regions=[r.vectors for r in stored])
    results = []
    for query, image in zip(queries, query_images):
        [regions] = encode_regions([image], variant, weights=weights)
        hits, _ = merge_region_hits(index.query_regions(variant, regions.vectors, limit=len(gallery_ids)),
                                    len(gallery_ids))
        results.append(QueryResult(query, target_ranks([h.id for h in hits], query.targets, query=query.query_id)))
    return results
