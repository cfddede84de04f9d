"""Settings, the CLI's database and doctor commands, the docs and the compose file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPO
from vislink.cli import app
from vislink.config import SETTINGS_DOC, Settings, get_settings, reset_settings

runner = CliRunner()


def test_defaults_live_in_one_data_folder(monkeypatch, tmp_path):
    for name, *_ in SETTINGS_DOC:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.resolved_home == tmp_path / "vislink-data"
    assert settings.database_url == f"sqlite:///{tmp_path / 'vislink-data' / 'vislink.db'}"
    assert settings.effective_index_backend == "qdrant-edge"
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    assert Settings().effective_index_backend == "qdrant-server"


def test_readme_settings_table_is_generated_from_the_code():
    from vislink.config.settings import settings_markdown

    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- settings-table:start -->")[1].split("<!-- settings-table:end -->")[0].strip()
    assert block == settings_markdown(), "README's settings table is stale: paste `python -m vislink.config`"


def test_compose_parses_and_uses_only_settings_the_config_reads():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    known = {name for name, *_ in SETTINGS_DOC}
    services = compose["services"]
    assert {"qdrant-1", "qdrant-2", "qdrant-3", "postgres", "ui", "worker"} <= set(services)
    for name in ("ui", "worker", "evaluate"):
        env = services[name]["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name} sets variables the config does not read: {unknown}"
        assert env["VISLINK_QDRANT_SHARDS"] == "2" and env["VISLINK_QDRANT_REPLICATION"] == "2"
    for node in ("qdrant-1", "qdrant-2", "qdrant-3"):
        assert services[node]["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
    assert set(compose["volumes"]) >= {"postgres", "qdrant-1", "vislink-data"}


def test_db_upgrade_command_on_a_new_sqlite_file(monkeypatch, tmp_path):
    monkeypatch.setenv("VISLINK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VISLINK_DB_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    reset_settings()
    result = runner.invoke(app, ["db", "upgrade"])
    reset_settings()
    assert result.exit_code == 0, result.output
    assert "database at 0001" in result.output or "database at" in result.output
    from vislink.store import db

    assert db.current_revision(f"sqlite:///{tmp_path / 'fresh.db'}") == db.head_revision()


def _vislink(args, env_extra, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISLINK_", "QDRANT_"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "vislink.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_doctor_fails_clearly_on_an_unreachable_database(tmp_path):
    result = _vislink(["doctor"], {"VISLINK_HOME": str(tmp_path), "VISLINK_DB_URL": "postgresql://x@127.0.0.1:9/none"},
                      tmp_path)
    assert result.returncode == 1
    assert "FAIL] database: cannot reach the database postgresql://x@127.0.0.1:9/none" in result.stdout
    assert "Traceback" not in result.stderr


def test_doctor_fails_on_an_unmigrated_database(tmp_path):
    result = _vislink(["doctor"], {"VISLINK_HOME": str(tmp_path)}, tmp_path)
    assert result.returncode == 1
    assert "run `vislink db upgrade`" in result.stdout


STAGE_COMMANDS = {"annotator", "benchmark", "collection", "db", "demo", "doctor", "encode", "evaluate", "groups",
                  "ingest", "link", "reconcile", "search", "thumbnails", "ui", "weights", "worker"}


def _command_tree():
    """(path, command) for every command and sub-command of the app, as the CLI runs them."""
    import typer

    root = typer.main.get_command(app)
    todo = [((), root, typer.Context(root, info_name="vislink"))]
    while todo:
        path, cmd, ctx = todo.pop(0)
        if path:
            yield path, cmd
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                todo.append(((*path, name), sub, typer.Context(sub, info_name=name, parent=ctx)))


def _words(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def test_every_command_answers_help_with_its_own_text():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    tree = dict(_command_tree())
    top = {path[0] for path in tree}
    assert STAGE_COMMANDS <= top, f"stage commands missing from the CLI: {STAGE_COMMANDS - top}"
    assert len(tree) > len(top), "no sub-command found"
    for name in top:
        assert f" {name} " in _words(result.output), f"`vislink --help` does not list {name}"
    for path, cmd in tree.items():
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        output = _words(result.output)
        assert f"Usage: vislink {' '.join(path)} " in output, (path, result.output)
        first_sentence = cmd.get_short_help_str(limit=10_000).removesuffix("...")
        assert first_sentence and _words(first_sentence) in output, (path, first_sentence, result.output)


def test_cli_reference_is_generated_from_the_code():
    from vislink.cli.reference import REGENERATE, cli_markdown

    text = cli_markdown()
    for path, cmd in _command_tree():
        assert f"`vislink {' '.join(path)}`" in text, path
        for param in cmd.params:
            if not param.hidden and param.param_type_name == "option" and param.name != "help":
                assert f"| `{param.opts[0]}`" in text, (path, param.opts)
    current = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == text, f"docs/cli.md is stale: regenerate it with `.venv/bin/{REGENERATE}` (repository root)"


def test_cli_reference_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISLINK_", "QDRANT_"))}
    printed = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "vislink.cli.reference"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0 and not printed.stderr, printed.stderr
    (tmp_path / "docs").mkdir()
    written = subprocess.run([sys.executable, "-m", "vislink.cli.reference", "--write"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "docs" / "cli.md").read_text(encoding="utf-8") == printed.stdout


def test_cli_errors_are_one_line_and_exit_1(tmp_path):
    """The installed `vislink` command's handler, in a real process: a VislinkError is `error: <message>` on
    stderr, exit code 1, no traceback."""
    script = Path(sys.executable).with_name("vislink")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "vislink.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISLINK_", "QDRANT_"))}
    env["VISLINK_HOME"] = str(tmp_path / "home")
    def run(*args):
        return subprocess.run([*command, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    assert run("db", "upgrade").returncode == 0
    cases = {  # raised in the command itself; raised deep in the library (the store's collection lookup)
        ("search", "--collection", "c"): "error: give a query IMAGE_FILE or --image-id, not both and not neither",
        ("search", "--image-id", "3", "--collection", "nope"): "error: unknown collection 'nope'",
    }
    for args, expected in cases.items():
        result = run(*args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), (args, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout
    assert not list(tmp_path.glob("vislink-data")), "the CLI wrote into the working directory"


def test_settings_by_field_name_are_used(monkeypatch, tmp_path):
    """Settings(home=...) is the data folder (it used to be silently ignored: the weights went to ./vislink-data)."""
    for name, *_ in SETTINGS_DOC:
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("VISLINK_HOME", str(tmp_path / "from-env"))
    home = tmp_path / "mine"
    settings = Settings(home=home, device="cpu")
    assert settings.resolved_home == home and settings.weights_dir == home / "weights"
    assert settings.database_url == f"sqlite:///{home / 'vislink.db'}" and settings.device == "cpu"
    settings.ensure_dirs()
    assert (home / "weights").is_dir() and not list(work.iterdir())
    assert Settings(VISLINK_HOME=home).resolved_home == home  # by variable name too
    assert Settings().resolved_home == tmp_path / "from-env"
    # A field's bare name in the environment is not a setting ($HOME is not the data folder).
    monkeypatch.delenv("VISLINK_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    monkeypatch.setenv("DEVICE", "cuda:7")
    assert Settings().resolved_home == work / "vislink-data" and Settings().device == "auto"
    with pytest.raises(TypeError, match="unknown settings \\['hom'\\]"):
        Settings(hom=home)


def test_unknown_index_backend_lists_valid_ones(vislink_env, monkeypatch):
    from vislink.errors import ConfigError
    from vislink.index import build_index

    with pytest.raises(ConfigError, match="valid: .*memory"):
        build_index(vislink_env, backend="elastic")
