"""Detail search with geometric verification (issue #15 item 4, docs/detail.md): the query crop's local features
verified against the top results' stored ones; a verified result's box is its inliers' box. Reuses the module
fixture of tests/test_detail_search.py (real paintings, caffe VGG16 weights, under the ``shared`` marker)."""

from __future__ import annotations

import pytest

from test_detail_search import _ids_by_name, detail_collection  # noqa: F401  (the module fixture)
from vislink.encoder.regions import box_iou


@pytest.mark.shared
def test_pasted_detail_is_verified_and_its_box_is_precise(detail_collection):  # noqa: F811
    from vislink.search import search

    ids = _ids_by_name()
    query, crop_box, place = detail_collection["root"] / "a.jpg", detail_collection["crop_box"], detail_collection["place"]
    plain = search(query, collection="d", region=crop_box, limit=5)
    results = search(query, collection="d", region=crop_box, verify=True, verify_top=5, limit=5)
    top = results[0]
    assert top.image_id == ids["composite.jpg"] and top.verified and top.inliers >= 8, \
        [(r.source_ref, r.verified, r.inliers) for r in results]
    before = box_iou(plain[0].box, place)
    assert box_iou(top.box, place) >= max(0.5, before - 1e-9), (top.box, plain[0].box, place)
    assert top.query_box == list(crop_box)
    assert sorted(r.image_id for r in results) == sorted(r.image_id for r in plain)  # the same five, re-ordered
    for r in results:  # an unverified result keeps the regions' box
        if not r.verified:
            assert r.box == next(p.box for p in plain if p.image_id == r.image_id)
