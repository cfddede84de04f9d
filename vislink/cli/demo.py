"""`vislink demo`: the main job on the embedded default, in one command (what `./run demo` calls). Each step
is a function of ``vislink.ingest.demo``; this module prints them."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    images: Path | None = typer.Option(None, "--images", help="Offline: a folder of images to ingest (recursive)."),
    metadata: Path | None = typer.Option(None, "--metadata",
                                         help="With --images: a CSV of metadata keyed by relative path."),
    collection: str = typer.Option("demo", help="Name of the collection to create or extend."),
    size: int = typer.Option(300, help="Online sample: number of Web Gallery of Art images."),
    weights: str | None = typer.Option(None, help="Encoder weights (default: VISLINK_WEIGHTS, vgg16-caffe-conv)."),
    workers: int = typer.Option(1, min=1, help="Decode/encode worker processes."),
    catalog_url: str = typer.Option("", hidden=True, help="WGA catalog URL (tests point it at a local server)."),
    links_url: str = typer.Option("", hidden=True, help="Replica links URL (tests point it at a local server)."),
    wga_url: str = typer.Option("", hidden=True, help="WGA base URL for images."),
    ui: bool = typer.Option(True, "--ui/--no-ui", help="Start the UI at the end."),
    host: str = typer.Option("127.0.0.1", help="UI address."),
    port: int = typer.Option(8501, help="UI port."),
) -> None:
    """Set up the embedded default and fill it: migrate the database, install the encoder weights, ingest a
    sample collection (online: a few hundred Web Gallery of Art images with Replica's expert links between
    them; offline: --images DIR), create a `demo` annotator, check everything, then start the UI."""
    from vislink.config import get_settings
    from vislink.ingest import demo as setup
    from vislink.store import db

    settings = get_settings()
    settings.ensure_dirs()
    _step(f"data folder {settings.resolved_home}")
    db.upgrade(settings.database_url)
    _step("database migrated")

    weights = weights or settings.weights
    setup.ensure_weights(weights, settings, step=_step)

    if images is not None:
        result = setup.ingest_demo_folder(collection, images, metadata, weights=weights, workers=workers, step=_step)
    else:
        result = setup.ingest_demo_sample(collection, size=size, weights=weights, workers=workers, settings=settings,
                                          catalog_url=catalog_url, links_url=links_url, wga_url=wga_url, step=_step)
    typer.echo(result.format())

    password = setup.ensure_annotator(setup.DEMO_ANNOTATOR)
    from vislink.cli.doctor import run_checks

    failed = [c for c in run_checks() if not c.ok]
    for check in failed:
        typer.secho(f"doctor: {check.part}: {check.detail}", fg=typer.colors.RED, err=True)
    if failed:
        raise typer.Exit(1)
    _step("vislink doctor: all checks pass")
    if password:
        typer.echo(f"annotator account: {setup.DEMO_ANNOTATOR} / {password}  (sign in to annotate)")
    if ui:
        from vislink.cli.ui import ui as run_ui

        run_ui(host=host, port=port, dry_run=False)


def _step(text: str) -> None:
    typer.secho(f"==> {text}", fg=typer.colors.CYAN, err=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
