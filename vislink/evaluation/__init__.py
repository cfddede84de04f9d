"""Evaluation: the paper's weighted recall and mAP (``metrics``), runs over a collection's test split stored
in SQL (``runner``), reports (``reports``), scheduled runs (``schedule``) and benchmarks built from a manifest
or from the Replica links (``benchmarks``).

Only ``metrics`` is imported here: the other modules pull in the store and the index when used.
"""

from vislink.evaluation.metrics import (
    DEFAULT_CUTOFFS,
    MetricInputError,
    average_precision,
    mean_average_precision,
    paper_weight,
    parse_cutoffs,
    recall_at,
    recall_curve,
    summarize,
    target_ranks,
    unweighted_recall,
    weighted_recall,
)

__all__ = ["DEFAULT_CUTOFFS", "MetricInputError", "average_precision", "mean_average_precision", "paper_weight",
           "parse_cutoffs", "recall_at", "recall_curve", "summarize", "target_ranks", "unweighted_recall",
           "weighted_recall"]
