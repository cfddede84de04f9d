"""`vislink search IMAGE_FILE | --image-id ID --collection C ...`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def search(image: Optional[Path] = typer.Argument(None, help="Query image file (or use --image-id)."),
           image_id: Optional[int] = typer.Option(None, "--image-id", help="Query with a stored image (never "
                                                  "returned itself)."),
           collection: str = typer.Option(..., "--collection", "-c", help="Collection to search."),
           variant: Optional[str] = typer.Option(None, "--variant", help="Descriptor variant (default: the "
                                                 "collection's first)."),
           limit: int = typer.Option(20, "--limit", "-k", min=1, help="Number of results."),
           offset: int = typer.Option(0, "--offset", min=0, help="Skip this many results (paging)."),
           filters: Optional[List[str]] = typer.Option(None, "--filter", help="field=value, repeatable: artist, "
                                                       "school, form, type (exact; repeat for any of), year=1500-1550 "
                                                       "(overlapping year range)."),
           mirrored: bool = typer.Option(False, "--mirrored", help="Also search with the horizontal mirror."),
           exact: bool = typer.Option(False, "--exact", help="Exact search (no approximate index)."),
           verify: bool = typer.Option(False, "--verify", help="Geometric re-ranking: verify the top results against "
                                       "the query with local features (SIFT, RANSAC; mirrored too) and put the "
                                       "verified ones first, by inlier count. Features are cached per image."),
           verify_top: Optional[int] = typer.Option(None, "--verify-top", min=1, help="How many of the top results "
                                                    "--verify checks (default 50: about 15 ms each on 2 cores, features cached; "
                                                    "docs/local.md)."),
           region: Optional[str] = typer.Option(None, "--region", help="x,y,w,h: search this region of the query "
                                                "image (its pixels). On a -regions variant (the collection's first one "
                                                "unless --variant) it is matched against every stored region and each "
                                                "result shows its matched box; otherwise the crop is compared with "
                                                "whole images (docs/detail.md)."),
           regions: Optional[str] = typer.Option(None, "--regions", help="'auto': match the query's own regions "
                                                 "(whole, then a grid) against the stored regions of a -regions "
                                                 "variant: a photo holding several paintings finds each; results "
                                                 "show which query box found them and where."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the images nearest to a query image: rank, score, image id, source reference, artist, title. With
    --verify, the top results are re-ranked by geometric verification and each checked one also shows its inlier
    count, 'v' when verified and 'm' when it matched mirrored. With --region / --regions auto on a -regions
    variant, each result also shows 'at x,y,w,h' (its matched box) and, for auto, 'for x,y,w,h' (the query's)."""
    from vislink.errors import ConfigError
    from vislink.search import parse_filter_args, search as run

    if (image is None) == (image_id is None):
        raise ConfigError("give a query IMAGE_FILE or --image-id, not both and not neither")
    from types import SimpleNamespace

    from vislink.cli.jobs import held_answer
    from vislink.index import close_all

    parse_filter_args(filters or [])  # a bad filter is reported here, not by the holder
    from vislink.search.detail import parse_box

    box = parse_box(region) if region is not None else None
    try:
        # When `vislink ui` or `vislink worker --embedded` holds the embedded index, it answers the search.
        answer = held_answer("search", {"image": str(image.resolve()) if image else None, "image_id": image_id,
                                        "collection": collection, "variant": variant, "limit": limit,
                                        "offset": offset, "filters": list(filters or []), "mirrored": mirrored,
                                        "exact": exact, "verify": verify or verify_top is not None,
                                        "verify_top": verify_top, "region": box, "regions": regions})
        if answer is None:
            results = run(image, image_id=image_id, collection=collection, variant=variant, limit=limit,
                          offset=offset, filters=parse_filter_args(filters or []), mirrored=mirrored, exact=exact,
                          verify=verify or verify_top is not None, verify_top=verify_top, region=box,
                          regions=regions)
        else:
            results = [SimpleNamespace(as_dict=lambda d=d: d, **d) for d in answer["results"]]
    finally:
        close_all()  # release the embedded index now, not in interpreter teardown
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], indent=2, default=str))
        return
    if not results:
        typer.echo("no results")
    for r in results:
        checked = ""
        if r.verified is not None:  # --verify: inliers, 'v' when verified, 'm' when found mirrored
            checked = f"  {r.inliers:>4}{'v' if r.verified else ' '}{'m' if r.mirrored else ' '}"
        where = ""
        if getattr(r, "box", None):  # detail search: the result's matched box, and the query's for --regions auto
            where = f"  at {','.join(map(str, r.box))}"
            if regions is not None and r.query_box:
                where += f" for {','.join(map(str, r.query_box))}"
        typer.echo(f"{r.rank:>4}  {r.score:.4f}{checked}  {r.image_id:>7}  {r.source_ref}  {r.artist or '-'}  "
                   f"{r.title or '-'}{where}")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
