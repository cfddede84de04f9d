"""Fine-tuning on a tiny real collection (18 small JPEGs ingested with seeded random weights, groups, a split,
a negative link), at a working size of 64: the loss falls on a fixed batch, the cached-feature path and the
full path agree, the exported weights load through the encoder and give the training's descriptors, a run
killed with SIGKILL resumes and ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from training_collection import COLLECTION, TEST_SIZE, WEIGHTS, build, make_folder
from vislink_testenv import use_data_folder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory, migrated_sqlite_template) -> Path:
    """The collection, built once: later tests copy its database (its files stay where they are)."""
    from vislink.config import get_settings, reset_settings
    from vislink.index import close_all

    home = tmp_path_factory.mktemp("ft-built") / "home"
    home.mkdir()
    shutil.copy(migrated_sqlite_template, home / "vislink.db")
    with pytest.MonkeyPatch.context() as mp:
        use_data_folder(mp, home)
        get_settings().ensure_dirs()
        src = home.parent / "src"
        src.mkdir()
        make_folder(src)
        build(src)
        close_all()
        from vislink.store import db

        db.dispose_engines()  # SQLite's WAL checkpointed into vislink.db, which the tests copy
        reset_settings()
    return home


@pytest.fixture
def ft_env(built, tmp_path, monkeypatch):
    from vislink.config import get_settings, reset_settings
    from vislink.encoder.model import clear_encoders
    from vislink.index import close_all

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(built / "vislink.db", home / "vislink.db")
    use_data_folder(monkeypatch, home)
    settings = get_settings()
    settings.ensure_dirs()
    # The frozen blocks' cached output depends only on the images, views, base weights and geometry, which
    # every test here shares: one cache for the module (the cache's own reuse across runs, which the
    # resume test relies on too), instead of rebuilding it in each test's data folder.
    shared = built.parent / "ft-features"
    shared.mkdir(exist_ok=True)
    (settings.models_dir / "finetune").mkdir(parents=True, exist_ok=True)
    (settings.models_dir / "finetune" / "features").symlink_to(shared, target_is_directory=True)
    yield settings
    close_all()
    clear_encoders()
    reset_settings()


def _config(name="t", **kw):
    from vislink.training import TrainConfig

    options = dict(name=name, collection=COLLECTION, base_weights=WEIGHTS, size=TEST_SIZE, views=2, queries="both",
                   batch_size=4, epochs=1, lr=1e-2)
    options.update(kw)
    return TrainConfig(**options)


def _parts(config, settings, *, dtype="float16"):
    from vislink.training import Network, build_catalog, load_dataset, make_inputs

    config.cache_dtype = dtype
    dataset = load_dataset(config)
    catalog = build_catalog(config, dataset)
    network, info = Network.from_weights(WEIGHTS, config.cut)
    inputs = make_inputs(config, catalog, network, info.sha256, settings)
    return dataset, catalog, network, inputs


def _triplets(dataset, catalog, inputs, n=8):
    from vislink.training import epoch_triplets, mine_negatives
    from vislink.training.inputs import describe

    negatives = mine_negatives(describe(inputs, [(i, 0) for i in range(len(dataset.train))], "sum"), dataset, 5)
    views = [len(catalog.views[i]) for i in range(len(dataset.train))]
    return epoch_triplets(dataset, negatives, views, use_links=True, use_transforms=True, seed=0, epoch=0)[:n]


def test_the_data_follow_the_split_and_the_links(ft_env):
    from vislink.training import load_dataset

    dataset = load_dataset(_config())
    train_refs = {t.ref for t in dataset.train}
    val_refs = {t.ref for t in dataset.val}
    assert not train_refs & val_refs
    assert {r for r in train_refs if r.startswith("distractor")} == {f"distractor{i}.jpg" for i in range(6)}
    assert len(val_refs) == 6 and len(dataset.val_queries) == 6  # two groups of three
    assert len(dataset.link_queries) == 6  # the two train groups, each image a query for the other two
    for k, targets in dataset.link_queries:
        work = dataset.train[k].ref.split("_")[0].removesuffix(".jpg")
        assert {dataset.train[t].ref.split("_")[0].removesuffix(".jpg") for t in targets} == {work}
        assert set(targets) == dataset.related[k]
    a = next(k for k, t in enumerate(dataset.train) if t.ref == "distractor0.jpg")
    b = next(k for k, t in enumerate(dataset.train) if t.ref == "distractor1.jpg")
    assert dataset.annotated[a] == {b}


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(ft_env):
    from vislink.training import batch_loss

    config = _config()
    dataset, catalog, network, inputs = _parts(config, ft_env)
    batch = _triplets(dataset, catalog, inputs)
    optimizer = torch.optim.SGD(network.trainable_parameters(), lr=1e-2, momentum=0.9)
    first = None
    for _ in range(6):
        loss, _, _ = batch_loss(network, inputs, batch, pooling="sum", margin=0.1)
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last = float(batch_loss(network, inputs, batch, pooling="sum", margin=0.1)[0].detach())
    assert first > 0.01
    assert last < 0.5 * first


def test_cached_and_full_paths_give_the_same_loss_and_gradients(ft_env):
    from vislink.training import PixelInputs, batch_loss

    config = _config()
    dataset, catalog, network, cached = _parts(config, ft_env, dtype="float32")
    full = PixelInputs(catalog, network)
    batch = _triplets(dataset, catalog, cached)
    grads = []
    losses = []
    for inputs in (cached, full):
        network.zero_grad()
        loss, _, _ = batch_loss(network, inputs, batch, pooling="sum", margin=0.1)
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append([p.grad.clone() for p in network.trainable_parameters()])
    assert cached.start == config.cut == 24 and full.start == 0
    assert losses[0] > 0
    assert abs(losses[0] - losses[1]) < 1e-5 * max(1.0, abs(losses[1]))
    for a, b in zip(*grads):
        assert float((a - b).norm()) <= 1e-4 * float(b.norm()) + 1e-12
    # The float16 cache (the default) changes the loss by round-off only.
    _, _, _, half = _parts(_config(), ft_env, dtype="float16")
    half_loss = float(batch_loss(network, half, batch, pooling="sum", margin=0.1)[0].detach())
    assert abs(half_loss - losses[1]) < 2e-3


def test_the_exported_weights_load_and_give_the_trained_descriptors(ft_env, monkeypatch):
    from vislink.encoder import encode_variants, get_encoder, open_rgb
    from vislink.encoder.weights import read_finetuned_meta
    from vislink.training import Network, finetune
    from vislink.training.checkpoint import load, run_dir
    from vislink.training.network import pool
    from vislink.training.views import to_working

    result = finetune(_config("exp", epochs=2, max_aspect=4.0), progress=False)
    assert result.weights == "ft:exp" and len(result.history) == 3 and result.best["epoch"] in (1, 2)
    assert result.variants == ["vgg16-pool5-sum@ft:exp", "vgg16-pool5-max@ft:exp", "vgg16-pool5-sp2x2-sum@ft:exp"]
    meta = read_finetuned_meta("exp")
    assert meta["base_weights"]["name"] == WEIGHTS and meta["config"]["lr"] == 1e-2
    assert meta["data"]["train_images"] == 12 and meta["metrics"]["best"]["epoch"] == result.best["epoch"]
    # The training network with the best epoch's layers, at the working geometry...
    network, _ = Network.from_weights(WEIGHTS, 24)
    network.load_trainable_state(load(run_dir(ft_env, "exp") / "best.pt")["trainable"])
    from vislink.training import load_dataset

    image = open_rgb(load_dataset(_config()).train[0].path)
    with torch.no_grad():
        x = network.to_input([to_working(image, TEST_SIZE, "keep", 4.0)])
        trained = pool(network.forward_from(x, 0), "sum").numpy()
    # ...and the encoder loading ft:exp at the same shorter side give the same descriptor.
    monkeypatch.setattr("vislink.encoder.images.POOL5_SHORTER_SIDE", TEST_SIZE)
    encoded = get_encoder("ft:exp").encode_images([image], ["vgg16-pool5-sum"])["vgg16-pool5-sum"]
    assert np.allclose(encoded, trained, atol=1e-5)
    both = encode_variants([image], ["vgg16-pool5-sum", "vgg16-pool5-sum@ft:exp"], weights=WEIGHTS)
    assert np.allclose(both["vgg16-pool5-sum@ft:exp"], trained, atol=1e-5)
    base = get_encoder(WEIGHTS).encode_images([image], ["vgg16-pool5-sum"])["vgg16-pool5-sum"]
    assert np.allclose(both["vgg16-pool5-sum"], base, atol=1e-5)
    assert np.abs(base - trained).max() > 1e-3  # training changed the weights that were exported


def test_a_run_with_other_settings_does_not_resume_and_weights_are_not_overwritten(ft_env):
    from vislink.errors import ConfigError, ConflictError
    from vislink.training import finetune

    finetune(_config("same"), progress=False)
    with pytest.raises(ConflictError, match="exist already"):
        finetune(_config("same", epochs=2), progress=False)
    with pytest.raises(ConfigError, match="margin"):
        finetune(_config("same", margin=0.3), progress=False, overwrite=True)
    again = finetune(_config("same"), progress=False)  # finished and exported: nothing to do
    assert again.resumed_from == (1, 0) and len(again.history) == 2


SCRIPT = """
import json, sys
from vislink.training import TrainConfig, finetune
finetune(TrainConfig.from_dict(json.loads(sys.argv[1])), progress=False)
"""


def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_run(ft_env):
    from vislink.encoder.weights import load_weights
    from vislink.training import finetune
    from vislink.training.checkpoint import load, run_dir

    killed = _config("killed", epochs=2, batch_size=2, save_every=1)
    last = run_dir(ft_env, "killed") / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(killed.to_dict())], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    at = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if last.exists():
                try:
                    state = load(last)["state"]
                except Exception:  # noqa: BLE001 - being replaced right now: read it again
                    state = None
                if state and state["epoch"] >= 1 and state["step"] >= 2:
                    proc.send_signal(signal.SIGKILL)
                    at = (state["epoch"], state["step"])
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and at is None:
            proc.kill()
        output = proc.communicate()[0].decode(errors="replace")
    assert at is not None, f"the run ended before it could be killed:\n{output[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    saved = load(last)["state"]
    assert not saved["finished"] and (saved["epoch"], saved["step"]) >= at

    resumed = finetune(killed, progress=False)
    assert resumed.resumed_from is not None and resumed.resumed_from >= at
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2]
    reference = finetune(_config("straight", epochs=2, batch_size=2), progress=False)
    a, _ = load_weights("ft:killed")
    b, _ = load_weights("ft:straight")
    assert resumed.best["epoch"] == reference.best["epoch"]
    for key in b:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    assert any(not torch.equal(b[k], load_weights(WEIGHTS)[0][k]) for k in b)  # it did train


def test_the_full_path_trains_every_layer_and_runs_under_autocast(ft_env):
    from vislink.encoder.weights import load_weights
    from vislink.training import PixelInputs, batch_loss, finetune

    # The CUDA path (every convolution trained) runs here on CPU, in float32...
    result = finetune(_config("full", path="full", train_from="conv1_1", epochs=1, views=1, max_images=4),
                      progress=False)
    trained, _ = load_weights(result.weights)
    base, _ = load_weights(WEIGHTS)
    assert result.history[1]["triplets_per_s"] > 0
    for key in ("features.0.weight", "features.28.weight"):  # conv1_1 and conv5_3
        assert not torch.equal(trained[key], base[key]), key
    # ...and its mixed-precision step under autocast (bfloat16 on CPU: slow, so one triplet) gives the float32
    # loss up to bfloat16 round-off, with finite gradients down to conv1_1.
    config = _config("amp", path="full", train_from="conv1_1")
    dataset, catalog, network, _ = _parts(config, ft_env)
    pixels = PixelInputs(catalog, network)
    batch = _triplets(dataset, catalog, pixels, n=1)
    exact = float(batch_loss(network, pixels, batch, pooling="sum", margin=0.1)[0].detach())
    loss, _, _ = batch_loss(network, pixels, batch, pooling="sum", margin=0.1, amp="bf16")
    loss.backward()
    assert loss.dtype == torch.float32 and abs(float(loss.detach()) - exact) < 0.02
    grad = network.features[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and float(grad.abs().sum()) > 0
