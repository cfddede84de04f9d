"""Proposed links (issue #19 item 1): a planted near-copy pair is proposed, linked / refused / grouped / same-file
pairs never are, accept and reject change the graph, a rebuild keeps the verdicts; the CLI."""

from __future__ import annotations

import csv
import shutil

import pytest
from sqlalchemy import select

from test_ingest_support import make_photos, photo
from vislink_testenv import module_data_folder

VARIANT = "vgg16-pool5-sum"


@pytest.fixture(scope="module")
def env(tmp_path_factory, migrated_sqlite_template):
    with module_data_folder(tmp_path_factory, migrated_sqlite_template, "proposals") as settings:
        yield settings


@pytest.fixture(scope="module")
def coll(env, tmp_path_factory):
    """Collection 'disc': 6 photos, near-copies (re-encoded JPEG) of photos 1-4, an exact copy of photo 0.
    Pair 1 is left unannotated (the planted link); pair 2 is a positive link, pair 3 a negative one (refused),
    pair 4 one group."""
    from vislink.graph import create_group, set_link
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.store import Collection, Image, session_scope

    root = tmp_path_factory.mktemp("disc")
    paths = make_photos(root, 6)
    shutil.copy(paths[0], root / "copy_of_0.jpg")
    for i in range(1, 5):
        photo(i).save(root / f"near_{i}.jpg", quality=60)
    china = _china()  # a real photograph and its re-encoded copy: textured enough for local features
    china.save(root / "china.jpg", quality=90)
    china.save(root / "china_near.jpg", quality=50)
    (root / "meta.csv").write_text("file,artist,title\n" + "".join(
        f"{name},Artist {i % 3},Title {i}\n" for i, name in enumerate(sorted(p.name for p in root.glob("*.jpg")))))
    ingest("disc", folder_items(root, root / "meta.csv"), variants=[VARIANT], progress=False, batch_size=8)
    with session_scope() as s:
        cid = s.scalar(select(Collection.id).where(Collection.name == "disc"))
        ids = {ref.rsplit("/", 1)[-1]: i for i, ref in s.execute(
            select(Image.id, Image.source_ref).where(Image.collection_id == cid))}
        set_link(s, ids["photo002.jpg"], ids["near_2.jpg"], "positive")
        set_link(s, ids["photo003.jpg"], ids["near_3.jpg"], "negative")
        create_group(s, [ids["photo004.jpg"], ids["near_4.jpg"]])
    return cid, ids


def _china():
    from PIL import Image
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image("china.jpg")).resize((320, 214))


def _pair(ids, x, y):
    a, b = ids[x], ids[y]
    return min(a, b), max(a, b)


def _proposed(cid, status="open"):
    from vislink.graph.proposals import list_proposals
    from vislink.store import session_scope

    with session_scope() as s:
        return {(p.image_a, p.image_b): p for p in list_proposals(s, cid, status=status)}


def test_build_finds_the_planted_pair_and_never_an_answered_one(coll):
    from vislink.evaluation.proposals import build_proposals

    cid, ids = coll
    report = build_proposals("disc", VARIANT, k=1, min_score=0.0)
    planted = _pair(ids, "photo001.jpg", "near_1.jpg")
    open_ = _proposed(cid)
    assert planted in open_, report.summary()
    assert open_[planted].rank == 1 and open_[planted].score > 0.9 and open_[planted].variant == VARIANT

    # Every pair mutual (k covers the collection): still none of the linked, refused, grouped or same-file pairs.
    report = build_proposals("disc", VARIANT, k=50, min_score=-1.0)
    open_ = _proposed(cid)
    answered = {_pair(ids, "photo002.jpg", "near_2.jpg"), _pair(ids, "photo003.jpg", "near_3.jpg"),
                _pair(ids, "photo004.jpg", "near_4.jpg")}
    if "copy_of_0.jpg" in ids:
        answered.add(_pair(ids, "photo000.jpg", "copy_of_0.jpg"))
    assert planted in open_ and not answered & set(open_)
    assert report.excluded.get("linked") == 2 and report.excluded.get("same group") == 1, report.summary()
    n = report.n_images
    assert report.stored == n * (n - 1) // 2 - 3


def test_cross_artist_keeps_pairs_of_two_artists(coll):
    from vislink.evaluation.proposals import build_proposals
    from vislink.store import Image, session_scope

    cid, _ids = coll
    build_proposals("disc", VARIANT, k=50, min_score=-1.0, cross_artist=True)
    with session_scope() as s:
        artist = dict(s.execute(select(Image.id, Image.artist).where(Image.collection_id == cid)).all())
    pairs = _proposed(cid)
    assert pairs and all(artist[a] != artist[b] for a, b in pairs)


