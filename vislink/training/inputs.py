"""Where the network's input of a view comes from, on each training path.

- ``CachedInputs`` (the CPU path): the frozen lower blocks' output for every (image, view), computed once
  and stored under ``<models_dir>/finetune/features/<base weights>-c<cut>-<geometry><size>-a<aspect>-<dtype>/``
  (``<sha256>-<view>.npy``, float16 by default). Files are reused by later runs with the same base weights,
  cut and working geometry (another learning rate or margin re-trains without recomputing them), and a killed
  build picks up where it stopped. Training then runs only the top block(s) on them.
- ``PixelInputs`` (the full path, meant for CUDA): the normalised pixels of each view, rendered on demand
  (kept in memory up to a limit); every layer runs at every step.

Both hand out tensors keyed by ``(image index, view index)`` and say at which layer they enter the network
(``start``), so the trainer is the same for both.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from vislink.training.network import Network, autocast_dtype, pool
from vislink.training.views import View, view_array

log = logging.getLogger(__name__)

Key = tuple[int, int]  # (image index, view index)


class ViewCatalog:
    """Every image of a run (train, then val, then held out) with its views (``views.plan_views``)."""

    def __init__(self, images: Sequence, views: Sequence[Sequence[View]], *, size: int, geometry: str,
                 max_aspect: float):
        self.images, self.views = list(images), [list(v) for v in views]
        self.size, self.geometry, self.max_aspect = size, geometry, max_aspect

    def keys(self, images: Sequence[int] | None = None, *, originals_only: bool = False) -> list[Key]:
        chosen = range(len(self.images)) if images is None else images
        return [(i, v) for i in chosen for v in (range(1) if originals_only else range(len(self.views[i])))]

    def array(self, key: Key) -> np.ndarray:
        image, view = self.images[key[0]], self.views[key[0]][key[1]]
        return view_array(image.path, view, self.size, self.geometry, self.max_aspect)

    def label(self, key: Key) -> str:
        return f"{self.images[key[0]].sha256}-{self.views[key[0]][key[1]].key}"


class _Memo:
    """A bounded in-memory map (least recently used out first)."""

    def __init__(self, limit_bytes: int):
        self.limit, self.used, self.items = limit_bytes, 0, OrderedDict()

    def get(self, key):
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key, value: np.ndarray) -> None:
        self.items[key] = value
        self.used += value.nbytes
        while self.used > self.limit and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.used -= old.nbytes


class CachedInputs:
    """The stored output of the frozen blocks ``features[:cut]`` per view (see the module docstring)."""

    def __init__(self, catalog: ViewCatalog, network: Network, folder: Path, *, dtype: str = "float16",
                 memory_bytes: int = 2 << 30):
        self.catalog, self.network, self.folder = catalog, network, Path(folder)
        self.start = network.cut
        self.dtype = np.float16 if dtype == "float16" else np.float32
        self.memo = _Memo(memory_bytes)

    def path(self, key: Key) -> Path:
        label = self.catalog.label(key)
        return self.folder / label[:2] / f"{label}.npy"

    def build(self, keys: Sequence[Key], *, batch_size: int = 8, workers: int = 2, progress: bool = True) -> int:
        """Compute and store the missing outputs of ``keys``; returns how many were computed."""
        from tqdm.auto import tqdm

        todo = [k for k in dict.fromkeys(keys) if not self.path(k).exists()]
        if not todo:
            return 0
        log.info("caching the frozen blocks' output of %d views in %s", len(todo), self.folder)
        bar = tqdm(total=len(todo), disable=not progress, desc="cache lower blocks", unit="view")
        buckets: dict[tuple, list[tuple[Key, np.ndarray]]] = defaultdict(list)

        def flush(shape) -> None:
            pending = buckets.pop(shape)
            with torch.no_grad():
                out = self.network.trunk(self.network.to_input([a for _, a in pending])).cpu().numpy()
            for (key, _), fmap in zip(pending, out):
                path = self.path(key)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, fmap.astype(self.dtype))
                tmp.replace(path)  # a killed build never leaves half a file under the real name
            bar.update(len(pending))

        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vislink-views") as pool_:
            for start in range(0, len(todo), 4 * batch_size):  # a bounded window of decoded views
                chunk = todo[start:start + 4 * batch_size]
                for key, array in zip(chunk, pool_.map(self.catalog.array, chunk)):
                    buckets[array.shape].append((key, array))
                    if len(buckets[array.shape]) >= batch_size:
                        flush(array.shape)
                while sum(len(b) for b in buckets.values()) > 4 * batch_size:  # many shapes: bound the memory
                    flush(max(buckets, key=lambda s: len(buckets[s])))
            for shape in list(buckets):
                flush(shape)
        bar.close()
        return len(todo)

    def array(self, key: Key) -> np.ndarray:
        value = self.memo.get(key)
        if value is None:
            path = self.path(key)
            if not path.exists():
                self.build([key], progress=False)
            value = np.load(path)
            self.memo.put(key, value)
        return value

    def tensor(self, key: Key) -> torch.Tensor:
        return torch.from_numpy(self.array(key).astype(np.float32)).to(self.network.device)


class PixelInputs:
    """The normalised pixels of each view, rendered on demand (the full path)."""

    start = 0

    def __init__(self, catalog: ViewCatalog, network: Network, *, memory_bytes: int = 4 << 30):
        self.catalog, self.network = catalog, network
        self.memo = _Memo(memory_bytes)

    def build(self, keys: Sequence[Key], **_) -> int:
        return 0  # nothing to precompute: views are rendered when first used

    def tensor(self, key: Key) -> torch.Tensor:
        array = self.memo.get(key)
        if array is None:
            array = self.catalog.array(key)
            self.memo.put(key, array)
        return self.network.to_input([array])[0]


def forward_keys(inputs, keys: Sequence[Key], pooling: str, *, amp: str = "off",
                 max_batch: int | None = None) -> dict[Key, torch.Tensor]:
    """{key: descriptor} for distinct ``keys``: inputs of one shape are stacked into one batch (never padded),
    so a batch of mixed shapes gives exactly the descriptors (and gradients) of one forward pass each."""
    network = inputs.network
    dtype = autocast_dtype(amp, network.device)
    by_shape: dict[tuple, list[tuple[Key, torch.Tensor]]] = defaultdict(list)
    for key in dict.fromkeys(keys):
        tensor = inputs.tensor(key)
        by_shape[tuple(tensor.shape)].append((key, tensor))
    out: dict[Key, torch.Tensor] = {}
    groups = [g[i:i + (max_batch or len(g))] for g in by_shape.values() for i in range(0, len(g), max_batch or len(g))]
    for group in groups:
        x = torch.stack([t for _, t in group])
        with torch.autocast(network.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            fmap = network.forward_from(x, inputs.start)
        descriptors = pool(fmap, pooling)
        for (key, _), row in zip(group, descriptors):
            out[key] = row
    return out


def describe(inputs, keys: Sequence[Key], pooling: str, *, amp: str = "off", batch_size: int = 16) -> np.ndarray:
    """Descriptors (len(keys), D) float32 of ``keys`` with the current weights, without gradients."""
    rows: dict[Key, np.ndarray] = {}
    with torch.no_grad():
        for start in range(0, len(keys), 8 * batch_size):  # shapes are grouped within a window of keys
            chunk = keys[start:start + 8 * batch_size]
            rows.update({k: v.cpu().numpy() for k, v in
                         forward_keys(inputs, chunk, pooling, amp=amp, max_batch=batch_size).items()})
    return np.stack([rows[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)
