"""ONNX graphs as backbones, run by onnxruntime: ``sscd``, ``sscd-distilled``, or any model registered in
``onnx_models``.

The graph takes uint8 RGB NHWC (normalising inside) and returns one embedding per image; vislink resizes
each image to the variant's shorter side (Pillow bilinear, aspect kept, as for VGG16's pool5) and batches
images of equal resized shape when the graph's batch dimension is free (a fixed batch of 1 runs them one
by one). Rows are l2-normalised again after the graph (a no-op for SSCD, which normalises itself).

One ``InferenceSession`` per (model file, threads, providers) per process (``get_onnx_backbone``).
Threads: ``VISLINK_THREADS`` when set (as for torch), else onnxruntime's own default: one per physical
core, the same rule as torch's default. Providers: CUDA when the device setting allows it and the installed
onnxruntime has it, else CPU.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vislink.encoder.backbones import BackboneBase, l2n
from vislink.encoder.onnx_models import OnnxModel, get_onnx_model, immaculate_version, model_path
from vislink.encoder.variants import VariantSpec
from vislink.encoder.weights import WeightsInfo, file_sha256
from vislink.errors import WeightsUnavailable

log = logging.getLogger(__name__)

PREPROCESSING = ("uint8 RGB NHWC, shorter side resized by vislink (Pillow bilinear, aspect kept); "
                 "normalisation inside the graph")


class OnnxBackbone(BackboneBase):
    """One ONNX model in one onnxruntime session. Use ``get_onnx_backbone`` (cached per process)."""

    def __init__(self, model: OnnxModel, path: Path, *, threads: int = 0, providers: Sequence[str] = ()):
        import onnxruntime as ort

        self.name = model.name
        self.model = model
        self.path = Path(path)
        self.threads = threads
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: int8 graphs log a warning per unfused node
        try:  # loaded in place, from where it was installed: never copied or converted
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=list(providers) or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise WeightsUnavailable(f"{self.path}: onnxruntime cannot load the {model.name} model ({exc})") from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(inputs[0].shape) if inputs else []
        if (len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or len(shape) != 4 or shape[3] != 3
                or isinstance(shape[1], int) or isinstance(shape[2], int)):
            found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise WeightsUnavailable(f"{self.path}: vislink's ONNX backbones take one uint8 RGB NHWC input of any "
                                     f"height and width, {model.name} has {found}")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.batchable = not isinstance(shape[0], int)  # a fixed batch (1) runs images one by one
        version = immaculate_version() if model.package else None
        sha = file_sha256(self.path)
        self.weights_info = WeightsInfo(
            model.name, self.path, sha, True,
            f"{model.description} at {self.path}" + (f" (installed version {version})" if version else ""),
            "in-graph", False)
        self.preprocessing = PREPROCESSING
        self.providers = self.session.get_providers()

    def __repr__(self) -> str:
        return f"OnnxBackbone({self.name!r}, threads={self.threads or 'default'}, providers={self.providers})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, dim) float32, rows l2-normalised."""
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        if self.batchable:
            out = self.session.run([self.output_name], {self.input_name: batch})[0]
        else:
            out = np.concatenate([self.session.run([self.output_name], {self.input_name: batch[i:i + 1]})[0]
                                  for i in range(len(batch))])
        out = np.asarray(out)
        if out.shape != (len(batch), self.model.dim):
            raise WeightsUnavailable(f"{self.path}: the {self.name} graph returned shape {out.shape} for "
                                     f"{len(batch)} images; its registration says {self.model.dim} dimensions")
        return l2n(out)

    def encode(self, items: Sequence[dict[str, np.ndarray]], specs: Sequence[VariantSpec]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for rule in sorted({s.resize_rule for s in specs}):
            vectors = self.run(np.stack([item[rule] for item in items]))
            for spec in specs:
                if spec.resize_rule == rule:
                    out[spec.base] = vectors
        return out


_BACKBONES: dict[tuple, OnnxBackbone] = {}
_LOCK = threading.Lock()


def onnx_threads(settings) -> int:
    """onnxruntime's intra-op threads: VISLINK_THREADS, else 0 (onnxruntime's default: one per physical
    core, the same rule as torch's default)."""
    return int(settings.threads) if settings.threads else 0


def onnx_providers(settings) -> list[str]:
    import onnxruntime as ort

    device = (settings.device or "auto").lower()
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device.startswith("cuda"):
        log.warning("VISLINK_DEVICE=%s but this onnxruntime has no CUDA provider: ONNX backbones run on CPU",
                    settings.device)
    return ["CPUExecutionProvider"]


def get_onnx_backbone(name: str, settings=None) -> OnnxBackbone:
    """The process's session for a registered ONNX model (built once per file, threads and providers).
    Not installed: ``WeightsUnavailable`` naming the one command that installs it."""
    if settings is None:
        from vislink.config import get_settings

        settings = get_settings()
    model = get_onnx_model(name)
    path = model_path(name)
    threads, providers = onnx_threads(settings), onnx_providers(settings)
    stat = path.stat()
    key = (name, str(path), stat.st_size, stat.st_mtime_ns, threads, tuple(providers))
    with _LOCK:
        backbone = _BACKBONES.get(key)
        if backbone is None:
            backbone = OnnxBackbone(model, path, threads=threads, providers=providers)
            _BACKBONES[key] = backbone
            log.info("ONNX backbone ready: %r (%s)", backbone, backbone.weights_info.message)
        return backbone


def clear_onnx_backbones() -> None:
    """Forget cached sessions (tests)."""
    with _LOCK:
        _BACKBONES.clear()
