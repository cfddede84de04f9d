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


def test_help_lists_every_stage_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("db", "doctor"):
        assert command in result.output


def test_unknown_index_backend_lists_valid_ones(vislink_env, monkeypatch):
    from vislink.errors import ConfigError
    from vislink.index import build_index

    with pytest.raises(ConfigError, match="valid: .*memory"):
        build_index(vislink_env, backend="elastic")
