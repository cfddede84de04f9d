"""The CLI's cold start (issue #18 item 3): `vislink --help`, `vislink search --help`, `vislink doctor`, `vislink
search --image-id` and `vislink search IMAGE` on an ONNX variant never import torch (seconds and hundreds of MB).
Each command runs in a fresh interpreter that reports what it imported, so a top-level ``import torch`` added to
any CLI module, or to a module those commands load, fails here. The ONNX backbone is the tiny graph of
tests/test_backbones.py, registered in the child process as SSCD is in the product."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from test_backbones import TINY, TINY_DIM, TINY_SIDE, build_tiny_onnx

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision")

# Runs the CLI in-process in a fresh interpreter, then prints which heavy modules it imported, as JSON.
CHILD = textwrap.dedent("""
    import json, sys
    model = sys.argv[1]
    if model:  # the tiny ONNX graph, registered like sscd is
        from vislink.encoder.onnx_models import OnnxModel, register_onnx_model
        register_onnx_model(OnnxModel({tiny!r}, "tiny test graph", lambda: model, {dim}, {side}))
    sys.argv = ["vislink", *sys.argv[2:]]
    from vislink.cli import main
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    print("MODULES " + json.dumps({{"code": code, "heavy": [m for m in {heavy!r} if m in sys.modules],
                                   "onnxruntime": "onnxruntime" in sys.modules}}))
""").format(tiny=TINY, dim=TINY_DIM, side=TINY_SIDE, heavy=HEAVY)


def run_cli(args: list[str], *, model: Path | None = None, env: dict | None = None) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(model or ""), *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MODULES ")]
    assert lines, f"the child did not report its modules: {proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1][len("MODULES "):]), proc.stdout + proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["search", "--help"], ["index", "--help"], ["benchmark", "--help"]])
def test_help_never_imports_torch(args):
    report, output = run_cli(args)
    assert report["code"] == 0, output
    assert report["heavy"] == [], f"`vislink {' '.join(args)}` imported {report['heavy']}"
    assert not report["onnxruntime"]


def test_importing_the_search_and_encoder_packages_imports_no_network():
    code = ("import sys, vislink.cli, vislink.search, vislink.search.encoding, vislink.encoder; "
            f"print([m for m in {HEAVY + ('onnxruntime',)!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture
def onnx_collection(vislink_env, tmp_path):
    """A collection ingested with the tiny ONNX variant only (no VGG16: nothing in it needs torch)."""
    from PIL import Image

    from vislink.encoder.onnx_backbone import clear_onnx_backbones
    from vislink.encoder.onnx_models import OnnxModel, register_onnx_model, unregister_onnx_model
    from vislink.index import close_all
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items

    import numpy as np

    model = build_tiny_onnx(tmp_path / "tiny.onnx")
    register_onnx_model(OnnxModel(TINY, "tiny test graph", lambda: model, TINY_DIM, TINY_SIDE))
    clear_onnx_backbones()
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):
        small = Image.fromarray((rng.random((5, 6, 3)) * 255).astype(np.uint8))
        small.resize((90, 70), Image.Resampling.BICUBIC).save(folder / f"p{i}.jpg", quality=95)
    summary = ingest("cold", folder_items(folder), variants=[TINY], progress=False)
    assert summary.done == 4
    close_all()  # the embedded index is held by one process at a time: the child opens it
    env = {k: os.environ[k] for k in ("VISLINK_HOME", "VISLINK_DB_URL", "VISLINK_INDEX_BACKEND", "VISLINK_THREADS")}
    yield model, folder, env
    unregister_onnx_model(TINY)
    clear_onnx_backbones()


def test_search_by_id_and_by_image_on_an_onnx_variant_never_import_torch(onnx_collection):
    model, folder, env = onnx_collection
    report, output = run_cli(["search", "--image-id", "1", "-c", "cold", "-k", "2"], model=model, env=env)
    assert report["code"] == 0 and "p" in output, output
    assert report["heavy"] == [], f"`vislink search --image-id` imported {report['heavy']}"

    report, output = run_cli(["search", str(folder / "p2.jpg"), "-c", "cold", "--variant", TINY, "-k", "2",
                              "--mirrored"], model=model, env=env)
    assert report["code"] == 0, output
    assert "p2.jpg" in output.splitlines()[0], output  # the query's own file first: the search really ran
    assert report["onnxruntime"], "the ONNX variant's query was encoded"
    assert report["heavy"] == [], f"`vislink search IMAGE` on an ONNX variant imported {report['heavy']}"


def test_doctor_never_imports_torch(vislink_env):
    env = {k: os.environ[k] for k in ("VISLINK_HOME", "VISLINK_DB_URL", "VISLINK_INDEX_BACKEND")}
    report, output = run_cli(["doctor"], env=env)  # its verdict on this folder does not matter here
    assert report["heavy"] == [], f"`vislink doctor` imported {report['heavy']}\n{output}"
