"""The schema is created by Alembic alone: upgrade from empty to head and back, on SQLite and PostgreSQL,
and the ORM models agree with the migrations (autogenerate finds nothing to do)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from vislink.store import db
from vislink.store.models import Base

EXPECTED_TABLES = {
    "annotators", "audit_events", "collections", "descriptor_variants", "evaluation_query_results",
    "evaluation_runs", "group_members", "groups", "image_descriptors", "images", "ingest_runs", "links",
    "split_members", "splits", "jobs", "job_holders",
}


def _round_trip(url: str) -> None:
    assert db.current_revision(url) is None
    db.upgrade(url)
    assert db.current_revision(url) == db.head_revision()
    assert EXPECTED_TABLES <= set(db.table_names(url))
    with db.get_engine(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    db.downgrade(url, "base")
    assert set(db.table_names(url)) <= {"alembic_version"}
    assert db.current_revision(url) is None


def test_sqlite_upgrade_downgrade_and_models_agree(tmp_path):
    _round_trip(f"sqlite:///{tmp_path / 'new.db'}")


@pytest.mark.postgres
def test_postgresql_upgrade_downgrade_and_models_agree(pg_url):
    _round_trip(pg_url)


def test_check_migrated_names_the_fix(tmp_path):
    from vislink.errors import StoreUnavailable

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(StoreUnavailable, match="vislink db upgrade"):
        db.check_migrated(url)


def test_unreachable_database_is_a_clear_error():
    from vislink.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="cannot reach the database postgresql"):
        db.check_reachable("postgresql://nobody@127.0.0.1:9/nowhere")


def test_round_trip_of_a_row(db_session):
    from vislink.store import Collection, Image, ImageStatus

    coll = Collection(name="c1")
    db_session.add(coll)
    db_session.flush()
    db_session.add(Image(collection_id=coll.id, source_ref="a.jpg", extra={"k": [1, 2]}))
    db_session.flush()
    image = db_session.query(Image).one()
    assert image.status is ImageStatus.pending and image.extra == {"k": [1, 2]}


def test_an_image_belongs_to_at_most_one_group(db_session):
    from sqlalchemy.exc import IntegrityError

    from vislink.store import Collection, Group, GroupMember, Image

    coll = Collection(name="c")
    db_session.add(coll)
    db_session.flush()
    image = Image(collection_id=coll.id, source_ref="a.jpg")
    g1, g2 = Group(collection_id=coll.id), Group(collection_id=coll.id)
    db_session.add_all([image, g1, g2])
    db_session.flush()
    db_session.add(GroupMember(group_id=g1.id, image_id=image.id))
    db_session.flush()
    db_session.add(GroupMember(group_id=g2.id, image_id=image.id))
    with pytest.raises(IntegrityError):
        db_session.flush()
    db_session.rollback()


def test_a_new_sqlite_store_is_created_on_first_use(tmp_path):
    # The embedded default: the first session of any command creates and migrates the file (no "no such table").
    from sqlalchemy import func, select

    from vislink.store import Collection, session_scope

    url = f"sqlite:///{tmp_path / 'data' / 'vislink.db'}"
    with session_scope(url) as session:
        assert session.scalar(select(func.count()).select_from(Collection)) == 0
    assert db.current_revision(url) == db.head_revision()
    assert EXPECTED_TABLES <= set(db.table_names(url))


def test_a_sqlite_store_behind_is_migrated_on_first_use(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0001")
    assert db.current_revision(url) != db.head_revision()
    db.dispose_engines()  # a new process
    with db.session_scope(url):
        pass
    assert db.current_revision(url) == db.head_revision()


@pytest.mark.postgres
def test_a_server_database_behind_says_to_run_db_upgrade(pg_url):
    # Server schemas change only when the operator says so: a session on an empty one names the command.
    from vislink.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="run `vislink db upgrade`"):
        with db.session_scope(pg_url):
            pass
    assert db.current_revision(pg_url) is None
    db.upgrade(pg_url)
    with db.session_scope(pg_url):
        pass


def test_a_command_on_a_new_data_folder_works(tmp_path):
    # Through a real process, as a new user meets it: no `vislink db upgrade` first.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISLINK_", "QDRANT_"))}
    env["VISLINK_HOME"] = str(tmp_path / "home")
    result = subprocess.run([sys.executable, "-m", "vislink.cli", "collection", "list"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "no such table" not in result.stdout + result.stderr
    assert (tmp_path / "home" / "vislink.db").is_file()


def _group_title_round_trip(url: str) -> None:
    """0004 renames groups.name to groups.title: a name given before the upgrade is the title after it, and a
    downgrade gives it back as the name (a title longer than the old 200 characters is cut to fit)."""
    import sqlalchemy as sa

    db.upgrade(url, "0003")
    engine = db.get_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO collections (name, created_at) VALUES ('c', CURRENT_TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO groups (collection_id, name, version, created_at, updated_at) "
                             "VALUES (1, 'Judith', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    db.upgrade(url)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT title FROM groups")).scalar_one() == "Judith"
        conn.execute(sa.text("UPDATE groups SET title = :t"), {"t": "x" * 250})
    db.downgrade(url, "0003")
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT name FROM groups")).scalar_one() == "x" * 200
    db.downgrade(url, "base")


def test_sqlite_group_title_migration_keeps_names(tmp_path):
    _group_title_round_trip(f"sqlite:///{tmp_path / 'titles.db'}")


@pytest.mark.postgres
def test_postgresql_group_title_migration_keeps_names(pg_url):
    _group_title_round_trip(pg_url)
