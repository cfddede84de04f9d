"""Engine and sessions for the SQL store, and the Alembic commands that own its schema."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url  # noqa: F401 (re-exported)
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from vislink.config import get_settings
from vislink.errors import ConfigError, StoreUnavailable

log = logging.getLogger(__name__)

# migrations/ sits at the repository root (as the design asks); a wheel installs it as data files under
# <prefix>/share/vislink/migrations (pyproject.toml), so `vislink db upgrade` works from `pip install .` too.
REPO_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def installed_migrations() -> Path:
    import sysconfig

    return Path(sysconfig.get_path("data")) / "share" / "vislink" / "migrations"


def migrations_dir() -> Path:
    """Alembic's script folder: the checkout's ``migrations/``, else the one a wheel installed."""
    for folder in (REPO_MIGRATIONS, installed_migrations()):
        if (folder / "env.py").exists():
            return folder
    raise ConfigError(f"Alembic migrations not found at {REPO_MIGRATIONS} nor {installed_migrations()}: "
                      "reinstall vislink (pip install .)")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the UI read while ingest workers write; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_private_file(path: Path) -> None:
    """A missing SQLite file created empty, readable and writable by its owner only (0600 whatever the umask),
    in a folder made the same way (0700); SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files the database
    file's mode. An existing file is left as it is."""
    import os

    from vislink.config import make_private_dir

    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


_ENGINES: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process (engines own connection pools). Without a URL: the configured one,
    resolved at each call, so that a change of settings (tests, a reloaded .env) is followed."""
    url = url or get_settings().database_url
    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = _create_engine(url)
    return engine


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with an unhelpful text
        raise ConfigError(f"VISLINK_DB_URL is not a valid database URL: {url!r}") from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
    kwargs: dict = {"future": True}
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            create_private_file(Path(parsed.database))
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, connect_args={"connect_timeout": 5})
    engine = create_engine(parsed, **kwargs)
    if parsed.drivername.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    url = url or get_settings().database_url
    ensure_schema(url)
    return _sessionmaker_for(get_engine(url))


_SCHEMA_READY: set[str] = set()


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def ensure_schema(url: str | None = None) -> None:
    """Once per process and URL, before the first session: a SQLite store (the embedded default, a file in the
    data folder) is created or migrated to the code's schema on the spot, so that no command trips on "no such
    table"; a server database that is behind raises ``StoreUnavailable`` saying to run `vislink db upgrade`
    (its schema changes are the operator's decision)."""
    url = url or get_settings().database_url
    if url in _SCHEMA_READY:
        return
    if is_sqlite(url):
        _migrate_sqlite(url)
    else:
        check_migrated(url)
    _SCHEMA_READY.add(url)


def _migrate_sqlite(url: str) -> None:
    check_reachable(url)
    if current_revision(url) == head_revision():
        return
    database = make_url(url).database
    if not database or database == ":memory:":
        upgrade(url)
        return
    import fcntl

    # Two commands started at once on a new data folder must not both create the tables.
    create_private_file(Path(f"{database}.migrate.lock"))
    with open(f"{database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if current_revision(url) != head_revision():
            log.info("creating or migrating the SQL store %s to revision %s", database, head_revision())
            upgrade(url)


@lru_cache(maxsize=32)
def _sessionmaker_for(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        raise StoreUnavailable(f"database error: {exc.orig}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # '%' must be escaped for configparser; the URL may carry a password with one.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    from alembic import command

    url = url or get_settings().database_url
    check_reachable(url)
    command.upgrade(_alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    from alembic import command

    url = url or get_settings().database_url
    check_reachable(url)
    _SCHEMA_READY.discard(url)
    command.downgrade(_alembic_config(url), revision)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def display_url(url: str) -> str:
    """``url`` as it may be shown or logged: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def check_reachable(url: str | None = None) -> None:
    """Raise StoreUnavailable with a readable message when the database cannot be reached."""
    url = url or get_settings().database_url
    try:
        with get_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        safe = display_url(url)
        reason = getattr(exc, "orig", None) or exc
        raise StoreUnavailable(f"cannot reach the database {safe}: {str(reason).strip().splitlines()[0]}") from exc


def check_migrated(url: str | None = None) -> str:
    """Return the current revision; raise StoreUnavailable unless the schema is at head."""
    check_reachable(url)
    current, head = current_revision(url), head_revision()
    if current != head:
        raise StoreUnavailable(
            f"database schema is at {current or 'nothing (empty database)'}, code expects {head}: "
            "run `vislink db upgrade`"
        )
    return current


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests dropping databases, forked workers)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
    _SCHEMA_READY.clear()
    _sessionmaker_for.cache_clear()


def table_names(url: str | None = None) -> list[str]:
    return sorted(inspect(get_engine(url)).get_table_names())
