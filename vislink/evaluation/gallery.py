"""Benchmarks on a folder of image files with known groups, evaluated in memory.

A ``Gallery`` lists files, each with a group (``None``: a distractor). Every file is encoded with vislink's
own encoder (the same decoding, resizing and pooling as ingest), every grouped file whose group has another
file is a query, the other files of its group its targets, and every file the search space. The ranking goes
through the ``memory`` index backend (the numpy referee of the Qdrant backends) with exact search.

Vectors are cached per (weights sha256, variant, file sha256) under the data folder's cache, so running a
benchmark again (other variants, other distractors) encodes only what is new.

Bag-of-words variants (``sift-bow``) train their vocabulary on the benchmark's own images (its search space, as
PCA variants are fitted), from local features kept in the data folder's feature cache; their sparse vectors are
ranked through the same memory index (``query_sparse``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from vislink.errors import BadImage, VislinkError
from vislink.hashing import sha256_file
from vislink.evaluation.metrics import DEFAULT_CUTOFFS
from vislink.evaluation.ranking import EvalQuery, rank_targets
from vislink.evaluation.records import RunReport, code_version
from vislink.store.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GalleryItem:
    ref: str  # how reports name it: the manifest's file, the WGA path
    path: Path
    group: str | None  # None: a distractor
    query_box: tuple[int, int, int, int] | None = None  # manifest `query_box`: as a query, this region of the file
    target_box: tuple[int, int, int, int] | None = None  # manifest `target_box`: where its group's detail lies in it


@dataclass
class Gallery:
    name: str  # the benchmark's name in stored runs: groups:<manifest>, replica-wga
    items: list[GalleryItem]
    notes: list[str] = field(default_factory=list)  # what was found, skipped, downloaded: printed by the CLI

    def groups(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(self.items):
            if item.group is not None:
                out[item.group].append(i)
        return dict(out)

    def queries(self, usable: Sequence[int] | None = None) -> list[EvalQuery]:
        """Every grouped item with at least one other usable item in its group; ids are item positions."""
        ok = set(range(len(self.items))) if usable is None else set(usable)
        queries = []
        for members in self.groups().values():
            present = [i for i in members if i in ok]
            if len(present) < 2:
                continue
            for i in present:
                queries.append(EvalQuery(query_id=i, targets=tuple(j for j in present if j != i),
                                         ref=self.items[i].ref))
        return sorted(queries, key=lambda q: q.query_id)


class VectorCache:
    """One ``.npz`` per (weights, variant): file sha256 -> vector. Small: benchmarks have thousands of files."""

    def __init__(self, folder: Path | None, weights_sha256: str | None, variant: str):
        self.path = None
        if folder is not None and weights_sha256:
            from vislink.encoder.pooling import POOLING_VERSION

            self.path = (Path(folder) / "benchmark-vectors" / weights_sha256[:16]
                         / f"{variant}.v{POOLING_VERSION}.npz")
        self.vectors: dict[str, np.ndarray] = {}
        if self.path is not None and self.path.exists():
            try:
                with np.load(self.path) as data:
                    self.vectors = dict(zip(data["keys"].tolist(), data["vectors"]))
            except (OSError, KeyError, ValueError) as exc:
                log.warning("ignoring the unreadable vector cache %s: %s", self.path, exc)

    def save(self) -> None:
        if self.path is None or not self.vectors:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.path)  # readers never see half a cache


@dataclass
class Encoded:
    vectors: dict[str, np.ndarray]  # variant -> (n_usable, dim), rows in the order of ``usable``; a sift-bow
    # variant: a list of n_usable SparseVectors
    usable: list[int]  # gallery positions that decoded and encoded
    failures: dict[int, BadImage]
    weights_name: str
    weights_sha256: str | None
    notes: list[str] = field(default_factory=list)  # how derived variants were made (PCA fits): printed by the CLI
    variant_weights: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # variant -> (name, sha256)

    def weights_of(self, variant: str) -> tuple[str, str | None]:
        """The weights that computed ``variant`` (its base's for a PCA variant)."""
        from vislink.encoder.variants import parse_variant

        return self.variant_weights.get(variant) or self.variant_weights.get(
            parse_variant(variant).base, (self.weights_name, self.weights_sha256))


def encode_gallery(gallery: Gallery, variants: Sequence[str], *, weights: str | None = None,
                   batch_size: int = 16, workers: int = 2, cache: bool = True, progress: bool = True) -> Encoded:
    """Encode every file of the gallery for every variant (cached vectors reused). Variants of several
    backbones can be mixed (``weights`` applies to the VGG16 ones; ONNX variants use their own model); each
    variant's vectors are cached under its own weights' sha256. ``weights_name``/``weights_sha256`` of the
    result: those of the variants when they share one, else the names joined with '+' and no sha256."""
    from vislink.config import get_settings
    from vislink.encoder.dispatch import describe_variant_weights
    from vislink.encoder.variants import parse_variant

    settings = get_settings()
    reranked = reranked_variants(variants)
    if reranked:  # <variant>+verify[K]: the base variant's vectors, re-ranked at evaluation (evaluation.verify)
        bases = list(dict.fromkeys(reranked.get(v, v) for v in variants))
        encoded = encode_gallery(gallery, bases, weights=weights, batch_size=batch_size, workers=workers,
                                 cache=cache, progress=progress)
        return Encoded({v: encoded.vectors[reranked.get(v, v)] for v in variants}, encoded.usable, encoded.failures,
                       encoded.weights_name, encoded.weights_sha256, encoded.notes,
                       {v: encoded.weights_of(reranked.get(v, v)) for v in variants})
    specs = [parse_variant(v) for v in variants]  # unknown names fail before any work
    if any(s.sparse for s in specs):
        dense = [s.name for s in specs if not s.sparse]
        encoded = encode_gallery(gallery, dense, weights=weights, batch_size=batch_size, workers=workers,
                                 cache=cache, progress=progress) if dense else None
        return bow_gallery(gallery, encoded, [s.name for s in specs], progress=progress)
    whitened = [s for s in specs if s.pca_dim is not None]
    if whitened:
        # A PCA variant is fitted on the gallery's own base descriptors, as add-variant fits a collection's.
        bases = list(dict.fromkeys([s.name for s in specs if s.pca_dim is None] + [s.base for s in whitened]))
        encoded = encode_gallery(gallery, bases, weights=weights, batch_size=batch_size, workers=workers,
                                 cache=cache, progress=progress)
        return whiten_gallery(gallery, encoded, [s.name for s in specs])
    variants = [s.name for s in specs]
    # The installed weights' recorded sha256 keys the cache: when every vector is cached, no network is
    # ever loaded (a re-run with other distractors or a stored report takes seconds).
    infos = describe_variant_weights(variants, weights, settings)
    shas = [sha256_file(item.path) for item in gallery.items]

    def make_caches():
        return {v: VectorCache(settings.cache_dir if cache and infos[v].installed else None, infos[v].sha256, v)
                for v in variants}

    def missing():
        return [i for i, sha in enumerate(shas) if any(sha not in caches[v].vectors for v in variants)]

    caches = make_caches()
    todo = missing()
    failures: dict[int, BadImage] = {}
    if todo:
        from vislink.encoder.dispatch import VariantSet

        variant_set = VariantSet(variants, weights=weights, settings=settings)
        if any(variant_set.weights[v].sha256 != infos[v].sha256 for v in variants):  # installed just now, or replaced
            infos = variant_set.weights
            caches = make_caches()
            todo = missing()
        log.info("encoding %d of %d files (%d cached)", len(todo), len(shas), len(shas) - len(todo))
        for k, result in variant_set.encode_files([gallery.items[i].path for i in todo], batch_size=batch_size,
                                                  workers=workers, progress=progress):
            i = todo[k]
            if isinstance(result, BadImage):
                failures[i] = result
                continue
            for v in variants:
                caches[v].vectors[shas[i]] = np.asarray(result[v], dtype=np.float32)
        for c in caches.values():
            c.save()
    usable = [i for i in range(len(shas)) if i not in failures]
    vectors = {v: np.stack([caches[v].vectors[shas[i]] for i in usable]) if usable else np.zeros((0, 1), np.float32)
               for v in variants}
    names = list(dict.fromkeys(infos[v].name for v in variants))
    digests = {infos[v].sha256 for v in variants}
    return Encoded(vectors, usable, failures, "+".join(names), digests.pop() if len(digests) == 1 else None,
                   variant_weights={v: (infos[v].name, infos[v].sha256) for v in variants})


def reranked_variants(variants: Sequence[str]) -> dict[str, str]:
    """The re-ranked names among ``variants`` (``<base>+verify[K]``) -> their base variant."""
    from vislink.local.rerank import parse_reranked

    return {v: parse_reranked(v)[0] for v in variants if parse_reranked(v)[1] is not None}


def verify_gallery(gallery: Gallery, index, collection: str, results: list, top: int, *, sparse: bool,
                   progress: bool = False) -> tuple[list, dict]:
    """``results`` of a gallery ranking with each query's top ``top`` re-ranked by geometric verification; local
    features from the data folder's feature cache (by file sha256, extracted on a miss)."""
    from vislink.encoder.images import open_rgb
    from vislink.evaluation.verify import top_candidates, verified_results
    from vislink.local import feature_cache

    cache = feature_cache()
    known: dict[int, object] = {}

    def features(position: int):
        if position not in known:
            path = gallery.items[position].path
            try:
                known[position] = cache.features_for(sha256_file(path), lambda: open_rgb(path))
            except BadImage as exc:
                log.warning("%s: not verified: %s", path, exc)
                known[position] = None
        return known[position]

    candidates = top_candidates(index, collection, [r.query for r in results], top, sparse=sparse)
    return verified_results(results, candidates, features, top, progress=progress)


def whiten_gallery(gallery: Gallery, encoded: Encoded, variants: Sequence[str]) -> Encoded:
    """``encoded`` (which holds the base variants) with each ``-pcaN`` variant of ``variants`` fitted on the
    gallery's usable base descriptors (the search space: whitening learns the collection it searches) and
    applied to them; each fit is noted in the result's ``notes``."""
    from vislink.encoder.pca import PCAWhitening
    from vislink.encoder.variants import parse_variant

    vectors, notes = {}, list(encoded.notes)
    for name in variants:
        spec = parse_variant(name)
        if spec.pca_dim is None:
            vectors[name] = encoded.vectors[name]
            continue
        base = encoded.vectors[spec.base]
        if len(base) < spec.pca_dim:
            raise VislinkError(f"{name}: PCA to {spec.pca_dim} dimensions needs at least {spec.pca_dim} images, the "
                               f"benchmark has {len(base)}: choose -pca{min(len(base), spec.base_dim) // 2 or 1} "
                               "or fewer dimensions")
        pca = PCAWhitening.fit(base, spec.pca_dim, variant=spec.base)
        vectors[name] = pca.transform(base).astype(np.float32)
        notes.append(f"{name}: PCA whitening fitted on the {len(base)} {spec.base} descriptors of this "
                             "benchmark's images (its search space), then applied to them")
    return Encoded(vectors, encoded.usable, encoded.failures, encoded.weights_name, encoded.weights_sha256, notes,
                   encoded.variant_weights)


def bow_gallery(gallery: Gallery, encoded: Encoded | None, variants: Sequence[str], *, seed: int = 0,
                progress: bool = True) -> Encoded:
    """``encoded`` (the dense variants among ``variants``, or None) with each bag-of-words variant added: its
    vocabulary trained on the local features of the gallery's usable images (the search space, at most
    ``BOW_MAX_DESCRIPTORS`` descriptors), then every usable image's tf-idf ``SparseVector``; each fit is noted."""
    from tqdm.auto import tqdm

    from vislink.config import get_settings
    from vislink.encoder.dispatch import describe_variant_weights
    from vislink.encoder.variants import parse_variant
    from vislink.local import feature_cache
    from vislink.local.bow import bow_vector, features_of, fit_vocabulary
    from vislink.local.vocabulary import DEFAULT_MAX_DESCRIPTORS

    settings = get_settings()
    cache = feature_cache(settings)
    failures = dict(encoded.failures) if encoded is not None else {}
    features = {}
    for i in tqdm([i for i in range(len(gallery.items)) if i not in failures], disable=not progress,
                  desc="local features", unit="img"):
        try:
            features[i] = features_of(gallery.items[i].path, cache=cache, max_pixels=settings.max_image_pixels)
        except BadImage as exc:
            failures[i] = exc
    usable = [i for i in (encoded.usable if encoded is not None else range(len(gallery.items))) if i in features]
    vectors, notes, weights_of = {}, list(encoded.notes) if encoded is not None else [], {}
    if encoded is not None:
        rows = {i: k for k, i in enumerate(encoded.usable)}
        for name, matrix in encoded.vectors.items():
            vectors[name] = matrix[[rows[i] for i in usable]] if len(usable) != len(encoded.usable) else matrix
        weights_of.update(encoded.variant_weights)
    infos = describe_variant_weights([v for v in variants if parse_variant(v).sparse], settings=settings)
    for name in variants:
        spec = parse_variant(name)
        if not spec.sparse:
            continue
        vocabulary = fit_vocabulary([features[i] for i in usable], spec.dim, max_descriptors=DEFAULT_MAX_DESCRIPTORS,
                                    seed=seed, provenance={"variant": name, "benchmark": gallery.name})
        vectors[name] = [bow_vector(features[i], vocabulary) for i in usable]
        p = vocabulary.provenance
        notes.append(f"{name}: vocabulary of {spec.dim} words trained on {p['n_descriptors']} RootSIFT descriptors of "
                     f"this benchmark's {p['n_images']} images (its search space) in {p['train_seconds']:.1f} s")
        weights_of[name] = (infos[name].name, infos[name].sha256)
    vectors = {name: vectors[name] for name in variants}
    names = list(dict.fromkeys(weights_of[v][0] for v in variants))
    digests = {weights_of[v][1] for v in variants}
    return Encoded(vectors, usable, failures, "+".join(names), digests.pop() if len(digests) == 1 else None, notes,
                   {v: weights_of[v] for v in variants})


def evaluate_gallery(gallery: Gallery, encoded: Encoded, *, cutoffs: Sequence[int] = DEFAULT_CUTOFFS,
                     params: dict | None = None, batch_size: int = 256) -> list[RunReport]:
    """One report per variant: rank every target of every query among all usable files (exact search in the
    memory index backend; point id = gallery position)."""
    from vislink.encoder.variants import parse_variant
    from vislink.index.base import Point
    from vislink.index.numpy_index import NumpyIndex

    queries = gallery.queries(encoded.usable)
    if not queries:
        raise VislinkError(f"{gallery.name}: no group has two usable images, nothing to evaluate")
    cutoffs = tuple(sorted(set(cutoffs)))
    reports = []
    for variant, matrix in encoded.vectors.items():
        started = utcnow()
        index = NumpyIndex()
        if isinstance(matrix, list):  # a bag of words: sparse vectors
            from vislink.evaluation.ranking import rank_sparse_targets
            from vislink.local.bow import DENSE_DIM, DENSE_PLACEHOLDER

            index.create_collection(variant, DENSE_DIM, sparse=True)
            index.upsert(variant, [Point(i, DENSE_PLACEHOLDER) for i in encoded.usable], sparse=matrix)
            results = rank_sparse_targets(index, variant, queries, depth=max(cutoffs))
            dimension = parse_variant(reranked_variants([variant]).get(variant, variant)).dim
        else:
            index.create_collection(variant, matrix.shape[1])
            index.upsert(variant, [Point(i, row) for i, row in zip(encoded.usable, matrix)])
            results = rank_targets(index, variant, queries, depth=max(cutoffs), batch_size=batch_size)
            dimension = int(matrix.shape[1])
        verify_params = {}
        if variant in reranked_variants([variant]):  # <base>+verify[K]
            from vislink.local.rerank import parse_reranked

            results, verify_params = verify_gallery(gallery, index, variant, results, parse_reranked(variant)[1],
                                                    sparse=isinstance(matrix, list))
        localisation = {}
        # A re-ranked name (+verify) localises as its base variant does (boxes come from its regions).
        base_spec = parse_variant(reranked_variants([variant]).get(variant, variant))
        if base_spec.regions and any(it.query_box or it.target_box for it in gallery.items):
            from vislink.evaluation.regions import localise_queries

            results, localisation = localise_queries(variant, gallery, encoded.usable, results,
                                                     weights=encoded.weights_of(variant)[0])
        for r in results:
            r.target_refs = [gallery.items[t].ref for t in r.query.targets]
        weights_name, weights_sha256 = encoded.weights_of(variant)
        reports.append(RunReport(
            variant=variant, results=results, n_gallery=len(encoded.usable), dimension=dimension,
            benchmark=gallery.name, weights_name=weights_name, weights_sha256=weights_sha256,
            cutoffs=cutoffs, code_version=code_version(), started_at=started, finished_at=utcnow(),
            params={**(params or {}), "n_groups": len({gallery.items[q.query_id].group for q in queries}),
                    "n_failed": len(encoded.failures), "index_backend": "memory", **verify_params,
                    **localisation.get("params", {})},
        ))
        reports[-1].metrics.update(localisation.get("metrics", {}))
    return reports


def store_reports(reports: Sequence[RunReport], db_url: str | None = None) -> None:
    """Store benchmark runs (no collection: ``EvaluationRun.benchmark`` names them)."""
    from vislink.config import get_settings
    from vislink.evaluation.records import store_run
    from vislink.store import session_scope

    with session_scope(db_url or get_settings().database_url) as session:
        for report in reports:
            store_run(session, report)
