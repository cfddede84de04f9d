"""The transformations benchmark: how robust a descriptor variant is to link-like transformations (the
copy-detection protocol).

Each image of a collection or folder (or a seeded sample of them) is transformed by each named transformation
(``vislink.augment``: detail, mirror, grayscale, engraving, colour, resize, photo) at one strength; every
transformed image is a query searched among the *untransformed* images, its own original the one target.
Per variant: top-1 (the original ranked first), R@n and mAP over all queries, and the same per transformation,
stored as one evaluation run (``EvaluationRun.benchmark`` = ``transforms:<folder or collection>``; metrics
``R@5``, ``mAP``, ``top1`` and, nested per transformation, ``{"mirror": {"top1", "R@5", "mAP", ...}}``).

- A folder (every image file under it) or a ``file,group`` manifest: the gallery is encoded like ``benchmark
  groups`` (vectors cached per weights, variant and file), searched exactly in the memory index backend.
- A collection: the gallery is the variant's own Qdrant collection (exact search), and the queries are
  encoded with the weights (and PCA) its ``DescriptorVariant`` row records, from the stored files.

The transformation of an image is seeded by (seed, file sha256, transformation), so base and fine-tuned
variants, and two runs, see exactly the same queries. Transformed-query vectors are cached too.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vislink.errors import ConfigError, NotFound, VislinkError
from vislink.evaluation.gallery import Gallery, GalleryItem, VectorCache, encode_gallery
from vislink.evaluation.metrics import summarize
from vislink.evaluation.ranking import EvalQuery, QueryResult, rank_targets
from vislink.evaluation.records import RunReport, code_version
from vislink.hashing import sha256_file
from vislink.store.models import utcnow

log = logging.getLogger(__name__)

CUTOFFS = (1, 5, 10, 20)


@dataclass(frozen=True)
class Source:
    """One image to transform: its file, sha256, its point id in the gallery and a name for reports."""

    path: Path
    sha256: str
    point_id: int
    ref: str
    image_id: int | None = None


def folder_gallery(root: Path) -> Gallery:
    """Every image file under ``root`` (recursively, sorted; hidden files skipped), or the files of a
    ``file,group`` manifest when ``root`` is a CSV file."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        from vislink.evaluation.groups import read_manifest

        gallery = read_manifest(root)
        return Gallery(f"transforms:{root.parent.name}/{root.name}", gallery.items, gallery.notes)
    if not root.is_dir():
        raise NotFound(f"{root}: neither a folder of images nor a manifest CSV")
    from vislink.ingest.sources.folder import folder_items

    items = [GalleryItem(ref=item.source_ref, path=item.local_path, group=None) for item in folder_items(root)]
    if not items:
        raise ConfigError(f"{root}: no image files")
    return Gallery(f"transforms:{root.name}", items, [f"{len(items)} images under {root}"])


