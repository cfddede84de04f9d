"""Search on a bag-of-words variant (``sift-bow``): the query's words counted with the collection's vocabulary (or
a stored image's sparse vector read back from the index), searched among the sparse vectors (dot product of
l2-normalised tf-idf vectors, i.e. their cosine). ``query.search`` calls it for such variants."""

from __future__ import annotations

from typing import Any, Sequence

from vislink.errors import NotFound


def query_vectors(variant, images: Sequence[Any]) -> list:
    """The tf-idf ``SparseVector`` of each PIL image for ``variant`` (a ``DescriptorVariant`` row of a
    ``sift-bow`` variant: its ``pca_path`` is its vocabulary file)."""
    from vislink.encoder.dispatch import encode_bow_images

    if not variant.pca_path:
        raise NotFound(f"variant {variant.name} has no vocabulary recorded: run `vislink collection add-variant "
                       f"COLLECTION {variant.name}`")
    return encode_bow_images(images, variant.name, variant.pca_path)


def stored_vector(index, variant, image_id: int, collection: str):
    """The stored bag of words of an image of the collection."""
    found = index.retrieve_sparse(variant.qdrant_collection, [int(image_id)])
    if int(image_id) not in found:
        raise NotFound(f"image {image_id} has no {variant.name} descriptor in collection {collection!r}")
    return found[int(image_id)]


def nearest(index, variant, vectors: Sequence, *, limit: int, flt=None) -> list:
    """Hits of several query vectors merged (each image keeps its best score), best first; empty bags (no
    keypoints) find nothing."""
    best: dict[int, Any] = {}
    for vector in vectors:
        if not vector.indices:
            continue
        for hit in index.query_sparse(variant.qdrant_collection, vector, limit=limit, flt=flt):
            if hit.id not in best or hit.score > best[hit.id].score:
                best[hit.id] = hit
    return sorted(best.values(), key=lambda h: (-h.score, h.id))[:limit]
