"""`vislink demo`: the main job on the embedded default, in one command (what `./run demo` calls)."""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_ANNOTATOR = "demo"


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
    from vislink.store import db

    settings = get_settings()
    settings.ensure_dirs()
    _step(f"data folder {settings.resolved_home}")
    db.upgrade(settings.database_url)
    _step("database migrated")

    weights = weights or settings.weights
    _install_weights(weights, settings)

    if images is not None:
        summary = _ingest_folder(collection, images, metadata, weights, workers)
    else:
        summary = _ingest_online_sample(collection, size, weights, workers, settings, catalog_url, links_url, wga_url)
    typer.echo(summary)

    password = _ensure_annotator()
    from vislink.cli.doctor import run_checks

    failed = [c for c in run_checks() if not c.ok]
    for check in failed:
        typer.secho(f"doctor: {check.part}: {check.detail}", fg=typer.colors.RED, err=True)
    if failed:
        raise typer.Exit(1)
    _step("vislink doctor: all checks pass")
    if password:
        typer.echo(f"annotator account: {DEMO_ANNOTATOR} / {password}  (sign in to annotate)")
    if ui:
        from vislink.cli.ui import ui as run_ui

        run_ui(host=host, port=port, dry_run=False)


def _step(text: str) -> None:
    typer.secho(f"==> {text}", fg=typer.colors.CYAN, err=True)


def _install_weights(weights: str, settings) -> None:
    from vislink.encoder.weights import describe_weights, install_weights

    info = describe_weights(weights, settings)
    if not info.installed:
        _step(f"installing encoder weights {weights}")
        info = install_weights(weights, settings)
    _step(f"encoder weights {info.name} ready ({info.message})")


def _ingest_folder(collection: str, images: Path, metadata: Path | None, weights: str, workers: int) -> str:
    from vislink.errors import ConfigError
    from vislink.ingest.pipeline import ingest
    from vislink.ingest.sources import folder_items

    if not images.is_dir():
        raise ConfigError(f"--images {images}: not a folder")
    _step(f"ingesting {images} into collection {collection!r}")
    items = folder_items(images, metadata)
    summary = ingest(collection, items, weights=weights, workers=workers, source_kind="folder",
                     source_ref=str(images.resolve()))
    return summary.format()


def _ingest_online_sample(collection, size, weights, workers, settings, catalog_url, links_url, wga_url) -> str:
    from vislink.errors import FetchError
    from vislink.ingest.fetch import Fetcher
    from vislink.ingest.pipeline import ingest
    from vislink.ingest.replica_sample import (
        REPLICA_LINKS_URL,
        WGA_CATALOG_URL,
        build_demo_sample,
        replica_wga_links,
    )
    from vislink.ingest.sources.wga import WGA_BASE_URL

    fetcher = Fetcher(settings.cache_dir / "http", timeout=60, connect_timeout=10, retries=2)
    try:
        _step("downloading the Web Gallery of Art catalog and Replica's links")
        catalog = fetcher.fetch(catalog_url or WGA_CATALOG_URL)
        links_file = fetcher.fetch(links_url or REPLICA_LINKS_URL)
    except FetchError as exc:
        raise FetchError(f"{exc}\nOffline? Give the demo a folder of images instead: ./run demo --images DIR") from exc
    # The catalog's .zip needs its own suffix for the reader; the cache names files by content.
    catalog_copy = settings.cache_dir / ("wga-catalog" + _suffix(catalog_url or WGA_CATALOG_URL))
    catalog_copy.write_bytes(Path(catalog).read_bytes())
    sample = build_demo_sample(catalog_copy, replica_wga_links(links_file), size=size,
                               base_url=wga_url or WGA_BASE_URL)
    _step(f"ingesting {len(sample.items)} WGA images ({len(sample.groups)} linked groups, "
          f"{sample.n_linked} linked images) into collection {collection!r}")
    summary = ingest(collection, sample.items, weights=weights, workers=workers, source_kind="wga-demo",
                     source_ref=catalog_url or WGA_CATALOG_URL, fetcher=fetcher)
    n_links = _import_links(collection, sample.links)
    return summary.format() + f"\n{n_links} expert links imported (Replica)"


def _suffix(url: str) -> str:
    name = url.rsplit("/", 1)[-1]
    return Path(name).suffix or ".zip"


def _import_links(collection: str, links: list[tuple[str, str]]) -> int:
    """Replica links between WGA paths -> positive links between the collection's images."""
    from sqlalchemy import select

    from vislink.graph.annotators import get_or_create
    from vislink.graph.audit import Change
    from vislink.graph.edits import set_links
    from vislink.store import Image, ImageStatus, get_collection, session_scope

    with session_scope() as session:
        coll = get_collection(session, collection)
        by_path = {img.extra.get("wga_path"): img.id for img in session.scalars(
            select(Image).where(Image.collection_id == coll.id, Image.status == ImageStatus.done))}
        annotator = get_or_create(session, "replica", display_name="EPFL Replica (imported)")
        pairs = [(by_path[a], by_path[b], "positive", None, annotator.id) for a, b in links
                 if a in by_path and b in by_path]
        result = set_links(session, coll.id, pairs, change=Change(session, annotator.id, "import_replica"))
    return result["set"] + result["unchanged"]


def _ensure_annotator() -> str | None:
    """A `demo` annotator account with a fresh password, the first time only."""
    import secrets

    from vislink.graph.annotators import create_annotator, find_annotator
    from vislink.store import session_scope

    with session_scope() as session:
        if find_annotator(session, DEMO_ANNOTATOR) is not None:
            return None
        password = secrets.token_urlsafe(9)
        create_annotator(session, DEMO_ANNOTATOR, password, display_name="Demo annotator")
        return password


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
