"""How long the UI's search page takes to show its first page of results on a 40,000-image collection,
timed outside Streamlit through the same code the page runs (``vislink.ui.services.search_page``, the SQL
look-ups of ``vislink.ui.data`` and the thumbnail cache ``vislink.ui.thumbs``).

A synthetic collection: 40,000 rows in SQLite (real metadata fields), 40,000 random l2-normalised
descriptors in the embedded index (the default backend, qdrant-edge, optimized as a large ingest leaves it), and
real-size JPEG files behind them (a few hundred files shared by the rows, each row with its own sha256, so
that every result needs its own thumbnail the first time). Target: under 1 s for the first page.

    python benchmarks/ui_search.py                    # 40,000 images, 2048-d (pool5 2x2 sum-pool)
    python benchmarks/ui_search.py --images 5000      # a quick look
    python benchmarks/ui_search.py --home /tmp/b40k   # build once, keep it; later runs with --home reuse it

Figures depend on the machine and its load (``uptime``): compare runs made in the same conditions.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARTISTS = [f"ARTIST {i:03d}" for i in range(600)]
SCHOOLS = ["Italian", "Flemish", "Dutch", "German", "French", "Spanish"]
FORMS = ["painting", "graphics", "sculpture"]


def make_files(folder: Path, n: int, seed: int) -> list[Path]:
    """``n`` real-size JPEGs (1200 x 900, noise over gradients: no easy compression)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        base = np.linspace(0, 255, 1200, dtype=np.float32)[None, :, None] * rng.random(3)[None, None, :]
        arr = np.clip(base + rng.normal(0, 40, (900, 1200, 3)), 0, 255).astype("uint8")
        path = folder / f"f{i:04d}.jpg"
        Image.fromarray(arr).save(path, quality=85)
        files.append(path)
    return files


