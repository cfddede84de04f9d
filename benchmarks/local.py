"""Local features: speed of the bag-of-words baseline (and, in its own section, of geometric verification).

    python benchmarks/local.py bow [--images ../shared/data/paintings_linked/images] [--variant sift-bow]
                                   [--train 60] [--queries 20]

``bow`` (issue #14 items 2 and 5), through vislink's own Python API (what the CLI commands call), in a fresh data
folder (its own SQLite store, qdrant-edge index and feature cache, so every image's features are extracted cold):

1. ``ingest`` of the first ``--train`` image files with ``--variant`` named: the files are stored, then the
   vocabulary is trained on their RootSIFT descriptors (``add_variant``, features extracted into the cache) and
   every image encoded; prints the vocabulary training time (k-means alone, as the vocabulary records it) and the
   whole add-variant time.
2. ``ingest`` of the remaining files into that collection: images/s to index a new image (decode, extract,
   quantise, tf-idf, upsert), CPU seconds per image beside it (they do not depend on other tenants).
3. ``search`` with ``--queries`` of the files (as a query image: extraction + quantisation + sparse search) and
   by stored image id (sparse vector read back + search): ms per query.

``verify`` (issue #14 items 1, 3 and 5): geometric verification and re-ranking, in a fresh data folder:

    python benchmarks/local.py verify [--images ../shared/data/paintings_linked/images] [--queries 20] [--top 50]
                                      [--weights random]

1. local features of every image extracted into the fresh feature cache: ms per image (cold), then read back
   (warm, what re-ranking pays per candidate);
2. verification ms per pair (``Verifier``: one query against many, B tried mirrored too, and without the mirror);
3. ``search`` by stored image id, top ``--top``, with and without ``verify=True`` (features cached), ms per
   query, on a collection of the images ingested with ``vgg16-pool5-sum`` (``--weights random`` by default:
   the timing does not depend on the weights' values, and no weights need installing).

Figures of a run are in docs/local.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from data_folder import use_data_folder

REPO = Path(__file__).resolve().parents[1]
PAINTINGS = REPO.parent / "shared" / "data" / "paintings_linked" / "images"


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def bow(args) -> None:
    files = sorted(p for p in Path(args.images).rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if len(files) <= args.train:
        sys.exit(f"{args.images}: {len(files)} images, need more than --train {args.train}")
    home = Path(tempfile.mkdtemp(prefix="vislink-bow-bench-"))
    use_data_folder(home)
    from vislink.config import get_settings

    get_settings().ensure_dirs()
    from vislink.index import close_all
    from vislink.ingest.collections import collection_info
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.base import SourceItem
    from vislink.local.vocabulary import load_vocabulary
    from vislink.search import search
    from vislink.store import db

    db.upgrade(get_settings().database_url)

    def items(paths):
        return [SourceItem(str(p.relative_to(args.images)), {}, local_path=p) for p in paths]

    print(f"{len(files)} images of {args.images}; {args.variant}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; data folder {home}", flush=True)
    try:
        start = _clock()
        ingest("bench", items(files[:args.train]), variants=[args.variant], progress=False)
        wall, cpu = _since(start)
        info = {v["name"]: v for v in collection_info("bench").variants}[args.variant]
        prov = load_vocabulary(info["pca_path"]).provenance
        print(f"vocabulary: {prov['words']} words from {prov['n_descriptors']:,} descriptors of {prov['n_images']} "
              f"images, k-means {prov['train_seconds']:.1f} s ({prov['epochs']} epochs); store + extract + train + "
              f"encode {args.train} images: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)

        rest = files[args.train:]
        start = _clock()
        summary = ingest("bench", items(rest), progress=False)
        wall, cpu = _since(start)
        print(f"index new images: {summary.done} in {wall:.1f} s = {summary.done / wall:.2f} images/s "
              f"({cpu / max(summary.done, 1) * 1000:.0f} ms CPU per image)", flush=True)

        queries = files[:args.queries]
        search(queries[0], collection="bench", variant=args.variant, limit=20)  # warm: vocabulary, index
        start = _clock()
        for q in queries:
            search(q, collection="bench", variant=args.variant, limit=20)
        wall, cpu = _since(start)
        print(f"search by query image (extract + quantise + sparse search, top 20): {wall / len(queries) * 1000:.0f} "
              f"ms per query ({cpu / len(queries) * 1000:.0f} ms CPU)", flush=True)
        from sqlalchemy import select

        from vislink.store import Image, session_scope

        with session_scope() as session:
            ids = list(session.scalars(select(Image.id).order_by(Image.id).limit(args.queries)))
        start = _clock()
        for image_id in ids:
            search(image_id=image_id, collection="bench", variant=args.variant, limit=20)
        wall, cpu = _since(start)
        print(f"search by stored image (sparse vector read back + sparse search, top 20): "
              f"{wall / len(ids) * 1000:.1f} ms per query ({cpu / len(ids) * 1000:.1f} ms CPU)", flush=True)
    finally:
        close_all()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


# -- geometric verification and re-ranking (the verify section) ------------------------------------------


def _stats(ms: list[float]) -> str:
    import numpy as np

    a = np.asarray(ms)
    return f"mean {a.mean():.1f} ms, median {np.median(a):.1f}, p90 {np.percentile(a, 90):.1f} (n={len(a)})"


def verify(args) -> None:
    files = sorted(p for p in Path(args.images).rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    home = Path(tempfile.mkdtemp(prefix="vislink-verify-bench-"))
    use_data_folder(home, weights=args.weights)
    from vislink.config import get_settings

    get_settings().ensure_dirs()
    from vislink.encoder.images import open_rgb
    from vislink.hashing import sha256_file
    from vislink.index import close_all
    from vislink.local import feature_cache
    from vislink.local.matching import Verifier
    from vislink.store import db

    db.upgrade(get_settings().database_url)
    print(f"{len(files)} images of {args.images}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"data folder {home}", flush=True)
    try:
        cache = feature_cache()
        shas = [sha256_file(p) for p in files]
        cold, warm = [], []
        for path, sha in zip(files, shas):
            t = time.perf_counter()
            cache.features_for(sha, lambda p=path: open_rgb(p))
            cold.append(1000 * (time.perf_counter() - t))
        features = []
        for sha in shas:
            t = time.perf_counter()
            features.append(cache.get(sha))
            warm.append(1000 * (time.perf_counter() - t))
        print(f"features, cold (decode + extract + store): {_stats(cold)}", flush=True)
        print(f"features, warm (read from the cache): {_stats(warm)}", flush=True)
        for mirror in (True, False):
            per_pair = []
            for q in range(min(args.queries, len(files))):
                verifier = Verifier(features[q], mirror=mirror)
                for b in range(len(files)):
                    if b != q:
                        t = time.perf_counter()
                        verifier.verify(features[b])
                        per_pair.append(1000 * (time.perf_counter() - t))
            print(f"verification per pair ({'B as given and mirrored' if mirror else 'no mirror'}): "
                  f"{_stats(per_pair)}", flush=True)

        from sqlalchemy import select

        from vislink.ingest.runner import ingest
        from vislink.ingest.sources.base import SourceItem
        from vislink.search import search
        from vislink.store import Image, session_scope

        ingest("bench", [SourceItem(str(p.relative_to(args.images)), {}, local_path=p) for p in files],
               variants=["vgg16-pool5-sum"], progress=False)
        with session_scope() as session:
            ids = list(session.scalars(select(Image.id).order_by(Image.id).limit(args.queries)))
        search(image_id=ids[0], collection="bench", limit=args.top, verify=True, verify_top=args.top)  # warm
        for verified in (False, True):
            times = []
            for image_id in ids:
                t = time.perf_counter()
                search(image_id=image_id, collection="bench", limit=args.top, verify=verified, verify_top=args.top)
                times.append(1000 * (time.perf_counter() - t))
            label = f"with re-ranking of the top {args.top}" if verified else "without re-ranking"
            print(f"search by stored image, top {args.top}, {label}: {_stats(times)}", flush=True)
    finally:
        close_all()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sections = parser.add_subparsers(dest="section", required=True)
    p = sections.add_parser("bow", help="bag-of-words baseline: vocabulary training, indexing, query time")
    p.add_argument("--images", type=Path, default=PAINTINGS)
    p.add_argument("--variant", default="sift-bow")
    p.add_argument("--train", type=int, default=60, help="images ingested first, the vocabulary's sample")
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--keep", action="store_true", help="keep the data folder")
    p.set_defaults(run=bow)
    p = sections.add_parser("verify", help="geometric verification: ms per pair, search with and without re-ranking")
    p.add_argument("--images", type=Path, default=PAINTINGS)
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--top", type=int, default=50)
    p.add_argument("--weights", default="random", help="encoder weights of the collection (timing only)")
    p.add_argument("--keep", action="store_true", help="keep the data folder")
    p.set_defaults(run=verify)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
