"""Import and export: lossless round trips in every format (into a second, fresh database), generic CSV
and JSON inputs, clear errors, and the real Replica CSVs matched by WGA path."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter, defaultdict

import pytest
from sqlalchemy import select

from vislink.errors import NotFound, VislinkError
from vislink.graph import (
    create_group, get_or_create, import_graph, import_replica, set_link, split_parts, undo_last,
)
from vislink.graph.io import collect_graph_data, export_graph
from vislink.store import db
from vislink.store.models import Collection, Group, GroupMember, Image, Link


@pytest.fixture
def db_session(vislink_env):
    from vislink.store import session_scope

    with session_scope(vislink_env.database_url) as session:
        yield session


@pytest.fixture
def second_db(tmp_path, migrated_sqlite_template):
    path = tmp_path / "second.db"
    shutil.copy(migrated_sqlite_template, path)
    url = f"sqlite:///{path}"
    yield url
    db.get_engine(url).dispose()


def add_collection(session, name, refs, wga=False):
    coll = Collection(name=name)
    session.add(coll)
    session.flush()
    images = [Image(collection_id=coll.id, source_ref=ref,
                    extra={"wga_path": ref.split("/art/", 1)[1]} if wga else {}) for ref in refs]
    session.add_all(images)
    session.flush()
    return coll, [im.id for im in images]


REFS = [f"https://example.org/art/x/painter{i}/work.jpg" for i in range(10)]


def build_rich_graph(session):
    coll, ids = add_collection(session, "src", REFS)
    alice = get_or_create(session, "alice", display_name="Alice A.", email="alice@example.org")
    bob = get_or_create(session, "bob")
    create_group(session, ids[:3], annotator_id=alice.id, title="Judith", note="after Allori, 1613")
    create_group(session, ids[3:5], annotator_id=bob.id)  # no title, no note, external id none
    create_group(session, ids[5:7], external_id="replica:17", title="imported")
    set_link(session, ids[2], ids[3], "positive", "engraving, reversed", annotator_id=alice.id)
    set_link(session, ids[0], ids[1], "duplicate", "same scan", annotator_id=bob.id)  # also a group pair
    set_link(session, ids[7], ids[8], "negative", annotator_id=alice.id)
    set_link(session, ids[8], ids[9], "proposal", "from search, rank 3")
    set_link(session, ids[4], ids[9], "positive")
    return coll


@pytest.mark.parametrize("fmt", ["json", "csv", "graphml", "gexf"])
def test_export_then_import_into_a_fresh_database_is_lossless(db_session, second_db, tmp_path, fmt):
    coll = build_rich_graph(db_session)
    original = collect_graph_data(db_session, coll.id)
    path = tmp_path / f"graph.{fmt}"
    export_graph(db_session, coll.id, path)
    with db.session_scope(second_db) as other:
        target, _ = add_collection(other, "dst", REFS)
        report = import_graph(other, target.id, path)
        assert report.missing_refs == [] and report.skipped == []
        assert report.groups_created == 3 and report.links_set == 5
        copy = collect_graph_data(other, target.id)
        assert copy.groups == original.groups
        by_pair = lambda links: sorted(links, key=lambda l: (l["a"], l["b"]))  # noqa: E731 (ids order them)
        assert by_pair(copy.links) == by_pair(original.links)
        names = lambda data: sorted(a["name"] for a in data.annotators)  # noqa: E731
        assert names(copy) == names(original) == ["alice", "bob"]
        if fmt in ("json", "graphml"):  # formats that carry annotator details
            assert copy.annotators == original.annotators
        # importing the same file again changes nothing
        again = import_graph(other, target.id, path)
        assert (again.groups_created, again.links_set, again.links_unchanged) == (0, 0, 5)
        assert collect_graph_data(other, target.id).groups == original.groups


def test_export_by_wga_path_and_id_refs(db_session, tmp_path):
    coll, ids = add_collection(db_session, "w", [f"https://www.wga.hu/art/a/p{i}.jpg" for i in range(3)], wga=True)
    create_group(db_session, ids)
    export_graph(db_session, coll.id, tmp_path / "g.json", ref="wga_path")
    data = json.loads((tmp_path / "g.json").read_text())
    assert data["groups"][0]["members"] == ["a/p0.jpg", "a/p1.jpg", "a/p2.jpg"]
    export_graph(db_session, coll.id, tmp_path / "i.csv", ref="id")
    rows = list(csv.DictReader((tmp_path / "i.csv").open()))
    assert [r["ref_a"] for r in rows] == [str(i) for i in ids]


def test_generic_groups_and_pairs_inputs(db_session, tmp_path):
    coll, ids = add_collection(db_session, "g", [f"https://www.wga.hu/art/b/q{i}.jpg" for i in range(6)], wga=True)
    groups_csv = tmp_path / "groups.csv"
    groups_csv.write_text("image,group\nb/q0.jpg,A\nb/q1.jpg,A\n%d,B\nhttps://www.wga.hu/art/b/q3.jpg,B\n"
                          "b/q4.jpg,\nb/missing.jpg,B\n" % ids[2])
    report = import_graph(db_session, coll.id, groups_csv)
    assert report.groups_created == 2 and report.missing_refs == ["b/missing.jpg"]
    members = defaultdict(set)
    for g in db_session.scalars(select(Group)):
        members[g.external_id] = {m.image_id for m in db_session.scalars(select(GroupMember).where(
            GroupMember.group_id == g.id))}
    assert members == {"A": {ids[0], ids[1]}, "B": {ids[2], ids[3]}}

    pairs_csv = tmp_path / "pairs.csv"
    pairs_csv.write_text("ref_a,ref_b,type,note\nb/q4.jpg,b/q5.jpg,negative,different hands\nb/q0.jpg,b/q4.jpg,,\n")
    import_graph(db_session, coll.id, pairs_csv)
    links = {(l.image_a_id, l.image_b_id): (l.type.value, l.note) for l in db_session.scalars(select(Link))}
    assert links == {(ids[4], ids[5]): ("negative", "different hands"), (ids[0], ids[4]): ("positive", None)}

    pairs_json = tmp_path / "pairs.json"
    pairs_json.write_text(json.dumps([{"a": "b/q1.jpg", "b": "b/q5.jpg", "type": "proposal"}]))
    import_graph(db_session, coll.id, pairs_json)
    groups_json = tmp_path / "groups.json"
    groups_json.write_text(json.dumps([["b/q4.jpg", "b/q5.jpg"]]))  # a negative pair: refused, reported
    with pytest.raises(VislinkError, match="negative pair"):
        import_graph(db_session, coll.id, groups_json)


def test_bad_inputs_give_clear_errors(db_session, tmp_path):
    coll, _ = add_collection(db_session, "e", REFS[:2])
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    with pytest.raises(VislinkError, match=r"bad\.csv: cannot tell what this CSV holds"):
        import_graph(db_session, coll.id, bad)
    with pytest.raises(NotFound, match="no such file"):
        import_graph(db_session, coll.id, tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(VislinkError, match="not valid JSON"):
        import_graph(db_session, coll.id, broken)
    with pytest.raises(VislinkError, match="unknown graph format"):
        import_graph(db_session, coll.id, tmp_path / "x.xlsx")
    garbage = tmp_path / "g.graphml"
    garbage.write_text("<nope>")
    with pytest.raises(VislinkError, match="cannot read as graphml"):
        import_graph(db_session, coll.id, garbage)


def test_an_import_is_one_undoable_change(db_session, tmp_path):
    coll = build_rich_graph(db_session)
    path = tmp_path / "g.json"
    export_graph(db_session, coll.id, path)
    target, _ = add_collection(db_session, "dst", [r.replace("example.org", "example.net") for r in REFS])
    # refs differ (other host): import by position is impossible, so use a same-ref collection
    twin, _ = add_collection(db_session, "twin", [r + "?v=2" for r in REFS])
    assert import_graph(db_session, twin.id, path).missing_refs  # nothing matches: reported
    clerk = get_or_create(db_session, "clerk")
    db_session.execute(Image.__table__.update().where(Image.collection_id == target.id)
                       .values(source_ref=Image.source_ref + "#"))
    data = json.loads(path.read_text())
    for g in data["groups"]:
        g["members"] = [m.replace("example.org", "example.net") + "#" for m in g["members"]]
    for l in data["links"]:
        l["a"], l["b"] = (x.replace("example.org", "example.net") + "#" for x in (l["a"], l["b"]))
    path.write_text(json.dumps(data))
    report = import_graph(db_session, target.id, path, annotator_id=clerk.id)
    assert report.groups_created == 3 and report.links_set == 5
    undo_last(db_session, clerk.id)
    target_ids = list(db_session.scalars(select(Image.id).where(Image.collection_id == target.id)))
    assert db_session.scalars(select(Group).where(Group.collection_id == target.id)).all() == []
    assert db_session.scalars(select(Link).where(Link.image_a_id.in_(target_ids))).all() == []


@pytest.mark.shared
def test_replica_import_matches_by_wga_path(db_session, shared_data):
    root = shared_data / "replica_wga"
    rows = list(csv.DictReader((root / "images.csv").open(encoding="utf-8")))
    links = list(csv.DictReader((root / "links.csv").open(encoding="utf-8")))
    # a subset: every image of the first 40 Replica groups, plus every third image of the rest
    chosen = [r for i, r in enumerate(rows) if int(r["group"]) < 40 or i % 3 == 0]
    refs = [r["wga_image_url"].replace("http://", "https://") for r in chosen]
    coll, ids = add_collection(db_session, "wga", refs, wga=True)
    admin = get_or_create(db_session, "importer")
    report = import_replica(db_session, coll.id, root / "links.csv", annotator_id=admin.id)

    present = {r["uid"] for r in chosen}
    expected_links = [l for l in links if l["uid1"] in present and l["uid2"] in present]
    per_group = Counter(r["group"] for r in chosen)
    assert report.n_images == len(rows) and report.n_present == len(chosen)
    assert report.n_missing == len(rows) - len(chosen)
    assert report.n_links == len(links) and report.n_links_present == len(expected_links)
    assert report.n_groups_present == sum(1 for n in per_group.values() if n >= 2)
    assert report.graph.links_set == len({frozenset((l["uid1"], l["uid2"])) for l in expected_links})
    assert "present in the collection" in report.summary()

    by_uid = {r["uid"]: i for r, i in zip(chosen, ids)}
    stored = {(l.image_a_id, l.image_b_id) for l in db_session.scalars(select(Link))}
    assert stored == {tuple(sorted((by_uid[l["uid1"]], by_uid[l["uid2"]]))) for l in expected_links}
    assert all(l.type.value == "positive" for l in db_session.scalars(select(Link)))
    groups = {g.external_id: {m.image_id for m in db_session.scalars(select(GroupMember).where(
        GroupMember.group_id == g.id))} for g in db_session.scalars(select(Group))}
    want = defaultdict(set)
    for r in chosen:
        want[f"replica:{r['group']}"].add(by_uid[r["uid"]])
    assert groups == {k: v for k, v in want.items() if len(v) >= 2}

    parts = split_parts(db_session, report.split_id)
    expected_parts = {by_uid[r["uid"]]: r["set"] for r in chosen if r["set"] in ("train", "val", "test")}
    assert parts == expected_parts and len(parts) < len(chosen)  # 'no set' rows get no part

    # again: idempotent; then the whole import is undone in one step
    again = import_replica(db_session, coll.id, root / "links.csv", annotator_id=admin.id)
    assert again.graph.links_set == 0 and again.graph.groups_created == 0
    undo_last(db_session, admin.id)  # the second import changed nothing: undo reaches the first
    assert db_session.scalars(select(Link)).all() == [] and db_session.scalars(select(Group)).all() == []


@pytest.mark.shared
def test_replica_import_errors(db_session, tmp_path, shared_data):
    coll, _ = add_collection(db_session, "wga", ["https://www.wga.hu/art/a/aachen/allegory.jpg"], wga=True)
    bad = tmp_path / "links.csv"
    bad.write_text("a,b\n1,2\n")
    shutil.copy(shared_data / "replica_wga" / "images.csv", tmp_path / "images.csv")
    with pytest.raises(VislinkError, match=r"links\.csv: missing column\(s\) uid1, uid2"):
        import_replica(db_session, coll.id, bad)
    with pytest.raises(NotFound, match="no such file"):
        import_replica(db_session, coll.id, shared_data / "replica_wga" / "links.csv", tmp_path / "nope.csv")


@pytest.mark.shared
def test_full_replica_graph_components_are_its_groups(db_session, shared_data):
    """All 512 Replica images present: the link graph's components are exactly Replica's groups, and a
    component split of the real graph keeps every group whole."""
    from vislink.graph import assign_split, connected_components, graph_stats, split_summary

    root = shared_data / "replica_wga"
    rows = list(csv.DictReader((root / "images.csv").open(encoding="utf-8")))
    coll, ids = add_collection(db_session, "all", [r["wga_image_url"] for r in rows], wga=True)
    report = import_replica(db_session, coll.id, root / "links.csv")
    assert report.n_missing == 0 and report.n_links_present == report.n_links
    by_group = defaultdict(set)
    for r, image_id in zip(rows, ids):
        by_group[r["group"]].add(image_id)
    assert sorted(map(sorted, connected_components(db_session, coll.id))) == sorted(map(sorted, by_group.values()))
    stats = graph_stats(db_session, coll.id)
    expected_sizes = dict(sorted(Counter(len(v) for v in by_group.values()).items()))
    assert stats.component_sizes == expected_sizes == stats.group_sizes
    split = assign_split(db_session, coll.id, "balanced", seed=0)
    summary = split_summary(db_session, split.id)
    assert summary["leaks"]["components"] == 0
    total = len(rows)
    for part, share in (("train", 0.5), ("val", 0.25), ("test", 0.25)):
        assert abs(summary[part]["images"] - share * total) <= max(expected_sizes)
        assert {2, 3, 4} <= set(summary[part]["sizes"])
