"""Splits by connected component and the size statistics."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from vislink.errors import VislinkError
from vislink.graph import (
    assign_split, connected_components, create_group, format_stats, graph_stats, import_split, plot_group_sizes,
    set_link, split_parts, split_summary,
)
from vislink.graph.splits import deal_components
from vislink.store.models import Collection, Image


@pytest.fixture
def db_session(vislink_env):
    from vislink.store import session_scope

    with session_scope(vislink_env.database_url) as session:
        yield session


SIZES = [2] * 12 + [3] * 8 + [4] * 4 + [6] * 2 + [9]


def populate(session, sizes=SIZES, distractors=5):
    coll = Collection(name="s")
    session.add(coll)
    session.flush()
    n = sum(sizes) + distractors
    images = [Image(collection_id=coll.id, source_ref=f"{i}.jpg") for i in range(n)]
    session.add_all(images)
    session.flush()
    ids = [im.id for im in images]
    start = 0
    for k, size in enumerate(sizes):
        members = ids[start:start + size]
        if k % 3 == 0 and size >= 3:  # some components made of links, not a group
            for a, b in zip(members, members[1:]):
                set_link(session, a, b, "positive" if k % 2 else "duplicate")
        else:
            create_group(session, members)
        start += size
    set_link(session, ids[-1], ids[-2], "negative")  # a constraint: not a component
    set_link(session, ids[-3], ids[-4], "proposal")  # unconfirmed: not a component
    return coll, ids


def test_split_keeps_components_whole_hits_targets_and_is_deterministic(db_session):
    coll, ids = populate(db_session)
    split = assign_split(db_session, coll.id, "default", seed=3)
    parts = split_parts(db_session, split.id)
    comps = connected_components(db_session, coll.id)
    assert sorted(len(c) for c in comps) == sorted(SIZES)
    assert len(parts) == sum(SIZES)  # distractors get no part by default
    for comp in comps:
        assert len({parts[i] for i in comp}) == 1
    counts = Counter(parts.values())
    total = sum(SIZES)
    for part, share in (("train", 0.5), ("val", 0.25), ("test", 0.25)):
        assert abs(counts[part] - share * total) <= max(SIZES), counts
    summary = split_summary(db_session, split.id)
    for part in ("train", "val", "test"):  # every part gets components of the common sizes
        assert {2, 3, 4} <= set(summary[part]["sizes"]), summary
    assert summary["leaks"]["components"] == 0

    again = assign_split(db_session, coll.id, "again", seed=3)
    assert split_parts(db_session, again.id) == parts
    other = assign_split(db_session, coll.id, "other", seed=4)
    assert split_parts(db_session, other.id) != parts
    with pytest.raises(VislinkError, match="already exists"):
        assign_split(db_session, coll.id, "default")
    redo = assign_split(db_session, coll.id, "default", seed=3, overwrite=True, distractor_part="test")
    redo_parts = split_parts(db_session, redo.id)
    assert len(redo_parts) == len(ids) and all(redo_parts[i] == "test" for i in ids[sum(SIZES):])


def test_imported_split_and_leak_report(db_session):
    coll, ids = populate(db_session, sizes=[2, 2], distractors=1)
    split = import_split(db_session, coll.id, "given", {ids[0]: "train", ids[1]: "test", ids[2]: "val",
                                                        ids[3]: "val", ids[4]: "TEST"})
    summary = split_summary(db_session, split.id)
    assert summary["leaks"] == {"components": 1, "distractors": 1}
    assert split_parts(db_session, split.id)[ids[4]] == "test"
    with pytest.raises(VislinkError, match="unknown split part"):
        import_split(db_session, coll.id, "bad", {ids[0]: "holdout"})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=40), st.integers(0, 5))
def test_dealing_is_total_deterministic_and_order_free(sizes, seed):
    comps, start = [], 0
    for size in sizes:
        comps.append(list(range(start, start + size)))
        start += size
    parts = deal_components(comps, (0.5, 0.25, 0.25), seed)
    assert set(parts) <= {"train", "val", "test"} and len(parts) == len(comps)
    assert deal_components(comps, (0.5, 0.25, 0.25), seed) == parts
    reordered = list(reversed(comps))
    assert deal_components(reordered, (0.5, 0.25, 0.25), seed) == list(reversed(parts))
    # a part with no share never gets anything
    assert "val" not in deal_components(comps, (0.7, 0, 0.3), seed)
    # each part ends within one largest component of its target
    got = Counter()
    for comp, part in zip(comps, parts):
        got[part] += len(comp)
    for part, share in (("train", 0.5), ("val", 0.25), ("test", 0.25)):
        assert abs(got[part] - share * start) <= max(sizes)


def test_bad_fractions_are_refused():
    with pytest.raises(VislinkError, match="fractions"):
        deal_components([[1, 2]], (0.5, 0.5))
    with pytest.raises(VislinkError, match="fractions"):
        deal_components([[1, 2]], (-1, 1, 1))


def test_stats_histograms_text_and_png(db_session, tmp_path):
    coll, _ = populate(db_session)
    stats = graph_stats(db_session, coll.id)
    group_sizes = Counter(s for k, s in enumerate(SIZES) if not (k % 3 == 0 and s >= 3))
    assert stats.group_sizes == dict(sorted(group_sizes.items()))
    assert stats.component_sizes == dict(sorted(Counter(SIZES).items()))
    assert stats.n_groups == sum(group_sizes.values()) and stats.n_images == sum(SIZES) + 5
    assert stats.links_by_type["negative"] == 1 and stats.links_by_type["proposal"] == 1
    text = format_stats(stats)
    assert "group sizes:" in text and f"{len(SIZES)} connected components" in text
    assert "      2       12  " in text  # size 2: 12 components
    png = plot_group_sizes(stats, tmp_path / "fig" / "sizes.png")
    with PILImage.open(png) as im:
        assert im.format == "PNG" and im.size == (900, 360)
