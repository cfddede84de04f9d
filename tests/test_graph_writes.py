"""Writes that lose nothing and say so (issue #16 item 5), on real SQLite and PostgreSQL with real threads:
concurrent version-less group edits all succeed; an explicit expected version still reports a conflict;
a link conflict names the link."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from vislink.errors import ConflictError
from vislink.graph import add_member, create_group, members_of, remove_member, set_link, update_group
from vislink.store import db
from vislink.store.models import Annotator, Collection, Group, Image, Link

N_EDITORS = 7


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, vislink_env):
    if request.param == "sqlite":
        return vislink_env.database_url
    pg = request.getfixturevalue("pg_url")
    db.upgrade(pg)
    return pg


def _setup(url, n=2 + N_EDITORS):
    with db.session_scope(url) as s:
        coll = Collection(name="writes")
        s.add(coll)
        s.flush()
        images = [Image(collection_id=coll.id, source_ref=f"w{i}.jpg") for i in range(n)]
        people = [Annotator(name=f"editor{k}") for k in range(N_EDITORS)]
        s.add_all(images + people)
        s.flush()
        ids = [im.id for im in images]
        group = create_group(s, ids[:2], annotator_id=people[0].id)
        return ids, group.id, [p.id for p in people]


def _at_once(url, edits):
    """Run each ``edit(session)`` in its own thread and session, released together; commit each."""
    maker = db.get_sessionmaker(url)
    barrier = threading.Barrier(len(edits))
    outcome: dict[int, object] = {}

    def run(k, edit):
        session = maker()
        try:
            barrier.wait(timeout=30)
            edit(session)
            session.commit()
            outcome[k] = "ok"
        except Exception as exc:  # noqa: BLE001 - the test reports every failure
            session.rollback()
            outcome[k] = exc
        finally:
            session.close()

    threads = [threading.Thread(target=run, args=(k, e)) for k, e in enumerate(edits)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcome


def test_concurrent_adds_of_different_images_all_succeed(url):
    ids, gid, people = _setup(url)
    with db.session_scope(url) as s:
        version = s.get(Group, gid).version
    adds = [lambda s, k=k: add_member(s, gid, ids[2 + k], annotator_id=people[k]) for k in range(N_EDITORS)]
    outcome = _at_once(url, adds)
    assert list(outcome.values()) == ["ok"] * N_EDITORS, outcome
    with db.session_scope(url) as s:
        assert members_of(s, gid) == ids
        assert s.get(Group, gid).version == version + N_EDITORS  # each add one version: none lost


def test_concurrent_mixed_edits_without_versions_all_apply(url):
    ids, gid, people = _setup(url)
    edits = [lambda s: add_member(s, gid, ids[2], annotator_id=people[0]),
             lambda s: add_member(s, gid, ids[3], annotator_id=people[1]),
             lambda s: remove_member(s, gid, ids[0], annotator_id=people[2]),
             lambda s: update_group(s, gid, title="renamed at once", annotator_id=people[3])]
    outcome = _at_once(url, edits)
    assert list(outcome.values()) == ["ok"] * 4, outcome
    with db.session_scope(url) as s:
        assert members_of(s, gid) == [ids[1], ids[2], ids[3]]
        assert s.get(Group, gid).title == "renamed at once"


def test_concurrent_adds_with_expected_version_still_report_the_conflict(url):
    ids, gid, people = _setup(url)
    with db.session_scope(url) as s:
        version = s.get(Group, gid).version
    adds = [lambda s, k=k: add_member(s, gid, ids[2 + k], annotator_id=people[k], expected_version=version)
            for k in range(3)]
    outcome = _at_once(url, adds)
    assert sorted(v == "ok" for v in outcome.values()) == [False, False, True], outcome
    for v in outcome.values():
        if v != "ok":
            assert isinstance(v, ConflictError) and f"group {gid} was changed by editor" in str(v), v
    with db.session_scope(url) as s:
        assert len(members_of(s, gid)) == 3 and s.get(Group, gid).version == version + 1


def test_link_conflict_names_the_link(url):
    """Two editors create the same pair's link at once: the late one's message names the link that won
    (its id, its images, who made it), never "link  conflicts"."""
    from sqlalchemy import event

    ids, gid, people = _setup(url)
    maker = db.get_sessionmaker(url)
    s1, s2 = maker(), maker()
    looked = threading.Event()
    event.listen(s2, "before_flush", lambda *_: looked.set())  # s2 has looked for the pair's link: none yet
    outcome: list[BaseException] = []

    def late() -> None:
        try:
            set_link(s2, ids[4], ids[5], "negative", annotator_id=people[1])
            s2.commit()
        except Exception as exc:  # noqa: BLE001
            outcome.append(exc)

    try:
        first = set_link(s1, ids[4], ids[5], "positive", annotator_id=people[0])  # flushed, not committed
        thread = threading.Thread(target=late)
        thread.start()
        assert looked.wait(timeout=30)
        s1.commit()
        thread.join(timeout=60)
        link_id = first.id
    finally:
        s1.close(), s2.close()
    assert len(outcome) == 1 and isinstance(outcome[0], ConflictError), outcome
    message = str(outcome[0])
    assert "link  " not in message
    assert message.startswith(f"link {link_id} (images {ids[4]} and {ids[5]}) conflicts with a concurrent change")
    assert "made by editor0" in message and "reload and try again" in message
    with db.session_scope(url) as s:
        assert [(l.id, l.type.value) for l in s.scalars(select(Link))] == [(link_id, "positive")]  # kept
