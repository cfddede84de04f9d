"""VGG16 ``features`` for training, split at the first trained convolution: the frozen lower blocks (the trunk)
and the trained top (the head). The weights come from the encoder's registry (``load_weights``) and the
pixels are normalised with the weights' own preprocessing, so the fine-tuned weights give, through
``get_encoder("ft:<run>")``, exactly the descriptors the training saw (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vislink.encoder.pooling import POOLINGS, l2n
from vislink.encoder.weights import PREPROCESSING, WeightsInfo, load_weights


class Network(torch.nn.Module):
    """VGG16 convolutions (``features``, up to pool5) with every layer before ``cut`` frozen."""

    def __init__(self, state: dict, preprocessing: str, cut: int, device: torch.device | str = "cpu"):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.features = make_layers(cfgs["D"])
        self.features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()
                                       if k.startswith("features.")})
        self.cut = cut
        for index, layer in enumerate(self.features):
            for parameter in layer.parameters():
                parameter.requires_grad_(index >= cut)
        pre = PREPROCESSING[preprocessing]
        self.preprocessing = preprocessing
        self._bgr, self._scale = pre.bgr, pre.scale
        self.register_buffer("_mean", torch.tensor(pre.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(pre.std).view(1, 3, 1, 1), persistent=False)
        self.to(device)

    @classmethod
    def from_weights(cls, weights: str, cut: int, device: torch.device | str = "cpu",
                     settings=None) -> tuple[Network, WeightsInfo]:
        state, info = load_weights(weights, settings)
        return cls(state, info.preprocessing, cut, device), info

    @property
    def device(self) -> torch.device:
        return self._mean.device

    def to_input(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 HxWx3 RGB arrays of one shape -> the normalised input (N, 3, H, W), as the encoder makes it."""
        x = torch.from_numpy(np.stack(arrays)).to(self.device).permute(0, 3, 1, 2).float()
        if self._bgr:
            x = x.flip(1)
        return ((x * self._scale - self._mean) / self._std).contiguous()

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen lower blocks' output (what the cached path stores), without gradients."""
        with torch.no_grad():
            return self.features[:self.cut](x)

    def forward_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """pool5 maps from the output of layer ``start - 1`` (``start=0``: from the normalised pixels)."""
        return self.features[start:](x)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The trained layers' tensors (what a checkpoint needs besides the base weights)."""
        return {k: v.detach().cpu().clone() for k, v in self.features.state_dict().items()
                if int(k.split(".")[0]) >= self.cut}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        current = self.features.state_dict()
        current.update({k: v for k, v in state.items()})
        self.features.load_state_dict(current)

    def features_state(self) -> dict[str, torch.Tensor]:
        """Every convolution with torchvision's keys (``features.N.*``): a VGG16 weights file."""
        return {f"features.{k}": v.detach().cpu().clone() for k, v in self.features.state_dict().items()}


def pool(fmap: torch.Tensor, pooling: str) -> torch.Tensor:
    """The paper's descriptor of pool5 maps (sum, max or 2x2 sum-pool), l2-normalised, in float32."""
    return l2n(POOLINGS[pooling](fmap.float()))


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` setting on ``device`` (None: full float32)."""
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    return {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp]
