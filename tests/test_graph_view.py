"""The link graph as the Browse page draws it (issue #13 item 8): a group is a hub with one edge per member, not
a clique; explicit links join images; a ring of 20 thumbnails keeps them apart; large components are cut to
the focus's neighbourhood. On a real migrated SQLite store."""

from __future__ import annotations

import math
from itertools import combinations

import pytest

from vislink.graph import create_group, neighbourhood_view, set_link
from vislink.graph.view import HUB_HEIGHT, HUB_WIDTH, NODE_SIZE, ring_radius
from vislink.store.models import Collection, Image


@pytest.fixture
def images(db_session):
    coll = Collection(name="c")
    db_session.add(coll)
    db_session.flush()
    rows = [Image(collection_id=coll.id, source_ref=f"m{i}.jpg", artist="LEONARDO da Vinci" if i < 12 else "SALAI",
                  title="Mona Lisa" + (" (copy)" if i >= 12 else ""), date_text=str(1503 + i), year_start=1503 + i)
            for i in range(24)]
    db_session.add_all(rows)
    db_session.flush()
    return [im.id for im in rows]


def _image_nodes(view):
    return {n.image_id: n for n in view.nodes if n.kind == "image"}


def test_a_group_is_a_hub_and_links_join_images(db_session, images):
    group = create_group(db_session, images[:20])
    set_link(db_session, images[0], images[20], "positive", "engraving after it")
    set_link(db_session, images[20], images[21], "duplicate")
    set_link(db_session, images[1], images[22], "negative")  # drawn between drawn images, never followed
    set_link(db_session, images[2], images[3], "positive")  # inside the group and saying nothing more: not drawn
    set_link(db_session, images[4], images[5], "positive", "same cartoon")  # inside, with a note: drawn
    view = neighbourhood_view(db_session, images[0])
    hubs = [n for n in view.nodes if n.kind == "group"]
    assert [(h.group_id, h.size, h.label) for h in hubs] == [
        (group.id, 20, f"#{group.id} Leonardo da Vinci, Mona Lisa")]
    members = [e for e in view.edges if e.kind == "member"]
    assert len(members) == 20 and all(e.b == f"g{group.id}" for e in members)  # not the clique's 190 edges
    explicit = {(e.a, e.b, e.kind, e.note) for e in view.edges if e.kind != "member"}
    assert explicit == {(f"i{images[0]}", f"i{images[20]}", "positive", "engraving after it"),
                        (f"i{images[20]}", f"i{images[21]}", "duplicate", ""),
                        (f"i{images[4]}", f"i{images[5]}", "positive", "same cartoon")}
    nodes = _image_nodes(view)
    assert images[22] not in nodes  # a negative link is a constraint, not a path
    assert set(nodes) == set(images[:22])
    # Thumbnails with title and date: the label is the artist, the detail title and date.
    assert (nodes[images[15]].label, nodes[images[15]].detail) == ("Salai", "Mona Lisa (copy) · 1518")


def test_a_ring_of_twenty_keeps_its_thumbnails_apart_and_the_focus_on_top(db_session, images):
    group = create_group(db_session, images[:20])
    view = neighbourhood_view(db_session, images[7])
    nodes = _image_nodes(view)
    hub = view.node(f"g{group.id}")
    assert nodes[images[7]].y == pytest.approx(hub.y - ring_radius(20))  # the focus at the top of its ring
    for a, b in combinations(nodes.values(), 2):
        assert math.dist((a.x, a.y), (b.x, b.y)) >= NODE_SIZE, (a, b)
    _clear_of_hubs(view)
    assert all(0 <= n.x - NODE_SIZE / 2 and n.x + NODE_SIZE / 2 <= view.width + 1e-6 for n in nodes.values())
    assert all(0 <= n.y - NODE_SIZE / 2 and n.y + NODE_SIZE / 2 <= view.height + 1e-6 for n in nodes.values())


def test_clusters_do_not_overlap(db_session, images):
    first = create_group(db_session, images[:5])
    second = create_group(db_session, images[5:8])
    set_link(db_session, images[0], images[5], "positive")
    set_link(db_session, images[5], images[9], "proposal")
    view = neighbourhood_view(db_session, images[9])
    nodes = _image_nodes(view)
    assert set(nodes) == set(images[:8]) | {images[9]}
    for a, b in combinations(nodes.values(), 2):
        assert math.dist((a.x, a.y), (b.x, b.y)) >= NODE_SIZE, (a, b)
    assert {n.group_id for n in view.nodes if n.kind == "group"} == {first.id, second.id}
    _clear_of_hubs(view)


def _clear_of_hubs(view):
    """No thumbnail box overlaps a hub's box (a small group's ring is wide enough for its hub's title)."""
    half = NODE_SIZE / 2
    for hub in (n for n in view.nodes if n.kind == "group"):
        for node in _image_nodes(view).values():
            apart_x = abs(node.x - hub.x) >= half + HUB_WIDTH / 2
            apart_y = abs(node.y - hub.y) >= half + HUB_HEIGHT / 2
            assert apart_x or apart_y, (hub, node)


def test_alone_or_too_large(db_session, images):
    assert neighbourhood_view(db_session, images[23]) is None  # no group, no link
    for a, b in zip(images[:20], images[1:21]):  # a chain of 21 images
        set_link(db_session, a, b, "positive")
    view = neighbourhood_view(db_session, images[10], max_images=7)
    assert view.truncated and len(_image_nodes(view)) == 7
    assert set(_image_nodes(view)) == set(images[7:14])  # three steps each way from the focus
