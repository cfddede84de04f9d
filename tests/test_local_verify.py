"""Geometric verification (vislink.local.matching): a rotated, rescaled crop of a real photo is verified with the
transform it was made with; its mirror too; an unrelated photo is not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageOps

from vislink.local import extract
from vislink.local.matching import MIN_INLIERS, Verifier, match_descriptors, mirror_features, verify


def _sample(name: str) -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name))


@pytest.fixture(scope="module")
def china() -> Image.Image:
    return _sample("china.jpg")  # 640 x 427


@pytest.fixture(scope="module")
def china_features(china):
    return extract(china)


def warped_detail(image: Image.Image, *, scale: float, angle_deg: float, centre: tuple[float, float],
                  size: tuple[int, int]) -> tuple[Image.Image, np.ndarray]:
    """A detail of ``image`` around ``centre``, rotated and resized: B, and the 3x3 matrix that maps B's pixels onto
    the image's (the ground truth). Made with PIL's affine transform, which takes exactly that B -> A matrix."""
    w, h = size
    c, s = math.cos(math.radians(angle_deg)) / scale, math.sin(math.radians(angle_deg)) / scale
    linear = np.array([[c, -s], [s, c]])
    offset = np.asarray(centre) - linear @ np.array([w / 2, h / 2])
    truth = np.array([[*linear[0], offset[0]], [*linear[1], offset[1]], [0, 0, 1]])
    # PIL samples pixel centres at +0.5; the truth is in OpenCV's convention (centres at integers).
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    pil = np.linalg.inv(shift) @ truth @ shift
    detail = image.transform((w, h), Image.Transform.AFFINE, tuple(pil[:2].ravel()), Image.Resampling.BICUBIC)
    return detail, truth


def _corners(size):
    w, h = size
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)


def _apply(m, pts):
    out = np.c_[pts, np.ones(len(pts))] @ m.T
    return out[:, :2] / out[:, 2:]


def test_rotated_rescaled_crop_is_verified_with_its_transform(china, china_features):
    detail, truth = warped_detail(china, scale=1.6, angle_deg=25, centre=(360, 220), size=(300, 260))
    result = verify(china_features, extract(detail))
    assert result.verified, result.summary()
    assert not result.mirrored
    assert result.inliers >= 3 * MIN_INLIERS
    error = np.abs(result.outline_b_in_a() - _apply(truth, _corners(detail.size))).max()
    assert error < 3.0, (error, result.transform, truth)
    assert result.scale == pytest.approx(1 / 1.6, rel=0.02)
    assert result.rotation_deg == pytest.approx(25, abs=1)  # the truth's angle (y down: clockwise on screen)
    x0, y0, x1, y1 = result.box_a
    assert 150 < x0 < x1 < 570 and 50 < y0 < y1 < 400  # the inliers lie inside the detail's region


def test_mirrored_detail_is_verified_mirrored(china, china_features):
    detail, truth = warped_detail(china, scale=1.2, angle_deg=-10, centre=(300, 200), size=(320, 280))
    mirrored = ImageOps.mirror(detail)
    flip = np.array([[-1, 0, detail.width - 1], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    result = verify(china_features, extract(mirrored))
    assert result.verified and result.mirrored, result.summary()
    error = np.abs(result.outline_b_in_a() - _apply(truth @ flip, _corners(mirrored.size))).max()
    assert error < 3.0, error
    # Without the mirror only the pagoda's own left-right symmetry matches: far fewer points.
    assert verify(china_features, extract(mirrored), mirror=False).inliers < result.inliers / 3


def test_unrelated_pair_is_not_verified(china_features):
    result = verify(china_features, extract(_sample("flower.jpg")))
    assert not result.verified
    assert result.reason
    assert "not aligned" in result.summary()


def test_mirror_features_match_the_mirror_extracted(china):
    small = china.resize((320, 214))
    direct, of_mirror = extract(small), extract(ImageOps.mirror(small))
    ia, ib = match_descriptors(mirror_features(direct).descriptors, of_mirror.descriptors, mutual=True)
    moved = np.abs(mirror_features(direct).points[ia] - of_mirror.points[ib]).max(axis=1)
    assert len(ia) > 0.5 * len(direct)
    assert np.median(moved) < 1.0


def test_verifier_reuses_one_query(china, china_features):
    query = china_features
    detail, _ = warped_detail(china, scale=1.0, angle_deg=0, centre=(320, 213), size=(280, 200))
    verifier = Verifier(query)
    results = [verifier.verify(extract(x)) for x in (detail, _sample("flower.jpg"))]
    assert [r.verified for r in results] == [True, False]
    with pytest.raises(ValueError, match="model"):
        Verifier(query, model="affine")


def test_rerank_moves_a_verified_copy_above_an_unverified_look_alike(china, china_features):
    from vislink.local.rerank import parse_reranked, rerank

    copy, _ = warped_detail(china, scale=0.8, angle_deg=8, centre=(320, 213), size=(400, 300))
    look_alike = _sample("flower.jpg")  # first in the original order, as a descriptor's false positive would be
    candidates = [extract(look_alike), None, extract(copy), extract(china.rotate(180))]
    result = rerank(china_features, candidates, top=3)
    assert result.order == [2, 0, 1, 3]  # the copy first; the rest in order; the 4th beyond top keeps its place
    assert result.verifications[2].verified and not result.verifications[0].verified
    assert result.verifications[1] is None and result.verifications[3] is None
    assert parse_reranked("vgg16-pool5-sum+verify") == ("vgg16-pool5-sum", 50)
    assert parse_reranked("sift-bow+verify200") == ("sift-bow", 200)
    assert parse_reranked("vgg16-pool5-sum") == ("vgg16-pool5-sum", None)
    from vislink.errors import NotFound

    with pytest.raises(NotFound, match="verifyK"):
        parse_reranked("vgg16-pool5-sum+ransac")
    with pytest.raises(NotFound, match="1..1000"):
        parse_reranked("vgg16-pool5-sum+verify0")


def test_homography_model_fits_a_perspective_view(china, china_features):
    import cv2

    truth = np.array([[0.9, 0.06, 40.0], [0.02, 0.85, 30.0], [2e-4, 1e-4, 1.0]])  # B's pixels -> china's
    size = (480, 340)
    view = cv2.warpPerspective(np.asarray(china), truth, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    b = extract(Image.fromarray(view))
    result = verify(china_features, b, model="homography")
    assert result.verified and result.model == "homography", result.summary()
    error = np.abs(result.outline_b_in_a() - _apply(truth, _corners(size))).max()
    similarity = verify(china_features, b)
    assert error < 3.0 < np.abs(similarity.outline_b_in_a() - _apply(truth, _corners(size))).max()
