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


LOCALISATION_K = 10  # a found target counts for localisation when ranked within the top LOCALISATION_K
LOCALISATION_IOU = 0.5


def localise_queries(variant: str, gallery, usable: Sequence[int], results: Sequence[QueryResult], *,
                     weights=None) -> tuple[list[QueryResult], dict]:
    """``benchmark groups`` with boxes (docs/evaluation.md): each query whose manifest row has a ``query_box`` is
    re-ranked by regions, as ``search(region=)`` does (the crop encoded like any query, matched against every
    stored region of the gallery, exact); for its targets with a ``target_box`` found within the top
    ``LOCALISATION_K``, the predicted box (``detail.best_boxes``) is compared with the ground truth. Queries without
    a box keep their result. Returns (results, {"metrics": ..., "params": ...})."""
    from types import SimpleNamespace

    import numpy as np

    from vislink.encoder.images import open_rgb
    from vislink.encoder.regions import box_iou, encode_regions, region_payload
    from vislink.index.base import Point
    from vislink.index.numpy_index import NumpyIndex
    from vislink.search.detail import best_boxes, merge_region_hits

    boxed = [r for r in results if gallery.items[r.query.query_id].query_box is not None]
    if not boxed:
        return list(results), {}
    stored = encode_regions([open_rgb(gallery.items[i].path) for i in usable], variant, weights=weights)
    index = NumpyIndex()
    index.create_collection(variant, int(stored[0].vectors.shape[1]), regions=True)
    index.upsert(variant, [Point(int(i), r.vector, region_payload(r)) for i, r in zip(usable, stored)],
                 regions=[r.vectors for r in stored])
    var = SimpleNamespace(qdrant_collection=variant, name=variant)
    out, found, localised, ious = [], 0, 0, []
    for r in results:
        item = gallery.items[r.query.query_id]
        if item.query_box is None:
            out.append(r)
            continue
        x, y, w, h = item.query_box
        piece = open_rgb(item.path).crop((x, y, x + w, y + h))
        [crop] = encode_regions([piece], variant, weights=weights)
        query = np.asarray(crop.vector, dtype=np.float32)[None, :]
        hits, matched = merge_region_hits(index.query_regions(variant, query, limit=len(usable)), len(usable))
        ranks = target_ranks([h.id for h in hits], r.query.targets, query=r.query.query_id)
        top = [h for h in hits if h.id != r.query.query_id][:LOCALISATION_K]
        boxes = best_boxes(index, var, top, query, matched)
        for target, rank in zip(r.query.targets, ranks):
            truth = gallery.items[target].target_box
            if truth is None or rank is None or rank > LOCALISATION_K:
                continue
            found += 1
            iou = box_iou(boxes[target], truth) if target in boxes else 0.0
            ious.append(iou)
            localised += iou >= LOCALISATION_IOU
        out.append(QueryResult(r.query, ranks))
    metrics = {"localisation": localised / found if found else None, "n_localisation_targets": float(found),
               "mean_iou": float(np.mean(ious)) if ious else None}
    return out, {"metrics": {k: v for k, v in metrics.items() if v is not None},
                 "params": {"ranking_boxed": "region", "n_boxed_queries": len(boxed),
                            "localisation_k": LOCALISATION_K, "localisation_iou": LOCALISATION_IOU}}
