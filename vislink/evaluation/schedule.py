"""Scheduled evaluations: a cron-expression loop, the regression check run after each evaluation (R[20] of a
variant against its previous stored run), and ``evaluate_and_check``, the job `vislink evaluate` runs once or
on a schedule (evaluate, store, check, write the reports)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from sqlalchemy.orm import Session

from vislink.config import get_settings
from vislink.errors import ConfigError, VislinkError
from vislink.evaluation.metrics import DEFAULT_CUTOFFS, metric_key
from vislink.evaluation.records import RunReport, previous_run
from vislink.store import session_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drop:
    """A metric of a variant fell by more than the allowed amount since its previous run."""

    variant: str
    metric: str
    previous: float
    current: float
    previous_run_id: int
    run_id: int | None

    @property
    def amount(self) -> float:
        return self.previous - self.current

    def message(self) -> str:
        return (f"{self.variant}: {self.metric} fell from {100 * self.previous:.1f} (run {self.previous_run_id}) "
                f"to {100 * self.current:.1f} (run {self.run_id}), a drop of {100 * self.amount:.1f} points")


def check_drop(session: Session, report: RunReport, *, max_drop: float = 0.02, metric: str = "R@20") -> Drop | None:
    """Compare ``report`` with the previous run of the same variant (same collection or benchmark).
    Returns a ``Drop`` when ``metric`` fell by more than ``max_drop`` (a fraction: 0.02 is 2 points)."""
    if max_drop < 0:
        raise ConfigError(f"--max-drop must be >= 0, got {max_drop}")
    before = previous_run(session, report)
    if before is None or metric not in (before.metrics or {}) or metric not in report.metrics:
        return None
    previous, current = float(before.metrics[metric]), float(report.metrics[metric])
    # A tolerance for float noise: a drop of exactly max_drop is allowed.
    if previous - current > max_drop + 1e-9:
        return Drop(report.variant, metric, previous, current, before.id, report.run_id)
    return None


@dataclass
class CheckedEvaluation:
    """An evaluation of a collection's variants (one stored run each), its regression check and its reports."""

    title: str
    reports: list[RunReport]
    drops: list[Drop]
    paths: dict[str, Path]

    @property
    def alerts(self) -> list[str]:
        return [d.message() for d in self.drops]


# The regression check reads R@20, so an evaluation always computes it.
CHECK_CUTOFF = 20


def evaluate_and_check(collection: str, variants: Sequence[str] | None = None, *, split: str | None = "default",
                       part: str = "test", cutoffs: Sequence[int] = DEFAULT_CUTOFFS, out: Path | None = None,
                       max_drop: float = 0.02, max_depth: int | None = None,
                       progress: bool = True) -> CheckedEvaluation:
    """Evaluate ``variants`` of ``collection`` (default: all; ``split=None``: every linked image a query), store
    each run, compare its R@20 with the variant's previous run (a ``Drop`` beyond ``max_drop``), and write the
    JSON / Markdown / PNG reports into ``out`` (default: the data folder's reports/)."""
    from vislink.evaluation.reports import write_reports
    from vislink.evaluation.runner import evaluate_variants

    settings = get_settings()
    cutoffs = tuple(sorted(set(cutoffs) | {CHECK_CUTOFF}))
    reports = evaluate_variants(collection, list(variants) if variants else None, split=split, part=part,
                                cutoffs=cutoffs, max_depth=max_depth, progress=progress)
    drops = []
    with session_scope(settings.database_url) as session:
        for report in reports:
            drop = check_drop(session, report, max_drop=max_drop, metric=metric_key(CHECK_CUTOFF))
            if drop:
                drops.append(drop)
    title = f"Evaluation of {collection}" + (f" (split {split}, {part})" if split else " (every linked image)")
    paths = write_reports(reports, out or settings.reports_dir, title=title, alerts=[d.message() for d in drops])
    return CheckedEvaluation(title, reports, drops, paths)


def parse_cron(expression: str):
    """A croniter for ``expression``, or a ConfigError that says what is wrong with it."""
    from croniter import croniter

    if not croniter.is_valid(expression):
        raise ConfigError(f"not a valid cron expression: {expression!r} (five fields: minute hour day month weekday, "
                          "e.g. '0 3 * * *' for 03:00 every day)")
    return croniter(expression, datetime.now(timezone.utc))


def next_times(expression: str, start: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` times ``expression`` fires after ``start`` (for --help texts and tests)."""
    from croniter import croniter

    parse_cron(expression)
    it = croniter(expression, start)
    return [it.get_next(datetime) for _ in range(count)]


def _sleep(seconds: float) -> None:
    # Looked up at call time, so that a test of the CLI loop can replace it.
    time.sleep(seconds)


def run_schedule(expression: str, job: Callable[[], int], *, max_runs: int | None = None,
                 stop_on_failure: bool = False, now: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] | None = None) -> int:
    """Run ``job`` each time the cron ``expression`` fires (UTC), forever or ``max_runs`` times.

    ``job`` returns an exit code (0: fine). A failed job (non-zero, or a ``VislinkError``) is logged and the
    loop goes on, unless ``stop_on_failure``: then its code is returned at once. Returns the worst code seen.
    ``now`` and ``sleep`` are injectable so that tests need not wait for the clock.
    """
    from croniter import croniter

    parse_cron(expression)
    now = now or (lambda: datetime.now(timezone.utc))
    sleep = sleep or _sleep
    it = croniter(expression, now())
    worst, runs = 0, 0
    while max_runs is None or runs < max_runs:
        fire_at = it.get_next(datetime)
        wait = (fire_at - now()).total_seconds()
        if wait > 0:
            log.info("next evaluation at %s (in %.0f s)", fire_at.isoformat(), wait)
            sleep(wait)
        try:
            code = job()
        except VislinkError as exc:
            log.error("scheduled evaluation failed: %s", exc)
            code = 1
        runs += 1
        worst = max(worst, code)
        if code and stop_on_failure:
            return code
        # After a long run, skip the firings it overlapped instead of running them back to back.
        it = croniter(expression, max(now(), fire_at))
    return worst
