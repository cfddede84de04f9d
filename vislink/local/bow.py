"""Bag of visual words (Sivic & Zisserman 2003), the paper's Table 1 "BoW" baseline: an image's RootSIFT
descriptors quantised to the words of a ``Vocabulary``, counted, weighted by tf-idf and l2-normalised, stored as a
sparse vector (the index's "sparse" vector; the cosine of two such vectors is their dot product).

```python
from vislink.local.bow import bow_vector, features_of, fit_vocabulary

vocabulary = fit_vocabulary([features_of(path, sha) for path, sha in sample], words=20_000)
vector = bow_vector(features_of(path, sha), vocabulary)   # SparseVector(indices, values), l2-unit
```

Features come from the data folder's feature cache (``vislink.local.cache``): extracted once per image file, kept
for geometric verification, which re-ranks BoW (and CNN) results with the same keypoints.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from vislink.index.base import SparseVector
from vislink.local.cache import FEATURES_VERSION, FeatureCache, feature_cache
from vislink.local.features import DEFAULT_MAX_FEATURES, DEFAULT_MAX_SIDE, LocalFeatures, extract
from vislink.local.vocabulary import DEFAULT_MAX_DESCRIPTORS, Vocabulary

log = logging.getLogger(__name__)

# What a BoW variant records as its "weights" (DescriptorVariant.weights_name / sha256): the extraction that
# its words are counted from. Its vocabulary is the variant's fitted file (pca_path / pca_sha256 columns).
EXTRACTOR = f"rootsift-s{DEFAULT_MAX_SIDE}-n{DEFAULT_MAX_FEATURES}"
# The dense vector beside each point's bag of words: index collections always have one; a BoW variant's is a
# constant 1-d vector and only its sparse vector is searched (``query_sparse``).
DENSE_DIM = 1
DENSE_PLACEHOLDER = np.ones(DENSE_DIM, dtype=np.float32)


def extractor_sha256() -> str:
    """A stable hash of the extraction setting (detector, RootSIFT, size, keypoints, cache format)."""
    return hashlib.sha256(f"{EXTRACTOR}-v{FEATURES_VERSION}".encode()).hexdigest()


def bow_vector(features: LocalFeatures, vocabulary: Vocabulary) -> SparseVector:
    """tf-idf weighted, l2-normalised bag of words of one image (empty when it has no keypoints, or only words
    found in every training image, whose idf is 0)."""
    if not len(features):
        return SparseVector((), ())
    words, counts = np.unique(vocabulary.quantise(features.descriptors), return_counts=True)
    weights = counts.astype(np.float32) * vocabulary.idf[words]
    keep = weights > 0
    words, weights = words[keep], weights[keep]
    norm = float(np.linalg.norm(weights))
    if norm == 0:
        return SparseVector((), ())
    return SparseVector(tuple(int(w) for w in words), tuple(float(v) for v in weights / norm))


def features_of(path: str | Path, sha256: str | None = None, *, cache: FeatureCache | None = None,
                max_pixels: int | None = None) -> LocalFeatures:
    """The local features of an image file, from the feature cache (``sha256`` of the file: computed when not
    given) or extracted and cached. ``cache`` None: the data folder's. A bad file raises ``BadImage``."""
    from vislink.encoder.images import open_rgb
    from vislink.hashing import sha256_file

    cache = cache or feature_cache()
    sha = sha256 or sha256_file(Path(path))
    return cache.features_for(sha, lambda: open_rgb(path, max_pixels=max_pixels))


def features_at_size(features: LocalFeatures, size: tuple[int, int]) -> LocalFeatures:
    """``features`` of an image decoded reduced (ingest decodes big files reduced) in the pixels of the file's full
    ``size`` (width, height), so that the cached keypoints of a file are always in its own pixels."""
    width, height = features.image_size
    if (width, height) == tuple(size) or not width or not height:
        return features
    fx, fy = size[0] / width, size[1] / height
    keypoints = features.keypoints.copy()
    keypoints[:, 0] *= fx
    keypoints[:, 1] *= fy
    keypoints[:, 2] *= (fx + fy) / 2
    return LocalFeatures(keypoints, features.descriptors, (int(size[0]), int(size[1])), features.scale / fx)


def cached_features(cache: FeatureCache, sha256: str, image, size: tuple[int, int]) -> LocalFeatures:
    """The cached features of the file with this hash, or those of ``image`` (its decoded pixels, maybe reduced)
    in the file's full ``size``, stored in the cache."""
    found = cache.get(sha256)
    if found is not None:
        return found
    features = features_at_size(extract(image, max_side=cache.max_side, max_features=cache.max_features), size)
    try:
        cache.put(sha256, features)
    except OSError as exc:  # a read-only data folder: the features are still returned
        log.warning("%s", exc)
    return features


def features_of_image(image) -> LocalFeatures:
    """Features of an image in memory (a search query), extracted with the cache's setting, not cached."""
    return extract(image, max_side=DEFAULT_MAX_SIDE, max_features=DEFAULT_MAX_FEATURES)


def fit_vocabulary(features: Sequence[LocalFeatures], words: int, *, max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
                   seed: int = 0, provenance: dict | None = None) -> Vocabulary:
    """A ``Vocabulary`` of ``words`` words trained on the descriptors of ``features`` (a sample of images)."""
    return Vocabulary.fit([f.descriptors for f in features], words, max_descriptors=max_descriptors, seed=seed,
                          provenance={"extractor": EXTRACTOR, **(provenance or {})})
