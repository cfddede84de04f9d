"""Scheduled evaluations: the cron loop on a fake clock, the regression check against stored history, and
`vislink evaluate --schedule` end to end (its sleeps skipped)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from vislink.errors import ConfigError, VislinkError
from vislink.evaluation import schedule
from vislink.evaluation.ranking import EvalQuery, QueryResult
from vislink.evaluation.records import RunReport, store_run


class FakeClock:
    def __init__(self, start: datetime):
        self.t = start
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=seconds)


def test_cron_loop_fires_at_the_scheduled_times():
    clock = FakeClock(datetime(2026, 1, 1, 0, 0, 30, tzinfo=timezone.utc))
    fired = []

    def job():
        fired.append(clock.now())
        clock.t += timedelta(seconds=20)  # the evaluation takes time
        return 0

    code = schedule.run_schedule("*/5 * * * *", job, max_runs=3, now=clock.now, sleep=clock.sleep)
    assert code == 0
    assert [t.strftime("%H:%M:%S") for t in fired] == ["00:05:00", "00:10:00", "00:15:00"]
    assert clock.slept[0] == pytest.approx(270)


def test_cron_loop_skips_firings_a_long_run_overlapped_and_keeps_going_after_failures():
    clock = FakeClock(datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone.utc))
    fired, codes = [], iter([3, 0, 0])

    def job():
        fired.append(clock.now())
        if len(fired) == 2:
            raise VislinkError("index unreachable")  # logged, counted as 1, the loop goes on
        clock.t += timedelta(minutes=12)  # longer than two periods
        return next(codes)

    code = schedule.run_schedule("*/5 * * * *", job, max_runs=3, now=clock.now, sleep=clock.sleep)
    assert code == 3  # the worst exit code seen
    assert [t.strftime("%H:%M") for t in fired] == ["00:05", "00:20", "00:25"]


def test_cron_loop_can_stop_at_the_first_failure():
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    runs = []
    code = schedule.run_schedule("0 * * * *", lambda: runs.append(1) or 3, max_runs=5, stop_on_failure=True,
                                 now=clock.now, sleep=clock.sleep)
    assert code == 3 and len(runs) == 1


def test_bad_cron_expressions_are_config_errors():
    with pytest.raises(ConfigError, match="not a valid cron expression"):
        schedule.parse_cron("every day")
    with pytest.raises(ConfigError):
        schedule.run_schedule("61 * * * *", lambda: 0, max_runs=1)
    start = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
    assert [t.hour for t in schedule.next_times("0 3 * * *", start, 2)] == [3, 3]


def _report(variant: str, r20_hits: int, started: datetime, benchmark: str | None = "groups:x") -> RunReport:
    # ten single-target queries, r20_hits of them found at rank 1, the others at rank 50
    results = [QueryResult(EvalQuery(i, (1000 + i,)), [1 if i < r20_hits else 50]) for i in range(10)]
    return RunReport(variant=variant, results=results, n_gallery=100, benchmark=benchmark, started_at=started,
                     finished_at=started + timedelta(minutes=1))


def test_drop_is_measured_against_the_previous_run_of_the_same_variant(vislink_env):
    from vislink.store import session_scope

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with session_scope(vislink_env.database_url) as session:
        store_run(session, _report("vgg16-pool5-sum", 8, t0))
        store_run(session, _report("vgg16-pool5-max", 2, t0 + timedelta(hours=1)))  # another variant
        store_run(session, _report("vgg16-pool5-sum", 1, t0 + timedelta(hours=1), benchmark="other"))
        first_ever = _report("vgg16-pool5-sp2x2-sum", 1, t0)
        store_run(session, first_ever)
        assert schedule.check_drop(session, first_ever) is None  # no history: nothing to compare

        same = _report("vgg16-pool5-sum", 8, t0 + timedelta(days=1))
        store_run(session, same)
        assert schedule.check_drop(session, same, max_drop=0.0) is None

        worse = _report("vgg16-pool5-sum", 7, t0 + timedelta(days=2))  # R@20 0.8 -> 0.7
        store_run(session, worse)
        drop = schedule.check_drop(session, worse, max_drop=0.02)
        assert drop is not None and drop.previous_run_id == same.run_id
        assert drop.previous == pytest.approx(0.8) and drop.current == pytest.approx(0.7)
        assert "fell from 80.0" in drop.message() and "drop of 10.0 points" in drop.message()
        assert schedule.check_drop(session, worse, max_drop=0.1) is None  # exactly the allowed drop
        with pytest.raises(ConfigError):
            schedule.check_drop(session, worse, max_drop=-1)


def test_cli_schedule_runs_and_keeps_history(vislink_env, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from test_evaluation import _setup
    from vislink.cli import app
    from vislink.index import open_index
    from vislink.store import session_scope
    from vislink.store.models import EvaluationRun

    with session_scope(vislink_env.database_url) as session:
        _setup(session, open_index())
    monkeypatch.setattr(schedule, "_sleep", lambda seconds: None)  # do not wait for the clock
    result = CliRunner().invoke(app, ["evaluate", "--collection", "demo", "--schedule", "*/10 * * * *",
                                      "--max-runs", "2", "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "on schedule '*/10 * * * *'" in result.output and result.output.count("R[5]") == 2  # two tables
    with session_scope(vislink_env.database_url) as session:
        assert session.query(EvaluationRun).count() == 2
    assert len(list(tmp_path.glob("*.md"))) == 2 and len(list(tmp_path.glob("*.png"))) == 2

    result = CliRunner().invoke(app, ["evaluate", "--collection", "demo", "--schedule", "not cron"])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)
