"""open_rgb on real files written by Pillow: every bad-input reason, every mode, EXIF orientation."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from vislink.encoder.images import MAX_SIDE, open_rgb, pool5_size, prepare, resize_fc6
from vislink.errors import BadImage


def _photo(width=64, height=48) -> Image.Image:
    """A smooth colour gradient: JPEG-friendly, and asymmetric so that rotations are visible."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2).astype(np.uint8), "RGB")


def _reason(source, **kwargs) -> str:
    with pytest.raises(BadImage) as info:
        open_rgb(source, **kwargs)
    return info.value.reason


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert _reason(path) == "empty-file"
    assert _reason(b"") == "empty-file"


def test_not_an_image_with_image_extension(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is a text file, not a JPEG\n" * 20)
    with pytest.raises(BadImage) as info:
        open_rgb(path)
    assert info.value.reason == "not-an-image"
    assert info.value.path == str(path)  # the message names the file


def test_truncated_jpeg(tmp_path):
    buffer = io.BytesIO()
    _photo(400, 300).save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert _reason(path) == "truncated"


def test_missing_file_is_unreadable(tmp_path):
    assert _reason(tmp_path / "nowhere.jpg") == "unreadable"


def test_decompression_bomb_by_setting(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 200), (10, 20, 30)).save(path)
    assert _reason(path, max_pixels=50_000) == "decompression-bomb"
    assert open_rgb(path, max_pixels=60_000).size == (300, 200)


def test_decompression_bomb_default_from_settings(tmp_path, monkeypatch):
    from vislink.config import reset_settings

    path = tmp_path / "big.png"
    Image.new("L", (300, 200)).save(path)
    monkeypatch.setenv("VISLINK_MAX_IMAGE_PIXELS", "1000")
    reset_settings()
    try:
        assert _reason(path) == "decompression-bomb"
    finally:
        reset_settings()


def test_huge_dimension_is_too_large(tmp_path):
    # A one-pixel-high strip: few pixels in total, but a side no photograph has.
    path = tmp_path / "strip.png"
    Image.new("L", (MAX_SIDE + 1, 1)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _reason(path) == "too-large"


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = open_rgb(path)
    assert image.mode == "RGB" and image.size == (40, 30)
    r, g, b = image.getpixel((20, 15))
    assert r > 200 and g < 50 and b < 50


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    image = open_rgb(path)
    assert image.mode == "RGB"
    r, g, b = image.getpixel((16, 16))
    assert r > 200 and g < 60 and b < 60


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    array = np.full((20, 30), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    array[:, :10] = 65535
    path = tmp_path / "gray16.png"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode.startswith("I")
    image = open_rgb(path)
    assert image.mode == "RGB"
    assert image.getpixel((20, 10)) == (128, 128, 128)  # clipping would give 255
    assert image.getpixel((5, 10)) == (255, 255, 255)


def test_palette_with_transparency_on_white(tmp_path):
    image = Image.new("P", (20, 20), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (10, 0, 20, 20))  # right half red, left half palette index 0 = transparent black
    image.info["transparency"] = 0
    path = tmp_path / "pal.png"
    image.save(path, transparency=0)
    rgb = open_rgb(path)
    assert rgb.getpixel((2, 5)) == (255, 255, 255)
    assert rgb.getpixel((15, 5)) == (255, 0, 0)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "1", "I", "F", "YCbCr", "CMYK"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    source = _photo(32, 24)
    image = source.convert(mode) if mode not in ("I", "F") else source.convert("L").convert(mode)
    if mode in ("LA", "RGBA"):  # fully opaque: the colours must survive the compositing
        image.putalpha(255)
    buffer = io.BytesIO()
    image.save(buffer, "TIFF")
    rgb = open_rgb(buffer.getvalue(), name=f"{mode}.tif")
    assert rgb.mode == "RGB" and rgb.size == (32, 24)
    if mode in ("RGBA", "YCbCr", "CMYK"):
        assert np.abs(np.asarray(rgb, dtype=int) - np.asarray(source, dtype=int)).max() <= 3


def test_rgba_transparent_pixels_become_white():
    image = Image.new("RGBA", (10, 10), (0, 0, 255, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    assert open_rgb(buffer.getvalue()).getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_applied(tmp_path):
    source = _photo(60, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    path = tmp_path / "rotated.jpg"
    source.save(path, quality=95, exif=exif)
    image = open_rgb(path)
    assert image.size == (40, 60)
    # the top-left of the displayed image is the stored bottom-left (blue-ish corner: x=0, y=max)
    expected = np.asarray(source.transpose(Image.Transpose.ROTATE_270), dtype=int)
    assert np.abs(np.asarray(image, dtype=int) - expected).mean() < 4


def test_file_object_and_bytes_give_the_same_pixels(tmp_path):
    path = tmp_path / "a.jpg"
    _photo().save(path, quality=90)
    a = np.asarray(open_rgb(path))
    b = np.asarray(open_rgb(path.read_bytes()))
    with path.open("rb") as handle:
        c = np.asarray(open_rgb(handle))
    assert np.array_equal(a, b) and np.array_equal(a, c)


@pytest.mark.parametrize("size,expected", [((640, 427), (384, 256)), ((100, 300), (256, 768)),
                                           ((256, 256), (256, 256)), ((10, 1000), (64, 4096))])
def test_pool5_resize_rule(size, expected):
    assert pool5_size(*size) == expected


def test_prepare_shapes_and_mirror():
    image = _photo(90, 60)
    arrays = prepare(image, {"shorter-256", "crop-224", "warp-224"})
    assert arrays["shorter-256"].shape == (256, 384, 3)
    assert arrays["crop-224"].shape == arrays["warp-224"].shape == (224, 224, 3)
    mirrored = prepare(image, {"shorter-256"}, mirrored=True)["shorter-256"]
    assert np.abs(mirrored.astype(int) - arrays["shorter-256"][:, ::-1].astype(int)).max() <= 1
    # crop keeps the aspect (centre square), warp squeezes: they differ on a non-square image
    assert resize_fc6(image, "crop-224").size == (224, 224)
    assert not np.array_equal(arrays["crop-224"], arrays["warp-224"])
