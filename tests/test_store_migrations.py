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
    "split_members", "splits",
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
