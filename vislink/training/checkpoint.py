"""A run's files under ``<models_dir>/finetune/<run>/``: ``last.pt`` (everything a resume needs: the trained
layers, the optimiser, epoch and step, the mined negatives, the history), ``best.pt`` (the trained layers of
the best validated epoch) and ``log.jsonl`` (one line per epoch). Files are written to a temporary name and
renamed, so a run killed at any moment leaves the previous checkpoint intact.

The run's product is ``ft:<run>``, a VGG16 weights file written through ``vislink.encoder.weights.save_finetuned``
(every convolution, frozen and trained, with the base weights' id, the config, the data summary and the
metrics), which ``get_encoder("ft:<run>")`` loads like any VGG16 weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class RunState:
    epoch: int = 0  # the epoch in progress (== epochs when finished)
    step: int = 0  # steps done within that epoch
    negatives: list[list[int]] | None = None
    mined_epoch: int | None = None
    history: list[dict] = field(default_factory=list)  # one record per validated epoch, epoch 0 = base weights
    best: dict | None = None  # {"epoch", "metric", "score", "metrics"}
    finished: bool = False

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "negatives": self.negatives, "mined_epoch": self.mined_epoch,
                "history": self.history, "best": self.best, "finished": self.finished}


def run_dir(settings, name: str) -> Path:
    return settings.models_dir / "finetune" / name


def _save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def save_last(folder: Path, *, config: dict, base: dict, state: RunState, trainable: dict, optimizer: dict,
              scaler: dict | None) -> None:
    _save({"config": config, "base_weights": base, "state": _plain(state.to_dict()), "trainable": trainable,
           "optimizer": optimizer, "scaler": scaler}, folder / "last.pt")


def save_best(folder: Path, *, trainable: dict, record: dict) -> None:
    _save({"trainable": trainable, "record": _plain(record)}, folder / "best.pt")


def load(path: Path) -> dict | None:
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def state_from(saved: dict) -> RunState:
    data = saved["state"]
    return RunState(data["epoch"], data["step"], data["negatives"], data["mined_epoch"], list(data["history"]),
                    data["best"], data["finished"])


def append_log(folder: Path, record: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "log.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(_plain(record)) + "\n")


def _plain(obj):
    """JSON types only (what ``torch.load(weights_only=True)`` and the weights' metadata accept)."""
    return json.loads(json.dumps(obj, default=float))
