"""SIFT keypoints with RootSIFT descriptors (Arandjelovic & Zisserman, CVPR 2012), extracted at a bounded size.

Keypoints are returned in the coordinates of the image given, whatever size they were extracted at, so that a
transform estimated from them maps one original image onto the other.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Longer side the features are extracted at: the paper's SIFT baseline used images of a few hundred pixels;
# 640 keeps a detail of a tenth of the painting above SIFT's smallest scales and costs ~60 ms on one core.
DEFAULT_MAX_SIDE = 640
# Strongest keypoints kept per image (by detector response): bounds storage (~0.5 KB per keypoint) and matching.
DEFAULT_MAX_FEATURES = 1000
DESCRIPTOR_DIM = 128


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints and descriptors of one image.

    ``keypoints``: (N, 4) float32 rows x, y, size, angle (degrees), in the pixel coordinates of the image that
    was given to ``extract`` (``image_size`` = its (width, height)). ``descriptors``: (N, 128) float32 RootSIFT,
    rows l2-unit. ``scale``: extraction size / given size (1.0 when the image was small enough).
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    image_size: tuple[int, int]
    scale: float

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def points(self) -> np.ndarray:
        """(N, 2) float32 x, y."""
        return self.keypoints[:, :2]

    def to_bytes(self) -> bytes:
        """Compact storage in one ``.npz``: float32 keypoints, descriptors quantised to uint8 (RootSIFT values lie in
        [0, 1]; a step of 1/255 moves a unit descriptor by under 0.01), about 0.13 KB per keypoint."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, keypoints=self.keypoints.astype(np.float32),
                            descriptors=np.rint(np.clip(self.descriptors, 0.0, 1.0) * 255).astype(np.uint8),
                            image_size=np.asarray(self.image_size, dtype=np.int64),
                            scale=np.asarray([self.scale], dtype=np.float64))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            descriptors = stored["descriptors"].astype(np.float32) / 255.0
            descriptors /= np.maximum(np.linalg.norm(descriptors, axis=1, keepdims=True), 1e-12)
            return cls(stored["keypoints"].astype(np.float32), descriptors,
                       (int(stored["image_size"][0]), int(stored["image_size"][1])), float(stored["scale"][0]))


def rootsift(descriptors: np.ndarray) -> np.ndarray:
    """SIFT -> RootSIFT: l1-normalise, square root (so that Euclidean distance compares as the Hellinger kernel);
    rows come out l2-unit."""
    descriptors = np.asarray(descriptors, dtype=np.float32)
    if descriptors.size == 0:
        return descriptors.reshape(0, DESCRIPTOR_DIM)
    l1 = np.abs(descriptors).sum(axis=1, keepdims=True)
    return np.sqrt(descriptors / np.maximum(l1, 1e-12))


def extract(image: Image.Image, *, max_side: int = DEFAULT_MAX_SIDE,
            max_features: int = DEFAULT_MAX_FEATURES) -> LocalFeatures:
    """SIFT keypoints of ``image`` (any Pillow mode; converted to 8-bit gray), extracted with the longer side at
    most ``max_side`` pixels, the ``max_features`` strongest kept; coordinates in ``image``'s own pixels."""
    import cv2  # opencv-python-headless: imported here so that the rest of vislink loads without paying for it

    width, height = image.size
    scale = min(1.0, max_side / max(width, height)) if max(width, height) else 1.0
    gray = image.convert("L")
    if scale < 1.0:
        gray = gray.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR)
    sift = cv2.SIFT_create(nfeatures=max_features)
    found, descriptors = sift.detectAndCompute(np.asarray(gray, dtype=np.uint8), None)
    if descriptors is None or not found:
        return LocalFeatures(np.zeros((0, 4), np.float32), np.zeros((0, DESCRIPTOR_DIM), np.float32),
                             (width, height), scale)
    # OpenCV may return a few more than nfeatures (ties in response): keep the strongest exactly.
    order = np.argsort([-kp.response for kp in found], kind="stable")[:max_features]
    keypoints = np.asarray([(found[i].pt[0] / scale, found[i].pt[1] / scale, found[i].size / scale, found[i].angle)
                            for i in order], dtype=np.float32)
    return LocalFeatures(keypoints, rootsift(descriptors[order]), (width, height), scale)
