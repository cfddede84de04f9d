"""Read-only questions about the graph (vislink.graph.queries) and telling a Replica file from a vislink one
(vislink.graph.io.is_replica_file), on a real migrated SQLite store."""

from __future__ import annotations

import pytest

from vislink.errors import NotFound
from vislink.graph import (
    create_group,
    group_info,
    group_memberships,
    image_links,
    is_replica_file,
    link_info,
    link_status,
    list_groups,
    set_link,
)
from vislink.store.models import Collection, Image


@pytest.fixture
def graph(db_session):
    """Images 0-6 of collection c: groups {0, 1, 2} and {3, 4}; links 0-5 positive, 6-0 negative."""
    coll = Collection(name="c")
    db_session.add(coll)
    db_session.flush()
    images = [Image(collection_id=coll.id, source_ref=f"img{i}.jpg") for i in range(7)]
    db_session.add_all(images)
    db_session.flush()
    ids = [im.id for im in images]
    first = create_group(db_session, ids[0:3], title="first")
    second = create_group(db_session, ids[3:5], title="second", note="n")
    positive = set_link(db_session, ids[0], ids[5], "positive", "same print")
    negative = set_link(db_session, ids[6], ids[0], "negative")
    db_session.commit()
    return coll, ids, first.id, second.id, positive.id, negative.id


def test_links_are_seen_from_the_image_asked_about(db_session, graph):
    _, ids, _, _, positive, negative = graph
    links = image_links(db_session, ids[0])
    assert [(li.id, li.other_id, li.type) for li in links] == [(positive, ids[5], "positive"),
                                                               (negative, ids[6], "negative")]
    assert links[0].note == "same print"
    assert image_links(db_session, ids[3]) == []
    assert link_info(db_session, ids[5], ids[0]).other_id == ids[0]
    assert link_info(db_session, ids[0], ids[5]).other_id == ids[5]
    assert link_info(db_session, ids[1], ids[2]) is None  # group mates, no explicit link


def test_groups_and_memberships(db_session, graph):
    coll, ids, first, second, _, _ = graph
    assert dict(group_memberships(db_session, [ids[0], ids[4], ids[6]])) == {ids[0]: [first], ids[4]: [second]}
    assert dict(group_memberships(db_session, [])) == {}
    info = group_info(db_session, second)
    assert (info.title, info.note, info.member_ids, info.collection_id) == ("second", "n", (ids[3], ids[4]), coll.id)
    with pytest.raises(NotFound, match="no group with id 999"):
        group_info(db_session, 999)
    assert [g.id for g in list_groups(db_session, coll.id)] == [second, first]  # newest first
    assert [g.id for g in list_groups(db_session, coll.id, limit=1)] == [second]
    every = list_groups(db_session, coll.id, limit=None, newest_first=False)
    assert [(g.id, g.member_ids) for g in every] == [(first, tuple(ids[0:3])), (second, (ids[3], ids[4]))]
    assert list_groups(db_session, coll.id + 1) == []


def test_link_status_of_results_against_the_query(db_session, graph):
    _, ids, first, second, _, _ = graph
    status = link_status(db_session, ids[0], [ids[1], ids[5], ids[6], ids[3], ids[2]])
    assert status == {  # groups are named by their titles, not by their numbers alone
        ids[1]: f"in the query's group #{first} first",
        ids[5]: "linked: positive",
        ids[6]: "linked: negative",
        ids[3]: f"group #{second} second",
        ids[2]: f"in the query's group #{first} first",
    }
    # An uploaded query (no image id): only the results' own groups.
    assert link_status(db_session, None, [ids[1], ids[5]]) == {ids[1]: f"group #{first} first", ids[5]: ""}


def test_replica_file_or_vislink_file(tmp_path):
    links = tmp_path / "links.csv"
    links.write_text("uid1,uid2,group\nu1,u2,1\n")
    groups = tmp_path / "groups.csv"
    groups.write_text("ref,group\na.jpg,1\n")
    assert is_replica_file(links) and not is_replica_file(groups)
    assert is_replica_file(groups, "replica") and is_replica_file(groups, "Replica")
    assert not is_replica_file(links, "csv")  # an explicit format wins over the header
    copy = tmp_path / "links.txt"
    copy.write_text(links.read_text())
    assert not is_replica_file(copy)  # only .csv files are sniffed
    assert not is_replica_file(tmp_path / "absent.csv")
