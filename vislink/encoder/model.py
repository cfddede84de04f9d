"""The VGG16 backbone (torch): one forward pass through ``features`` gives every pool5 variant; fc6 runs on
a separate 224x224 input. ``Encoder`` implements ``backbones.Backbone``; ``get_encoder`` caches one per
(weights, device, precision) per process.

Batching never changes a descriptor: images are grouped in buckets of identical resized shape and a batch
only ever holds one shape (no padding, which would change sum and max pools). Paintings come in many
aspect ratios, so buckets are often small; that costs a little throughput on GPU, nothing on CPU.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np
import torch

from vislink.encoder.backbones import BackboneBase
from vislink.encoder.pooling import l2n, pool5_descriptors
from vislink.encoder.variants import VGG16, VariantSpec
from vislink.encoder.weights import PREPROCESSING, WeightsInfo, load_weights
from vislink.errors import ConfigError, WeightsUnavailable

log = logging.getLogger(__name__)

PRECISIONS = {None: None, "fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown torch device {device!r} (VISLINK_DEVICE): use auto, cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    return resolved


# torchvision's VGG16 configuration "D": convolution widths, "M" a 2x2 max pool.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_features() -> torch.nn.Sequential:
    """VGG16's ``features``: the layers and ``N.weight`` keys of torchvision's ``make_layers(cfgs["D"])``, built
    without importing torchvision (seconds of a search's cold start, for a dozen lines of layers)."""
    layers: list[torch.nn.Module] = []
    channels = 3
    for width in VGG16_LAYERS:
        if width == "M":
            layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [torch.nn.Conv2d(channels, width, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True)]
            channels = width
    return torch.nn.Sequential(*layers)


class Encoder(BackboneBase):
    """VGG16 descriptors with one set of weights on one device. Use ``get_encoder`` (cached per process).
    ``encode_images``, ``encode_files``, ``specs`` and ``supports`` come from ``BackboneBase``."""

    name = VGG16

    def __init__(self, weights: str, device: str | None = None, *, precision: str | None = None,
                 channels_last: bool | None = None, settings=None):
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; valid: fp32, bf16, fp16")
        state, info = load_weights(weights, settings)
        self.weights_info: WeightsInfo = info
        self.device = resolve_device(device)
        self.precision = precision
        self._amp_dtype = PRECISIONS[precision]
        # channels_last lets oneDNN / cuDNN pick NHWC kernels; measured faster on both (docs/encoder.md).
        self.channels_last = True if channels_last is None else channels_last
        with torch.device("meta"):  # no throw-away random init of 15M parameters
            features = vgg16_features()
            fc6 = torch.nn.Linear(512 * 7 * 7, 4096) if info.has_fc6 else None
        features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()
                                  if k.startswith("features.")}, assign=True)
        self.features = features.to(self.device, dtype=torch.float32).eval()
        if self.channels_last:
            self.features = self.features.to(memory_format=torch.channels_last)
        self.fc6 = None
        if fc6 is not None:
            fc6.load_state_dict({"weight": state["classifier.0.weight"], "bias": state["classifier.0.bias"]},
                                assign=True)
            self.fc6 = fc6.to(self.device, dtype=torch.float32).eval()
        pre = PREPROCESSING[info.preprocessing]
        self.preprocessing = info.preprocessing
        self._bgr = pre.bgr
        self._scale = pre.scale
        self._mean = torch.tensor(pre.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(pre.std, device=self.device).view(1, 3, 1, 1)

    def __repr__(self) -> str:
        return f"Encoder(weights={self.weights_info.name!r}, device={str(self.device)!r}, precision={self.precision})"

    # -- Backbone ------------------------------------------------------------------------------------

    def check(self, spec: VariantSpec) -> None:
        if spec.layer == "fc6" and self.fc6 is None:
            raise WeightsUnavailable(
                f"weights {self.weights_info.name!r} have no fc6 layer (convolution weights only), so "
                f"{spec.name} cannot be computed: use a pool5 variant ({', '.join(_POOL5_NAMES)}) or "
                f"weights with fc6 (torchvision-imagenet, or a full VGG16 file)")

    def feature_map(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """The pool5 map (N, 512, h, w) float32 of uint8 HxWx3 RGB arrays of one shape."""
        return self.forward_features(self.to_input(arrays)).cpu().numpy()

    # -- internals -------------------------------------------------------------------------------------

    def to_input(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 HxWx3 RGB arrays of one shape -> the network's normalised float input (N, 3, H, W)."""
        batch = torch.from_numpy(np.stack(arrays)).to(self.device, non_blocking=True)
        x = batch.permute(0, 3, 1, 2).float()
        if self._bgr:
            x = x.flip(1)
        x = (x * self._scale - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self._amp_dtype or torch.float32,
                                                    enabled=self._amp_dtype is not None):
            return self.features(x).float()

    def encode(self, items: Sequence[dict[str, np.ndarray]], specs: Sequence[VariantSpec]) -> dict[str, np.ndarray]:
        """One batch of prepared images (``images.prepare`` output, all of one shape per rule): {base: matrix}."""
        base: dict[str, torch.Tensor] = {}
        pool5 = [s for s in specs if s.layer == "pool5"]
        if pool5:
            fmap = self.forward_features(self.to_input([item["shorter-256"] for item in items]))
            pooled = pool5_descriptors(fmap, {s.pooling for s in pool5})
            for spec in pool5:
                base[spec.base] = pooled[spec.pooling]
        for rule in sorted({s.resize_rule for s in specs if s.layer == "fc6"}):
            fmap = self.forward_features(self.to_input([item[rule] for item in items]))
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=self._amp_dtype or torch.float32,
                                                        enabled=self._amp_dtype is not None):
                # fc6 after its ReLU: Caffe's relu6 runs in place, so the paper's "fc6" blob is post-ReLU.
                activations = torch.relu(self.fc6(torch.flatten(fmap, 1)))
            for spec in specs:
                if spec.resize_rule == rule:
                    base[spec.base] = l2n(activations)
        return {name: matrix.cpu().numpy().astype(np.float32, copy=False) for name, matrix in base.items()}


_POOL5_NAMES = ("vgg16-pool5-max", "vgg16-pool5-sum", "vgg16-pool5-sp2x2-sum")
_ENCODERS: dict[tuple, Encoder] = {}
_LOCK = threading.Lock()


def get_encoder(weights: str | None = None, device: str | None = None, *,
                precision: str | None = None) -> BackboneBase:
    """The process's encoder for these weights and device (built once; weights default to VISLINK_WEIGHTS,
    device to VISLINK_DEVICE). Thread-safe. ``weights`` naming an ONNX model (``sscd``, ``sscd-distilled``)
    gives that ONNX backbone, which has the same ``encode_images`` / ``encode_files`` / ``specs`` /
    ``weights_info`` (for callers that keep one encoder per stored variant's ``weights_name``)."""
    from vislink.config import get_settings
    from vislink.encoder.onnx_models import is_onnx_model

    settings = get_settings()
    weights = weights or settings.weights
    if is_onnx_model(weights):
        from vislink.encoder.onnx_backbone import get_onnx_backbone

        return get_onnx_backbone(weights)
    resolved = resolve_device(device or settings.device)
    # The data folder is part of the key: installed weights live there (tests switch folders). Random
    # weights are made in memory from their seed, the same in every folder: one encoder serves them all.
    from vislink.encoder.weights import is_random_weights

    folder = "" if is_random_weights(weights) else str(settings.weights_dir)
    key = (weights, str(resolved), precision, folder)
    with _LOCK:
        encoder = _ENCODERS.get(key)
        if encoder is None:
            if settings.threads:
                torch.set_num_threads(settings.threads)
            encoder = Encoder(weights, str(resolved), precision=precision, settings=settings)
            _ENCODERS[key] = encoder
            log.info("encoder ready: %r (%s)", encoder, encoder.weights_info.message)
        return encoder


def clear_encoders() -> None:
    """Forget cached encoders and ONNX sessions (tests that change the data folder or the models)."""
    with _LOCK:
        _ENCODERS.clear()
    from vislink.encoder.onnx_backbone import clear_onnx_backbones

    clear_onnx_backbones()
