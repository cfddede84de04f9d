"""`vislink compare A B --out PNG`: geometric verification of two images and a picture of it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def compare(a: str = typer.Argument(..., help="Left image: an image file, or a stored image id (with --collection "
                                    "also its source_ref, WGA path or sha256:<hex>)."),
            b: str = typer.Argument(..., help="Right image, named the same way: it is warped onto the left one."),
            out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the comparison sheet as a PNG: A and "
                                               "B with the matched region outlined, and B warped onto A."),
            collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Name images by the refs of "
                                                     "this collection."),
            homography: bool = typer.Option(False, "--homography", help="Refine the similarity to a homography "
                                            "(a photo of a painting on a wall) when that keeps as many inliers."),
            mirror: bool = typer.Option(True, "--mirror/--no-mirror", help="Also try B mirrored left-right."),
            as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Match local features of two images (SIFT/RootSIFT, ratio test), estimate the transform mapping B onto A by
    RANSAC (B mirrored too), and say whether they align: inliers, scale, rotation, mirrored, the matched boxes.
    Exit code 0 whether or not they align; the first word printed says which ('aligned' or 'not aligned')."""
    from vislink.local.compare import compare as run
    from vislink.local.compare import write_comparison

    result = run(a, b, collection=collection, model="homography" if homography else "similarity", mirror=mirror)
    v = result.verification
    if as_json:
        import json

        typer.echo(json.dumps({
            "a": result.a.label, "b": result.b.label, "verified": v.verified, "inliers": v.inliers,
            "matches": v.matches, "mirrored": v.mirrored, "model": v.model, "reason": v.reason or None,
            "scale": v.scale, "rotation_deg": v.rotation_deg,
            "transform_b_to_a": v.transform.tolist() if v.transform is not None else None,
            "box_a": v.box_a, "box_b": v.box_b}, indent=2))
    else:
        typer.echo(f"{v.summary()}  ({result.a.label} <- {result.b.label})")
        if v.verified:
            typer.echo("matched region: A " + ", ".join(f"{x:.0f}" for x in v.box_a) + "; B "
                       + ", ".join(f"{x:.0f}" for x in v.box_b) + " (x0, y0, x1, y1 in pixels)")
    if out is not None:
        typer.echo(f"wrote {write_comparison(result, out)}", err=as_json)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
