"""Geometric verification of two images from their local features.

RootSIFT descriptors of image A and image B are matched with Lowe's ratio test (optionally kept only when
mutual), then RANSAC estimates the similarity (scale, rotation, translation: ``cv2.estimateAffinePartial2D``)
that maps B's keypoints onto A's, optionally refined to a homography. B is tried as given and mirrored
left-right (mirrored copies are common in art: engravings print reversed); the better of the two is kept.

Direction: ``Verification.transform`` is a 3x3 matrix mapping pixel coordinates of B *as given* (the mirror, when
found, is folded into the matrix) onto pixel coordinates of A, both in the images' own pixels (pixel centres at
integers, as ``cv2.warpAffine`` / ``warpPerspective`` use them). Warping B onto A's canvas with it aligns them.

A pair counts as verified when at least ``MIN_INLIERS`` distinct keypoints of each image agree with the transform
and the transform is plausible (scale within ``MAX_SCALE_RATIO``, inliers spread over more than a point); the
figures behind the constants are in docs/local.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vislink.local.features import DESCRIPTOR_DIM, LocalFeatures

# Lowe's ratio: the best match must be this much closer than the second best (0.8 in Lowe 2004; RootSIFT
# distances are Hellinger distances, for which the same value holds well).
RATIO = 0.8
# RANSAC reprojection threshold, in pixels of A's extraction size (640 px long side by default): 1 % of the side.
REPROJ_PX = 6.0
RANSAC_ITERS = 2000
RANSAC_CONFIDENCE = 0.995
# Fewest distinct agreeing keypoints for a verified pair. Unrelated images reach at most 4 by chance (3,383
# paintings_linked pairs of different groups, 4,000 random wga_sample pairs); at 8, 96 % of paintings_linked's
# linked pairs verify (93 % at 12): details, other scans, engravings (docs/local.md).
MIN_INLIERS = 8
# A transform that scales by more than this (or less than its inverse) is rejected as implausible: a detail
# of a twentieth of the painting's side is still found, a match of a whole image onto a few pixels is not.
MAX_SCALE_RATIO = 20.0
# The inliers must span at least this fraction of the smaller image side in both images (not one point
# matched many times over: a repeated pattern, a signature).
MIN_SPREAD = 0.05
# A homography (``model="homography"``) is kept only when its 2x2 part stays this close to a similarity's
# conditioning and its perspective terms are small: otherwise the similarity stands.
MAX_HOMOGRAPHY_CONDITION = 8.0

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in the image's own pixels


@dataclass(frozen=True)
class Verification:
    """What verification found between image A and image B.

    ``transform`` maps B's pixels (B as given) onto A's (3x3; None when nothing was estimated); ``box_a`` /
    ``box_b``: the bounding boxes of the inliers in each image; ``points_a`` / ``points_b``: the inlier points
    (K, 2), B's in its own unmirrored pixels; ``matches``: tentative matches after the ratio test;
    ``reason``: why a pair is not verified ('' when it is)."""

    verified: bool
    inliers: int
    matches: int
    mirrored: bool = False
    transform: np.ndarray | None = None
    model: str = "similarity"
    box_a: Box | None = None
    box_b: Box | None = None
    points_a: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    points_b: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    size_a: tuple[int, int] = (0, 0)
    size_b: tuple[int, int] = (0, 0)
    reason: str = ""

    @property
    def scale(self) -> float | None:
        """How much B is enlarged onto A (the square root of the transform's area ratio)."""
        if self.transform is None:
            return None
        return float(np.sqrt(abs(np.linalg.det(self.transform[:2, :2]))))

    @property
    def rotation_deg(self) -> float | None:
        """Rotation of B (un-mirrored first when ``mirrored``) onto A, in degrees in image axes (y down: a positive
        angle turns clockwise on screen)."""
        if self.transform is None:
            return None
        t = self.transform[:2, :2]
        if self.mirrored:  # undo the mirror (a flip of B's x axis) before reading the angle
            t = t @ np.diag([-1.0, 1.0])
        return float(np.degrees(np.arctan2(t[1, 0], t[0, 0])))

    def map_b_to_a(self, points: np.ndarray) -> np.ndarray:
        """B's pixel coordinates (N, 2) mapped into A's."""
        if self.transform is None:
            raise ValueError("no transform was estimated between these images")
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        mapped = np.c_[pts, np.ones(len(pts))] @ self.transform.T
        return (mapped[:, :2] / mapped[:, 2:3]).astype(np.float64)

    def outline_b_in_a(self) -> np.ndarray:
        """B's four corners (top-left, top-right, bottom-right, bottom-left) in A's pixels: where B lies on A."""
        w, h = self.size_b
        return self.map_b_to_a(np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64))

    def summary(self) -> str:
        """One line for people: verified or why not, inliers, scale, rotation, mirrored."""
        if not self.verified:
            return f"not aligned: {self.reason} ({self.inliers} inliers of {self.matches} matches)"
        extra = " mirrored" if self.mirrored else ""
        return (f"aligned{extra}: {self.inliers} inliers of {self.matches} matches, {self.model}, scale "
                f"{self.scale:.3g}, rotation {self.rotation_deg:.1f} deg")


