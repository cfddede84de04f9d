"""Group titles (issue #13 item 7): defaulted from the members' common artist and title when a group is made or
imported without one, editable, kept by merges, audited and undoable, searchable; `vislink groups rename` and
`vislink groups merge`. On a real migrated SQLite store."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from vislink.errors import VislinkError
from vislink.graph import (
    create_group,
    display_artist,
    group_info,
    import_graph,
    list_groups,
    merge_groups,
    title_from,
    undo_last,
    update_group,
)
from vislink.graph.annotators import create_annotator
from vislink.graph.titles import Work
from vislink.store.models import AuditEvent, Collection, Group, Image

MONA_LISAS = [  # (artist, title, year): the original, two studio versions, seven copies by followers
    ("LEONARDO da Vinci", "Mona Lisa (La Gioconda)", 1503), ("LEONARDO da Vinci", "Mona Lisa", 1505),
    ("LEONARDO da Vinci", "Mona Lisa (detail)", 1505), ("SALAI", "Mona Lisa (copy)", 1515),
    ("Unknown Flemish master", "Mona Lisa", 1520), ("MELZI, Francesco", "Mona Lisa", 1520),
    ("RUBENS, Peter Paul", "Copy after the Mona Lisa", 1600), ("Anonymous", "Mona Lisa", 1600),
    ("Prado copyist", "Mona Lisa (Prado copy)", 1507), ("DUCHAMP, Marcel", "L.H.O.O.Q.", 1919),
]


@pytest.fixture
def mona(db_session):
    coll = Collection(name="louvre")
    db_session.add(coll)
    db_session.flush()
    images = [Image(collection_id=coll.id, source_ref=f"m{i}.jpg", artist=a, title=t, year_start=y)
              for i, (a, t, y) in enumerate(MONA_LISAS)]
    images += [Image(collection_id=coll.id, source_ref=f"x{i}.jpg") for i in range(3)]  # no metadata at all
    db_session.add_all(images)
    db_session.flush()
    alice = create_annotator(db_session, "alice", None)
    return coll, [im.id for im in images], alice.id


def test_display_artist_softens_wga_capitals():
    assert display_artist("LEONARDO da Vinci") == "Leonardo da Vinci"
    assert display_artist("BRUEGEL, Pieter the Elder") == "Bruegel, Pieter the Elder"
    assert display_artist("DÜRER,  Albrecht") == "Dürer, Albrecht"
    assert display_artist("TOULOUSE-LAUTREC, Henri de") == "Toulouse-Lautrec, Henri de"
    assert display_artist("Master of the Legend of St Ursula") == "Master of the Legend of St Ursula"
    assert display_artist("LOUIS XIV") == "Louis XIV"  # a Roman numeral stays one
    assert display_artist("  ") is None and display_artist(None) is None


def test_default_title_is_the_common_artist_and_title():
    works = [Work(a, t, y, i) for i, (a, t, y) in enumerate(MONA_LISAS)]
    assert title_from(works) == "Leonardo da Vinci, Mona Lisa"
    # Every artist once: the earliest work's (the original precedes its copies); the title most share.
    assert title_from([Work("TITIAN", "Venus", 1540, 2), Work("RUBENS, Peter Paul", "Venus (copy)", 1610, 1)]) == \
        "Titian, Venus"
    assert title_from([Work(None, "Judith", None, 1)]) == "Judith"
    assert title_from([Work("ALLORI, Cristofano", None, None, 1)]) == "Allori, Cristofano"
    assert title_from([Work(None, None), Work(None, " ")]) is None


def test_groups_get_a_default_title_and_keep_a_given_one(db_session, mona):
    _, ids, alice = mona
    made = create_group(db_session, ids[:10], annotator_id=alice)
    assert made.title == "Leonardo da Vinci, Mona Lisa"
    assert group_info(db_session, made.id).label == f"#{made.id} Leonardo da Vinci, Mona Lisa"
    untitled = create_group(db_session, ids[10:12], annotator_id=alice)
    assert untitled.title is None and group_info(db_session, untitled.id).label == f"group #{untitled.id}"
    named = create_group(db_session, [ids[12]], title="  a   test  ", annotator_id=alice)
    assert named.title == "a test"
    with pytest.raises(VislinkError, match="at most 300 characters"):
        update_group(db_session, named.id, title="x" * 301, annotator_id=alice)
    # Retitled, then back to the default (None or blank): each an audited edit, undone in turn.
    update_group(db_session, made.id, title="La Joconde", annotator_id=alice)
    assert db_session.get(Group, made.id).title == "La Joconde"
    update_group(db_session, made.id, title="", annotator_id=alice)
    assert db_session.get(Group, made.id).title == "Leonardo da Vinci, Mona Lisa"
    undo_last(db_session, alice)
    assert db_session.get(Group, made.id).title == "La Joconde"


def test_the_group_picker_finds_groups_by_title_or_number(db_session, mona):
    coll, ids, alice = mona
    mona_group = create_group(db_session, ids[:9], annotator_id=alice)
    other = create_group(db_session, ids[9:11], title="Readymades", annotator_id=alice)
    assert [g.id for g in list_groups(db_session, coll.id, text="mona LISA")] == [mona_group.id]
    assert [g.id for g in list_groups(db_session, coll.id, text=f"#{other.id}")] == [other.id]
    assert [g.id for g in list_groups(db_session, coll.id, text="nothing like it")] == []


def test_merge_keeps_the_target_title_notes_the_others_and_undoes(db_session, mona):
    _, ids, alice = mona
    target = create_group(db_session, ids[10:12], annotator_id=alice)  # untitled: no metadata
    source = create_group(db_session, ids[:3], annotator_id=alice)
    other = create_group(db_session, ids[3:5], title="Followers", annotator_id=alice)
    merged = merge_groups(db_session, target.id, [source.id, other.id], annotator_id=alice)
    assert merged.title == "Leonardo da Vinci, Mona Lisa"  # an untitled target takes the first source's title
    assert f"merged #{other.id} Followers" in merged.note
    assert len(group_info(db_session, target.id).member_ids) == 7
    assert db_session.get(Group, source.id) is None and db_session.get(Group, other.id) is None
    undo_last(db_session, alice)
    assert db_session.get(Group, target.id).title is None
    assert db_session.get(Group, other.id).title == "Followers"
    assert group_info(db_session, source.id).member_ids == tuple(ids[:3])


def test_an_edit_audited_before_titles_existed_is_still_undone(db_session, mona):
    """Audit snapshots written before migration 0004 call the title "name": undo reads them as titles."""
    _, ids, alice = mona
    group = create_group(db_session, ids[:2], title="old name", annotator_id=alice)
    update_group(db_session, group.id, title="new title", annotator_id=alice)
    for event in db_session.scalars(select(AuditEvent)):
        for side in ("before", "after"):
            state = (getattr(event, side) or {}).get("state")
            if state is not None:
                state = dict(state)
                state["name"] = state.pop("title")
                setattr(event, side, {"change": getattr(event, side)["change"], "state": state})
    db_session.flush()
    undo_last(db_session, alice)
    assert db_session.get(Group, group.id).title == "old name"


def test_imported_groups_get_titles(db_session, mona, tmp_path):
    coll, ids, alice = mona
    path = tmp_path / "groups.json"
    path.write_text(json.dumps({"groups": [
        {"key": "a", "members": ["m0.jpg", "m1.jpg", "m3.jpg"]},  # no title: the default
        {"key": "b", "name": "Written before titles", "members": ["m9.jpg", "x0.jpg"]},  # an older file's name
    ]}))
    import_graph(db_session, coll.id, path, annotator_id=alice)
    titles = {g.external_id: g.title for g in db_session.scalars(select(Group))}
    assert titles == {"a": "Leonardo da Vinci, Mona Lisa", "b": "Written before titles"}


def test_rename_and_merge_from_the_command_line(vislink_env):
    from vislink.cli import app
    from vislink.store import session_scope

    with session_scope(vislink_env.database_url) as s:
        coll = Collection(name="c")
        s.add(coll)
        s.flush()
        s.add_all(Image(collection_id=coll.id, source_ref=f"m{i}.jpg", artist=a, title=t, year_start=y)
                  for i, (a, t, y) in enumerate(MONA_LISAS[:4]))
    runner = CliRunner()
    first = runner.invoke(app, ["groups", "create", "m0.jpg", "m1.jpg", "-c", "c"])
    assert first.exit_code == 0 and "Leonardo da Vinci, Mona Lisa" in first.output, first.output
    second = runner.invoke(app, ["groups", "create", "m2.jpg", "m3.jpg", "-c", "c", "--title", "Copies"])
    a, b = first.output.split()[1], second.output.split()[1]
    result = runner.invoke(app, ["groups", "rename", a, "La Gioconda"])
    assert result.exit_code == 0 and f"#{a} La Gioconda" in result.output, result.output
    result = runner.invoke(app, ["groups", "merge", a, b])
    assert result.exit_code == 0 and f"merged into #{a} La Gioconda: 4 images" in result.output, result.output
    result = runner.invoke(app, ["groups", "rename", a])  # no title: the default one again
    assert result.exit_code == 0 and "Leonardo da Vinci, Mona Lisa" in result.output, result.output
    listing = runner.invoke(app, ["groups", "list", "-c", "c"])
    assert "4 images  Leonardo da Vinci, Mona Lisa" in listing.output and "1 groups" in listing.output
