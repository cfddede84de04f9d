"""Graph edits, the networkx view, queries, audit and undo, on a real migrated SQLite store."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from vislink.errors import ConflictError, NotFound, VislinkError
from vislink.graph import (
    add_member, build_graph, connected_components, create_group, delete_group, group_of, members_of, merge_groups,
    negative_pairs, neighbours, proposals, remove_link, remove_member, set_link, shortest_path, split_group,
    undo_last, update_group,
)
from vislink.store.models import Annotator, AuditEvent, Collection, Group, Image, Link


@pytest.fixture
def db_session(vislink_env):
    # The URL is passed explicitly: session_scope() with no URL reuses the engine cached for the first
    # test's database (get_engine(None) is memoised), which would share state between tests.
    from vislink.store import session_scope

    with session_scope(vislink_env.database_url) as session:
        yield session


def make_images(session, n, name="c"):
    coll = Collection(name=name)
    session.add(coll)
    session.flush()
    images = [Image(collection_id=coll.id, source_ref=f"{name}/img{i}.jpg") for i in range(n)]
    session.add_all(images)
    session.flush()
    return coll, [im.id for im in images]


def annotator(session, name):
    a = Annotator(name=name)
    session.add(a)
    session.flush()
    return a.id


def test_group_is_a_clique_and_links_keep_their_type(db_session):
    coll, ids = make_images(db_session, 8)
    g = create_group(db_session, ids[:3], title="three")
    set_link(db_session, ids[2], ids[3], "positive", "engraving after it")
    set_link(db_session, ids[4], ids[3], "duplicate")
    set_link(db_session, ids[5], ids[6], "negative")
    set_link(db_session, ids[6], ids[7], "proposal")
    graph = build_graph(db_session, coll.id)
    assert set(graph.nodes) == set(ids[:5])
    assert graph.number_of_edges() == 3 + 2
    assert graph.edges[ids[0], ids[1]]["group"] == g.id and graph.edges[ids[0], ids[1]]["type"] == "positive"
    assert graph.edges[ids[3], ids[4]]["type"] == "duplicate"
    assert graph.edges[ids[2], ids[3]]["note"] == "engraving after it"
    assert not graph.has_edge(ids[5], ids[6]) and not graph.has_edge(ids[6], ids[7])
    assert negative_pairs(db_session, coll.id) == {(ids[5], ids[6])}
    assert [(p.image_a_id, p.image_b_id) for p in proposals(db_session, coll.id)] == [(ids[6], ids[7])]
    assert build_graph(db_session, coll.id, include_proposals=True).edges[ids[6], ids[7]]["type"] == "proposal"
    # attributes are plain scalars: the graph can be written as GraphML as it is
    import io

    import networkx as nx

    buffer = io.BytesIO()
    nx.write_graphml(graph, buffer)
    assert b'key="d' in buffer.getvalue() and b"engraving after it" in buffer.getvalue()
    # one row per unordered pair, stored a < b
    link = db_session.scalar(select(Link).where(Link.type == "duplicate"))
    assert (link.image_a_id, link.image_b_id) == (ids[3], ids[4])


def test_queries_neighbours_components_path(db_session):
    coll, ids = make_images(db_session, 9)
    g = create_group(db_session, ids[:3])
    create_group(db_session, ids[5:7])
    set_link(db_session, ids[2], ids[3], "positive")
    set_link(db_session, ids[3], ids[4], "duplicate")
    set_link(db_session, ids[0], ids[8], "negative")
    assert group_of(db_session, ids[1]).id == g.id and group_of(db_session, ids[4]) is None
    near = {n.image_id: n for n in neighbours(db_session, ids[0])}
    assert set(near) == {ids[1], ids[2], ids[8]}
    assert near[ids[1]].type == "positive" and near[ids[1]].group_id == g.id
    assert near[ids[8]].type == "negative"
    assert [n.image_id for n in neighbours(db_session, ids[0], types=("positive",))] == [ids[1], ids[2]]
    comps = connected_components(db_session, coll.id)
    assert comps == [set(ids[:5]), set(ids[5:7])]
    assert shortest_path(db_session, ids[0], ids[4]) == [ids[0], ids[2], ids[3], ids[4]]
    with pytest.raises(NotFound, match="different connected components"):
        shortest_path(db_session, ids[0], ids[5])
    with pytest.raises(NotFound, match="no confirmed link"):
        shortest_path(db_session, ids[0], ids[8])


def test_rules_one_group_per_image_negative_pairs_and_collections(db_session):
    coll, ids = make_images(db_session, 6)
    other, oids = make_images(db_session, 2, name="other")
    g = create_group(db_session, ids[:2])
    with pytest.raises(VislinkError, match=f"already in group {g.id}"):
        create_group(db_session, [ids[1], ids[2]])
    set_link(db_session, ids[2], ids[3], "negative")
    with pytest.raises(VislinkError, match="negative pair"):
        create_group(db_session, [ids[2], ids[3]])
    with pytest.raises(VislinkError, match="both in group"):
        set_link(db_session, ids[0], ids[1], "negative")
    with pytest.raises(VislinkError, match="different collections"):
        set_link(db_session, ids[0], oids[0])
    with pytest.raises(VislinkError, match="not in the collection"):
        add_member(db_session, g.id, oids[0])
    with pytest.raises(VislinkError, match="two different images"):
        set_link(db_session, ids[0], ids[0])
    with pytest.raises(VislinkError, match="unknown link type"):
        set_link(db_session, ids[0], ids[4], "maybe")
    with pytest.raises(NotFound):
        create_group(db_session, [ids[0], 999999])


def test_versions_move_and_stale_versions_are_refused(db_session):
    _, ids = make_images(db_session, 5)
    alice = annotator(db_session, "alice")
    g = create_group(db_session, ids[:2], annotator_id=alice)
    v = g.version
    add_member(db_session, g.id, ids[2], annotator_id=alice, expected_version=v)
    assert g.version == v + 1
    with pytest.raises(ConflictError, match=r"group \d+ was changed by alice at .* since you loaded it.*reload"):
        add_member(db_session, g.id, ids[3], expected_version=v)
    remove_member(db_session, g.id, ids[0], annotator_id=alice, expected_version=v + 1)
    assert members_of(db_session, g.id) == ids[1:3]
    link = set_link(db_session, ids[3], ids[4], "positive", annotator_id=alice)
    lv = link.version
    set_link(db_session, ids[3], ids[4], "duplicate", expected_version=lv)
    with pytest.raises(ConflictError, match="link .* was changed by"):
        set_link(db_session, ids[3], ids[4], "positive", expected_version=lv)


def test_every_edit_is_audited_and_undo_walks_back(db_session):
    _, ids = make_images(db_session, 6)
    alice = annotator(db_session, "alice")
    g = create_group(db_session, ids[:2], annotator_id=alice)
    add_member(db_session, g.id, ids[2], annotator_id=alice)
    update_group(db_session, g.id, title="Judith", note="after Allori", annotator_id=alice)
    set_link(db_session, ids[3], ids[4], "positive", "a note", annotator_id=alice)
    set_link(db_session, ids[3], ids[4], "negative", annotator_id=alice)
    events = db_session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["create_group", "add_member", "update_group", "set_link", "set_link"]
    assert all(e.annotator_id == alice and e.at is not None for e in events)

    assert undo_last(db_session, alice).action == "set_link"
    link = db_session.scalar(select(Link))
    assert (link.type.value, link.note) == ("positive", "a note")
    undo_last(db_session, alice)
    assert db_session.scalar(select(Link)) is None
    undo_last(db_session, alice)
    assert db_session.get(Group, g.id).title is None
    undo_last(db_session, alice)
    assert members_of(db_session, g.id) == ids[:2]
    undo_last(db_session, alice)
    assert db_session.get(Group, g.id) is None
    with pytest.raises(NotFound, match="no edit left to undo"):
        undo_last(db_session, alice)


def test_undo_merge_split_delete_and_remove_link_restore_everything(db_session):
    _, ids = make_images(db_session, 8)
    bob = annotator(db_session, "bob")
    g1 = create_group(db_session, ids[:2], annotator_id=bob, note="n1")
    g2 = create_group(db_session, ids[2:5], annotator_id=bob, note="n2")
    g1_id, g2_id = g1.id, g2.id
    merged = merge_groups(db_session, g1_id, [g2_id], annotator_id=bob)
    assert members_of(db_session, merged.id) == ids[:5] and merged.note == "n1\nn2"
    assert db_session.get(Group, g2_id) is None
    undo_last(db_session, bob)
    assert members_of(db_session, g1_id) == ids[:2] and members_of(db_session, g2_id) == ids[2:5]
    assert db_session.get(Group, g1_id).note == "n1"

    new = split_group(db_session, g2_id, [ids[4]], annotator_id=bob)
    assert members_of(db_session, new.id) == [ids[4]] and members_of(db_session, g2_id) == ids[2:4]
    new_id = new.id
    undo_last(db_session, bob)
    assert db_session.get(Group, new_id) is None and members_of(db_session, g2_id) == ids[2:5]

    delete_group(db_session, g2_id, annotator_id=bob)
    undo_last(db_session, bob)
    assert members_of(db_session, g2_id) == ids[2:5]

    link = set_link(db_session, ids[6], ids[7], "duplicate", "same scan", annotator_id=bob)
    link_id = link.id
    remove_link(db_session, ids[6], ids[7], annotator_id=bob)
    undo_last(db_session, bob)
    link = db_session.get(Link, link_id)
    assert (link.type.value, link.note, link.annotator_id) == ("duplicate", "same scan", bob)


def test_undo_is_refused_when_someone_changed_the_group_since(db_session):
    _, ids = make_images(db_session, 4)
    alice, bob = annotator(db_session, "alice"), annotator(db_session, "bob")
    g = create_group(db_session, ids[:2], annotator_id=alice)
    add_member(db_session, g.id, ids[2], annotator_id=alice)
    add_member(db_session, g.id, ids[3], annotator_id=bob)
    db_session.commit()
    with pytest.raises(ConflictError, match=r"cannot undo your add_member: group \d+ was changed by bob"):
        undo_last(db_session, alice)
    assert members_of(db_session, g.id) == ids  # nothing undone, bob's work kept
    undo_last(db_session, bob)
    undo_last(db_session, alice)
    assert members_of(db_session, g.id) == ids[:2]


def test_merge_with_a_stale_version_is_refused(db_session):
    _, ids = make_images(db_session, 4)
    alice = annotator(db_session, "alice")
    g1 = create_group(db_session, ids[:2])
    g2 = create_group(db_session, ids[2:])
    old = g2.version
    update_group(db_session, g2.id, title="renamed", annotator_id=alice)
    with pytest.raises(ConflictError, match=f"group {g2.id} was changed by alice"):
        merge_groups(db_session, g1.id, [g2.id], expected_versions={g1.id: g1.version, g2.id: old})


def _snapshot(session):
    groups = {g.id: (g.title, g.note, tuple(members_of(session, g.id))) for g in session.scalars(select(Group))}
    links = {(l.image_a_id, l.image_b_id): (l.type.value, l.note) for l in session.scalars(select(Link))}
    return groups, links


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edits_undo_back_to_every_earlier_state(db_session, seed):
    import random

    rng = random.Random(seed)
    _, ids = make_images(db_session, 12, name=f"r{seed}")
    who = annotator(db_session, "robin")
    history = [_snapshot(db_session)]
    while len(history) < 26:
        groups = list(db_session.scalars(select(Group)))
        free = [i for i in ids if group_of(db_session, i) is None]
        op = rng.choice(["create", "add", "remove", "link", "unlink", "merge", "split", "delete", "rename"])
        try:
            if op == "create" and len(free) >= 2:
                create_group(db_session, rng.sample(free, 2), annotator_id=who, title=rng.choice([None, "x"]))
            elif op == "add" and groups and free:
                add_member(db_session, rng.choice(groups).id, rng.choice(free), annotator_id=who)
            elif op == "remove" and groups:
                g = rng.choice(groups)
                remove_member(db_session, g.id, rng.choice(members_of(db_session, g.id)), annotator_id=who)
            elif op == "link":
                a, b = rng.sample(ids, 2)
                set_link(db_session, a, b, rng.choice(["positive", "negative", "duplicate", "proposal"]),
                         rng.choice([None, "n"]), annotator_id=who)
            elif op == "unlink":
                links = list(db_session.scalars(select(Link)))
                if not links:
                    continue
                link = rng.choice(links)
                remove_link(db_session, link.image_a_id, link.image_b_id, annotator_id=who)
            elif op == "merge" and len(groups) >= 2:
                a, b = rng.sample(groups, 2)
                merge_groups(db_session, a.id, [b.id], annotator_id=who)
            elif op == "split" and groups:
                g = rng.choice(groups)
                members = members_of(db_session, g.id)
                if len(members) < 2:
                    continue
                split_group(db_session, g.id, members[:1], annotator_id=who)
            elif op == "delete" and groups:
                delete_group(db_session, rng.choice(groups).id, annotator_id=who)
            elif op == "rename" and groups:
                update_group(db_session, rng.choice(groups).id, note=f"note {len(history)}", annotator_id=who)
            else:
                continue
        except VislinkError as exc:  # a rule refused it (negative pair in a group...): state must be unchanged
            assert "negative" in str(exc) or "both in group" in str(exc), exc
            assert _snapshot(db_session) == history[-1]
            continue
        state = _snapshot(db_session)
        if state != history[-1]:
            history.append(state)
    for expected in reversed(history[:-1]):
        undo_last(db_session, who)
        assert _snapshot(db_session) == expected
