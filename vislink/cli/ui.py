"""`vislink ui`: the Streamlit app (search, compare, annotate, browse, evaluation)."""

from __future__ import annotations

import os
import sys

import typer


COOKIE_SECRET_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"  # Streamlit reads its sensitive options from the environment


def streamlit_command(host: str, port: int, max_upload_mb: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no telemetry, no file watcher, the upload limit
    from the settings (Streamlit refuses larger files before vislink sees them). No secret: a command line is
    readable by every user of the machine (``ps``); the cookie secret goes in the environment (``streamlit_env``)."""
    from vislink.ui import APP_PATH

    cmd = [sys.executable, "-m", "streamlit", "run", str(APP_PATH),
           "--server.address", host, "--server.port", str(port), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
           "--server.runOnSave", "false", "--global.developmentMode", "false",
           "--server.maxUploadSize", str(max(1, max_upload_mb)), "--client.toolbarMode", "minimal"]
    return cmd


def streamlit_env(cookie_secret: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Streamlit runs with: ``base`` (this process's) plus the cookie secret
    (``VISLINK_SECRET_KEY``) as ``STREAMLIT_SERVER_COOKIE_SECRET``; a process's environment is readable only by its
    owner and root. Without a secret Streamlit makes a random one (sessions then end when it restarts)."""
    env = dict(os.environ if base is None else base)
    if cookie_secret:
        env[COOKIE_SECRET_ENV] = cookie_secret
    else:
        env.pop(COOKIE_SECRET_ENV, None)
    return env


def ui(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 to serve other machines)."),
    port: int = typer.Option(8501, help="TCP port."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the streamlit command instead of running it."),
) -> None:
    """Serve the web UI: search by image, region or examples; compare; annotate; browse; evaluation.

    Uses the data folder and database of the current settings (VISLINK_HOME, VISLINK_DB_URL, QDRANT_URL).
    Anyone who can reach it may search; annotating needs an annotator account.
    """
    from vislink.config import get_settings
    from vislink.errors import ConfigError
    from vislink.store import db

    settings = get_settings()
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    cmd = streamlit_command(host, port, settings.max_upload_mb)
    if dry_run:
        typer.echo(" ".join(cmd))
        if settings.secret_key:
            typer.echo(f"(with {COOKIE_SECRET_ENV} in its environment, from VISLINK_SECRET_KEY)", err=True)
        return
    settings.ensure_dirs()
    db.check_migrated(settings.database_url)  # a clear message now rather than an error page later
    typer.echo(f"vislink UI on http://{host}:{port}  (data folder {settings.resolved_home})", err=True)
    sys.stdout.flush()
    # Replace this process with Streamlit: signals (Ctrl-C, a supervisor's SIGTERM) reach the server directly.
    os.execve(cmd[0], cmd, streamlit_env(settings.secret_key))


def thumbnails(
    collection: str = typer.Option(None, "--collection", "-c", help="Only this collection (default: all)."),
    size: list[int] = typer.Option([256], "--size", help="Thumbnail size(s): 128, 256 (result grids), 512 (compare)."),
    workers: int = typer.Option(2, help="Threads decoding images."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Make the UI's thumbnails ahead of time (they are otherwise made on first display, once).

    Worth running after a large ingest: a result page then never waits for an image to be decoded.
    """
    from vislink.config import get_settings
    from vislink.ui import thumbs

    settings = get_settings()
    made, failed = thumbs.pregenerate(collection, size, workers=workers, progress=progress, settings=settings)
    typer.echo(f"{made} thumbnails ready in {settings.thumbs_dir}"
               + (f", {failed} images unreadable" if failed else ""))


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
    app.command("thumbnails")(thumbnails)
