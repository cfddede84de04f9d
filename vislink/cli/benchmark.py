"""`vislink benchmark ...`: the paper's protocol on a folder of grouped images (`groups`) or on the Replica
links between Web Gallery of Art images (`replica-wga`), and the copy-detection protocol of link-like
transformations on any folder or collection (`transforms`). Encodes with vislink's own encoder, evaluates
with exact search, prints the tables, stores the runs, writes reports."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

benchmark_app = typer.Typer(help="Measure retrieval on annotated image sets (the paper's protocol).",
                            no_args_is_help=True)

DEFAULT_VARIANTS = "vgg16-pool5-sum"


def _variants(text: str) -> list[str]:
    from vislink.errors import ConfigError

    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise ConfigError("--variants needs at least one variant name")
    return names


def _run(gallery, *, variants: str, weights: Optional[str], cutoffs: tuple[int, ...], columns: tuple[int, ...],
         out: Optional[Path], store: bool, cache: bool, progress: bool, ranks: bool, ranks_limit: Optional[int],
         params: dict) -> list:
    from vislink.config import get_settings
    from vislink.evaluation.gallery import encode_gallery, evaluate_gallery, store_reports
    from vislink.evaluation.reports import format_ranks, format_table, write_reports

    settings = get_settings()
    if store:  # a store that cannot take the runs says so now, not after minutes of encoding
        from vislink.store.db import ensure_schema

        ensure_schema(settings.database_url)
    for note in gallery.notes:
        typer.echo(note)
    encoded = encode_gallery(gallery, _variants(variants), weights=weights, cache=cache, progress=progress)
    for note in encoded.notes:
        typer.echo(note)
    for i, bad in sorted(encoded.failures.items()):
        typer.secho(f"skipped {gallery.items[i].ref}: {bad.reason}" + (f" ({bad.detail})" if bad.detail else ""),
                    fg=typer.colors.YELLOW, err=True)
    reports = evaluate_gallery(gallery, encoded, cutoffs=cutoffs, params=params)
    if store:
        store_reports(reports, settings.database_url)
    r0 = reports[0]
    typer.echo(f"{gallery.name}: {r0.n_queries} queries in {r0.params['n_groups']} groups, {r0.n_gallery} images "
               f"searched (exact, query excluded); weights {encoded.weights_name} "
               f"({(encoded.weights_sha256 or '?')[:12]}); weighted recall in %")
    typer.echo(format_table(reports, columns))
    if ranks:
        for report in reports:
            typer.echo("")
            typer.echo(format_ranks(report, limit=ranks_limit))
    paths = write_reports(reports, out or settings.reports_dir, title=f"Benchmark {gallery.name}",
                          cutoffs=columns, stem=None)
    stored = f"runs stored: {', '.join(str(r.run_id) for r in reports)}; " if store else ""
    typer.echo(f"{stored}reports: {paths['markdown']}, {paths['json']}, {paths['plot']}")
    return reports


@benchmark_app.command("groups")
def groups(
    manifest: Path = typer.Argument(..., help="CSV with columns file,group (file relative to the CSV's folder; "
                                    "empty group = distractor; optional query_box / target_box 'x,y,w,h': a "
                                    "region query and its ground truth, scored by localisation on -regions "
                                    "variants (docs/evaluation.md); other columns ignored)."),
    root: Optional[Path] = typer.Option(None, help="Folder the files are relative to (default: the CSV's folder)."),
    variants: str = typer.Option(DEFAULT_VARIANTS, help="Descriptor variants, comma-separated."),
    weights: Optional[str] = typer.Option(None, help="Encoder weights (default: VISLINK_WEIGHTS)."),
    cutoffs: str = typer.Option("1,5,10,20,50,100,200", help="Recall cutoffs n of R@n to compute and store."),
    columns: str = typer.Option("5,10,20,50,100,200", help="Cutoffs shown in the printed table."),
    skip_missing: bool = typer.Option(False, help="Leave out listed files that do not exist instead of failing."),
    ranks: bool = typer.Option(True, "--ranks/--no-ranks", help="Print the rank of every target (Table 2)."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default: the data folder's reports/)."),
    store: bool = typer.Option(True, "--store/--no-store", help="Store the runs in the SQL database."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse vectors computed by earlier runs."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """The paper's protocol on your own annotated images: every grouped image is a query, the rest of its
    group its targets, every image of the manifest the search space."""
    from vislink.evaluation.groups import read_manifest
    from vislink.evaluation.metrics import parse_cutoffs

    gallery = read_manifest(manifest, root=root, skip_missing=skip_missing)
    _run(gallery, variants=variants, weights=weights, cutoffs=parse_cutoffs(cutoffs),
         columns=parse_cutoffs(columns), out=out, store=store, cache=cache, progress=progress, ranks=ranks,
         ranks_limit=None,
         params={"manifest": str(manifest)})


@benchmark_app.command("replica-wga")
def replica_wga(
    replica_dir: Optional[Path] = typer.Option(None, "--replica", help="Folder holding links.csv and images.csv "
                                               "(the Replica links between WGA images)."),
    links: Optional[Path] = typer.Option(None, help="links.csv (uid1,uid2[,group]); default: --replica/links.csv."),
    images: Optional[Path] = typer.Option(None, help="images.csv (uid,wga_image_url,...); default: "
                                          "--replica/images.csv."),
    catalog: Optional[Path] = typer.Option(None, help="WGA catalog (catalog.xls, its zip, or CSV): the distractors."),
    images_root: Optional[Path] = typer.Option(None, help="Local folder laid out like WGA's /art/ tree "
                                               "(a/aachen/bacchus.jpg). Without it, images are downloaded."),
    base_url: str = typer.Option("https://www.wga.hu", help="Where to download from when there is no "
                                 "--images-root: images are at BASE/art/<wga path>."),
    distractors: str = typer.Option("all", help="How many distractors: a number (a seeded random sample) or 'all'."),
    distractor_source: str = typer.Option("catalog", help="catalog: rows of --catalog; folder: every image file "
                                          "under --images-root, in the catalog or not."),
    seed: int = typer.Option(0, help="Seed of the distractor sample."),
    variants: str = typer.Option(DEFAULT_VARIANTS, help="Descriptor variants, comma-separated."),
    weights: Optional[str] = typer.Option(None, help="Encoder weights (default: VISLINK_WEIGHTS)."),
    cutoffs: str = typer.Option("1,5,10,20,50,100,200", help="Recall cutoffs n of R@n to compute and store."),
    columns: str = typer.Option("20,50,100,200", help="Cutoffs shown in the printed table (the paper's Table 1)."),
    ranks: bool = typer.Option(True, "--ranks/--no-ranks", help="Print the rank of every target (Table 2)."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default: the data folder's reports/)."),
    store: bool = typer.Option(True, "--store/--no-store", help="Store the runs in the SQL database."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse vectors computed by earlier runs."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """The paper's benchmark from the Replica links between Web Gallery of Art images: groups with at least two
    images present are evaluated (each image a query, the rest of its group its targets), the catalog's other
    images are distractors, everything found is searched."""
    from vislink.errors import ConfigError
    from vislink.evaluation.metrics import parse_cutoffs
    from vislink.evaluation.replica import ImageSource, build_replica_gallery, parse_distractors

    if links is None or images is None:
        if replica_dir is None:
            raise ConfigError("give --replica DIR (with links.csv and images.csv) or both --links and --images")
        links = links or replica_dir / "links.csv"
        images = images or replica_dir / "images.csv"
    source = ImageSource(images_root=images_root) if images_root else ImageSource(base_url=base_url)
    count = parse_distractors(distractors)
    gallery = build_replica_gallery(links, images, source, catalog=catalog, distractors=count,
                                    distractor_source=distractor_source, seed=seed, progress=progress)
    _run(gallery, variants=variants, weights=weights, cutoffs=parse_cutoffs(cutoffs),
         columns=parse_cutoffs(columns), out=out, store=store, cache=cache, progress=progress, ranks=ranks,
         ranks_limit=None,
         params={"links": str(links), "images": str(images), "catalog": str(catalog) if catalog else None,
                 "source": source.description, "distractors": distractors, "distractor_source": distractor_source,
                 "seed": seed})


@benchmark_app.command("transforms")
def transforms(
    source: Optional[Path] = typer.Argument(None, help="A folder of images (every file under it) or a file,group "
                                            "manifest CSV. Or give --collection instead."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="A collection: its own index is the "
                                             "gallery, queries are encoded with each variant's recorded weights."),
    variants: Optional[str] = typer.Option(None, help="Descriptor variants, comma-separated (e.g. "
                                           "vgg16-pool5-sum,vgg16-pool5-sum@ft:RUN). Default: vgg16-pool5-sum for "
                                           "a folder, every variant of a collection."),
    weights: Optional[str] = typer.Option(None, help="Encoder weights of the unpinned VGG16 variants (folder only; "
                                          "default: VISLINK_WEIGHTS)."),
    transformations: str = typer.Option("all", "--transforms", help="Transformations, comma-separated, or 'all' "
                                        "(detail, mirror, grayscale, engraving, colour, resize, photo)."),
    strength: float = typer.Option(0.5, help="Strength of every transformation, 0 (barely changed) to 1."),
    sample: Optional[int] = typer.Option(None, help="Transform a seeded sample of this many images (the gallery "
                                         "stays whole). Default: every image."),
    seed: int = typer.Option(0, help="Seed of the sample and of the transformations."),
    cutoffs: str = typer.Option("1,5,10,20", help="Recall cutoffs n of R@n to compute and store."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default: the data folder's reports/)."),
    store: bool = typer.Option(True, "--store/--no-store", help="Store the runs in the SQL database."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse vectors computed by earlier runs."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    detach: bool = typer.Option(False, "--detach", help="With --collection, when `vislink ui` or `vislink worker "
                                "--embedded` holds the index (the benchmark is queued for it as a job): return at "
                                "once instead of following it."),
) -> None:
    """How robust descriptor variants are to link-like transformations: each image transformed by each
    transformation is a query among the untransformed images, its original the one target. Prints top-1,
    R[5] and mAP per transformation, stores one run per variant, writes reports."""
    from vislink.config import get_settings
    from vislink.errors import ConfigError
    from vislink.evaluation.metrics import parse_cutoffs
    from vislink.evaluation.reports import format_transforms_table, write_transform_reports
    from vislink.evaluation.transforms import benchmark_collection, benchmark_gallery, folder_gallery

    if (source is None) == (collection is None):
        raise ConfigError("give a folder or manifest, or --collection (one of them)")
    names = None if transformations.strip().lower() == "all" else _variants(transformations)
    cuts = parse_cutoffs(cutoffs)
    settings = get_settings()
    if collection is not None:
        if weights is not None:
            raise ConfigError("--weights applies to a folder: a collection's variants use their recorded weights")
        from vislink.cli.jobs import run_here_or_queue
        from vislink.index import close_all

        done: list = []
        try:
            # When `vislink ui` or `vislink worker --embedded` holds the index, the benchmark is its job.
            run_here_or_queue("benchmark-transforms",
                              {"collection": collection, "variants": _variants(variants) if variants else None,
                               "transforms": names, "strength": strength, "sample": sample, "seed": seed,
                               "cutoffs": list(cuts), "cache": cache, "store": store,
                               "out": str(out.resolve()) if out else None},
                              lambda: done.append(benchmark_collection(
                                  collection, _variants(variants) if variants else None, transforms=names,
                                  strength=strength, sample=sample, seed=seed, cutoffs=cuts, cache=cache,
                                  progress=progress, store=store)), detach=detach)
        finally:
            close_all()
        if not done:  # run by the holder: its output is printed
            return
        reports = done[0]
        label = f"transforms:{collection}"
    else:
        from vislink.evaluation.gallery import store_reports

        gallery = folder_gallery(source)
        for note in gallery.notes:
            typer.echo(note)
        reports = benchmark_gallery(gallery, _variants(variants or DEFAULT_VARIANTS), weights=weights,
                                    transforms=names, strength=strength, sample=sample, seed=seed, cutoffs=cuts,
                                    cache=cache, progress=progress)
        if store:
            store_reports(reports, settings.database_url)
        label = gallery.name
    r0 = reports[0]
    typer.echo(f"{label}: {r0.params['n_images']} images x {len(r0.params['transforms'])} transformations "
               f"(strength {strength}) searched among {r0.n_gallery} untransformed images (exact); in %")
    typer.echo(format_transforms_table(reports))
    paths = write_transform_reports(reports, out or settings.reports_dir, title=f"Benchmark {label}", cutoffs=cuts)
    stored = f"runs stored: {', '.join(str(r.run_id) for r in reports)}; " if store else ""
    typer.echo(f"{stored}reports: {paths['markdown']}, {paths['json']}, {paths['plot']}")


def register(app: typer.Typer) -> None:
    app.add_typer(benchmark_app, name="benchmark")
