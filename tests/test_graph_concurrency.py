"""Two annotators editing the same group at once, each in their own session (connection), on SQLite and
on PostgreSQL: no update is ever lost, the late one gets a ConflictError that says who changed it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from vislink.errors import ConflictError
from vislink.graph import add_member, create_group, members_of, set_link, undo_last
from vislink.store import db
from vislink.store.models import Annotator, Collection, Group, Image, Link


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, vislink_env):
    if request.param == "sqlite":
        return vislink_env.database_url
    pg = request.getfixturevalue("pg_url")
    db.upgrade(pg)
    return pg


def _setup(url, n=6):
    with db.session_scope(url) as s:
        coll = Collection(name="conc")
        s.add(coll)
        s.flush()
        images = [Image(collection_id=coll.id, source_ref=f"i{i}.jpg") for i in range(n)]
        alice, bob = Annotator(name="alice"), Annotator(name="bob")
        s.add_all(images + [alice, bob])
        s.flush()
        ids = [im.id for im in images]
        group = create_group(s, ids[:2], annotator_id=alice.id)
        return ids, group.id, alice.id, bob.id


def test_second_writer_gets_a_conflict_naming_the_first(url):
    ids, gid, alice, bob = _setup(url)
    maker = db.get_sessionmaker(url)
    s1, s2 = maker(), maker()
    try:
        v1 = s1.get(Group, gid).version  # both editors load the group
        v2 = s2.get(Group, gid).version
        assert v1 == v2
        add_member(s1, gid, ids[2], annotator_id=alice, expected_version=v1)
        s1.commit()
        with pytest.raises(ConflictError, match=rf"group {gid} was changed by alice at .* since you loaded it "
                                                rf"\(it is at version {v1 + 1}, you loaded version {v1}\); reload"):
            add_member(s2, gid, ids[3], annotator_id=bob, expected_version=v2)
        s2.rollback()
        # bob reloads and tries again: both updates are kept
        fresh = s2.get(Group, gid, populate_existing=True).version
        add_member(s2, gid, ids[3], annotator_id=bob, expected_version=fresh)
        s2.commit()
    finally:
        s1.close(), s2.close()
    with db.session_scope(url) as s:
        assert members_of(s, gid) == ids[:4]


def test_stale_copy_in_a_session_is_caught_at_write_time(url):
    """Without expected_version, the version column still refuses a write based on an old read."""
    ids, gid, alice, bob = _setup(url)
    maker = db.get_sessionmaker(url)
    s1, s2 = maker(), maker()
    try:
        g2 = s2.get(Group, gid)
        add_member(s1, gid, ids[2], annotator_id=alice)
        s1.commit()
        g2.title = "renamed on an old copy"
        with pytest.raises(Exception) as info:
            s2.flush()
        assert "StaleDataError" in type(info.value).__name__
        s2.rollback()
    finally:
        s1.close(), s2.close()


def test_simultaneous_edits_in_threads_never_lose_an_update(url):
    ids, gid, alice, bob = _setup(url)
    maker = db.get_sessionmaker(url)
    with maker() as s:
        version = s.get(Group, gid).version
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def edit(who: str, annotator_id: int, image_id: int) -> None:
        session = maker()
        try:
            barrier.wait(timeout=30)
            add_member(session, gid, image_id, annotator_id=annotator_id, expected_version=version)
            session.commit()
            outcome[who] = "ok"
        except ConflictError as exc:
            session.rollback()
            outcome[who] = exc
        finally:
            session.close()

    threads = [threading.Thread(target=edit, args=("alice", alice, ids[2])),
               threading.Thread(target=edit, args=("bob", bob, ids[3]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(type(v).__name__ for v in outcome.values()) == ["ConflictError", "str"], outcome
    winner = next(k for k, v in outcome.items() if v == "ok")
    loser = next(v for v in outcome.values() if v != "ok")
    assert f"changed by {winner}" in str(loser) or "concurrent change" in str(loser)
    with maker() as s:
        expected = ids[:2] + [ids[2] if winner == "alice" else ids[3]]
        assert members_of(s, gid) == sorted(expected)
        assert s.get(Group, gid).version == version + 1


def test_link_edits_and_undo_across_sessions(url):
    ids, gid, alice, bob = _setup(url)
    maker = db.get_sessionmaker(url)
    with maker() as s:
        link = set_link(s, ids[4], ids[5], "proposal", annotator_id=alice)
        s.commit()
        version = link.version
    with maker() as s1, maker() as s2:
        set_link(s1, ids[4], ids[5], "positive", annotator_id=bob, expected_version=version)
        s1.commit()
        with pytest.raises(ConflictError, match="changed by bob"):
            set_link(s2, ids[4], ids[5], "negative", annotator_id=alice, expected_version=version)
        s2.rollback()
        # alice's undo of her proposal would discard bob's confirmation: refused
        with pytest.raises(ConflictError, match="cannot undo"):
            undo_last(s2, alice)
    with maker() as s:
        assert s.scalar(select(Link)).type.value == "positive"
