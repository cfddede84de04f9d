"""`vislink encode`: compute descriptors for a few files and print them (debugging, no storage)."""

from __future__ import annotations

from pathlib import Path

import typer


def encode(
    files: list[Path] = typer.Argument(..., help="Image files to encode."),
    variant: list[str] = typer.Option(["vgg16-pool5-sum"], "--variant", "-V",
                                      help="Descriptor variant (repeatable); see docs/encoder.md."),
    weights: str = typer.Option(None, "--weights", help="Weights source or file (default: VISLINK_WEIGHTS)."),
    device: str = typer.Option(None, "--device", help="Torch device (default: VISLINK_DEVICE)."),
    similarities: bool = typer.Option(False, "--similarities", "-s",
                                      help="Also print the cosine similarity matrix between the files."),
    save: Path = typer.Option(None, "--save", help="Write the descriptors to this .npz file (one array per variant)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Encode FILES for any mix of variants (VGG16 and ONNX backbones such as SSCD) and print each descriptor's
    size and first values (bad files are reported with their reason, and skipped)."""
    import numpy as np

    from vislink.encoder import VariantSet

    variants = VariantSet(variant, weights=weights, device=device)
    for name, info in variants.weights.items():
        typer.echo(f"{name}: weights {info.name} sha256={info.sha256}"
                   + ("  [RANDOM: tests only]" if info.is_random else ""))
    rows: dict[int, dict] = {}
    for index, result in variants.encode_files(files, progress=progress):
        if isinstance(result, Exception):
            typer.secho(f"{files[index]}: skipped: {result.reason} {result.detail}", fg=typer.colors.YELLOW, err=True)
        else:
            rows[index] = result
    good = sorted(rows)
    for name in variant:
        typer.echo(f"\n{name}")
        for index in good:
            vector = rows[index][name]
            head = " ".join(f"{x:+.4f}" for x in vector[:5])
            typer.echo(f"  {files[index]}: dim={vector.shape[0]} norm={np.linalg.norm(vector):.4f} [{head} ...]")
        if similarities and good:
            matrix = np.stack([rows[i][name] for i in good])
            typer.echo("  cosine similarities:\n" + np.array2string(matrix @ matrix.T, precision=3))
    if save is not None and good:
        np.savez(save, files=np.array([str(files[i]) for i in good]),
                 **{name.replace("-", "_"): np.stack([rows[i][name] for i in good]) for name in variant})
        typer.echo(f"saved to {save}")


def register(app: typer.Typer) -> None:
    app.command("encode")(encode)
