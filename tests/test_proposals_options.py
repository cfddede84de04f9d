"""Proposal build options (issue #19 item 1): the pair rules on hand-made neighbour lists, date order, one school,
one form, a clear error for an unknown school, and the `proposals-build` job kind (progress, cancellation)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from test_ingest_support import make_photos, photo
from vislink_testenv import module_data_folder

VARIANT = "vgg16-pool5-sum"


def test_mutual_and_either_rules():
    from vislink.evaluation.proposals import either_pairs, mutual_pairs

    neighbours = {1: [(2, 0.9), (3, 0.8)], 2: [(1, 0.9), (3, 0.7)], 3: [(4, 0.6), (1, 0.8)], 4: [(1, 0.4)]}
    mutual = {(c.a, c.b): c for c in mutual_pairs(neighbours, 0.5)}
    assert set(mutual) == {(1, 2), (1, 3)}  # (2, 3): 3 does not list 2; (3, 4): 4 does not list 3
    assert mutual[(1, 3)].rank == 2  # the worse of 2 (in 1's list) and 2 (in 3's list)
    either = {(c.a, c.b): c for c in either_pairs(neighbours, 0.5)}
    assert set(either) == {(1, 2), (1, 3), (2, 3), (3, 4)}  # (1, 4) scores 0.4 < 0.5
    assert either[(3, 4)].rank == 1 and either[(2, 3)].rank == 2


@pytest.mark.parametrize("a, b, expected", [
    ((1500, 1500), (1520, 1525), True),
    ((1520, 1525), (1500, None), True),  # a start alone is a one-year span
    ((1500, 1530), (1520, 1525), False),  # overlapping spans: either could be first
    ((1500, 1500), (1500, 1500), False),
    ((None, None), (1500, 1500), False),  # undated
    ((None, 1490), (1500, 1500), True),  # only an end year
])
def test_in_date_order(a, b, expected):
    from vislink.evaluation.proposals import in_date_order

    assert in_date_order(a, b) is expected
    assert in_date_order(b, a) is expected


@pytest.fixture(scope="module")
def opts(tmp_path_factory, migrated_sqlite_template):
    """Collection 'opts': photos 0-3 and a near-copy (re-encoded JPEG) of each, none linked. Dates: near_0 has
    photo 0's date (not in date order), near_1 is a century later (in order), near_2 is undated. Schools: 0 and 1
    Italian, 2 and 3 Flemish. Forms: all painting but near_3, a drawing."""
    with module_data_folder(tmp_path_factory, migrated_sqlite_template, "proposal-options"):
        from vislink.ingest.runner import ingest
        from vislink.ingest.sources.folder import folder_items
        from vislink.store import Collection, Image, session_scope

        root = tmp_path_factory.mktemp("opts")
        make_photos(root, 4)
        for i in range(4):
            photo(i).save(root / f"near_{i}.jpg", quality=60)
        dates = {"photo000.jpg": "1500", "near_0.jpg": "1500", "photo001.jpg": "c. 1510", "near_1.jpg": "1610",
                 "photo002.jpg": "1520", "near_2.jpg": "", "photo003.jpg": "1530", "near_3.jpg": "1630"}
        school = {n: "Italian" if n[-5] in "01" else "Flemish" for n in dates}
        form = {n: "drawing" if n == "near_3.jpg" else "painting" for n in dates}
        (root / "meta.csv").write_text("file,artist,title,date,school,form\n" + "".join(
            f"{n},Artist {n[-5]},{n},{dates[n]},{school[n]},{form[n]}\n" for n in sorted(dates)))
        ingest("opts", folder_items(root, root / "meta.csv"), variants=[VARIANT], progress=False, batch_size=8)
        with session_scope() as s:
            cid = s.scalar(select(Collection.id).where(Collection.name == "opts"))
            ids = {ref.rsplit("/", 1)[-1]: i for i, ref in s.execute(
                select(Image.id, Image.source_ref).where(Image.collection_id == cid))}
        yield cid, ids


def _pair(ids, x, y):
    return min(ids[x], ids[y]), max(ids[x], ids[y])


def _open(cid):
    from vislink.graph.proposals import list_proposals
    from vislink.store import session_scope

    with session_scope() as s:
        return {(p.image_a, p.image_b) for p in list_proposals(s, cid, status="open")}


def test_date_order_keeps_only_pairs_one_of_which_is_earlier(opts):
    from vislink.evaluation.proposals import build_proposals

    cid, ids = opts
    plain = build_proposals("opts", VARIANT, k=1, min_score=0.0)
    near_pairs = {_pair(ids, f"photo00{i}.jpg", f"near_{i}.jpg") for i in range(4)}
    assert near_pairs <= _open(cid), plain.summary()  # every near-copy is its original's first neighbour
    report = build_proposals("opts", VARIANT, k=1, min_score=0.0, date_order=True)
    kept = _open(cid)
    assert _pair(ids, "photo001.jpg", "near_1.jpg") in kept and _pair(ids, "photo003.jpg", "near_3.jpg") in kept
    assert _pair(ids, "photo000.jpg", "near_0.jpg") not in kept  # the same year
    assert _pair(ids, "photo002.jpg", "near_2.jpg") not in kept  # undated
    assert report.n_date_dropped >= 2 and "not in date order dropped" in report.summary()


def test_one_school_searches_among_its_images_only(opts):
    from vislink.evaluation.proposals import build_proposals
    from vislink.store import Image, session_scope

    cid, ids = opts
    report = build_proposals("opts", VARIANT, k=3, min_score=-1.0, school="italian")  # case-insensitive
    assert report.n_images == 4 and report.restricted_to == "school Italian", report.summary()
    with session_scope() as s:
        school = dict(s.execute(select(Image.id, Image.school).where(Image.collection_id == cid)).all())
    pairs = _open(cid)
    assert pairs and all(school[a] == school[b] == "Italian" for a, b in pairs)
    # Neighbours are searched among Italian images, not cut from the whole collection's lists: with k=3 each of
    # the four finds the other three, so all six pairs are mutual.
    assert len(pairs) == 6


def test_one_form_and_an_unknown_school(opts):
    from vislink.errors import ConfigError
    from vislink.evaluation.proposals import build_proposals

    cid, ids = opts
    report = build_proposals("opts", VARIANT, k=1, min_score=0.0, form="Painting")
    assert report.n_images == 7
    assert not any(ids["near_3.jpg"] in p for p in _open(cid))
    with pytest.raises(ConfigError, match=r"no image of this collection has school 'Venetian'; known: Flemish, Italian"):
        build_proposals("opts", VARIANT, school="Venetian")
    with pytest.raises(ConfigError, match="unknown proposal rule 'closest'; known: mutual, either"):
        build_proposals("opts", VARIANT, rule="closest")


def test_the_job_kind_reports_progress_and_stops_when_cancelled(opts):
    from vislink.evaluation.proposals import build_proposals
    from vislink.jobs.kinds import JobCancelled, JobContext, get_kind

    cid, ids = opts
    kind = get_kind("proposals-build")
    assert not kind.quick
    ctx = JobContext(1)
    result = kind.fn(ctx, {"collection": "opts", "variant": VARIANT, "k": 1, "min_score": 0.0, "rule": "either"})
    assert result["report"]["rule"] == "either" and result["report"]["stored"] == len(_open(cid)) > 0
    assert "open proposals stored" in result["lines"][0]
    progress = ctx.take_progress()
    assert progress["progress_done"] == progress["progress_total"] == 8

    build_proposals("opts", VARIANT, k=1, min_score=0.0)
    before = _open(cid)
    cancelled = JobContext(2)
    cancelled.cancel.set()
    with pytest.raises(JobCancelled):
        kind.fn(cancelled, {"collection": "opts", "variant": VARIANT, "k": 3, "min_score": -1.0})
    assert _open(cid) == before  # stopped before storing: the open proposals are those of the last build


@pytest.mark.shared
def test_on_real_paintings_a_hidden_link_is_proposed_and_a_grouped_one_never(shared_data, caffe_weights,
                                                                             tmp_path_factory, migrated_sqlite_template):
    """Two real groups of ../shared paintings_linked and four distractors, ingested without their groups: a pair of
    one group is proposed first; once a group is recorded, none of its pairs comes back."""
    import csv
    import shutil

    root = shared_data / "paintings_linked"
    rows = list(csv.DictReader(open(root / "manifest.csv", newline="", encoding="utf-8")))
    chosen = ([r for r in rows if r["group"] == "leonardo_last_supper"][:3]
              + [r for r in rows if r["group"] == "latour_cheat_with_ace_of_diamonds"][:2]
              + [r for r in rows if not r["group"]][:4])
    with module_data_folder(tmp_path_factory, migrated_sqlite_template, "proposals-real") as settings:
        for f in caffe_weights.iterdir():
            shutil.copy(f, settings.weights_dir / f.name)
        from vislink.evaluation.proposals import build_proposals
        from vislink.graph import create_group
        from vislink.ingest.runner import ingest
        from vislink.ingest.sources.folder import folder_items
        from vislink.store import Collection, Image, session_scope

        work = tmp_path_factory.mktemp("real-meta")
        (work / "meta.csv").write_text("file,artist,title\n" + "".join(
            f"{r['file']},{r['artist']},{r['title']}\n" for r in chosen), encoding="utf-8")
        items = [i for i in folder_items(root, work / "meta.csv") if i.source_ref in {r["file"] for r in chosen}]
        ingest("real", items, variants=[VARIANT], progress=False, batch_size=4, weights="vgg16-caffe-conv")
        with session_scope() as s:
            cid = s.scalar(select(Collection.id).where(Collection.name == "real"))
            id_of = dict(s.execute(select(Image.source_ref, Image.id).where(Image.collection_id == cid)).all())
        group = {r["file"]: r["group"] for r in chosen}
        truth = {(min(id_of[a], id_of[b]), max(id_of[a], id_of[b])) for a in id_of for b in id_of
                 if a != b and group[a] and group[a] == group[b]}

        build_proposals("real", VARIANT, k=2, min_score=0.0)
        from vislink.graph.proposals import list_proposals

        with session_scope() as s:
            ranked = [(p.image_a, p.image_b) for p in list_proposals(s, cid, status="open")]
        assert ranked and ranked[0] in truth, ranked

        supper = [id_of[r["file"]] for r in chosen if r["group"] == "leonardo_last_supper"]
        with session_scope() as s:
            create_group(s, supper)
        build_proposals("real", VARIANT, k=8, min_score=-1.0)
        reopened = set(_open(cid))
        assert reopened and not any(a in supper and b in supper for a, b in reopened)


def test_cli_order_duplicate_undo_and_stats(opts):
    from typer.testing import CliRunner

    from vislink.cli import app
    from vislink.graph.annotators import create_annotator
    from vislink.store import session_scope

    cid, ids = opts
    with session_scope() as s:
        create_annotator(s, "ada", "a long enough password")
    runner = CliRunner()
    res = runner.invoke(app, ["proposals", "build", "-c", "opts", "-v", VARIANT, "--k", "3", "--min-score", "-1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["proposals", "list", "-c", "opts", "--order", "uncertain", "--limit", "2"])
    assert res.exit_code == 0 and len(res.output.strip().splitlines()) == 2, res.output
    first = int(res.output.split()[0])
    res = runner.invoke(app, ["proposals", "list", "-c", "opts", "--order", "closest"])
    assert res.exit_code != 0 and "closest" in str(res.exception) + res.output
    res = runner.invoke(app, ["proposals", "duplicate", str(first), "-c", "opts", "-a", "ada"])
    assert res.exit_code == 0 and "duplicate (link" in res.output, res.output
    res = runner.invoke(app, ["proposals", "stats", "-c", "opts"])
    assert res.exit_code == 0 and "1 duplicate" in res.output and "ada: 1 duplicate" in res.output, res.output
    assert f"{VARIANT}: boundary" in res.output
    res = runner.invoke(app, ["proposals", "undo", str(first), "-c", "opts", "-a", "ada"])
    assert res.exit_code == 0 and "open again" in res.output, res.output
    res = runner.invoke(app, ["proposals", "stats", "-c", "opts"])
    assert "0 duplicate" in res.output and "ada:" not in res.output, res.output