def mirror_matrix(width: int) -> np.ndarray:
    """The 3x3 left-right mirror of an image ``width`` pixels wide (x -> width - 1 - x); its own inverse."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def mirror_features(features: LocalFeatures) -> LocalFeatures:
    """The features the left-right mirror of the image would have, without extracting again: x mirrored,
    orientation theta -> 180 - theta, and each SIFT descriptor's 4x4 grid flipped across its orientation axis
    with its 8 orientation bins reversed (measured: cosine 0.999 with the mirror's own descriptors)."""
    width = features.image_size[0]
    keypoints = features.keypoints.copy()
    keypoints[:, 0] = (width - 1) - keypoints[:, 0]
    keypoints[:, 3] = (180.0 - keypoints[:, 3]) % 360.0
    grid = features.descriptors.reshape(-1, 4, 4, 8)[:, ::-1, :, :]
    descriptors = grid[..., (-np.arange(8)) % 8].reshape(-1, DESCRIPTOR_DIM)
    return LocalFeatures(keypoints, np.ascontiguousarray(descriptors, dtype=np.float32), features.image_size,
                         features.scale)


def _ratio_test(sims: np.ndarray, ratio: float, mutual: bool) -> tuple[np.ndarray, np.ndarray]:
    """(ia, ib) of the rows of ``sims`` (cosines of l2-unit descriptors, A rows x B columns; modified in place)
    whose best column passes the ratio test on distances (squared distance = 2 - 2 cosine)."""
    if sims.shape[0] == 0 or sims.shape[1] < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows = np.arange(sims.shape[0])
    nearest_a = sims.argmax(axis=0) if mutual else None
    # Best and second best per row: two passes of max (several times faster than a partition).
    best = sims.argmax(axis=1)
    s0 = sims[rows, best]
    sims[rows, best] = -np.inf
    s1 = sims.max(axis=1)
    keep = np.maximum(2.0 - 2.0 * s0, 0.0) < ratio * ratio * np.maximum(2.0 - 2.0 * s1, 0.0)
    if mutual:
        keep &= nearest_a[best] == rows
    return rows[keep], best[keep]


def match_descriptors(desc_a: np.ndarray, desc_b: np.ndarray, *, ratio: float = RATIO,
                      mutual: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices (ia, ib) of A's descriptors whose nearest B descriptor passes Lowe's ratio test (rows l2-unit);
    ``mutual`` also requires A's descriptor to be the nearest of its match."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], not {ratio}")
    sims = np.asarray(desc_a, np.float32) @ np.asarray(desc_b, np.float32).T
    return _ratio_test(sims, ratio, mutual)


def _box(points: np.ndarray) -> Box:
    return (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()),
            float(points[:, 1].max()))


def _distinct(points: np.ndarray) -> int:
    """Distinct locations (SIFT gives one keypoint per dominant orientation at the same place)."""
    return len(np.unique(np.rint(points).astype(np.int64), axis=0))


def _plausible_homography(h: np.ndarray, size_b: tuple[int, int]) -> bool:
    h = h / h[2, 2]
    singular = np.linalg.svd(h[:2, :2], compute_uv=False)
    if singular[-1] <= 1e-9 or singular[0] / singular[-1] > MAX_HOMOGRAPHY_CONDITION or np.linalg.det(h[:2, :2]) <= 0:
        return False
    # Perspective terms: the projective denominator stays within a factor 2 over B's extent.
    w, h_ = size_b
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h_, 1], [0, h_, 1]], dtype=np.float64)
    denominators = corners @ h[2]
    return bool(np.all(denominators > 0.5) and np.all(denominators < 2.0))