def build(n_images: int, variant: str | list[str], weights: str, n_files: int, seed: int, progress: bool,
          optimize: bool = True) -> tuple[int, str]:
    """The synthetic collection, with one or several variants (each its own random vectors); returns
    (collection id, the first variant's name)."""
    from sqlalchemy import insert, select
    from tqdm import tqdm

    from vislink.config import get_settings
    from vislink.index import Point, open_index
    from vislink.index.payload import image_payload
    from vislink.ingest.collections import ensure_collection, ensure_index_collections
    from vislink.store import collection_variants
    from vislink.store import Image, ImageDescriptor, ImageStatus, db, session_scope

    settings = get_settings()
    settings.ensure_dirs()
    db.upgrade(settings.database_url)
    files = make_files(settings.resolved_home / "bench-files", n_files, seed)
    names = [variant] if isinstance(variant, str) else list(variant)
    with session_scope() as session:
        coll = ensure_collection(session, "bench", variants=names, weights=weights)
        var_rows = collection_variants(session, coll)
        coll_id = coll.id
        targets = [(v.qdrant_collection, v.dimension, v.id) for v in var_rows]
        index = open_index(settings)
        ensure_index_collections(index, var_rows)
    rng = np.random.default_rng(seed)
    centres = {qname: rng.standard_normal((n_images // 20 + 1, dim)).astype(np.float32)
               for qname, dim, _ in targets}
    chunk = 2000
    bar = tqdm(total=n_images, desc="synthetic collection", disable=not progress)
    for start in range(0, n_images, chunk):
        rows = []
        for i in range(start, min(n_images, start + chunk)):
            year = int(rng.integers(1250, 1900))
            rows.append(dict(collection_id=coll_id, source_ref=f"bench/{i:06d}.jpg",
                             sha256=hashlib.sha256(f"bench-{i}".encode()).hexdigest(),
                             file_path=str(files[i % len(files)]), width=1200, height=900, status=ImageStatus.done,
                             artist=ARTISTS[i % len(ARTISTS)], title=f"Work {i}", date_text=str(year),
                             year_start=year, year_end=year, school=SCHOOLS[i % len(SCHOOLS)],
                             form=FORMS[i % len(FORMS)], type="religious", extra={}))
        with session_scope() as session:
            session.execute(insert(Image), rows)
            ids = session.scalars(select(Image.id).where(Image.collection_id == coll_id, Image.source_ref.in_(
                [r["source_ref"] for r in rows])).order_by(Image.id)).all()
            session.execute(insert(ImageDescriptor), [dict(image_id=i, variant_id=var_id) for i in ids
                                                      for _, _, var_id in targets])
        for qname, dim, _ in targets:
            # Clustered vectors: each image near one of n/20 centres, like groups of related works.
            vecs = centres[qname][rng.integers(0, len(centres[qname]), len(ids))] + 0.7 * rng.standard_normal(
                (len(ids), dim), dtype=np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            points = []
            for image_id, row, vec in zip(ids, rows, vecs):
                payload = image_payload(SimpleNamespace(id=image_id, **{k: row[k] for k in (
                    "artist", "year_start", "year_end", "school", "form", "type", "title")}), "bench")
                points.append(Point(int(image_id), vec, payload))
            index.upsert(qname, points)
        bar.update(len(ids))
    bar.close()
    if optimize and hasattr(index, "optimize"):
        started = time.perf_counter()
        for qname, _, _ in targets:
            index.optimize(qname)
        print(f"index optimized in {time.perf_counter() - started:.1f} s", flush=True)
    return coll_id, names[0]


def first_page(query, *, variant: str, page_size: int, flt=None, mirrored: bool = False) -> dict[str, float]:
    """What the search page does for its first page, phase by phase (seconds)."""
    from vislink.config import get_settings
    from vislink.ui import data, services, thumbs

    t0 = time.perf_counter()
    results = services.search_page(query, collection="bench", variant=variant, flt=flt, mirrored=mirrored, page=0,
                                   page_size=page_size, cache={})
    t1 = time.perf_counter()
    infos = data.images_by_ids(r.image_id for r in results)
    data.link_status(query.image_id, [r.image_id for r in results])
    t2 = time.perf_counter()
    paths = thumbs.thumbnails([(infos[r.image_id].file_path, infos[r.image_id].sha256) for r in results],
                              thumbs.DEFAULT_SIZE, get_settings())
    t3 = time.perf_counter()
    assert len(results) == page_size and all(paths), "a full page with every thumbnail"
    return {"search": t1 - t0, "sql": t2 - t1, "thumbs": t3 - t2, "total": t3 - t0}


def report(name: str, runs: list[dict[str, float]]) -> None:
    def ms(key: str) -> str:
        values = [r[key] * 1000 for r in runs]
        return f"{statistics.median(values):7.0f} ms (max {max(values):5.0f})"

    print(f"{name:<44} search {ms('search')}  sql {ms('sql')}  thumbnails {ms('thumbs')}  "
          f"FIRST PAGE {ms('total')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40_000)
    parser.add_argument("--variant", default="vgg16-pool5-sp2x2-sum", help="2048-d, the paper's best pool5 variant")
    parser.add_argument("--weights", default="random",
                        help="encoder weights (the same network, so the same time, as the real ones)")
    parser.add_argument("--files", type=int, default=300, help="distinct JPEG files behind the rows")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--home", type=Path,
                        help="data folder to build in and keep (reused when it already holds the collection); "
                             "default: a temporary one, removed at the end")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-optimize", action="store_true",
                        help="skip optimize() (segment merging) after the build: much faster to build")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)

    from data_folder import data_folder

    with data_folder(args.home, prefix="vislink-ui-bench-", weights=args.weights, threads=args.threads) as home:
        import torch

        torch.set_num_threads(args.threads)
        if args.home is not None and (home / "vislink.db").exists():
            print(f"reusing the collection built under {home}", flush=True)
        else:
            started = time.perf_counter()
            build(args.images, args.variant, args.weights, args.files, 0, not args.no_progress,
                  optimize=not args.no_optimize)
            print(f"built {args.images} images in {time.perf_counter() - started:.0f} s under {home}", flush=True)

        from PIL import Image

        from vislink.config import get_settings
        from vislink.encoder import get_encoder
        from vislink.ui import data, services

        settings = get_settings()
        shutil.rmtree(settings.thumbs_dir, ignore_errors=True)  # "cold" means no thumbnail made yet
        settings.thumbs_dir.mkdir(parents=True)
        started = time.perf_counter()
        get_encoder(args.weights)  # once per process (st.cache_resource in the app), not per search
        print(f"process start-up (model load, once): {time.perf_counter() - started:.1f} s; "
              f"backend {settings.effective_index_backend}, {args.threads} threads", flush=True)
        rng = np.random.default_rng(1)
        coll = data.collection_by_name("bench")
        ids = [int(x) for x in rng.choice(np.arange(1, coll.n_images + 1), args.queries, replace=False)]
        services.search_page(services.Query(image_id=ids[0]), collection="bench", variant=args.variant, flt=None,
                             mirrored=False, page=0, page_size=args.page_size, cache={})  # warm the index
        cold = [first_page(services.Query(image_id=i), variant=args.variant, page_size=args.page_size) for i in ids]
        warm = [first_page(services.Query(image_id=i), variant=args.variant, page_size=args.page_size) for i in ids]
        flt = data.build_filter(schools=["Flemish", "Dutch"], years=(1400, 1600))
        filtered = [first_page(services.Query(image_id=i), variant=args.variant, page_size=args.page_size, flt=flt)
                    for i in ids]
        uploads = []
        for i, path in enumerate(sorted((home / "bench-files").glob("*.jpg"))[:max(3, args.queries // 3)]):
            img = Image.open(path).convert("RGB")
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            t0 = time.perf_counter()
            services.read_upload(path.name, buf.getvalue())  # size limit + full decode, as the page does
            query = services.Query(image=buf.getvalue(), label=path.name)
            decode = time.perf_counter() - t0
            run = first_page(query, variant=args.variant, page_size=args.page_size)
            run["search"] += decode
            run["total"] += decode
            uploads.append(run)
        print(f"\n{coll.n_images} images, {args.variant}, first page of {args.page_size}, {args.queries} queries "
              "(median, max):")
        report("pick an image, thumbnails not yet made", cold)
        report("pick an image, thumbnails cached", warm)
        report("pick + filters (school, years) in Qdrant", filtered)
        report("upload 1200x900 JPEG (decode + VGG16 encode)", uploads)
        target = statistics.median(r["total"] for r in cold)
        print(f"\nfirst page, image of the collection, cold thumbnails: {target * 1000:.0f} ms median "
              f"({'under' if target < 1 else 'OVER'} the 1 s target)")


if __name__ == "__main__":
    main()
