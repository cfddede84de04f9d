"""The ``vislink`` command. Thin: each stage has one module here with a ``register(app)`` function that
adds its commands; domain errors (``VislinkError``) become one clean line on stderr and exit code 1.

Command modules must stay cheap to import (no torch, no Qdrant at import time): `vislink --help`
loads every one of them.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import typer

from vislink.errors import VislinkError

app = typer.Typer(
    name="vislink",
    help="Find visual links between artworks: ingest collections, search by image, annotate links, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    # Applications configure logging; the library only logs.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


# Modules of this package that are not stage commands (the CLI reference generator runs as
# `python -m vislink.cli.reference`; imported here too, it would be loaded twice and runpy warns).
NOT_COMMANDS = {"reference"}


def _register_commands() -> None:
    package = sys.modules[__name__]
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in NOT_COMMANDS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    try:
        app()
    except VislinkError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
