"""The per-image local-feature cache (vislink.local.cache): keyed by content sha256 and extraction parameters,
written atomically, an unreadable entry extracted again."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vislink.local import FeatureCache, feature_cache

SHA = "ab" + "0" * 62


@pytest.fixture
def photo() -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image("china.jpg")).resize((320, 214))


def test_miss_extracts_once_then_hits(tmp_path, photo):
    cache = FeatureCache(tmp_path, max_side=320, max_features=300)
    assert cache.get(SHA) is None
    calls = []

    def open_image():
        calls.append(1)
        return photo

    first = cache.features_for(SHA, open_image)
    second = cache.features_for(SHA, open_image)
    assert calls == [1]
    assert 50 < len(first) <= 300
    assert np.allclose(first.keypoints, second.keypoints)
    assert np.abs(first.descriptors - second.descriptors).max() < 0.01  # uint8 storage
    assert cache.path_for(SHA).is_file()
    assert not list(cache.path_for(SHA).parent.glob("*.part"))


def test_keyed_by_parameters(tmp_path, photo):
    small = FeatureCache(tmp_path, max_side=320, max_features=100)
    large = FeatureCache(tmp_path, max_side=320, max_features=300)
    small.put(SHA, small.features_for(SHA, lambda: photo))
    assert large.get(SHA) is None
    assert len(small.get(SHA)) <= 100


def test_unreadable_entry_is_a_miss(tmp_path, photo):
    cache = FeatureCache(tmp_path, max_side=320, max_features=100)
    path = cache.path_for(SHA)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    assert cache.get(SHA) is None
    assert len(cache.features_for(SHA, lambda: photo)) > 0
    assert cache.get(SHA) is not None


def test_bad_key_and_settings_folder(vislink_env):
    cache = feature_cache(vislink_env)
    assert cache.root == vislink_env.cache_dir / "local-features"
    with pytest.raises(ValueError, match="sha256"):
        cache.get("../etc/passwd")
