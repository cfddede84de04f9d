"""`vislink groups ...` and `vislink link ...` end to end on a real SQLite store."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vislink.errors import NotFound, VislinkError


@pytest.fixture
def wga(vislink_env):
    """A collection of 8 WGA-like images and a Replica-format pair of CSVs naming 6 of them plus 2 absent."""
    from vislink.store import session_scope
    from vislink.store.models import Collection, Image

    paths = [f"a/artist{i}/work{i}.jpg" for i in range(8)]
    with session_scope(vislink_env.database_url) as s:
        coll = Collection(name="wga")
        s.add(coll)
        s.flush()
        s.add_all(Image(collection_id=coll.id, source_ref=f"https://www.wga.hu/art/{p}", extra={"wga_path": p})
                  for p in paths)
    return paths


def write_replica(folder, paths):
    rows = [("u0", 0, paths[0], "train"), ("u1", 0, paths[1], "train"), ("u2", 0, paths[2], "val"),
            ("u3", 1, paths[3], "test"), ("u4", 1, paths[4], "test"), ("u5", 2, paths[5], "no set"),
            ("u6", 2, "z/zz/absent.jpg", "no set"), ("u7", 3, "z/zz/gone.jpg", "val")]
    images = folder / "images.csv"
    images.write_text("uid,group,wga_page_url,wga_image_url,AUTHOR,set\n" + "".join(
        f"{u},{g},http://www.wga.hu/html/{p[:-4]}.html,http://www.wga.hu/art/{p},X,{s}\n" for u, g, p, s in rows))
    links = folder / "links.csv"
    links.write_text("uid1,uid2,group\nu0,u1,0\nu1,u2,0\nu3,u4,1\nu5,u6,2\n")
    return links


def run(*args, input=None):
    from vislink.cli import app

    return CliRunner().invoke(app, list(args), input=input)


def test_import_stats_split_path_export(wga, tmp_path):
    links = write_replica(tmp_path, wga)
    result = run("groups", "import", str(links), "-c", "wga")
    assert result.exit_code == 0, result.output
    assert "6 of 8 present" in result.output and "3 of 4 with both ends present" in result.output
    assert "2 groups created" in result.output

    result = run("groups", "stats", "-c", "wga", "--png", str(tmp_path / "sizes.png"))
    assert result.exit_code == 0, result.output
    assert "groups: 2 holding 5 images" in result.output and "positive 3" in result.output
    assert (tmp_path / "sizes.png").read_bytes()[:4] == b"\x89PNG"

    result = run("groups", "split", "-c", "wga", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "components" in result.output

    result = run("groups", "path", wga[0], wga[2], "-c", "wga")
    assert result.exit_code == 0, result.output
    assert "1 step(s)" in result.output  # same group: one clique edge

    out = tmp_path / "out.json"
    result = run("groups", "export", str(out), "-c", "wga", "--ref", "wga_path")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert sorted(len(g["members"]) for g in data["groups"]) == [2, 3]
    assert {(l["a"], l["b"]) for l in data["links"]} == {(wga[0], wga[1]), (wga[1], wga[2]), (wga[3], wga[4])}
    for fmt in ("graphml", "gexf", "csv"):
        assert run("groups", "export", str(tmp_path / f"out.{fmt}"), "-c", "wga").exit_code == 0


def test_edit_commands_and_undo(wga):
    assert run("annotator", "add", "alice").exit_code == 0
    result = run("groups", "create", wga[0], wga[1], "-c", "wga", "-a", "alice", "--title", "pair")
    assert result.exit_code == 0, result.output
    group_id = result.output.split()[1]
    result = run("groups", "add", group_id, wga[2], "-c", "wga", "-a", "alice", "--expected-version", "1")
    assert result.exit_code == 0 and "version 2" in result.output
    result = run("groups", "add", group_id, wga[3], "-c", "wga", "--expected-version", "1")
    assert "changed by alice" in str(result.exception)
    result = run("link", "add", wga[5], wga[6], "-c", "wga", "--type", "negative", "--note", "not the same", "-a",
                 "alice")
    assert result.exit_code == 0 and "negative" in result.output
    result = run("link", "list", wga[5], "-c", "wga")
    assert "negative" in result.output and "not the same" in result.output
    assert run("groups", "undo", "-a", "alice").exit_code == 0  # the link
    assert run("link", "list", wga[5], "-c", "wga").output.strip() == ""
    assert run("groups", "undo", "-a", "alice").exit_code == 0  # the add
    result = run("groups", "list", "-c", "wga")
    assert "2 images" in result.output and "1 groups" in result.output


def test_clear_errors(wga, tmp_path):
    result = run("groups", "stats", "-c", "nope")
    assert isinstance(result.exception, NotFound) and "unknown collection 'nope'; collections: wga" in str(
        result.exception)
    result = run("groups", "import", str(tmp_path / "missing.csv"), "-c", "wga")
    assert isinstance(result.exception, NotFound) and "missing.csv: no such file" in str(result.exception)
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    result = run("groups", "import", str(bad), "-c", "wga")
    assert isinstance(result.exception, VislinkError) and "bad.csv" in str(result.exception)
    result = run("groups", "split", "-c", "wga", "--fractions", "half")
    assert "--fractions must be three numbers" in str(result.exception)
    result = run("groups", "undo", "-a", "ghost")
    assert isinstance(result.exception, NotFound) and "no annotator 'ghost'" in str(result.exception)
    result = run("groups", "path", wga[0], "not/there.jpg", "-c", "wga")
    assert isinstance(result.exception, NotFound) and "not/there.jpg" in str(result.exception)
