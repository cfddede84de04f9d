"""Evaluation runs as the reports see them (``RunReport``), stored in and read back from SQL
(``EvaluationRun`` with one ``EvaluationQueryResult`` per query), and the history of a variant."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from vislink.errors import NotFound
from vislink.evaluation.metrics import DEFAULT_CUTOFFS, summarize
from vislink.evaluation.ranking import EvalQuery, QueryResult
from vislink.store.models import Collection, EvaluationQueryResult, EvaluationRun, utcnow

_REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunReport:
    """One evaluated (benchmark or collection, variant): what the tables, plots and history need."""

    variant: str
    results: list[QueryResult]
    n_gallery: int
    dimension: int | None = None
    collection: str | None = None
    benchmark: str | None = None
    split_name: str | None = None
    weights_name: str | None = None
    weights_sha256: str | None = None
    cutoffs: tuple[int, ...] = DEFAULT_CUTOFFS
    params: dict[str, Any] = field(default_factory=dict)
    code_version: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_id: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if not self.metrics and self.results:
            self.metrics = summarize([r.ranks for r in self.results], self.cutoffs)

    @property
    def n_queries(self) -> int:
        return len(self.results)

    @property
    def label(self) -> str:
        return self.benchmark or self.collection or "?"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the checkout when there is one (with ``-dirty`` for local changes), else the
    installed package's version."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=_REPO, capture_output=True,
                             text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return f"git:{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass  # no git, or not a checkout: fall back to the package version
    try:
        return f"vislink {importlib.metadata.version('vislink')}"
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def store_run(session: Session, report: RunReport, *, collection_id: int | None = None,
              variant_id: int | None = None) -> int:
    """Write the run and the ranks of every target of every query; returns the run id (also set on the report)."""
    run = EvaluationRun(
        collection_id=collection_id, variant_id=variant_id, variant_name=report.variant,
        benchmark=report.benchmark, weights_sha256=report.weights_sha256, split_name=report.split_name,
        code_version=report.code_version or code_version(), started_at=report.started_at or utcnow(),
        finished_at=report.finished_at or utcnow(), n_queries=report.n_queries, n_gallery=report.n_gallery,
        metrics=dict(report.metrics),
        params={**report.params, "cutoffs": list(report.cutoffs), "dimension": report.dimension,
                "weights_name": report.weights_name, "collection": report.collection},
    )
    session.add(run)
    session.flush()
    session.add_all([
        EvaluationQueryResult(
            run_id=run.id, query_image_id=r.query.image_id, query_ref=r.query.ref or str(r.query.query_id),
            n_targets=r.n_targets, weight=r.weight, average_precision=r.average_precision,
            target_ranks=r.sorted_ranks,
        )
        for r in report.results
    ])
    session.flush()
    report.run_id = run.id
    report.code_version = run.code_version
    return run.id


def load_run(session: Session, run_id: int) -> RunReport:
    """A stored run back as a report (per-query ranks included)."""
    run = session.get(EvaluationRun, run_id)
    if run is None:
        raise NotFound(f"no evaluation run {run_id}")
    rows = session.scalars(select(EvaluationQueryResult).where(EvaluationQueryResult.run_id == run_id)
                           .order_by(EvaluationQueryResult.id)).all()
    results = []
    for i, row in enumerate(rows):
        # Target ids are not stored (only their ranks): stand-ins keep the counts right.
        query = EvalQuery(query_id=row.query_image_id or -(i + 1), targets=tuple(range(-1, -row.n_targets - 1, -1)),
                          ref=row.query_ref, image_id=row.query_image_id)
        results.append(QueryResult(query, list(row.target_ranks)))
    params = dict(run.params or {})
    return RunReport(
        variant=run.variant_name, results=results, n_gallery=run.n_gallery, dimension=params.get("dimension"),
        collection=params.get("collection"), benchmark=run.benchmark, split_name=run.split_name,
        weights_name=params.get("weights_name"), weights_sha256=run.weights_sha256,
        cutoffs=tuple(params.get("cutoffs") or DEFAULT_CUTOFFS), params=params, code_version=run.code_version,
        started_at=run.started_at, finished_at=run.finished_at, run_id=run.id, metrics=dict(run.metrics or {}),
    )


def previous_run(session: Session, report: RunReport) -> EvaluationRun | None:
    """The latest finished run before ``report`` of the same variant on the same collection or benchmark."""
    q = select(EvaluationRun).where(EvaluationRun.variant_name == report.variant,
                                    EvaluationRun.finished_at.is_not(None))
    if report.benchmark is not None:
        q = q.where(EvaluationRun.benchmark == report.benchmark)
    else:
        q = q.where(EvaluationRun.benchmark.is_(None))
    if report.collection is not None and report.benchmark is None:
        q = q.join(Collection, Collection.id == EvaluationRun.collection_id).where(Collection.name == report.collection)
    if report.run_id is not None:
        q = q.where(EvaluationRun.id != report.run_id)
    if report.started_at is not None:
        q = q.where(EvaluationRun.started_at <= report.started_at)
    return session.scalars(q.order_by(EvaluationRun.started_at.desc(), EvaluationRun.id.desc()).limit(1)).first()


def history(session: Session, *, variant: str | None = None, collection: str | None = None,
            benchmark: str | None = None, limit: int = 50) -> list[EvaluationRun]:
    """Stored runs, newest first."""
    q = select(EvaluationRun)
    if variant:
        q = q.where(EvaluationRun.variant_name == variant)
    if benchmark:
        q = q.where(EvaluationRun.benchmark == benchmark)
    if collection:
        q = q.join(Collection, Collection.id == EvaluationRun.collection_id).where(Collection.name == collection)
    return list(session.scalars(q.order_by(EvaluationRun.started_at.desc(), EvaluationRun.id.desc()).limit(limit)))



@dataclass(frozen=True)
class RunInfo:
    """A stored run's summary, detached from its session (for lists: `vislink evaluate --history`, the UI)."""

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


def recent_runs(session: Session, *, collection: str | None = None, variants: Sequence[str] = (),
                limit: int = 50) -> list[RunInfo]:
    """The ``limit`` latest stored runs, newest first: of ``collection`` and of any of ``variants`` when given."""
    q = select(EvaluationRun, Collection.name).outerjoin(Collection, Collection.id == EvaluationRun.collection_id)
    if variants:
        q = q.where(EvaluationRun.variant_name.in_(list(variants)))
    if collection:
        q = q.where(Collection.name == collection)
    rows = session.execute(q.order_by(EvaluationRun.started_at.desc(), EvaluationRun.id.desc()).limit(limit))
    return [RunInfo(r.id, r.variant_name, r.benchmark, name, r.started_at, r.finished_at, r.n_queries, r.n_gallery,
                    r.weights_sha256, r.split_name, r.code_version, dict(r.metrics or {})) for r, name in rows]


def best_variant(session: Session, collection: str, variants: Sequence[str]) -> str | None:
    """Of ``variants``, the one whose newest stored evaluation on ``collection`` has the highest mAP (then R@20):
    what the UI opens on. None when none of them has been evaluated."""
    newest: dict[str, dict[str, Any]] = {}
    for run in recent_runs(session, collection=collection, variants=variants, limit=500):
        if run.benchmark is None and run.variant_name not in newest:
            newest[run.variant_name] = run.metrics
    if not newest:
        return None
    return max(newest, key=lambda v: (newest[v].get("mAP", 0.0), newest[v].get("R@20", 0.0), -variants.index(v)))
