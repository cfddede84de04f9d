"""The CLI reference, docs/cli.md, generated from the typer app: every command and sub-command with its help
text, its arguments and its options (help, type, default). A test fails when docs/cli.md is out of date.

Regenerate it from the repository root with one command:

    python -m vislink.cli.reference --write        # or: python -m vislink.cli.reference > docs/cli.md

Only typer is imported here, when called (`vislink --help` imports every module of vislink.cli).
"""

from __future__ import annotations

import enum
import inspect
import sys
from pathlib import Path

DOC_PATH = Path("docs") / "cli.md"
REGENERATE = "python -m vislink.cli.reference --write"
# Options typer adds to every app, whose text depends on the shell: left out of the reference.
_LEFT_OUT = {"install_completion", "show_completion"}


def _paragraphs(text: str | None) -> str:
    """Help text as Markdown paragraphs (the lines of one paragraph joined; click's \\b markers dropped)."""
    blocks, current = [], []
    for line in (text or "").strip().splitlines():
        line = line.strip()
        if line == "\b":
            continue
        if line:
            current.append(line)
        elif current:
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    return "\n\n".join(blocks)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _value(value) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    return str(value)


def _is_argument(param) -> bool:
    return param.param_type_name == "argument"


def _default(param, ctx) -> str:
    if param.required:
        return "required"
    default = param.get_default(ctx, call=False)
    if inspect.isfunction(default):
        return "(computed)"
    if getattr(param, "is_bool_flag", False):
        if param.secondary_opts:
            return f"`{(param.opts if default else param.secondary_opts)[0]}`"
        return "on" if default else "off"
    if default is None or (param.multiple and not default) or default == ():
        return "-"
    return f"`{_value(default)}`"


def _type(param, ctx) -> str:
    if getattr(param, "is_bool_flag", False):
        return "flag"
    text = param.display_type(ctx).strip("<>")
    bounds = [f"{param.min} <=" if param.min is not None else "", "x" if (param.min, param.max) != (None, None) else "",
              f"<= {param.max}" if param.max is not None else ""]
    if param.min is not None or param.max is not None:
        text += f" ({' '.join(b for b in bounds if b)})"
    if _is_argument(param) and param.nargs == -1:
        text += ", one or more"
    elif param.multiple:
        text += ", repeatable"
    return text


def _names(param) -> str:
    if _is_argument(param):
        return f"`{(param.metavar or param.name).upper()}`"
    return ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])


def _params_tables(cmd, ctx) -> list[str]:
    out = []
    params = [p for p in cmd.get_params(ctx) if not p.hidden and p.name not in _LEFT_OUT
              and not (not _is_argument(p) and set(p.opts) & set(ctx.help_option_names))]
    for title, group in (("argument", [p for p in params if _is_argument(p)]),
                         ("option", [p for p in params if not _is_argument(p)])):
        if group:
            out += ["", f"| {title} | type | default | help |", "| --- | --- | --- | --- |"]
            out += [f"| {_names(p)} | {_cell(_type(p, ctx))} | {_cell(_default(p, ctx))} | {_cell(p.help or '')} |"
                    for p in group]
    return out


def _command(cmd, ctx, level: int) -> list[str]:
    import typer

    out = [f"{'#' * min(level, 6)} `{ctx.command_path}`", ""]
    help_text = _paragraphs(cmd.help)
    if help_text:
        out += [help_text, ""]
    out.append(f"Usage: `{' '.join([ctx.command_path, *cmd.collect_usage_pieces(ctx)])}`")
    out += _params_tables(cmd, ctx)
    if hasattr(cmd, "list_commands"):  # a group
        subs = [(name, cmd.get_command(ctx, name)) for name in cmd.list_commands(ctx)]
        subs = [(name, sub) for name, sub in subs if sub is not None and not sub.hidden]
        if subs:
            out += ["", "| command | what it does |", "| --- | --- |"]
            out += [f"| `{name}` | {_cell(sub.get_short_help_str(limit=300))} |" for name, sub in subs]
        for name, sub in subs:
            out += ["", *_command(sub, typer.Context(sub, info_name=name, parent=ctx), level + 1)]
    return out


def cli_markdown() -> str:
    """docs/cli.md: the whole `vislink` command tree as Markdown (docs/cli.md is checked against it)."""
    import typer

    from vislink.cli import app

    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="vislink", help_option_names=["-h", "--help"])
    lines = ["# vislink command reference", "",
             f"<!-- Generated from the code by `{REGENERATE}`: do not edit by hand. -->", "",
             "Every command answers `-h` / `--help` with the same text. Settings (environment variables) are in the "
             "README's Configuration table.", ""]
    lines += _command(root, ctx, 2)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--write"]):
        sys.exit(f"usage: {REGENERATE} (writes {DOC_PATH} under the current folder), or without --write to print")
    text = cli_markdown()
    if args:
        DOC_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DOC_PATH}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
