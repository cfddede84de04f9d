"""Search by image, for scripts, the CLI and the UI: one function, ``search(...)``.

The models and the index are loaded once per process (``encode_variants`` and ``open_index`` cache them); a
query is encoded with the weights its variant's row records (VGG16 or an ONNX backbone such as SSCD).
Queries run inside Qdrant with payload filters; results are joined with SQL for their metadata.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vislink.errors import ConfigError, NotFound
from vislink.search.filters import build_filter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    rank: int
    score: float
    image_id: int
    source_ref: str | None
    artist: str | None
    title: str | None
    date_text: str | None
    file_path: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    # Set by geometric re-ranking (``verify=True``) for the results it checked, None otherwise.
    verified: bool | None = None
    inliers: int | None = None
    mirrored: bool | None = None
    # Set by detail search (``region`` / ``regions="auto"`` on a -regions variant, ``vislink.search.detail``):
    # the result's best region [x, y, w, h] in its pixels, and the query region that found it.
    box: list[int] | None = None
    query_box: list[int] | None = None
    query_region: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": self.score, "image_id": self.image_id, "source_ref": self.source_ref,
                "artist": self.artist, "title": self.title, "date_text": self.date_text,
                "file_path": self.file_path, "payload": self.payload, "verified": self.verified,
                "inliers": self.inliers, "mirrored": self.mirrored, "box": self.box, "query_box": self.query_box,
                "query_region": self.query_region}


def _to_pil(image: Any):
    from PIL import Image as PILImage

    from vislink.encoder.images import REDUCED_SIDE, open_rgb

    if isinstance(image, PILImage.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    if isinstance(image, (bytes, bytearray)):
        return open_rgb(bytes(image), min_side=REDUCED_SIDE)  # a big query decoded reduced, as ingest does
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise NotFound(f"query image {path}: no such file")
        return open_rgb(path, min_side=REDUCED_SIDE)
    if isinstance(image, io.IOBase):
        return open_rgb(image, min_side=REDUCED_SIDE)
    raise ConfigError(f"cannot search with a {type(image).__name__}: give a PIL image, a path or bytes")


def _encode(variant, images: list, *, mirrored: bool = False) -> np.ndarray:
    """The query images' descriptors for ``variant`` (a ``DescriptorVariant`` row), computed with the weights
    its row records; ``mirrored`` appends the descriptors of their left-right mirrors, computed in the same batch
    (``vislink.search.encoding``: query side and precision from VISLINK_QUERY_SIDE / VISLINK_QUERY_PRECISION)."""
    from vislink.config import get_settings
    from vislink.search.encoding import encode_query

    pca = None
    if variant.pca_path:
        from vislink.encoder.pca import load_pca

        pca = {variant.name: load_pca(variant.pca_path)}
    return encode_query(variant.name, images, weights_name=variant.weights_name, pca=pca, mirrored=mirrored,
                        side=get_settings().query_side)


def search(image: Any = None, *, image_id: int | None = None, collection: str, variant: str | None = None,
           limit: int = 20, offset: int = 0, filters: Mapping[str, Any] | None = None, mirrored: bool = False,
           positive: Sequence[Any] = (), negative: Sequence[Any] = (), exact: bool = False, verify: bool = False,
           verify_top: int | None = None, region: Sequence[float] | None = None,
           regions: str | None = None) -> list[SearchResult]:
    """The images of ``collection`` nearest to a query, best first (cosine similarity on ``variant``,
    default: the collection's first variant).

    The query is ``image`` (a PIL image, a path or bytes; a crop is just an image) or a stored image by
    ``image_id`` (never returned itself). ``mirrored`` also searches with the horizontal mirror and keeps
    each image's best similarity. ``positive``/``negative`` (image ids or PIL images) use the index's
    recommendation (average-vector strategy), the query counting as one more positive example.
    ``filters``: see ``build_filter``.

    ``verify``: geometric re-ranking: the first ``verify_top`` results (default
    ``vislink.local.rerank.DEFAULT_VERIFY_TOP``) are verified against the query image with local features
    (mirrored too) and re-ordered, verified first by inlier count, then the others in their order; results
    carry ``verified`` and ``inliers``. Needs a query image or ``image_id`` (examples alone cannot be verified).

    ``region=(x, y, w, h)`` (the query's pixels) / ``regions="auto"``: detail search (``vislink.search.detail``)
    against the regions a ``-regions`` variant stores (default variant: the collection's first -regions one);
    results carry ``box`` (their best region) and ``query_box`` / ``query_region``. ``region`` with ``verify``
    verifies the crop against the top results; a verified one's ``box`` is then its inliers' box."""
    from vislink.index import open_index
    from vislink.store import get_collection, get_variant, session_scope

    if limit < 1:
        raise ConfigError(f"limit must be at least 1, not {limit}")
    if image is None and image_id is None and not positive:
        raise ConfigError("search needs a query: an image, an image id, or positive examples")
    if (region is not None or regions is not None) and (positive or negative or mirrored):
        raise ConfigError("region search takes one query (an image or an image id): not with mirrored, "
                          "or positive / negative examples yet")
    if verify:
        return _verified_search(image, image_id=image_id, collection=collection, variant=variant, limit=limit,
                                offset=offset, filters=filters, mirrored=mirrored, positive=positive,
                                negative=negative, exact=exact, verify_top=verify_top, region=region,
                                regions=regions)
    flt = build_filter(filters)
    with session_scope() as session:
        coll = get_collection(session, collection)
        var = get_variant(session, coll, variant if variant or region is None and regions is None
                          else _regions_variant(session, coll))
        session.expunge(var)
    index = open_index()
    if region is not None or regions is not None:
        return _detail_search(index, var, image, image_id, region, regions, collection, limit, offset, flt, exact)
    if var.layer == "bow":  # a bag of visual words (sift-bow): sparse vectors
        return _search_bow(index, var, image, image_id, collection, limit, offset, flt, mirrored, positive, negative)
    excluded: set[int] = set()
    query_vectors: list[np.ndarray] = []
    if image is not None:
        query_vectors.extend(_encode(var, [_to_pil(image)], mirrored=mirrored))
    if image_id is not None:
        excluded.add(int(image_id))
        found = index.retrieve(var.qdrant_collection, [int(image_id)], with_vectors=True)
        if not found:
            raise NotFound(f"image {image_id} has no {var.name} descriptor in collection {collection!r}")
        query_vectors.append(found[0][2])
        if mirrored:
            from PIL import ImageOps

            # Only the mirror is encoded: the stored vector is the unmirrored view.
            query_vectors.extend(_encode(var, [ImageOps.mirror(_to_pil(_stored_file(image_id)))]))
    want = limit + offset + len(excluded)
    if positive or negative:
        pos = [*query_vectors, *(_example(var, x) for x in positive)]
        neg = [_example(var, x) for x in negative]
        excluded.update(int(x) for x in (*positive, *negative) if isinstance(x, (int, np.integer)))
        hits = index.recommend(var.qdrant_collection, positive=pos, negative=neg, limit=want + len(excluded),
                               flt=flt, exact=exact)
    elif len(query_vectors) > 1:
        hits = index.query_multi(var.qdrant_collection, np.stack(query_vectors), limit=want, flt=flt, exact=exact)
    else:
        hits = index.query(var.qdrant_collection, query_vectors[0], limit=want, flt=flt, exact=exact)
    hits = [h for h in hits if h.id not in excluded][offset:offset + limit]
    return _results(hits, offset)


def _regions_variant(session, coll) -> str | None:
    """The collection's first -regions variant (None: its first variant, whatever it is)."""
    from vislink.encoder.variants import parse_variant
    from vislink.store import collection_variants

    return next((v.name for v in collection_variants(session, coll) if parse_variant(v.name).regions), None)


def _detail_search(index, var, image, image_id, region, regions, collection, limit, offset, flt,
                   exact) -> list[SearchResult]:
    from dataclasses import replace

    from vislink.encoder.variants import parse_variant
    from vislink.search import detail

    pil = _to_pil(image) if image is not None else None
    if not parse_variant(var.name).regions:
        if regions is not None:
            raise ConfigError(f"regions='auto' needs a variant that stores regions, and {var.name} does not: add one "
                              f"with `vislink collection add-variant {collection} {var.name}-regions` (VGG16 pool5)")
        # A region on a variant without regions: the crop against whole images, as before.
        source = pil if pil is not None else detail.open_stored(_stored_file(image_id))
        piece = detail.crop(source, region, "the query image" if pil is not None else f"image {image_id}")
        vectors = _encode(var, [piece])
        excluded = {int(image_id)} if image_id is not None else set()
        hits = index.query(var.qdrant_collection, vectors[0], limit=limit + offset + len(excluded), flt=flt,
                           exact=exact)
        return _results([h for h in hits if h.id not in excluded][offset:offset + limit], offset)
    queries, query_boxes = detail.region_queries(var, pil, image_id, region, regions, index, _stored_file)
    excluded = {int(image_id)} if image_id is not None else set()
    want = limit + offset + len(excluded)
    hits, matched = detail.merge_region_hits(index.query_regions(var.qdrant_collection, queries, limit=want,
                                                                 flt=flt), want)
    hits = [h for h in hits if h.id not in excluded][offset:offset + limit]
    boxes = detail.best_boxes(index, var, hits, queries, matched)
    return [replace(r, box=boxes.get(r.image_id), query_region=matched[r.image_id],
                    query_box=query_boxes[matched[r.image_id]] if query_boxes else None)
            for r in _results(hits, offset)]


def _search_bow(index, var, image, image_id, collection, limit, offset, flt, mirrored, positive,
                negative) -> list[SearchResult]:
    from PIL import ImageOps

    from vislink.search import bow

    if positive or negative:
        raise ConfigError(f"{var.name} is a bag of visual words: search it with one image (positive and negative "
                          "examples need a dense variant)")
    images = [_to_pil(image)] if image is not None else []
    if mirrored:
        images.extend([ImageOps.mirror(im) for im in images])
    vectors = []
    if image_id is not None:
        vectors.append(bow.stored_vector(index, var, image_id, collection))
        if mirrored:
            images.append(ImageOps.mirror(_to_pil(_stored_file(image_id))))
    vectors.extend(bow.query_vectors(var, images))
    excluded = {int(image_id)} if image_id is not None else set()
    hits = bow.nearest(index, var, vectors, limit=limit + offset + len(excluded), flt=flt)
    return _results([h for h in hits if h.id not in excluded][offset:offset + limit], offset)


def _verified_search(image, *, image_id, limit: int, offset: int, verify_top: int | None, region=None,
                     regions=None, **kwargs) -> list[SearchResult]:
    """``search`` of any variant, then the first ``verify_top`` results re-ranked by geometric verification
    (``vislink.search.verify``); paging applies to the re-ranked list. With ``region`` the query is its crop
    (detail search) and a verified result's ``box`` becomes the crop's frame mapped into it (in its stored
    pixels). With ``regions="auto"`` the whole query is verified (its local features find the shared part
    wherever it lies) and a verified result's ``box`` becomes the box of its inliers."""
    from dataclasses import replace

    from vislink.local.rerank import DEFAULT_VERIFY_TOP, check_top
    from vislink.search.verify import query_features, rerank_results

    top = check_top(DEFAULT_VERIFY_TOP if verify_top is None else verify_top, what="--verify-top")
    if image is None and image_id is None:
        raise ConfigError("verify needs a query image or an image id to verify the results against")
    pil = _to_pil(image) if image is not None else None
    if offset >= top:  # re-ranking only permutes the first ``top``: a later page is the plain search's
        return search(pil, image_id=image_id, limit=limit, offset=offset, region=region, regions=regions, **kwargs)
    found = search(pil, image_id=image_id, limit=max(limit + offset, top), offset=0, region=region,
                   regions=regions, **kwargs)
    if region is not None:  # the query crop's own features, verified against each result's stored ones
        from vislink.search import detail

        source = pil if pil is not None else detail.open_stored(_stored_file(image_id))
        piece = detail.crop(source, region, "the query image" if pil is not None else f"image {image_id}")
        query = query_features(piece)
    else:
        query = query_features(pil, image_id=image_id)
    ranked, checks = rerank_results(found, query, top)
    out = []
    for rank, result in enumerate(ranked[offset:offset + limit], start=offset + 1):
        check = checks.get(result.image_id)
        extra = {} if check is None else {"verified": check.verified, "inliers": check.inliers,
                                          "mirrored": check.mirrored}
        if region is not None and check is not None and check.verified:
            box = _matched_box(check, piece.size)
            if box is not None:
                extra["box"] = box
        elif regions is not None and check is not None and check.verified and check.box_b is not None:
            extra["box"] = _xywh(check.box_b)
        out.append(replace(result, rank=rank, **extra))
    return out


def _matched_box(check, crop_size: tuple[int, int]) -> list[int] | None:
    """Where the query crop lies in a verified result, [x, y, w, h] in its stored pixels: the crop's frame mapped
    through the verified transform (result -> crop, inverted), clipped to the result. The inliers' own box is
    smaller than the detail (keypoints are not at its edges): it is the fallback."""
    box = None
    if check.transform is not None:
        try:
            inverse = np.linalg.inv(np.asarray(check.transform, dtype=np.float64))
        except np.linalg.LinAlgError:
            inverse = None
        if inverse is not None:
            w, h = crop_size
            corners = inverse @ np.array([[0, w, w, 0], [0, 0, h, h], [1, 1, 1, 1]], dtype=np.float64)
            if np.all(np.abs(corners[2]) > 1e-9):
                xs, ys = corners[0] / corners[2], corners[1] / corners[2]
                bw, bh = check.size_b if check.size_b and check.size_b[0] > 0 else (np.inf, np.inf)
                box = (max(0.0, xs.min()), max(0.0, ys.min()), min(float(bw), xs.max()), min(float(bh), ys.max()))
    if (box is None or box[2] <= box[0] or box[3] <= box[1]) and check.box_b is not None:
        box = check.box_b
    return None if box is None else _xywh(box)


def _xywh(box) -> list[int]:
    """(x0, y0, x1, y1) corners as the [x, y, w, h] results carry."""
    x0, y0, x1, y1 = box
    return [int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0))]


def _example(var, x):
    # Ids are passed through (the index looks up their stored vectors); images are encoded here.
    if isinstance(x, (int, np.integer)):
        return int(x)
    return _encode(var, [_to_pil(x)])[0]


def _stored_file(image_id: int) -> str:
    from vislink.store import Image, session_scope

    with session_scope() as session:
        img = session.get(Image, int(image_id))
        if img is None or not img.file_path:
            raise NotFound(f"image {image_id} has no stored file to mirror")
        return img.file_path


def _results(hits, offset: int) -> list[SearchResult]:
    from sqlalchemy import select

    from vislink.store import Image, session_scope

    with session_scope() as session:
        rows = {img.id: img for img in session.scalars(select(Image).where(Image.id.in_([h.id for h in hits])))}
    out = []
    for i, hit in enumerate(hits):
        img = rows.get(hit.id)
        out.append(SearchResult(
            rank=offset + i + 1, score=float(hit.score), image_id=int(hit.id),
            source_ref=img.source_ref if img else None, artist=img.artist if img else hit.payload.get("artist"),
            title=img.title if img else hit.payload.get("title"), date_text=img.date_text if img else None,
            file_path=img.file_path if img else None,
            payload={k: v for k, v in hit.payload.items() if k != "region_boxes"}))  # boxes: detail search's
    return out
