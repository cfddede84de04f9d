"""Link-like transformations: reproducible under a seed, each one really changes the image in its own way."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vislink.augment import list_transforms, transform
from vislink.errors import NotFound


@pytest.fixture(scope="module")
def painting() -> Image.Image:
    # An asymmetric, coloured picture: a gradient, a red disc on the left, a blue bar at the bottom.
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:1:120j, 0:1:160j]
    arr = np.stack([x * 200 + 30, y * 180 + 40, (1 - x) * 150 + 50], axis=2) + rng.normal(0, 8, (120, 160, 3))
    yy, xx = np.mgrid[0:120, 0:160]
    arr[(xx - 40) ** 2 + (yy - 50) ** 2 < 20 ** 2] = (220, 30, 30)
    arr[100:112, 20:150] = (20, 40, 200)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("name", list_transforms())
def test_each_transformation_is_deterministic_under_a_seed(painting, name):
    a = np.asarray(transform(painting, name, 0.6, seed=7))
    b = np.asarray(transform(painting, name, 0.6, seed=7))
    assert a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("name", list_transforms())
def test_each_transformation_changes_the_image(painting, name):
    out = transform(painting, name, 0.8, seed=1)
    assert out.mode == "RGB"
    same_size = out.size == painting.size
    assert not same_size or not np.array_equal(np.asarray(out), np.asarray(painting))


def test_random_transformations_differ_between_seeds(painting):
    for name in ("detail", "photo", "colour"):
        a, b = transform(painting, name, 0.7, seed=1), transform(painting, name, 0.7, seed=2)
        assert a.size != b.size or not np.array_equal(np.asarray(a), np.asarray(b)), name


def test_what_each_transformation_does(painting):
    src = np.asarray(painting).astype(int)
    assert np.array_equal(np.asarray(transform(painting, "mirror")), src[:, ::-1])
    gray = np.asarray(transform(painting, "grayscale", 0.0)).astype(int)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    strong, weak = transform(painting, "detail", 1.0, seed=3), transform(painting, "detail", 0.0, seed=3)
    assert strong.width * strong.height < weak.width * weak.height < painting.width * painting.height
    photo = transform(painting, "photo", 0.5, seed=3)
    assert photo.width > painting.width and photo.height > painting.height  # wall and frame around it
    engraving = np.asarray(transform(painting, "engraving", 0.5)).astype(int)
    assert len({tuple(c) for c in engraving.reshape(-1, 3)}) <= 2  # ink and paper only


def test_unknown_names_and_strengths_are_refused(painting):
    with pytest.raises(NotFound, match="unknown transformation 'blur'; valid: detail"):
        transform(painting, "blur")
    with pytest.raises(ValueError, match="strength"):
        transform(painting, "mirror", 1.5)


def test_detail_in_context_and_two_on_a_wall(painting):
    src = np.asarray(painting).astype(int)
    for strength in (0.0, 1.0):
        context = transform(painting, "context", strength, seed=5)
        assert context.width < painting.width and context.height < painting.height  # resized down
    wall = transform(painting, "wall2", 0.5, seed=5)
    assert wall.width > 2 * painting.width and wall.height > painting.height  # two pictures side by side
    # The painting itself is in the photo: some window of it matches the source closely (JPEG aside).
    arr = np.asarray(wall).astype(int)
    best = min(np.abs(arr[y:y + 120, x:x + 160] - src).mean()
               for y in range(0, arr.shape[0] - 119, 2) for x in range(0, arr.shape[1] - 159, 2))
    assert best < 12