def query_seed(seed: int, file_sha: str, transform: str) -> int:
    digest = hashlib.sha256(f"{seed}:{file_sha}:{transform}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def choose(n: int, sample: int | None, seed: int) -> list[int]:
    """A seeded sample of ``sample`` positions among ``n`` (all of them when ``sample`` is None or larger)."""
    if sample is None or sample >= n:
        return list(range(n))
    if sample < 1:
        raise ConfigError(f"--sample must be at least 1, not {sample}")
    return sorted(np.random.default_rng(seed).choice(n, size=sample, replace=False).tolist())


def encode_queries(sources: Sequence[Source], transforms: Sequence[str], variants: Sequence[str], *,
                   weights=None, pca=None, strength: float = 0.5, seed: int = 0, cache: bool = True,
                   progress: bool = True, chunk: int = 4) -> dict[str, np.ndarray]:
    """{variant: (len(sources) * len(transforms), dim)}, rows ordered source by source, transformation by
    transformation, each transformed image encoded with the variant's weights (cached per weights sha256)."""
    from tqdm.auto import tqdm

    from vislink.augment import transform
    from vislink.config import get_settings
    from vislink.encoder.dispatch import VariantSet, describe_variant_weights
    from vislink.encoder.images import open_rgb

    settings = get_settings()
    infos = describe_variant_weights(list(variants), weights, settings)
    caches = {v: VectorCache(settings.cache_dir if cache and infos[v].installed else None, infos[v].sha256,
                             f"{v}.transforms") for v in variants}
    keys = [f"{s.sha256}|{t}|{strength:.3f}|{query_seed(seed, s.sha256, t)}" for s in sources for t in transforms]
    todo = [k for k in range(len(sources)) if any(keys[k * len(transforms) + j] not in caches[v].vectors
                                                  for v in variants for j in range(len(transforms)))]
    if todo:
        variant_set = VariantSet(list(variants), weights=weights, pca=pca, settings=settings)
        infos = variant_set.weights
        caches = {v: VectorCache(settings.cache_dir if cache else None, infos[v].sha256, f"{v}.transforms")
                  for v in variants}
        bar = tqdm(total=len(todo) * len(transforms), disable=not progress, desc="transformed queries", unit="q")
        for start in range(0, len(todo), chunk):
            images, rows = [], []
            for k in todo[start:start + chunk]:
                original = open_rgb(sources[k].path)
                for j, name in enumerate(transforms):
                    images.append(transform(original, name, strength, query_seed(seed, sources[k].sha256, name)))
                    rows.append(k * len(transforms) + j)
            vectors = variant_set.encode_images(images)
            for v in variants:
                for r, row in zip(rows, vectors[v]):
                    caches[v].vectors[keys[r]] = np.asarray(row, dtype=np.float32)
            bar.update(len(images))
        bar.close()
        for c in caches.values():
            c.save()
    return {v: np.stack([caches[v].vectors[k] for k in keys]) for v in variants}


def transform_metrics(results: Sequence[QueryResult], transforms: Sequence[str], cutoffs: Sequence[int]) -> dict:
    """Metrics over every query (R@n, recall@n, mAP, top1) and, nested per transformation, R@n, mAP and top1."""
    def block(rs):
        metrics = summarize([r.ranks for r in rs], cutoffs)
        metrics["top1"] = float(np.mean([r.ranks[0] == 1 for r in rs]))
        return metrics

    out = block(results)
    n = len(transforms)
    for j, name in enumerate(transforms):
        part = block(results[j::n])
        out[name] = {k: v for k, v in part.items() if not k.startswith("recall@")}
    return out


def _queries(sources: Sequence[Source], transforms: Sequence[str]) -> list[EvalQuery]:
    return [EvalQuery(query_id=-(1 + k * len(transforms) + j), targets=(s.point_id,), ref=f"{name}:{s.ref}",
                      image_id=s.image_id)
            for k, s in enumerate(sources) for j, name in enumerate(transforms)]


def _report(variant, results, transforms, cutoffs, *, n_gallery, dimension, benchmark, weights_name,
            weights_sha, params, started, collection=None) -> RunReport:
    return RunReport(variant=variant, results=list(results), n_gallery=n_gallery, dimension=dimension,
                     collection=collection, benchmark=benchmark, weights_name=weights_name,
                     weights_sha256=weights_sha, cutoffs=tuple(cutoffs), params=params, code_version=code_version(),
                     started_at=started, finished_at=utcnow(),
                     metrics=transform_metrics(results, transforms, cutoffs))


def _check(transforms: Sequence[str] | None, strength: float) -> list[str]:
    from vislink.augment import get_transform, list_transforms

    names = list(transforms) if transforms else list_transforms()
    for name in names:
        get_transform(name)  # NotFound listing the valid ones
    if not 0 <= strength <= 1:
        raise ConfigError(f"--strength must be between 0 and 1, not {strength}")
    return names


def benchmark_gallery(gallery: Gallery, variants: Sequence[str], *, weights: str | None = None,
                      transforms: Sequence[str] | None = None, strength: float = 0.5, sample: int | None = None,
                      seed: int = 0, cutoffs: Sequence[int] = CUTOFFS, cache: bool = True,
                      progress: bool = True) -> list[RunReport]:
    """The benchmark on a folder's or manifest's files (see the module docstring): one report per variant."""
    from vislink.encoder.images import open_rgb
    from vislink.encoder.variants import parse_variant
    from vislink.evaluation.regions import RANKING as REGIONS_RANKING, rank_by_regions
    from vislink.index.base import Point
    from vislink.index.numpy_index import NumpyIndex

    names = _check(transforms, strength)
    started = utcnow()
    encoded = encode_gallery(gallery, variants, weights=weights, cache=cache, progress=progress)
    chosen = [encoded.usable[k] for k in choose(len(encoded.usable), sample, seed)]
    sources = [Source(gallery.items[i].path, sha256_file(gallery.items[i].path), i, gallery.items[i].ref)
               for i in chosen]
    queries = _queries(sources, names)
    vectors = encode_queries(sources, names, list(encoded.vectors), weights=weights, strength=strength, seed=seed,
                             cache=cache, progress=progress)
    from vislink.encoder.dispatch import describe_variant_weights

    infos = describe_variant_weights(list(encoded.vectors), weights)
    reports = []
    for variant, matrix in encoded.vectors.items():
        index = NumpyIndex()
        index.create_collection(variant, matrix.shape[1])
        index.upsert(variant, [Point(i, row) for i, row in zip(encoded.usable, matrix)])
        params = _params(names, strength, sample, seed, len(sources), gallery.name)
        if parse_variant(variant).regions:  # ranked by its regions, as search(regions="auto")
            results = rank_by_regions(variant, [open_rgb(gallery.items[i].path) for i in encoded.usable],
                                      encoded.usable, queries, _query_images(sources, names, strength, seed),
                                      weights=weights)
            params["ranking"] = REGIONS_RANKING
        else:
            results = rank_targets(index, variant, queries, depth=max(cutoffs), vectors=vectors[variant])
        for r in results:
            r.target_refs = [gallery.items[t].ref for t in r.query.targets]
        reports.append(_report(variant, results, names, cutoffs, n_gallery=len(encoded.usable),
                               dimension=int(matrix.shape[1]), benchmark=gallery.name,
                               weights_name=infos[variant].name, weights_sha=infos[variant].sha256,
                               params=params, started=started))
    return reports


def _query_images(sources: Sequence[Source], transforms: Sequence[str], strength: float, seed: int) -> list:
    """The transformed query images, in ``_queries``' order (as ``encode_queries`` makes them)."""
    from vislink.augment import transform
    from vislink.encoder.images import open_rgb

    out = []
    for s in sources:
        original = open_rgb(s.path)
        out.extend(transform(original, name, strength, query_seed(seed, s.sha256, name)) for name in transforms)
    return out


def _params(names, strength, sample, seed, n_sources, source) -> dict:
    return {"transforms": list(names), "strength": strength, "sample": sample, "seed": seed,
            "n_images": n_sources, "source": source, "protocol": "transforms"}


def benchmark_collection(collection: str, variants: Sequence[str] | None = None, *,
                         transforms: Sequence[str] | None = None, strength: float = 0.5, sample: int | None = None,
                         seed: int = 0, cutoffs: Sequence[int] = CUTOFFS, cache: bool = True, progress: bool = True,
                         index=None, store: bool = True, db_url: str | None = None) -> list[RunReport]:
    """The benchmark on a collection's own index (see the module docstring); stored with the collection
    unless ``store=False``."""
    from sqlalchemy import select

    from vislink.config import get_settings
    from vislink.encoder.pca import load_pca
    from vislink.evaluation.records import store_run
    from vislink.index import open_index
    from vislink.store import (Image, ImageDescriptor, ImageStatus, collection_variants, get_collection,
                               get_variant, session_scope)

    names = _check(transforms, strength)
    settings = get_settings()
    db_url = db_url or settings.database_url
    index = index or open_index(settings)
    reports = []
    with session_scope(db_url) as session:
        coll = get_collection(session, collection)
        rows = [get_variant(session, coll, v) for v in variants] if variants else collection_variants(session, coll)
        plans = [(r.id, r.name, r.qdrant_collection, r.weights_name, r.weights_sha256, r.dimension, r.pca_path)
                 for r in rows]
        coll_id = coll.id
    if not plans:
        raise NotFound(f"collection {collection!r} has no descriptor variants yet (ingest images first)")
    for variant_id, name, qname, weights_name, weights_sha, dimension, pca_path in plans:
        started = utcnow()
        with session_scope(db_url) as session:
            found = session.execute(
                select(Image.id, Image.file_path, Image.sha256, Image.source_ref)
                .join(ImageDescriptor, ImageDescriptor.image_id == Image.id)
                .where(Image.collection_id == coll_id, Image.status == ImageStatus.done,
                       ImageDescriptor.variant_id == variant_id).order_by(Image.id)).all()
        usable = [r for r in found if r.file_path and r.sha256 and Path(r.file_path).is_file()]
        if not usable:
            raise VislinkError(f"collection {collection!r}: no stored file encoded for {name}")
        sources = [Source(Path(r.file_path), r.sha256, r.id, r.source_ref, r.id)
                   for r in (usable[k] for k in choose(len(usable), sample, seed))]
        pca = {name: load_pca(pca_path)} if pca_path else None
        vectors = encode_queries(sources, names, [name], weights={name: weights_name}, pca=pca, strength=strength,
                                 seed=seed, cache=cache, progress=progress)[name]
        results = rank_targets(index, qname, _queries(sources, names), depth=max(cutoffs), vectors=vectors)
        report = _report(name, results, names, cutoffs, n_gallery=index.count(qname), dimension=dimension,
                         benchmark=f"transforms:{collection}", weights_name=weights_name, weights_sha=weights_sha,
                         params={**_params(names, strength, sample, seed, len(sources), f"collection {collection}"),
                                 "qdrant_collection": qname}, started=started, collection=collection)
        if store:
            with session_scope(db_url) as session:
                store_run(session, report, collection_id=coll_id, variant_id=variant_id)
        reports.append(report)
    return reports
