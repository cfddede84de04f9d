"""A per-image cache of local features, keyed by the image's content sha256 and the extraction parameters.

Layout under the data folder: ``<cache_dir>/local-features/s<max_side>-n<max_features>-v<version>/<sha[:2]>/
<sha>.npz`` (``LocalFeatures.to_bytes``, ~100 KB for 1000 keypoints). Files are written to a temporary name and
renamed, so that concurrent processes (ingest workers, the UI, a benchmark) never read half a file; an
unreadable entry counts as a miss and is rewritten.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from vislink.local.features import DEFAULT_MAX_FEATURES, DEFAULT_MAX_SIDE, LocalFeatures, extract

log = logging.getLogger(__name__)

# Bumped when extraction changes in a way that makes stored features differ (detector, RootSIFT, storage).
FEATURES_VERSION = 1
CACHE_SUBDIR = "local-features"
_HEX = frozenset("0123456789abcdef")


def _check_sha(sha256: str) -> str:
    sha = str(sha256).lower()
    if len(sha) != 64 or not set(sha) <= _HEX:
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha


class FeatureCache:
    """Local features of images by content sha256, for one (max_side, max_features) extraction setting."""

    def __init__(self, root: Path | str, *, max_side: int = DEFAULT_MAX_SIDE,
                 max_features: int = DEFAULT_MAX_FEATURES):
        if max_side < 16 or max_features < 1:
            raise ValueError(f"max_side must be >= 16 and max_features >= 1 (got {max_side}, {max_features})")
        self.root = Path(root).expanduser()
        self.max_side = int(max_side)
        self.max_features = int(max_features)
        self.folder = self.root / f"s{self.max_side}-n{self.max_features}-v{FEATURES_VERSION}"

    def path_for(self, sha256: str) -> Path:
        sha = _check_sha(sha256)
        return self.folder / sha[:2] / f"{sha}.npz"

    def get(self, sha256: str) -> LocalFeatures | None:
        """The stored features of the image with this content hash, or None (never stored, or unreadable)."""
        path = self.path_for(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("local-feature cache: cannot read %s (%s): extracting again", path, exc.strerror or exc)
            return None
        try:
            return LocalFeatures.from_bytes(data)
        except (OSError, ValueError, KeyError, EOFError) as exc:
            log.warning("local-feature cache: %s is unreadable (%s): extracting again", path, exc)
            return None

    def put(self, sha256: str, features: LocalFeatures) -> Path:
        """Store ``features`` (atomically: written to a temporary file in the same folder, then renamed)."""
        path = self.path_for(sha256)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        except OSError as exc:
            raise OSError(f"{path.parent}: cannot write the local-feature cache ({exc.strerror or exc})") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(features.to_bytes())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def features_for(self, sha256: str, open_image: Callable[[], Image.Image]) -> LocalFeatures:
        """The cached features, or extracted from ``open_image()`` (called only on a miss) and stored.

        A cache that cannot be written (read-only data folder) logs a warning and still returns the features."""
        found = self.get(sha256)
        if found is not None:
            return found
        image = open_image()
        features = extract(image, max_side=self.max_side, max_features=self.max_features)
        try:
            self.put(sha256, features)
        except OSError as exc:
            log.warning("%s", exc)
        return features


def feature_cache(settings=None, *, max_side: int = DEFAULT_MAX_SIDE,
                  max_features: int = DEFAULT_MAX_FEATURES) -> FeatureCache:
    """The data folder's feature cache (``settings.cache_dir / "local-features"``; default settings when None)."""
    if settings is None:
        from vislink.config import get_settings

        settings = get_settings()
    return FeatureCache(Path(settings.cache_dir) / CACHE_SUBDIR, max_side=max_side, max_features=max_features)
