"""`vislink db ...`: the SQL schema, owned by Alembic migrations."""

from __future__ import annotations

import typer

db_app = typer.Typer(help="Create and migrate the SQL store (Alembic migrations own the schema).",
                     no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the database named by VISLINK_DB_URL (default: SQLite in the data folder) up to REVISION."""
    from vislink.config import get_settings
    from vislink.store import db

    settings = get_settings()
    settings.ensure_dirs()
    db.upgrade(settings.database_url, revision)
    typer.echo(f"database at {db.current_revision(settings.database_url)} ({db.display_url(settings.database_url)})")


@db_app.command("downgrade")
def downgrade(revision: str = typer.Argument(..., help="Target revision ('base' empties the database).")) -> None:
    """Migrate the database down to REVISION."""
    from vislink.config import get_settings
    from vislink.store import db

    url = get_settings().database_url
    db.downgrade(url, revision)
    typer.echo(f"database at {db.current_revision(url) or 'base'} ({db.display_url(url)})")


@db_app.command("current")
def current() -> None:
    """Print the database's revision and the code's head revision."""
    from vislink.config import get_settings
    from vislink.store import db

    url = get_settings().database_url
    db.check_reachable(url)
    typer.echo(f"database: {db.current_revision(url) or 'base (empty)'}\ncode head: {db.head_revision()}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
