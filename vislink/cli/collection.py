"""`vislink collection add-variant|list|show|remove`."""

from __future__ import annotations

import json

import typer

collection_app = typer.Typer(help="Collections of images and their descriptor variants.", no_args_is_help=True)


@collection_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every collection with its image counts by status and its variants."""
    from dataclasses import asdict

    from vislink.ingest.collections import list_collections

    infos = list_collections()
    if as_json:
        typer.echo(json.dumps([asdict(i) for i in infos], indent=2, default=str))
        return
    if not infos:
        typer.echo("no collections yet: `vislink ingest folder DIR --collection NAME`")
    for info in infos:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(info.counts.items())) or "empty"
        typer.echo(f"{info.name}: {counts}; variants: {', '.join(v['name'] for v in info.variants)}")


@collection_app.command("show")
def show(name: str = typer.Argument(..., help="Collection name."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """A collection's counts, variants (weights, Qdrant collection, encoded images) and last ingest runs."""
    from dataclasses import asdict

    from vislink.ingest.collections import collection_info

    info = collection_info(name)
    if as_json:
        typer.echo(json.dumps(asdict(info), indent=2, default=str))
        return
    typer.echo(f"collection {info.name} (id {info.id}, source {info.source_kind or '-'}: {info.source_ref or '-'})")
    typer.echo("images: " + (", ".join(f"{n} {s}" for s, n in sorted(info.counts.items())) or "none"))
    for v in info.variants:
        typer.echo(f"variant {v['name']}: {v['dimension']}-d, {v['encoded']} encoded, weights {v['weights']} "
                   f"({v['weights_sha256'][:12]}), Qdrant collection {v['qdrant_collection']}")
    for r in info.last_runs:
        reasons = ", ".join(f"{k} {n}" for k, n in r["failures_by_reason"].items())
        typer.echo(f"run {r['id']} ({r['source_kind']}, {r['status']}, {r['started_at']}): {r['done']} done, "
                   f"{r['skipped']} skipped, {r['failed']} failed" + (f" ({reasons})" if reasons else ""))


@collection_app.command("add-variant")
def add_variant(name: str = typer.Argument(..., help="Collection name."),
                variant: str = typer.Argument(..., help="Variant, e.g. vgg16-fc6-crop, vgg16-pool5-sp2x2-sum-pca256 "
                                                        "or sift-bow."),
                sample: int | None = typer.Option(None, "--sample", min=1,
                                                  help="Base descriptors to fit a PCA variant on (default 10,000), "
                                                       "or images to train a sift-bow vocabulary on (default "
                                                       "1,000)."),
                workers: int = typer.Option(1, "--workers", "-j", min=1, help="Encoding worker processes."),
                progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
                detach: bool = typer.Option(False, "--detach", help="When `vislink ui` or `vislink worker --embedded` "
                                            "holds the index (the work is queued for it as a job): return at once "
                                            "instead of following it.")) -> None:
    """Compute a new descriptor variant for a collection from its stored files (nothing is downloaded again)."""
    from vislink.cli.jobs import run_here_or_queue
    from vislink.index import close_all

    def here() -> None:
        from vislink.ingest.reencode import add_variant as run

        row = run(name, variant, sample=sample, workers=workers, progress=progress)
        typer.echo(f"variant {row.name} of {name}: {row.dimension}-d, Qdrant collection {row.qdrant_collection}")

    try:
        run_here_or_queue("add-variant", {"collection": name, "variant": variant, "sample": sample,
                                          "workers": workers}, here, detach=detach)
    finally:
        close_all()


@collection_app.command("remove")
def remove(name: str = typer.Argument(..., help="Collection name."),
           yes: bool = typer.Option(False, "--yes", "-y", help="Really delete (required).")) -> None:
    """Delete a collection: its SQL rows (images, links, runs), its Qdrant collections, and its stored files
    that no other collection uses."""
    from vislink.errors import ConfigError
    from vislink.ingest.collections import remove_collection

    if not yes:
        raise ConfigError(f"removing collection {name!r} deletes its images, annotations and index: add --yes")
    from vislink.index import close_all

    try:
        counts = remove_collection(name)
    finally:
        close_all()
    typer.echo(f"removed {name}: {counts['images']} images, {counts['qdrant_collections']} Qdrant collections, "
               f"{counts['files']} stored files")


def register(app: typer.Typer) -> None:
    app.add_typer(collection_app, name="collection")
