"""`vislink ingest folder|wga|iiif|urls|file ...`, `vislink worker`, `vislink reconcile`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

ingest_app = typer.Typer(
    help="Add images to a collection: encode every descriptor variant and index them in Qdrant. Re-running skips "
         "what is done; identical files are stored once; bad files are reported, not fatal.",
    no_args_is_help=True)

COLLECTION = typer.Option(..., "--collection", "-c", help="Collection name (created on first ingest).")
VARIANTS = typer.Option(None, "--variant", help="Descriptor variant of a new collection (repeatable). Default: "
                        "vgg16-pool5-sum, vgg16-pool5-max, vgg16-pool5-sp2x2-sum. A -pcaN variant is fitted "
                        "after the base descriptors exist.")
WEIGHTS = typer.Option(None, "--weights", help="Encoder weights of a new collection (default: VISLINK_WEIGHTS).")
WORKERS = typer.Option(1, "--workers", "-j", min=1, help="Worker processes decoding and encoding on this "
                       "machine (this process writes SQL and the index).")
BATCH = typer.Option(16, "--batch-size", min=1, help="Images per encoding batch (and per queued job).")
QUEUE = typer.Option(False, "--queue", help="Do not ingest here: queue jobs for `vislink worker` processes "
                     "(PostgreSQL, VISLINK_QUEUE_URL). Local paths must be readable by the workers.")
PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar (rate and ETA).")
DETACH = typer.Option(False, "--detach", help="When `vislink ui` or `vislink worker --embedded` holds the index "
                      "(the work is queued for it as a job): return at once instead of following its progress.")


def _run(collection: str, stream, *, source: dict | None = None, detach: bool = False, **kwargs) -> None:
    """Ingest here; when a holder (`vislink ui`, `vislink worker --embedded`) holds the embedded index, queue an
    ingest job of ``source`` for it instead and follow it. ``stream`` is the source items, or a function
    making them (so that a queued job does not list the source twice)."""
    from vislink.index import close_all

    def here() -> None:
        _ingest(collection, stream() if callable(stream) else stream, **kwargs)

    try:
        if kwargs.get("queue") or source is None:
            here()
            return
        from vislink.cli.jobs import run_here_or_queue

        arguments = {"collection": collection, "source": source, "variants": kwargs.get("variants") or None,
                     "weights": kwargs.get("weights"), "batch_size": kwargs.get("batch_size"),
                     "workers": kwargs.get("workers")}
        run_here_or_queue("ingest", arguments, here, detach=detach)
    finally:
        close_all()  # release the embedded index now, not in interpreter teardown


def _ingest(collection: str, stream, *, source_kind: str, source_ref: str, variants, weights, workers, batch_size,
            queue, progress) -> None:
    started = time.monotonic()
    items = list(stream)  # sources are lazy; a list gives the progress bar its total (and ETA)
    left_out = getattr(stream, "counts", None)
    if left_out is not None and stream.skipped:
        counts = ", ".join(f"{n} {reason}" for reason, n in left_out().most_common())
        typer.echo(f"source: {len(items)} items, {len(stream.skipped)} left out ({counts})", err=True)
        for left in stream.skipped[:10]:
            typer.echo(f"  left out {left.source_ref}: {left.reason}" + (f" ({left.detail})" if left.detail else ""),
                       err=True)
        if len(stream.skipped) > 10:
            typer.echo(f"  ... and {len(stream.skipped) - 10} more", err=True)
    if queue:
        from vislink.ingest.queue import enqueue

        run_id, jobs = enqueue(collection, items, variants=variants or None, weights=weights, batch_size=batch_size,
                               source_kind=source_kind, source_ref=source_ref)
        typer.echo(f"queued {len(items)} items in {jobs} jobs (ingest run {run_id}); start `vislink worker` "
                   "processes to ingest them")
        return
    from vislink.ingest.runner import ingest

    summary = ingest(collection, items, variants=variants or None, workers=workers, progress=progress,
                     weights=weights, batch_size=batch_size, source_kind=source_kind, source_ref=source_ref)
    typer.echo(summary.format())
    for ref, reason in summary.failures[:10]:
        typer.echo(f"  {ref}: {reason}", err=True)
    if summary.failed > 10:
        typer.echo(f"  ... (all failures: vislink collection show {collection})", err=True)
    if source_kind == "iiif":
        _iiif_outcome(summary, stream, started)


def _iiif_outcome(summary, stream, started: float) -> None:
    """The whole run's time (documents, info.json and ingest; the summary's own time is the ingest's), and exit
    code 1 when no image of the source could be ingested (every one failed or none was found)."""
    reading = getattr(stream, "seconds", None)
    typer.echo(f"whole run {time.monotonic() - started:.1f} s" + (
        f" (IIIF documents and info.json {reading:.1f} s, ingest {summary.seconds:.1f} s)" if reading is not None
        else ""))
    if summary.done == 0 and summary.skipped == 0 and (summary.failed or getattr(stream, "skipped", None)):
        typer.echo("error: no image of this IIIF source could be ingested (see the reasons above)", err=True)
        raise typer.Exit(1)


@ingest_app.command("folder")
def folder(root: Path = typer.Argument(..., help="Folder of images (walked recursively)."),
           collection: str = COLLECTION,
           metadata: Optional[Path] = typer.Option(None, "--metadata", help="CSV with a file/path column (paths "
                                                   "relative to ROOT) and metadata columns (artist, title, date...)."),
           variants: Optional[List[str]] = VARIANTS, weights: Optional[str] = WEIGHTS, workers: int = WORKERS,
           batch_size: int = BATCH, queue: bool = QUEUE, progress: bool = PROGRESS, detach: bool = DETACH) -> None:
    """Ingest every image under ROOT."""
    from vislink.ingest.sources.folder import folder_items

    source = {"kind": "folder", "root": str(root.resolve()),
              "metadata": str(metadata.resolve()) if metadata else None}
    _run(collection, lambda: folder_items(root, metadata), source=source, detach=detach, source_kind="folder",
         source_ref=str(root.resolve()), variants=variants, weights=weights, workers=workers, batch_size=batch_size,
         queue=queue, progress=progress)


@ingest_app.command("file")
def files(paths: List[Path] = typer.Argument(..., help="Image files."), collection: str = COLLECTION,
          variants: Optional[List[str]] = VARIANTS, weights: Optional[str] = WEIGHTS, workers: int = WORKERS,
          batch_size: int = BATCH, progress: bool = PROGRESS, detach: bool = DETACH) -> None:
    """Ingest single files (their source reference is the absolute path)."""
    from vislink.ingest.sources.base import SourceItem

    items = [SourceItem(str(p.resolve()), {"title": p.stem, "extra": {}}, local_path=p.resolve()) for p in paths]
    source = {"kind": "files", "paths": [str(p.resolve()) for p in paths], "source_kind": "file"}
    _run(collection, items, source=source, detach=detach, source_kind="file", source_ref=None, variants=variants,
         weights=weights,
         workers=workers, batch_size=batch_size, queue=False, progress=progress)


@ingest_app.command("wga")
def wga(catalog: Path = typer.Argument(..., help="WGA catalog: catalog.xls, data_xls.zip, comma or semicolon CSV."),
        collection: str = COLLECTION,
        images_root: Optional[Path] = typer.Option(None, "--images-root", help="Local folder laid out like WGA's "
                                                   "/art/ tree; default: download from www.wga.hu."),
        where: Optional[List[str]] = typer.Option(None, "--where", help="Row filter FIELD=VALUE (repeatable), e.g. "
                                                  "FORM=painting, TIMEFRAME=1501-1550."),
        timeframe: Optional[str] = typer.Option(None, "--timeframe", help="Keep rows whose TIMEFRAME bin lies in this "
                                                "range, e.g. 1501-1650."),
        limit: Optional[int] = typer.Option(None, "--limit", help="At most this many rows (after filtering)."),
        variants: Optional[List[str]] = VARIANTS, weights: Optional[str] = WEIGHTS, workers: int = WORKERS,
        batch_size: int = BATCH, queue: bool = QUEUE, progress: bool = PROGRESS, detach: bool = DETACH) -> None:
    """Ingest the Web Gallery of Art catalog (rows whose image is missing are reported, not fatal)."""
    from vislink.ingest import sources

    def stream():
        return sources.wga_catalog_items(catalog, images_root=images_root, where=_where(where), timeframe=timeframe,
                                         limit=limit)

    source = {"kind": "wga", "catalog": str(catalog.resolve()),
              "images_root": str(images_root.resolve()) if images_root else None, "where": _where(where),
              "timeframe": timeframe, "limit": limit}
    _run(collection, stream, source=source, detach=detach, source_kind="wga", source_ref=str(catalog),
         variants=variants, weights=weights,
         workers=workers, batch_size=batch_size, queue=queue, progress=progress)


def _where(args: Optional[List[str]]) -> dict[str, str] | None:
    from vislink.errors import ConfigError

    out = {}
    for arg in args or []:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"--where {arg!r}: write FIELD=VALUE, e.g. FORM=painting")
        out[key.strip()] = value.strip()
    return out or None


@ingest_app.command("iiif")
def iiif(manifest: str = typer.Argument(..., help="URL or file of a IIIF Presentation v2/v3 manifest or collection."),
         collection: str = COLLECTION,
         all_canvases: bool = typer.Option(False, "--all-canvases", help="Every canvas, not only the first."),
         variants: Optional[List[str]] = VARIANTS, weights: Optional[str] = WEIGHTS, workers: int = WORKERS,
         batch_size: int = BATCH, queue: bool = QUEUE, progress: bool = PROGRESS, detach: bool = DETACH) -> None:
    """Ingest the images of IIIF manifests (sized through their Image API service)."""
    from vislink.ingest import sources

    local = Path(manifest)
    ref = str(local.resolve()) if "://" not in manifest and local.exists() else manifest
    source = {"kind": "iiif", "manifest": ref, "all_canvases": all_canvases}
    _run(collection, lambda: sources.iiif_items(manifest, all_canvases=all_canvases), source=source, detach=detach,
         source_kind="iiif",
         source_ref=manifest, variants=variants, weights=weights, workers=workers, batch_size=batch_size,
         queue=queue, progress=progress)


@ingest_app.command("urls")
def urls(csv_path: Path = typer.Argument(..., help="CSV with a url column and metadata columns."),
         collection: str = COLLECTION, variants: Optional[List[str]] = VARIANTS, weights: Optional[str] = WEIGHTS,
         workers: int = WORKERS, batch_size: int = BATCH, queue: bool = QUEUE, progress: bool = PROGRESS,
         detach: bool = DETACH) -> None:
    """Ingest images listed by URL in a CSV."""
    from vislink.ingest import sources

    source = {"kind": "urls", "csv": str(csv_path.resolve())}
    _run(collection, lambda: sources.url_csv_items(csv_path), source=source, detach=detach, source_kind="urls",
         source_ref=str(csv_path),
         variants=variants, weights=weights, workers=workers, batch_size=batch_size, queue=queue, progress=progress)


def worker(wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for new jobs (default) or exit when the "
                                     "queue is empty."),
           retry_stalled: bool = typer.Option(False, "--retry-stalled", help="Only re-queue the jobs of workers that "
                                              "stopped sending heartbeats, then exit."),
           stalled_after: float = typer.Option(30.0, "--stalled-after", help="Seconds without a heartbeat after "
                                               "which a worker's job is stalled."),
           heartbeat: float = typer.Option(10.0, "--heartbeat", help="Seconds between this worker's heartbeats."),
           embedded: bool = typer.Option(False, "--embedded", help="Instead of the procrastinate queue: hold this "
                                         "data folder's index and run the jobs of the store (what `vislink ingest`, "
                                         "`collection add-variant`, `evaluate`, `search` and `doctor` queue when the "
                                         "index is held; see `vislink jobs`). With --no-wait: exit when no job is "
                                         "queued.")) -> None:
    """Run an ingest worker of the distributed queue (procrastinate on PostgreSQL, VISLINK_QUEUE_URL), or with
    --embedded the job holder of the embedded index (no PostgreSQL needed)."""
    if embedded:
        _hold(wait)
        return
    from vislink.ingest import queue

    if retry_stalled:
        typer.echo(f"re-queued {queue.retry_stalled(stalled_after)} stalled jobs")
        return
    queue.run_worker(wait=wait, heartbeat=heartbeat, stalled_after=stalled_after)


def _hold(wait: bool) -> None:
    import signal

    from vislink.index import close_all
    from vislink.jobs import Holder

    holder = Holder(role="worker", exit_when_idle=not wait)
    try:
        holder.start()
        typer.echo(f"holding the index at {holder.index_location} ({holder.me}); running queued jobs"
                   + ("" if wait else " until none is left") + "; stop with Ctrl-C", err=True)
        signal.signal(signal.SIGTERM, lambda *_: holder.stop_event.set())
        try:
            holder.wait()
        except KeyboardInterrupt:
            typer.echo("stopping: a running job goes back to the queue at its next batch", err=True)
            holder.stop(timeout=60)
    finally:
        close_all()
    typer.echo(f"{holder.jobs_run} job(s) run", err=True)


def reconcile(collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Only this collection."),
              dry_run: bool = typer.Option(False, "--dry-run", help="Report, repair nothing."),
              progress: bool = PROGRESS) -> None:
    """Find and repair disagreements between SQL and Qdrant (orphan or missing points, payload drift) and
    the records of killed runs (marked interrupted, with what they did)."""
    from vislink.index import close_all
    from vislink.ingest.reconcile import reconcile as run
    from vislink.ingest.reconcile import reconcile_runs

    try:
        runs = reconcile_runs(collection, repair=not dry_run)
        reports = run(collection, repair=not dry_run, progress=progress)
    finally:
        close_all()
    for rep in runs:
        typer.echo(rep.format() + (" (not repaired: --dry-run)" if dry_run else ""))
    for rep in reports:
        typer.echo(rep.format())
    bad = sum(not r.ok for r in reports)
    if not reports:
        typer.echo("no collection to check")
    elif bad:
        typer.echo(f"{bad} variant(s) disagreed" + (" (nothing repaired: --dry-run)" if dry_run else "; repaired"))


def register(app: typer.Typer) -> None:
    app.add_typer(ingest_app, name="ingest")
    app.command("worker")(worker)
    app.command("reconcile")(reconcile)
