"""The search's query encoding (vislink.search.encoding): a query and its mirror in one batch give the vectors two
separate encodings give; a reduced query side is the image resized to that side; precision ``auto`` follows the
CPU's bf16 flags; bad settings are clear errors. Random VGG16 weights on small images (pool5 at shorter side 64)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from vislink.errors import ConfigError

VARIANT = "vgg16-pool5-sum"


@pytest.fixture
def small_pool5():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("vislink.encoder.images.POOL5_SHORTER_SIDE", 64)  # VGG16 on 2 cores: keep it small
        yield


def _painting(seed: int = 0, size=(96, 72)) -> Image.Image:
    """Asymmetric (a bright block on the left), so that its mirror is another image."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8)).resize(
        size, Image.Resampling.BICUBIC)).copy()
    arr[5:40, 4:30] = (250, 230, 10)
    return Image.fromarray(arr)


def test_mirrored_in_one_batch_equals_two_separate_encodings(vislink_env, small_pool5, monkeypatch):
    from vislink.encoder.dispatch import encode_variants
    from vislink.search.encoding import encode_query

    monkeypatch.setenv("VISLINK_QUERY_PRECISION", "fp32")
    from vislink.config import reset_settings

    reset_settings()
    image = _painting()
    both = encode_query(VARIANT, [image], weights_name="random", mirrored=True)
    plain = encode_variants([image], [VARIANT], weights="random")[VARIANT]
    flipped = encode_variants([ImageOps.mirror(image)], [VARIANT], weights="random")[VARIANT]
    assert both.shape == (2, 512) and both.dtype == np.float32
    np.testing.assert_allclose(both[0], plain[0], atol=1e-5)
    np.testing.assert_allclose(both[1], flipped[0], atol=1e-5)
    assert float(both[0] @ both[1]) < 0.9999  # the mirror really is another view


def test_a_reduced_query_side_is_the_image_at_that_side(vislink_env, small_pool5):
    from vislink.encoder.dispatch import encode_variants
    from vislink.search.encoding import encode_query

    image = _painting(1, (200, 150))
    reduced = encode_query(VARIANT, [image], weights_name="random", side=128, precision="fp32")
    at_128 = image.resize((171, 128), Image.Resampling.BILINEAR)  # shorter side 128, aspect kept
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("vislink.encoder.images.POOL5_SHORTER_SIDE", 128)
        expected = encode_variants([at_128], [VARIANT], weights="random")[VARIANT]
    np.testing.assert_allclose(reduced[0], expected[0], atol=1e-5)
    stored_size = encode_query(VARIANT, [image], weights_name="random", precision="fp32")
    assert not np.allclose(stored_size[0], reduced[0], atol=1e-4)  # side None: the stored 64 here, not 128


def test_bad_side_and_precision_are_clear_errors(vislink_env):
    from vislink.search.encoding import encode_query, resolve_precision

    with pytest.raises(ConfigError, match="at least 128.*VISLINK_QUERY_SIDE"):
        encode_query(VARIANT, [_painting()], weights_name="random", side=64)
    with pytest.raises(ConfigError, match="unknown query precision 'fp8'.*auto, fp32, bf16"):
        resolve_precision("fp8")


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(tmp_path, monkeypatch):
    from vislink.search import encoding

    without = tmp_path / "avx2"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert not encoding.cpu_has_bf16(str(without))
    assert encoding.cpu_has_bf16(str(amx))
    monkeypatch.setattr(encoding, "cpu_has_bf16", lambda: False)
    assert encoding.resolve_precision("auto") is None  # fp32
    assert encoding.resolve_precision("auto", "cuda") == "bf16"
    assert encoding.resolve_precision("bf16") == "bf16" and encoding.resolve_precision("fp32") is None
    monkeypatch.setattr(encoding, "cpu_has_bf16", lambda: True)
    assert encoding.resolve_precision("auto") == "bf16"


def test_bf16_query_stays_close_to_the_fp32_one(vislink_env, small_pool5):
    from vislink.search.encoding import encode_query

    image = _painting(2)
    fp32 = encode_query(VARIANT, [image], weights_name="random", precision="fp32")
    bf16 = encode_query(VARIANT, [image], weights_name="random", precision="bf16")
    assert float(fp32[0] @ bf16[0]) > 0.999


def test_search_uses_the_query_side_setting(vislink_env, small_pool5, monkeypatch, tmp_path):
    """A stored file searched at another query side still finds itself first (the figures of docs/search.md
    measure how far recall moves on real paintings)."""
    from vislink.config import reset_settings
    from vislink.index import close_all
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.search import search

    folder = tmp_path / "imgs"
    folder.mkdir()
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 220)]
    for i, colour in enumerate(colours):  # distinct dominant colours: random weights still tell them apart
        arr = np.asarray(_painting(10 + i, (200, 150)), dtype=np.float32) * 0.3 + np.array(colour) * 0.7
        Image.fromarray(arr.astype(np.uint8)).save(folder / f"p{i}.png")
    monkeypatch.setenv("VISLINK_WEIGHTS", "random")
    reset_settings()
    ingest("side", folder_items(folder), variants=[VARIANT], progress=False)
    stored = search(folder / "p2.png", collection="side", limit=1)[0]
    monkeypatch.setenv("VISLINK_QUERY_SIDE", "128")
    monkeypatch.setenv("VISLINK_QUERY_PRECISION", "fp32")
    reset_settings()
    reduced = search(folder / "p2.png", collection="side", limit=2, mirrored=True)
    close_all()
    assert stored.source_ref.endswith("p2.png") and stored.score == pytest.approx(1.0, abs=1e-4)
    assert reduced[0].source_ref.endswith("p2.png") and reduced[0].score < 0.9999  # encoded at 128, not 64
    monkeypatch.setenv("VISLINK_QUERY_SIDE", "100")
    reset_settings()
    with pytest.raises(ConfigError, match="VISLINK_QUERY_SIDE"):
        search(folder / "p2.png", collection="side", limit=1)


def test_vgg16_layers_are_torchvisions_without_importing_it():
    """The encoder builds VGG16's features itself (a search's cold start skips the torchvision import): the same
    modules, in the same order, with the same parameter names and shapes as torchvision's."""
    import subprocess
    import sys

    import torch
    from torchvision.models.vgg import cfgs, make_layers

    from vislink.encoder.model import vgg16_features

    with torch.device("meta"):
        ours, theirs = vgg16_features(), make_layers(cfgs["D"])
    assert repr(ours) == repr(theirs)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in theirs.state_dict().items()]
    code = ("import sys; from vislink.encoder.model import vgg16_features; vgg16_features(); "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "False", out.stderr


def test_query_encoder_is_the_one_searches_run_on(vislink_env, monkeypatch):
    """What the UI preloads (``services._prewarm`` calls ``query_encoder``) is the encoder ``encode_query`` uses:
    fp32 it is ingest's own; bf16 a second one, built once."""
    from vislink.config import reset_settings
    from vislink.encoder.model import get_encoder
    from vislink.search.encoding import query_encoder

    monkeypatch.setenv("VISLINK_QUERY_PRECISION", "fp32")
    reset_settings()
    assert query_encoder("random") is get_encoder("random")
    monkeypatch.setenv("VISLINK_QUERY_PRECISION", "bf16")
    reset_settings()
    bf16 = query_encoder("random")
    assert bf16.precision == "bf16" and bf16 is query_encoder("random") and bf16 is not get_encoder("random")
