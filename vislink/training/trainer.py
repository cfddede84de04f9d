"""``finetune(config)``: the paper's triplet fine-tuning of VGG16, with hard negatives, validation every
epoch, the best checkpoint kept, resumable after an interruption, producing the weights ``ft:<run>``.

One loop for both paths (``config.path``): ``cached`` trains the top block(s) on the stored output of the
frozen lower blocks (practical on CPU), ``full`` runs every layer at every step from the pixels (meant for
CUDA with mixed precision; the same code runs on CPU, slowly). See docs/training.md.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from vislink.errors import ConfigError, ConflictError
from vislink.training import checkpoint as ckpt
from vislink.training.config import TrainConfig
from vislink.training.data import Dataset, load_dataset
from vislink.training.inputs import CachedInputs, PixelInputs, ViewCatalog, describe, forward_keys
from vislink.training.mining import Triplet, epoch_triplets, mine_negatives, triplet_loss
from vislink.training.network import Network, autocast_dtype
from vislink.training.validate import all_keys, score, tiebreak, validate, validation_plan
from vislink.training.views import plan_views

log = logging.getLogger(__name__)

POOL5_VARIANTS = ("vgg16-pool5-sum", "vgg16-pool5-max", "vgg16-pool5-sp2x2-sum")


def finetuned_variants(name: str) -> list[str]:
    """The descriptor variants computed by ``ft:<name>``: the paper's three pool5 ones, pinned to it."""
    return [f"{v}@ft:{name}" for v in POOL5_VARIANTS]


@dataclass
class FinetuneResult:
    name: str
    weights: str  # ft:<name>
    weights_sha256: str | None
    variants: list[str]
    base_weights: dict  # {"name", "sha256"}
    history: list[dict]  # epoch 0 = the base weights
    best: dict | None
    data: dict
    run_dir: Path
    resumed_from: tuple[int, int] | None  # (epoch, step) the run continued from, None: a fresh start


