"""`vislink index export|import|optimize`: move vector collections between index backends without encoding
again; apply the index policy (exact scans below a size, HNSW above it)."""

from __future__ import annotations

from pathlib import Path

import typer

index_app = typer.Typer(help="The vector index: move collections between backends (export / import), build "
                             "HNSW graphs where the index policy says so (optimize).",
                        no_args_is_help=True)

BACKEND_HELP = "qdrant-edge, qdrant-local, qdrant-server, memory; default: the configured one (VISLINK_INDEX_BACKEND)."


def _open(backend: str | None, qdrant_url: str | None):
    from vislink.config import Settings, get_settings
    from vislink.index import build_index

    settings = Settings(qdrant_url=qdrant_url) if qdrant_url else get_settings()
    if qdrant_url and backend is None:
        backend = "qdrant-server"
    return build_index(settings, backend)


def _print(summary, verb: str) -> None:
    flags = ", ".join(f for f, on in (("sparse", summary.sparse), ("regions", summary.regions)) if on)
    line = (f"{verb} {summary.collection}: {summary.count} points, {summary.dim}-d{', ' + flags if flags else ''}; "
            f"{summary.batches} batches ({summary.written} written")
    if summary.skipped:
        line += f", {summary.skipped} already present"
    line += ")"
    if summary.target_count is not None:
        line += f"; the target holds {summary.target_count}"
    typer.echo(f"{line}; folder {summary.folder}")
    for note in summary.notes:
        typer.echo(f"  note: {note}")


@index_app.command("export")
def export(
    collections: list[str] = typer.Argument(None, help="Qdrant collections to export (e.g. vislink_wga_vgg16-pool5-max); "
                                             "none with --all."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write: one sub-folder per collection "
                             "(batch-NNNNNN.npz files and manifest.json, written last)."),
    all_: bool = typer.Option(False, "--all", help="Every collection of the index."),
    backend: str = typer.Option(None, "--from-backend", help=f"Index to read: {BACKEND_HELP}"),
    qdrant_url: str = typer.Option(None, "--qdrant-url", help="Read from this Qdrant server (implies qdrant-server)."),
    batch_size: int = typer.Option(1024, "--batch-size", min=1, help="Points per batch file."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Write collections' points (dense vectors, payloads, sparse vectors and regions where present) to a folder."""
    from vislink.errors import ConfigError
    from vislink.index.transfer import export_collection

    if bool(collections) == all_:
        raise ConfigError("name the collections to export, or give --all")
    index = _open(backend, qdrant_url)
    try:
        names = index.list_collections() if all_ else list(collections)
        for name in names:
            _print(export_collection(index, name, out / name, batch_size=batch_size, progress=progress), "exported")
    finally:
        index.close()


@index_app.command("import")
def import_(
    folder: Path = typer.Argument(..., help="An export folder (holding manifest.json) or a folder of them."),
    backend: str = typer.Option(None, "--to-backend", help=f"Index to write: {BACKEND_HELP}"),
    qdrant_url: str = typer.Option(None, "--qdrant-url", help="Write to this Qdrant server (implies qdrant-server; "
                                   "QDRANT_URL set does the same)."),
    rename: str = typer.Option(None, "--as", help="Import one export under another collection name."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Upsert every batch, even those already present."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Load exported collections into an index; resumable (run it again after an interruption).

    Batches whose points are all in the target already are skipped; the target's count is checked against
    the manifest at the end."""
    from vislink.errors import ConfigError
    from vislink.index.transfer import export_folders, import_collection

    folders = export_folders(folder)
    if rename and len(folders) > 1:
        raise ConfigError(f"--as names one collection; {folder} holds {len(folders)} exports")
    index = _open(backend, qdrant_url)
    try:
        for sub in folders:
            _print(import_collection(index, sub, collection=rename, overwrite=overwrite, progress=progress),
                   "imported")
    finally:
        index.close()


@index_app.command("optimize")
def optimize(
    collections: list[str] = typer.Argument(None, help="Qdrant collections to optimize (e.g. "
                                             "vislink_wga_vgg16-pool5-max); none with --all."),
    all_: bool = typer.Option(False, "--all", help="Every collection of the index."),
    mode: str = typer.Option("auto", "--mode", help="auto: HNSW from VISLINK_INDEX_HNSW_MIN_POINTS points, exact "
                             "scans below; exact or hnsw: that mode whatever the size."),
    quantization: str = typer.Option(None, "--quantization", help="int8 or none, with an HNSW graph (default: "
                                     "VISLINK_INDEX_QUANTIZATION)."),
    backend: str = typer.Option(None, "--backend", help=f"Index to optimize: {BACKEND_HELP}"),
    qdrant_url: str = typer.Option(None, "--qdrant-url", help="Optimize on this Qdrant server (implies qdrant-server)."),
    recall_queries: int = typer.Option(32, "--recall-queries", min=1, help="Stored vectors used as queries to "
                                       "measure an HNSW collection's recall@200 (approximate vs exact)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a spinner with the elapsed time."),
    detach: bool = typer.Option(False, "--detach", help="When `vislink ui` or `vislink worker --embedded` holds "
                                "the index (the work is queued for it as an index-optimize job): return at once."),
) -> None:
    """Apply the index policy: build an HNSW graph (and quantization) in collections at or above the threshold,
    scan the others exactly; print what was built, the time it took and the recall@200 measured after. On
    qdrant-edge the search ef of a new graph is then calibrated: doubled until recall@200 on the collection's own
    vectors reaches VISLINK_INDEX_TARGET_RECALL (0.95; 0: off) or ef is 40x the limit, and kept with the
    collection (`vislink doctor` prints it); a graph that needs an ef above 10x the limit is rebuilt once with m and
    ef_construct doubled (VISLINK_INDEX_HNSW_REBUILD_ABOVE) and calibrated again."""
    from vislink.errors import ConfigError
    from vislink.index.policy import QUANTIZATIONS

    if bool(collections) == all_:
        raise ConfigError("name the collections to optimize, or give --all")
    if mode not in ("auto", "exact", "hnsw"):
        raise ConfigError(f"--mode {mode!r}: auto, exact or hnsw")
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ConfigError(f"--quantization {quantization!r}: {' or '.join(QUANTIZATIONS)}")
    arguments = {"collections": list(collections or []), "all": all_, "mode": mode, "quantization": quantization,
                 "recall_queries": recall_queries}
    if backend or qdrant_url:
        index = _open(backend, qdrant_url)
        try:
            _optimize_all(index, arguments, progress)
        finally:
            index.close()
        return
    from vislink.cli.jobs import run_here_or_queue
    from vislink.index import close_all, open_index

    try:
        run_here_or_queue("index-optimize", arguments, lambda: _optimize_all(open_index(), arguments, progress),
                          detach=detach)
    finally:
        close_all()


def _optimize_all(index, arguments: dict, progress: bool) -> None:
    from vislink.index.policy import optimize_collection

    names = index.list_collections() if arguments["all"] else arguments["collections"]
    for name in names:
        with _spinner(progress, f"optimizing {name}"):
            report = optimize_collection(index, name, mode=arguments["mode"], quantization=arguments["quantization"],
                                         recall_queries=arguments["recall_queries"])
        typer.echo(report.describe())


def _spinner(progress: bool, what: str):
    """Edge's optimize() reports no progress: a spinner with the elapsed time shows it is alive (stderr)."""
    import contextlib

    if not progress:
        return contextlib.nullcontext()
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn(what), TimeElapsedColumn(), transient=True,
                   console=Console(stderr=True))
    bar.add_task(what, total=None)
    return bar


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
