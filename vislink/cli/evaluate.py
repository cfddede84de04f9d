"""`vislink evaluate`: the paper's weighted recall of a collection's descriptor variants, against the index.

Prints Table 1, writes JSON / Markdown / PNG reports, stores each run, and compares R[20] with the previous
run of the same variant. Exit codes: 0 fine, 1 error, 3 a drop beyond --max-drop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

EXIT_DROP = 3


def _split_list(values: list[str] | None) -> list[str]:
    # Both `--variants a --variants b` and `--variants a,b` work.
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def _print(result, max_drop: float) -> int:
    """Print an evaluation (``vislink.evaluation.schedule.CheckedEvaluation``); returns the exit code."""
    from vislink.evaluation.reports import format_table, table1_cutoffs

    r0 = result.reports[0]
    typer.echo(f"{result.title}: {r0.n_queries} queries, {r0.n_gallery} images searched (exact), "
               "weighted recall in %")
    # The columns a collection of this size can tell apart, as the evaluation page shows them.
    gallery = min(r.n_gallery for r in result.reports)
    typer.echo(format_table(result.reports, table1_cutoffs(r0.cutoffs, gallery)))
    paths = result.paths
    typer.echo(f"runs stored: {', '.join(str(r.run_id) for r in result.reports)}; reports: {paths['markdown']}, "
               f"{paths['json']}, {paths['plot']}")
    for drop in result.drops:
        typer.secho(f"ALERT: {drop.message()} (more than {100 * max_drop:.1f} allowed)", fg=typer.colors.RED,
                    err=True)
    return EXIT_DROP if result.drops else 0


def _history(collection: Optional[str], variants: list[str], limit: int) -> None:
    from vislink.config import get_settings
    from vislink.evaluation.records import recent_runs
    from vislink.store import session_scope

    with session_scope(get_settings().database_url) as session:
        runs = recent_runs(session, collection=collection, variants=variants, limit=limit)
    if not runs:
        typer.echo("no evaluation runs stored yet")
        return
    typer.echo(f"{'run':>5}  {'finished':<17}  {'variant':<28}  {'benchmark':<22}  {'R[20]':>6}  {'mAP':>6}  code")
    for r in runs:
        m = r.metrics
        finished = r.finished_at.strftime("%Y-%m-%d %H:%M") if r.finished_at else "unfinished"
        typer.echo(f"{r.id:>5}  {finished:<17}  {r.variant_name:<28}  {(r.benchmark or '-'):<22}  "
                   f"{100 * m.get('R@20', float('nan')):6.1f}  {100 * m.get('mAP', float('nan')):6.1f}  "
                   f"{r.code_version or '-'}")


def evaluate(
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection to evaluate."),
    variants: Optional[list[str]] = typer.Option(
        None, "--variants", "--variant", help="Descriptor variants (repeat or comma-separate). Default: all of the "
        "collection's variants."),
    split: str = typer.Option("default", help="Split whose part gives the queries; 'none': every image with links."),
    create_split: bool = typer.Option(False, "--create-split", help="Create the split when the collection has none "
                                      "of that name (train / val / test 50/25/25 by connected component, seed 0); "
                                      "in a terminal vislink offers it."),
    part: str = typer.Option("test", help="Which part of the split gives the queries (train, val, test)."),
    cutoffs: str = typer.Option("1,5,10,20,50,100,200", help="Recall cutoffs n of R@n."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default: the data folder's reports/)."),
    max_drop: float = typer.Option(0.02, help="Alert (exit code 3) when R@20 of a variant fell by more than this "
                                   "(a fraction: 0.02 = 2 points) since its previous stored run."),
    max_depth: Optional[int] = typer.Option(None, help="Search at most this deep for targets (default: the whole "
                                            "collection, so every target gets a rank and mAP is exact)."),
    schedule: Optional[str] = typer.Option(None, help="Cron expression (UTC), e.g. '0 3 * * *': run on that "
                                           "schedule until stopped, keeping every run's history."),
    max_runs: Optional[int] = typer.Option(None, help="With --schedule: stop after this many runs."),
    stop_on_drop: bool = typer.Option(False, help="With --schedule: exit at the first alert instead of going on."),
    show_history: bool = typer.Option(False, "--history", help="List stored runs (newest first) and exit."),
    limit: int = typer.Option(20, help="With --history: how many runs."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    detach: bool = typer.Option(False, "--detach", help="When `vislink ui` or `vislink worker --embedded` holds the "
                                "index (the evaluation is queued for it as a job): return at once instead of "
                                "following it."),
) -> None:
    """Evaluate descriptor variants of a collection the paper's way: every test image with linked images is a
    query, the whole collection is searched exactly in the index, and the ranks of all linked images give the
    weighted recall R@n and mAP. Prints Table 1, writes JSON, Markdown and a recall plot, stores the run."""
    from vislink.errors import ConfigError
    from vislink.evaluation.metrics import parse_cutoffs
    from vislink.evaluation.schedule import evaluate_and_check

    names = _split_list(variants)
    if show_history:
        _history(collection, names, limit)
        return
    if not collection:
        raise ConfigError("--collection is required (see `vislink evaluate --help`)")
    cuts = parse_cutoffs(cutoffs)
    the_split = None if split.lower() == "none" else split

    def job() -> int:
        return _print(evaluate_and_check(collection, names, split=the_split, part=part, cutoffs=cuts, out=out,
                                         max_drop=max_drop, max_depth=max_depth, progress=progress), max_drop)

    _check_split(collection, the_split, create_split)

    if schedule:
        from vislink.evaluation.schedule import parse_cron, run_schedule

        parse_cron(schedule)
        typer.echo(f"evaluating {collection} on schedule {schedule!r} (UTC); stop with Ctrl-C")
        code = run_schedule(schedule, job, max_runs=max_runs, stop_on_failure=stop_on_drop)
    else:
        from vislink.cli.jobs import run_here_or_queue

        codes: list[int] = []
        run_here_or_queue("evaluate", {"collection": collection, "variants": names, "split": the_split,
                                       "part": part, "cutoffs": list(cuts), "out": str(out.resolve()) if out else None,
                                       "max_drop": max_drop, "max_depth": max_depth},
                          lambda: codes.append(job()), detach=detach)
        code = codes[0] if codes else 0
    if code:
        raise typer.Exit(code)


def _check_split(collection: str, split: Optional[str], create: bool) -> None:
    """Before any work: a missing split is created (--create-split, or yes at the prompt in a terminal) or
    reported with the two ways out."""
    import sys

    from vislink.errors import MissingSplit
    from vislink.evaluation.runner import require_split

    try:
        require_split(collection, split)
    except MissingSplit as exc:
        if not create and not (sys.stdin.isatty() and typer.confirm(
                f"{collection} has no split {split!r}. Create it now (train / val / test by connected component)?",
                default=False, err=True)):
            raise
        from vislink.graph import assign_split, get_collection, split_summary
        from vislink.store import session_scope

        with session_scope() as session:
            made = assign_split(session, get_collection(session, collection).id, exc.split)
            summary = split_summary(session, made.id)
        typer.echo(f"created split {exc.split!r}: " + ", ".join(f"{part} {summary[part]['images']} images"
                                                             for part in ("train", "val", "test")))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
