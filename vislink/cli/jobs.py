"""`vislink jobs [list|follow|cancel]`, and what the work commands do when another vislink process holds the
embedded index: queue a job for it and follow it here (docs/jobs.md)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import typer

jobs_app = typer.Typer(help="Jobs kept in the store (ingest, add-variant, evaluate), run by the process that "
                       "holds the index (`vislink ui`, `vislink worker --embedded`): list, follow, cancel.",
                       invoke_without_command=True)

DETACH = typer.Option(False, "--detach", help="When another process holds the index: queue the job and return at "
                      "once (follow it with `vislink jobs follow ID`).")


def _progress(job) -> str:
    parts = []
    if job.progress_total is not None:
        parts.append(f"{job.progress_done}/{job.progress_total}")
    c = job.counts
    if c:
        parts.append(f"{c.get('done', 0)} done, {c.get('skipped', 0)} skipped, {c.get('failed', 0)} failed")
    if job.rate:
        parts.append(f"{job.rate:.2f} items/s")
    if job.eta_seconds is not None:
        parts.append(f"ETA {job.eta_seconds:.0f} s")
    return ", ".join(parts)


def _line(job) -> str:
    where = f" ({job.holder})" if job.holder and job.state == "running" else ""
    progress = _progress(job)
    text = f"job {job.id} {job.kind} {job.state}{where}" + (f": {progress}" if progress else "")
    if job.attempts > 1 and job.state == "running":
        text += f" (attempt {job.attempts}, resumed)"
    return text


def follow_in_terminal(job_id: int) -> int:
    """Print the job's progress until it ends; its exit code (0 done, 1 failed or cancelled, the job's own
    code, e.g. evaluate's 3). Ctrl-C stops following, not the job."""
    from vislink.jobs import follow

    job = None
    try:
        for job in follow(job_id):
            typer.echo(_line(job), err=True)
    except KeyboardInterrupt:
        typer.echo(f"stopped following job {job_id}; it goes on (`vislink jobs follow {job_id}`, "
                   f"`vislink jobs cancel {job_id}`)", err=True)
        return 130
    result = job.result or {}
    for line in result.get("lines", []):
        typer.echo(line)
    for alert in result.get("alerts", []):
        typer.secho(alert, fg=typer.colors.RED, err=True)
    for ref, reason in job.errors[:10]:
        typer.echo(f"  {ref}: {reason}", err=True)
    if len(job.errors) > 10:
        typer.echo(f"  ... ({len(job.errors)} failures listed: vislink jobs follow {job_id})", err=True)
    if job.state != "done":
        typer.secho(f"error: job {job_id} {job.state}" + (f": {job.message}" if job.message else ""),
                    fg=typer.colors.RED, err=True)
        return 1
    return int(result.get("exit_code") or 0)


def run_here_or_queue(kind: str, arguments: dict[str, Any], here: Callable[[], None], *, detach: bool,
                      total: int | None = None) -> None:
    """Run ``here()`` when this process may open the index; when a holder holds it, queue ``kind`` with
    ``arguments`` for it and follow it (or return at once with ``detach``)."""
    from vislink.jobs import index_holder, submit

    holder = index_holder()
    if holder is None:
        here()
        return
    job_id = submit(kind, arguments, total=total)
    typer.echo(f"the index is held by {holder}: queued job {job_id} for it", err=True)
    if detach:
        typer.echo(f"follow it with `vislink jobs follow {job_id}`; cancel with `vislink jobs cancel {job_id}`")
        typer.echo(str(job_id))
        return
    code = follow_in_terminal(job_id)
    if code:
        raise typer.Exit(code)


def _arguments(job) -> str:
    a = job.arguments
    src = a.get("source") or {}
    what = src.get("root") or src.get("manifest") or src.get("csv") or src.get("catalog") or a.get("variant") or ""
    if src.get("paths"):
        what = f"{len(src['paths'])} files"
    return " ".join(str(x) for x in (a.get("collection") or "", what) if x)


@jobs_app.callback()
def _default(ctx: typer.Context,
             limit: int = typer.Option(20, "--limit", help="Without a command: how many jobs to list."),
             show_all: bool = typer.Option(False, "--all", help="Without a command: also list the short requests."),
             ) -> None:
    """Without a command: `vislink jobs list`."""
    if ctx.invoked_subcommand is None:
        list_jobs(limit=limit, show_all=show_all)


@jobs_app.command("list")
def list_jobs(limit: int = typer.Option(20, "--limit", help="How many, newest first."),
              show_all: bool = typer.Option(False, "--all", help="Also the short requests (search, index-info).")
              ) -> None:
    """List jobs, newest first: state, kind, progress, who asked, what."""
    from vislink.jobs import list_kinds, quick_kinds
    from vislink.store import session_scope
    from vislink.store.jobs import list_jobs as rows

    kinds = None if show_all else [k for k in list_kinds() if k not in quick_kinds()]
    with session_scope() as s:
        jobs = rows(s, kinds=kinds, limit=limit)
    if not jobs:
        typer.echo("no jobs")
        return
    for job in jobs:
        created = job.created_at.strftime("%Y-%m-%d %H:%M") if job.created_at else "-"
        typer.echo(f"{job.id:>5}  {job.state:<9}  {job.kind:<11}  {created}  {_arguments(job)}  "
                   f"[{_progress(job) or '-'}]  {job.requested_by or '-'}"
                   + (f"  {job.message}" if job.state in ("failed", "cancelled") and job.message else ""))


@jobs_app.command("follow")
def follow_job(job_id: int = typer.Argument(..., help="Job id (see `vislink jobs`).")) -> None:
    """Print a job's progress until it ends, then its result (Ctrl-C stops following, not the job)."""
    code = follow_in_terminal(job_id)
    if code:
        raise typer.Exit(code)


@jobs_app.command("cancel")
def cancel_job(job_id: int = typer.Argument(..., help="Job id (see `vislink jobs`).")) -> None:
    """Cancel a job: a queued one now, a running one at its next batch (what it did is kept)."""
    from vislink.store import session_scope
    from vislink.store.jobs import cancel

    with session_scope() as s:
        job = cancel(s, job_id)
    typer.echo(f"job {job_id} cancelled" if job.state == "cancelled" else
               f"job {job_id} asked to stop: it stops at its next batch")


def held_answer(kind: str, arguments: dict[str, Any]) -> Optional[dict[str, Any]]:
    """For the read-only commands (search, doctor): None when this process may open the index, else the
    holder's answer to a short request."""
    from vislink.jobs import ask, index_holder

    if index_holder() is None:
        return None
    return ask(kind, arguments)


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
