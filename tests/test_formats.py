"""The readers of outside formats (vislink.formats): Replica's CSV files and WGA paths, one reader each, one
error type (FormatError: file, line, reason) whichever stage reads the file."""

from __future__ import annotations

import pytest

from vislink.errors import FormatError, NotFound, VislinkError
from vislink.formats.replica import (
    is_replica_links_csv,
    read_replica_files,
    read_replica_images,
    read_replica_links,
    replica_wga_links,
)
from vislink.formats.wga import wga_image_url, wga_path_from_url

IMAGES = ("uid,group,wga_page_url,wga_image_url,set\n"
          "u1,7,x,http://www.wga.hu/art/a/aachen/allegory.jpg, Test \n"
          "u2,7,x,https://www.wga.hu/art/b/bosch/garden.jpg?x=1,train\n"
          "u3,,x,http://www.wga.hu/art/c/cima/saint.jpg,\n")


def _write(folder, links="uid1,uid2,group\nu1,u2,7\n", images=IMAGES):
    (folder / "links.csv").write_text(links, encoding="utf-8")
    (folder / "images.csv").write_text(images, encoding="utf-8")
    return folder / "links.csv"


def test_format_error_names_the_file_the_line_and_the_reason():
    err = FormatError("/d/links.csv", "uid u9 is not in images.csv", 4)
    assert str(err) == "/d/links.csv:4: uid u9 is not in images.csv"
    assert (err.path, err.line, err.reason) == ("/d/links.csv", 4, "uid u9 is not in images.csv")
    assert str(FormatError("/d/x.csv", "empty file")) == "/d/x.csv: empty file"
    assert isinstance(err, VislinkError)


def test_wga_paths_from_urls():
    assert wga_path_from_url("http://www.wga.hu/art/a/aachen/allegory.jpg") == "a/aachen/allegory.jpg"
    assert wga_path_from_url("https://mirror.example/art/b/bosch/garden.jpg?size=2") == "b/bosch/garden.jpg"
    assert wga_path_from_url("https://www.wga.hu/html/a/aachen/allegory.html") is None
    assert wga_path_from_url("") is None and wga_path_from_url("https://www.wga.hu/art/") is None
    assert wga_image_url("a/aachen/allegory.jpg", "http://127.0.0.1:80/") == "http://127.0.0.1:80/art/a/aachen/allegory.jpg"


def test_replica_files_read_together(tmp_path):
    files = read_replica_files(_write(tmp_path))  # images.csv found next to links.csv
    assert files.images_csv == tmp_path / "images.csv"
    assert [(link.uid1, link.uid2, link.group, link.line) for link in files.links] == [("u1", "u2", "7", 2)]
    assert [(r.uid, r.wga_path, r.group, r.part, r.line) for r in files.images] == [
        ("u1", "a/aachen/allegory.jpg", "7", "test", 2), ("u2", "b/bosch/garden.jpg", "7", "train", 3),
        ("u3", "c/cima/saint.jpg", "", "", 4)]
    assert files.wga_paths()["u3"] == "c/cima/saint.jpg"
    # A links file without a group column is still a links file.
    (tmp_path / "pairs.csv").write_text("uid1,uid2\nu3,u1\n")
    assert read_replica_links(tmp_path / "pairs.csv")[0].group == ""


def test_replica_errors_say_which_file_which_line_and_why(tmp_path):
    links = _write(tmp_path, links="uid1,uid2\nu1,u2\nu2,u9\n")
    with pytest.raises(FormatError) as err:
        read_replica_files(links)
    assert (err.value.path, err.value.line) == (str(links), 3)
    assert "uid u9 is not in" in err.value.reason and "images.csv" in err.value.reason

    (tmp_path / "bad_images.csv").write_text(IMAGES + "u4,,x,http://www.wga.hu/html/d/dou/x.html,\n")
    with pytest.raises(FormatError, match=r"bad_images\.csv:5: uid u4: wga_image_url .* is not a WGA /art/ URL"):
        read_replica_images(tmp_path / "bad_images.csv")

    (tmp_path / "no_uid.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match=r"no_uid\.csv: missing column\(s\) uid1, uid2 in the header") as err:
        read_replica_links(tmp_path / "no_uid.csv")
    assert err.value.line is None and "found: a, b" in str(err.value)

    (tmp_path / "blank.csv").write_text("uid1,uid2\nu1,\n")
    with pytest.raises(FormatError, match=r"blank\.csv:2: empty uid2"):
        read_replica_links(tmp_path / "blank.csv")
    with pytest.raises(NotFound, match="Replica file not found"):
        read_replica_links(tmp_path / "nope.csv")


def test_every_stage_reports_a_bad_replica_file_the_same_way(tmp_path, db_session):
    """graph's import and evaluation's benchmark read Replica's files through the one reader: the same file
    gives the same FormatError, word for word."""
    from vislink.evaluation.replica import read_replica
    from vislink.graph import import_replica
    from vislink.store.models import Collection

    links = _write(tmp_path, links="uid1,uid2\nu1,u9\n")
    coll = Collection(name="c")
    db_session.add(coll)
    db_session.flush()
    with pytest.raises(FormatError) as from_graph:
        import_replica(db_session, coll.id, links)
    with pytest.raises(FormatError) as from_evaluation:
        read_replica(links, tmp_path / "images.csv")
    assert str(from_graph.value) == str(from_evaluation.value)
    assert str(from_graph.value).startswith(f"{links}:2: uid u9 is not in")


def test_replica_links_csv_is_told_from_other_csv(tmp_path):
    assert is_replica_links_csv(_write(tmp_path))
    (tmp_path / "groups.csv").write_text("ref,group\na.jpg,1\n")
    assert not is_replica_links_csv(tmp_path / "groups.csv")
    assert not is_replica_links_csv(tmp_path / "absent.csv")


def test_morphograph_links_between_wga_images(tmp_path):
    path = tmp_path / "morpho.csv"
    # Windows-1252 (the é), as an older export might be; a non-WGA image and a clustering link are left out.
    path.write_bytes(("uid,path,img1,img2,type,cluster_file\n"
                      "a,../data/WGA/images/a/aachen/allegory.jpg,a,b,POSITIVE,Original\n"
                      "b,../data/WGA/images/b/bosch/garden.jpg,a,b,POSITIVE,Original\n"
                      "c,../data/other/café.jpg,a,c,POSITIVE,Original\n"
                      "b,../data/WGA/images/b/bosch/garden.jpg,b,a,NEGATIVE,Original\n"
                      "d,../data/WGA/images/d/dou/x.jpg,d,a,POSITIVE,01-06-2022/clusters\n").encode("cp1252"))
    assert replica_wga_links(path) == [("a/aachen/allegory.jpg", "b/bosch/garden.jpg")]
    (tmp_path / "links.csv").write_text("uid1,uid2\nu1,u2\n")
    with pytest.raises(FormatError, match=r"not a Replica morphograph file"):
        replica_wga_links(tmp_path / "links.csv")