def test_verify_keeps_the_verified_copy_only(coll):
    from vislink.evaluation.proposals import build_proposals

    cid, ids = coll
    report = build_proposals("disc", VARIANT, k=1, min_score=0.0, verify=True)
    # The photograph's copy is verified; the smooth synthetic pictures have too few keypoints to be.
    assert set(_proposed(cid)) == {_pair(ids, "china.jpg", "china_near.jpg")}, report.summary()
    assert report.n_unverified_dropped >= 1


def test_accept_reject_and_a_rebuild_keeps_the_verdicts(coll, tmp_path):
    from vislink.evaluation.proposals import build_proposals
    from vislink.graph import group_of, negative_pairs
    from vislink.graph.audit import find_link
    from vislink.graph.proposals import accept_proposal, export_proposals, reject_proposal
    from vislink.store import LinkType, session_scope

    cid, ids = coll
    build_proposals("disc", VARIANT, k=50, min_score=-1.0)
    open_ = _proposed(cid)
    planted = _pair(ids, "photo001.jpg", "near_1.jpg")
    other = _pair(ids, "photo002.jpg", "photo003.jpg")
    joins = _pair(ids, "photo004.jpg", "photo005.jpg")  # photo004 is in a group with near_4
    merges = _pair(ids, "photo001.jpg", "near_4.jpg")  # two groups once the first two are accepted
    with session_scope() as s:
        accept_proposal(s, open_[planted].id, join_group=True)  # neither in a group: a new group
        accept_proposal(s, open_[joins].id, join_group=True)
        reject_proposal(s, open_[other].id, note="not the same")
    with session_scope() as s:
        assert LinkType(find_link(s, *planted).type) is LinkType.positive
        assert LinkType(find_link(s, *other).type) is LinkType.negative
        assert other in {tuple(sorted(p)) for p in negative_pairs(s, cid)}
        assert group_of(s, planted[0]).id == group_of(s, planted[1]).id
        assert group_of(s, ids["photo005.jpg"]).id == group_of(s, ids["near_4.jpg"]).id
        with pytest.raises(Exception, match="already accepted"):
            accept_proposal(s, open_[planted].id)
    with session_scope() as s:
        accept_proposal(s, open_[merges].id, join_group=True)
    with session_scope() as s:
        assert len({group_of(s, ids[n]).id for n in ("photo001.jpg", "near_1.jpg", "photo004.jpg",
                                                      "near_4.jpg", "photo005.jpg")}) == 1

    report = build_proposals("disc", VARIANT, k=50, min_score=-1.0)
    assert report.replaced == len(open_) - 4
    reopened = _proposed(cid)
    assert not {planted, other, joins, merges} & set(reopened)
    assert set(_proposed(cid, "accepted")) == {planted, joins, merges} and set(_proposed(cid, "rejected")) == {other}

    with session_scope() as s:
        n = export_proposals(s, cid, tmp_path / "p.csv")
    rows = list(csv.DictReader(open(tmp_path / "p.csv", encoding="utf-8")))
    assert len(rows) == n == len(reopened) + 4
    assert {r["status"] for r in rows} == {"open", "accepted", "rejected"}


def test_cli_build_list_accept_reject_export(coll, tmp_path):
    from typer.testing import CliRunner

    from vislink.cli import app

    cid, ids = coll
    runner = CliRunner()
    res = runner.invoke(app, ["proposals", "build", "-c", "disc", "-v", VARIANT, "--k", "50", "--min-score", "-1"])
    assert res.exit_code == 0, res.output
    assert "open proposals stored" in res.output
    res = runner.invoke(app, ["proposals", "list", "-c", "disc", "--limit", "3"])
    assert res.exit_code == 0 and len(res.output.strip().splitlines()) == 3, res.output
    first, second = (int(line.split()[0]) for line in res.output.strip().splitlines()[:2])
    res = runner.invoke(app, ["proposals", "accept", str(first), "-c", "disc"])
    assert res.exit_code == 0 and "positive" in res.output, res.output
    res = runner.invoke(app, ["proposals", "reject", str(second), "-c", "disc", "--note", "=HYPERLINK(1)"])
    assert res.exit_code == 0 and "negative" in res.output, res.output
    res = runner.invoke(app, ["proposals", "accept", str(first), "-c", "disc"])
    assert res.exit_code != 0 and "already accepted" in str(res.exception) + res.output
    res = runner.invoke(app, ["proposals", "export", str(tmp_path / "all.csv"), "-c", "disc"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "all.csv").read_text(encoding="utf-8").startswith("id,status,score,rank,variant")



def test_an_unknown_status_is_a_clear_error(coll):
    from vislink.errors import VislinkError
    from vislink.graph.proposals import list_proposals
    from vislink.store import session_scope

    with session_scope() as s, pytest.raises(VislinkError, match="unknown proposal status 'maybe'"):
        list_proposals(s, coll[0], status="maybe")
