"""`vislink index export|import`: move vector collections between index backends without encoding again."""

from __future__ import annotations

from pathlib import Path

import typer

index_app = typer.Typer(help="The vector index: move collections between backends (export / import).",
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


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
