"""Geometric re-ranking of search results (``search(..., verify=True)``): the query's local features against
those of the top K hits' stored files, read from the data folder's feature cache (extracted once per image,
then about 1 ms to load)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from vislink.local import LocalFeatures, extract, feature_cache
from vislink.local.matching import Verification
from vislink.local.rerank import rerank

log = logging.getLogger(__name__)


def stored_features(image_ids: Sequence[int], *, settings=None,
                    db_url: str | None = None) -> dict[int, LocalFeatures | None]:
    """Local features of stored images by id (None for an image without a readable stored file, logged)."""
    from sqlalchemy import select

    from vislink.encoder.images import open_rgb
    from vislink.errors import BadImage
    from vislink.store import Image, session_scope

    cache = feature_cache(settings)
    with session_scope(db_url) as session:
        rows = {i: (sha, path) for i, sha, path in session.execute(
            select(Image.id, Image.sha256, Image.file_path).where(Image.id.in_([int(x) for x in image_ids])))}
    out: dict[int, LocalFeatures | None] = {}
    for image_id in image_ids:
        sha, path = rows.get(int(image_id), (None, None))
        if not sha or not path:
            log.warning("image %s has no stored file: not verified", image_id)
            out[int(image_id)] = None
            continue
        try:
            out[int(image_id)] = cache.features_for(sha, lambda p=path: open_rgb(Path(p)))
        except (BadImage, OSError) as exc:
            log.warning("image %s (%s): not verified: %s", image_id, path, exc)
            out[int(image_id)] = None
    return out


def query_features(image=None, *, image_id: int | None = None) -> LocalFeatures:
    """The query's local features: of a PIL image (extracted now), or of a stored image (cached)."""
    from vislink.errors import NotFound

    if image is not None:
        return extract(image)
    found = stored_features([int(image_id)])[int(image_id)]
    if found is None:
        raise NotFound(f"image {image_id} has no readable stored file: it cannot be verified against its results")
    return found


def rerank_results(results: list, query: LocalFeatures, top: int) -> tuple[list, dict[int, Verification]]:
    """``results`` (``SearchResult``s, any variant) re-ordered by verification of the first ``top`` against
    ``query``, and the verification of each checked image id."""
    started = time.perf_counter()
    head = [int(r.image_id) for r in results[:top]]
    features = stored_features(head)
    outcome = rerank(query, [features[i] for i in head] + [None] * (len(results) - len(head)), top=top)
    checks = {int(results[i].image_id): v for i, v in enumerate(outcome.verifications) if v is not None}
    log.info("verified %d candidates in %.0f ms (%d verified)", len(checks), 1000 * (time.perf_counter() - started),
             sum(v.verified for v in checks.values()))
    return [results[i] for i in outcome.order], checks