class Verifier:
    """Verification of many images B against one image A (a query against its candidates): A's descriptors and
    those of its mirror are stacked once, so each B costs one matrix product for both orientations.

    Matching mirrored A against B is the same as matching A against mirrored B; the mirror is folded into the
    transform, which always maps B's own pixels onto A's."""

    def __init__(self, a: LocalFeatures, *, mirror: bool = True, model: str = "similarity", ratio: float = RATIO,
                 mutual: bool = False, min_inliers: int = MIN_INLIERS):
        if model not in ("similarity", "homography"):
            raise ValueError(f"model must be 'similarity' or 'homography', not {model!r}")
        if min_inliers < 3:
            raise ValueError(f"min_inliers must be at least 3, not {min_inliers}")
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], not {ratio}")
        self.a, self.mirror, self.model = a, mirror, model
        self.ratio, self.mutual, self.min_inliers = ratio, mutual, min_inliers
        self.a_mirrored = mirror_features(a) if mirror else None
        parts = [a.descriptors] + ([self.a_mirrored.descriptors] if mirror else [])
        self._stacked = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def verify(self, b: LocalFeatures) -> Verification:
        """B verified against A: the better (verified first, then more inliers) of B as given and mirrored."""
        n = len(self.a)
        sims = self._stacked @ np.asarray(b.descriptors, np.float32).T
        direct = self._estimate(self.a, b, _ratio_test(sims[:n], self.ratio, self.mutual))
        if not self.mirror:
            return direct
        flipped = self._estimate(self.a_mirrored, b, _ratio_test(sims[n:], self.ratio, self.mutual))
        flipped = self._unmirror(flipped)
        return max((direct, flipped), key=lambda r: (r.verified, r.inliers))

    def _unmirror(self, result: Verification) -> Verification:
        """A result estimated against mirrored A, in A's own pixels (the mirror folded into the transform)."""
        width = self.a.image_size[0]
        if result.transform is None:
            return Verification(result.verified, result.inliers, result.matches, True, None, result.model,
                                size_a=result.size_a, size_b=result.size_b, reason=result.reason)
        points_a = result.points_a.copy()
        points_a[:, 0] = (width - 1) - points_a[:, 0]
        return Verification(result.verified, result.inliers, result.matches, True,
                            mirror_matrix(width) @ result.transform, result.model,
                            _box(points_a) if len(points_a) else None, result.box_b, points_a, result.points_b,
                            result.size_a, result.size_b, result.reason)

    def _estimate(self, a: LocalFeatures, b: LocalFeatures, matches: tuple[np.ndarray, np.ndarray]) -> Verification:
        import cv2

        ia, ib = matches
        sizes = {"size_a": a.image_size, "size_b": b.image_size}
        if len(ia) < max(3, self.min_inliers):
            return Verification(False, 0, len(ia), reason="too few matches", **sizes)
        pa = a.points[ia].astype(np.float32)
        pb = b.points[ib].astype(np.float32)
        threshold = REPROJ_PX / max(a.scale, 1e-6)
        affine, mask = cv2.estimateAffinePartial2D(pb, pa, method=cv2.RANSAC, ransacReprojThreshold=threshold,
                                                   maxIters=RANSAC_ITERS, confidence=RANSAC_CONFIDENCE,
                                                   refineIters=10)
        if affine is None or mask is None:
            return Verification(False, 0, len(ia), reason="no consistent transform", **sizes)
        transform = np.vstack([affine, [0.0, 0.0, 1.0]])
        inlier = mask.ravel().astype(bool)
        used = "similarity"
        if self.model == "homography" and inlier.sum() >= 8:
            homography, hmask = cv2.findHomography(pb, pa, cv2.RANSAC, threshold, maxIters=RANSAC_ITERS,
                                                   confidence=RANSAC_CONFIDENCE)
            if (homography is not None and hmask is not None and hmask.sum() >= inlier.sum()
                    and _plausible_homography(homography, b.image_size)):
                transform, inlier, used = homography / homography[2, 2], hmask.ravel().astype(bool), "homography"
        in_a, in_b = pa[inlier], pb[inlier]
        count = min(_distinct(in_a), _distinct(in_b)) if len(in_a) else 0
        result = dict(inliers=count, matches=len(ia), transform=transform, model=used, points_a=in_a,
                      points_b=in_b, box_a=_box(in_a) if len(in_a) else None,
                      box_b=_box(in_b) if len(in_b) else None, **sizes)
        if count < self.min_inliers:
            return Verification(False, reason="too few inliers", **result)
        # B's scale onto A, relative to the ratio of the images' sizes (a detail stored small scales up).
        scale = float(np.sqrt(abs(np.linalg.det(transform[:2, :2]))))
        size_ratio = max(a.image_size) / max(max(b.image_size), 1)
        if not 1.0 / MAX_SCALE_RATIO <= scale / size_ratio <= MAX_SCALE_RATIO:
            return Verification(False, reason=f"implausible scale {scale:.3g}", **result)
        spread_a = max(in_a.max(0) - in_a.min(0)) / min(a.image_size)
        spread_b = max(in_b.max(0) - in_b.min(0)) / min(b.image_size)
        if min(spread_a, spread_b) < MIN_SPREAD:
            return Verification(False, reason="inliers in one spot", **result)
        return Verification(True, **result)


def verify(a: LocalFeatures, b: LocalFeatures, *, mirror: bool = True, model: str = "similarity",
           ratio: float = RATIO, mutual: bool = False, min_inliers: int = MIN_INLIERS) -> Verification:
    """Verify image B against image A: match, estimate the transform mapping B onto A, and (``mirror``) also
    try the pair mirrored, keeping the better result (verified first, then more inliers).

    ``model``: ``"similarity"`` (scale, rotation, translation; the default, robust for copies and details) or
    ``"homography"`` (a similarity refined to a homography when that keeps at least as many inliers and stays
    plausible: photos of a painting on a wall). Many B against one A: use ``Verifier(a).verify(b)``."""
    return Verifier(a, mirror=mirror, model=model, ratio=ratio, mutual=mutual, min_inliers=min_inliers).verify(b)
