"""Validation of the current weights at the working geometry, through the evaluation module (exact search in
the memory index backend, the query excluded, the paper's weighted recall and mAP).

Gallery: the originals of the val, train and held-out images. Two families of queries:

- ``links``: the val split's link queries (a val image, its linked val images as targets): the paper's
  protocol on the val part;
- ``transforms``: every transformed view of every val and held-out image (never trained on), its original as
  the only target: the copy-detection check of the transformations benchmark, in miniature.

Metrics are fractions, keyed ``links.R@20``, ``links.mAP``, ``transforms.top1``, ``transforms.mAP``...
"""

from __future__ import annotations

import numpy as np

from vislink.evaluation.metrics import summarize
from vislink.evaluation.ranking import EvalQuery, rank_targets
from vislink.training.data import Dataset
from vislink.training.inputs import ViewCatalog, describe

CUTOFFS = (1, 5, 10, 20, 50)


def validation_plan(dataset: Dataset, catalog: ViewCatalog) -> dict:
    """Which catalog keys validation encodes: gallery originals, link queries, transform queries."""
    n_train, n_val = len(dataset.train), len(dataset.val)
    gallery = [(n_train + v, 0) for v in range(n_val)] + [(i, 0) for i in range(n_train)]
    gallery += [(n_train + n_val + h, 0) for h in range(len(dataset.held_out))]
    position = {key: g for g, key in enumerate(gallery)}
    links = [EvalQuery(query_id=position[(n_train + v, 0)], targets=tuple(position[(n_train + t, 0)] for t in ts),
                       ref=dataset.val[v].ref) for v, ts in dataset.val_queries]
    held = list(range(n_train, n_train + n_val + len(dataset.held_out)))
    view_keys = [(i, k) for i in held for k in range(1, len(catalog.views[i]))]
    transforms = [EvalQuery(query_id=-(q + 1), targets=(position[(i, 0)],),
                            ref=f"{catalog.views[i][k].transform}:{catalog.images[i].ref}")
                  for q, (i, k) in enumerate(view_keys)]
    return {"gallery": gallery, "links": links, "view_keys": view_keys, "transforms": transforms}


def all_keys(plan: dict) -> list:
    return plan["gallery"] + plan["view_keys"]


def validate(inputs, plan: dict, pooling: str, *, amp: str = "off") -> dict[str, dict[str, float]]:
    """{"links": metrics, "transforms": metrics} of the current weights (a family with no query is left out)."""
    from vislink.index.base import Point
    from vislink.index.numpy_index import NumpyIndex

    if not plan["gallery"] or not (plan["links"] or plan["transforms"]):
        return {}
    gallery = describe(inputs, plan["gallery"], pooling, amp=amp)
    index = NumpyIndex()
    index.create_collection("val", gallery.shape[1])
    index.upsert("val", [Point(g, row) for g, row in enumerate(gallery)])
    depth = min(max(CUTOFFS), len(gallery))
    out: dict[str, dict[str, float]] = {}
    if plan["links"]:
        results = rank_targets(index, "val", plan["links"], depth=depth)
        out["links"] = summarize([r.ranks for r in results], CUTOFFS)
    if plan["transforms"]:
        vectors = describe(inputs, plan["view_keys"], pooling, amp=amp)
        results = rank_targets(index, "val", plan["transforms"], depth=depth, vectors=vectors)
        metrics = summarize([r.ranks for r in results], CUTOFFS)
        metrics["top1"] = float(np.mean([r.ranks[0] == 1 for r in results]))
        out["transforms"] = metrics
    return out


def score(metrics: dict[str, dict[str, float]], select: str) -> tuple[str, float]:
    """(metric name, value) that picks the best checkpoint: ``select`` (``links.mAP``, ``transforms.top1``...),
    or ``auto``: links.mAP when the val split has link queries, else transforms.mAP. Ties go to the higher
    ``tiebreak``."""
    if select == "auto":
        select = "links.mAP" if "links" in metrics else "transforms.mAP"
    family, _, key = select.partition(".")
    value = metrics.get(family, {}).get(key)
    return select, float("nan") if value is None else float(value)


def tiebreak(metrics: dict[str, dict[str, float]]) -> float:
    """The mean mAP of every family: what decides between epochs of equal score (a small val split ties often)."""
    values = [m["mAP"] for m in metrics.values() if "mAP" in m]
    return float(np.mean(values)) if values else 0.0