def batch_loss(network: Network, inputs, triplets: Sequence[Triplet], *, pooling: str, margin: float,
               amp: str = "off"):
    """(loss, d(Q,T), d(Q,N)) of a batch of triplets with the current weights (gradients on)."""
    keys = [k for t in triplets for k in (t.query, t.target, t.negative)]
    desc = forward_keys(inputs, keys, pooling, amp=amp)
    rows = [torch.stack([desc[getattr(t, pos)] for t in triplets]) for pos in ("query", "target", "negative")]
    return triplet_loss(*rows, margin)


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler=None) -> None:
    """Back-propagate ``loss`` and step, through the fp16 ``GradScaler`` when there is one (CUDA)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


def make_inputs(config: TrainConfig, catalog: ViewCatalog, network: Network, base_sha: str, settings):
    """The input source of ``config.path`` (see ``inputs``)."""
    if config.path == "full":
        return PixelInputs(catalog, network)
    key = f"{base_sha[:16]}-c{config.cut}-{config.geometry}{config.size}-a{config.max_aspect:g}-{config.cache_dtype}"
    return CachedInputs(catalog, network, settings.models_dir / "finetune" / "features" / key,
                        dtype=config.cache_dtype)


def build_catalog(config: TrainConfig, dataset: Dataset) -> ViewCatalog:
    """Train images (with their views when the run uses transformations), then val and held-out images (with
    views for the transformations check)."""
    images = dataset.train + dataset.val + dataset.held_out
    n_train = len(dataset.train)
    views = []
    for k, image in enumerate(images):
        n = config.views if (k >= n_train or config.uses_transforms) else 0
        views.append(plan_views(image.sha256, config.transforms, n, config.strength, config.seed))
    return ViewCatalog(images, views, size=config.size, geometry=config.geometry, max_aspect=config.max_aspect)


def _settings(settings):
    if settings is None:
        from vislink.config import get_settings

        return get_settings()
    return settings


def _check_resumable(saved: dict, config: TrainConfig, base: dict, data_ids: list[int]) -> None:
    old = dict(saved["config"])
    new = config.training_fields()
    differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if differ:
        raise ConfigError(f"run {config.name!r} was started with other settings ({', '.join(differ)}): resume it "
                          f"with the same ones, or start again with --restart")
    if saved["base_weights"].get("sha256") != base["sha256"]:
        raise ConfigError(f"run {config.name!r} started from other base weights "
                          f"({saved['base_weights'].get('sha256', '?')[:12]}): --restart to start again")
    if saved["base_weights"].get("train_image_ids") != data_ids:
        raise ConfigError(f"the training images of {config.collection!r} changed since run {config.name!r} "
                          f"started (images or split edited): --restart to start again")


def finetune(config: TrainConfig, *, resume: bool = True, restart: bool = False, overwrite: bool = False,
             progress: bool = True, on_epoch: Callable[[dict], None] | None = None, db_url: str | None = None,
             settings=None) -> FinetuneResult:
    """Train ``config`` (see the module docstring) and save ``ft:<config.name>``. A run whose ``last.pt``
    exists continues from it (``resume``; its settings must match) or starts again (``restart``). Existing
    fine-tuned weights of that name are replaced only with ``overwrite``."""
    from vislink.encoder.model import resolve_device
    from vislink.encoder.weights import describe_weights, save_finetuned

    settings = _settings(settings)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    config = replace(config, base_weights=config.base_weights or settings.weights)
    folder = ckpt.run_dir(settings, config.name)
    if restart and folder.exists():
        for name in ("last.pt", "best.pt", "log.jsonl"):
            (folder / name).unlink(missing_ok=True)
    saved = ckpt.load(folder / "last.pt")
    if saved is not None and not resume:
        raise ConflictError(f"run {config.name!r} exists ({folder}): resume it, or start again with --restart")
    weights_name = f"ft:{config.name}"
    exported = describe_weights(weights_name, settings)
    if exported.installed and not overwrite and not (saved and saved["state"]["finished"]
                                                     and saved["state"]["epoch"] >= config.epochs):
        raise ConflictError(f"fine-tuned weights {weights_name} exist already: choose another --name, or "
                            f"--overwrite (collections encoded with them will need re-encoding)")
    device = resolve_device(config.device)
    network, base_info = Network.from_weights(config.base_weights, config.cut, device, settings)
    dataset = load_dataset(config, db_url or settings.database_url)
    data_ids = [t.image_id for t in dataset.train]
    base = {"name": base_info.name, "sha256": base_info.sha256}
    if saved is not None:
        _check_resumable(saved, config, base, data_ids)
    catalog = build_catalog(config, dataset)
    inputs = make_inputs(config, catalog, network, base_info.sha256, settings)
    n_train = len(dataset.train)
    plan = validation_plan(dataset, catalog)
    train_keys = catalog.keys(range(n_train))
    inputs.build(train_keys + all_keys(plan), batch_size=8, progress=progress)
    amp = config.amp if config.amp != "auto" else ("fp16" if device.type == "cuda" else "off")
    optimizer = torch.optim.SGD(network.trainable_parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if autocast_dtype(amp, device) == torch.float16 else None
    resumed_from = None
    if saved is not None:
        network.load_trainable_state(saved["trainable"])
        optimizer.load_state_dict(saved["optimizer"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        state = ckpt.state_from(saved)
        resumed_from = (state.epoch, state.step)
        log.info("run %s resumes at epoch %d, step %d", config.name, state.epoch + 1, state.step)
    else:
        state = ckpt.RunState()
        started = time.perf_counter()
        metrics = validate(inputs, plan, config.pooling, amp=amp)
        metric, value = score(metrics, config.select_metric)
        record = {"epoch": 0, "metrics": metrics, "metric": metric, "score": value,
                  "seconds_validate": time.perf_counter() - started, "note": "base weights"}
        state.history.append(record)
        ckpt.append_log(folder, record)
        if on_epoch:
            on_epoch(record)
    base_record = {**base, "train_image_ids": data_ids}

    def save() -> None:
        ckpt.save_last(folder, config=config.training_fields(), base=base_record, state=state,
                       trainable=network.trainable_state(), optimizer=optimizer.state_dict(),
                       scaler=scaler.state_dict() if scaler is not None else None)

    save()
    n_views = [len(catalog.views[i]) for i in range(n_train)]
    for epoch in range(state.epoch, config.epochs):
        if state.step == 0 and (state.negatives is None or epoch - (state.mined_epoch or 0) >= config.mine_every):
            started = time.perf_counter()
            state.negatives = mine_negatives(describe(inputs, [(i, 0) for i in range(n_train)], config.pooling,
                                                      amp=amp), dataset, config.negatives)
            state.mined_epoch = epoch
            log.info("epoch %d: hard negatives mined in %.1f s", epoch + 1, time.perf_counter() - started)
        triplets = epoch_triplets(dataset, state.negatives, n_views, use_links=config.uses_links,
                                  use_transforms=config.uses_transforms, seed=config.seed, epoch=epoch)
        batches = [triplets[i:i + config.batch_size] for i in range(0, len(triplets), config.batch_size)]
        losses, active, started = [], [], time.perf_counter()
        from tqdm.auto import tqdm

        for b in tqdm(range(state.step, len(batches)), disable=not progress, desc=f"epoch {epoch + 1}",
                      unit="batch"):
            loss, d_pos, d_neg = batch_loss(network, inputs, batches[b], pooling=config.pooling,
                                            margin=config.margin, amp=amp)
            optimizer_step(loss, optimizer, scaler)
            losses.append(float(loss.detach()))
            active.append(float((d_pos - d_neg + config.margin > 0).float().mean()))
            state.step = b + 1
            if state.step % config.save_every == 0 and state.step < len(batches):
                save()
        seconds = time.perf_counter() - started
        done = sum(len(batches[b]) for b in range(resumed_from[1] if resumed_from and resumed_from[0] == epoch
                                                  else 0, len(batches)))
        started = time.perf_counter()
        metrics = validate(inputs, plan, config.pooling, amp=amp)
        metric, value = score(metrics, config.select_metric)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None,
                  "active": float(np.mean(active)) if active else None, "triplets": len(triplets),
                  "seconds_train": seconds, "triplets_per_s": done / seconds if seconds > 0 else None,
                  "seconds_validate": time.perf_counter() - started, "metrics": metrics, "metric": metric,
                  "score": value}
        state.history.append(record)
        ckpt.append_log(folder, record)
        rank = (value if value == value else float("-inf"), tiebreak(metrics))  # NaN (no query) never wins
        if state.best is None or rank > (state.best["score"], state.best["tiebreak"]):
            state.best = {"epoch": epoch + 1, "metric": metric, "score": rank[0], "tiebreak": rank[1],
                          "metrics": metrics}
            ckpt.save_best(folder, trainable=network.trainable_state(), record=state.best)
        state.epoch, state.step = epoch + 1, 0
        save()
        if on_epoch:
            on_epoch(record)
    state.finished = True
    save()
    info = exported
    if not (info.installed and resumed_from and resumed_from[0] >= config.epochs and not overwrite):
        best = ckpt.load(folder / "best.pt")
        if best is not None:
            network.load_trainable_state(best["trainable"])
        meta = {"base_weights": base, "config": config.to_dict(), "data": dataset.summary(),
                "metrics": {"base": state.history[0]["metrics"], "best": state.best, "history": state.history},
                "created": datetime.now(timezone.utc).isoformat(), "code_version": _code_version()}
        info = save_finetuned(config.name, network.features_state(), preprocessing=network.preprocessing,
                              meta=meta, settings=settings, overwrite=True)
    return FinetuneResult(config.name, weights_name, info.sha256, finetuned_variants(config.name), base,
                          state.history, state.best, dataset.summary(), folder, resumed_from)


def _code_version() -> str:
    from vislink.evaluation.records import code_version

    return code_version()


def remove_run(name: str, settings=None, *, cache: bool = False) -> None:
    """Delete a run's checkpoints (and, with ``cache``, every cached lower-block output of the data folder)."""
    settings = _settings(settings)
    shutil.rmtree(ckpt.run_dir(settings, name), ignore_errors=True)
    if cache:
        shutil.rmtree(settings.models_dir / "finetune" / "features", ignore_errors=True)
