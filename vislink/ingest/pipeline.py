"""The per-image ingest pipeline: register -> fetch -> sha256 / dedup -> decode + encode (every variant, one
forward pass) -> store the file under its hash -> upsert into each variant's Qdrant collection -> mark done.

Crash safety comes from the order of the writes, each durable before the next starts:

1. the ``Image`` row is registered ``pending`` (unique per collection and source reference);
2. its sha256 is claimed (unique per collection: a second file with the same bytes becomes ``duplicate``);
3. the file is copied into the content-addressed store (write to a temporary name, then rename);
4. the vectors are upserted into the index (point id = image id, so a repeat overwrites, never duplicates);
5. only then the ``ImageDescriptor`` rows and ``status = done`` are committed.

A run killed anywhere leaves at worst a ``pending`` row (and maybe points for it); the next run redoes that
image and its upsert replaces the points. ``vislink reconcile`` repairs anything else (see ``reconcile``).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vislink.config import Settings, get_settings
from vislink.errors import BadImage, FetchError
from vislink.hashing import sha256_file
from vislink.store import DescriptorVariant, Image, ImageDescriptor, ImageStatus, IngestRun, RunStatus, session_scope

log = logging.getLogger(__name__)

# SourceItem.metadata keys that are Image columns; anything else goes into Image.extra.
IMAGE_FIELDS = ("artist", "artist_dates", "title", "date_text", "year_start", "year_end", "technique", "location",
                "form", "type", "school", "timeframe")
_EXT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}
MAX_LISTED_FAILURES = 50
OPTIMIZE_AFTER = 1000  # new points after which an ingest asks the index to optimise its collections


@dataclass
class IngestSummary:
    """What a run did. ``skipped`` counts images already done, repeated, or duplicates of stored ones."""

    collection: str
    run_id: int | None = None
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source_ref, reason: detail), first ones
    seconds: float = 0.0
    _dups: set[int] = field(default_factory=set, repr=False)

    @property
    def duplicates(self) -> int:
        return self.skipped_by_reason.get("duplicate", 0)

    def _fail(self, ref: str, reason: str, detail: str = "") -> None:
        self.failed += 1
        self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append((ref, f"{reason}: {detail}" if detail else reason))

    def _unskip_duplicate(self, image_id: int) -> bool:
        """Take back a duplicate counted by this run (its original turned out bad); False if not ours."""
        if image_id not in self._dups:
            return False
        self._dups.discard(image_id)
        self.skipped -= 1
        self.skipped_by_reason["duplicate"] -= 1
        return True

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1

    def format(self) -> str:
        rate = f" in {self.seconds:.1f} s ({self.done / self.seconds:.2f} images/s)" if self.seconds > 0 else ""
        lines = [f"collection {self.collection}: {self.done} done, {self.skipped} skipped, {self.failed} failed{rate}"]
        for reason, n in sorted(self.skipped_by_reason.items()):
            lines.append(f"  skipped {reason}: {n}")
        for reason, n in sorted(self.failures_by_reason.items()):
            lines.append(f"  failed {reason}: {n}")
        return "\n".join(lines)


@dataclass
class _Variant:  # a plain copy of a DescriptorVariant row, safe to use outside its session
    id: int
    name: str
    qdrant_collection: str
    pca_path: str | None


@dataclass
class _Work:
    image_id: int
    source_ref: str
    path: Path  # the file to decode
    sha256: str
    ext: str
    variants: list[str]
    stored: bool = False  # already in the content-addressed store


@dataclass
class _Ctx:
    settings: Settings
    coll_id: int
    coll_name: str
    variants: list[_Variant]
    weights: str
    index: Any
    summary: IngestSummary
    fetcher: Any = None

    def get_fetcher(self):
        if self.fetcher is None:
            from vislink.ingest.fetch import Fetcher

            self.fetcher = Fetcher(self.settings.cache_dir)
        return self.fetcher


def _guess_ext(path: Path) -> str:
    """The stored file's extension from its content (header only), else from its name."""
    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bomb warns here; open_rgb gives it its reason later
            with PILImage.open(path) as im:
                if im.format in _EXT:
                    return _EXT[im.format]
    except Exception:  # noqa: BLE001 - bad files are judged later by open_rgb, with a reason
        pass
    suffix = path.suffix.lower()
    return ".jpg" if suffix == ".jpeg" else (suffix if suffix and len(suffix) <= 6 else ".bin")


def store_file(settings: Settings, src: Path, sha: str, ext: str) -> Path:
    """Copy ``src`` to ``images_dir/<sha[:2]>/<sha><ext>`` (atomic rename; already there: nothing to do)."""
    dest = settings.images_dir / sha[:2] / f"{sha}{ext}"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    return dest


def _variants(session: Session, coll_id: int, ids: Sequence[int] | None = None) -> list[_Variant]:
    q = select(DescriptorVariant).where(DescriptorVariant.collection_id == coll_id).order_by(DescriptorVariant.id)
    if ids is not None:
        q = q.where(DescriptorVariant.id.in_(list(ids)))
    return [_Variant(v.id, v.name, v.qdrant_collection, v.pca_path) for v in session.scalars(q)]


def _mark_failed(session: Session, img: Image, summary: IngestSummary, reason: str, detail: str = "") -> None:
    if img.sha256:
        img.extra = {**(img.extra or {}), "sha256": img.sha256}
    img.sha256 = None  # a failed file must not block a good copy of the same bytes... nor be deduplicated
    img.status = ImageStatus.failed
    img.failure_reason = f"{reason}: {detail}" if detail else reason
    summary._fail(img.source_ref, reason, detail)


def _mark_duplicate(img: Image, original: Image, sha: str, summary: IngestSummary) -> None:
    img.status = ImageStatus.duplicate
    img.duplicate_of_id = original.id
    img.file_path = original.file_path
    img.failure_reason = None
    img.extra = {**(img.extra or {}), "sha256": sha}
    summary._skip("duplicate")
    summary._dups.add(img.id)


def _apply_metadata(img: Image, metadata: dict[str, Any]) -> None:
    for key in IMAGE_FIELDS:
        if key in metadata:
            setattr(img, key, metadata[key])
    extra = {k: v for k, v in metadata.items() if k not in IMAGE_FIELDS and k != "extra"}
    extra.update(metadata.get("extra") or {})
    img.extra = {**(img.extra or {}), **extra}


# -- stage A: register, fetch, hash, dedup (parent process) ------------------------------------------------
def _prepare(ctx: _Ctx, session: Session, items: list) -> list[_Work]:
    refs = list(dict.fromkeys(item.source_ref for item in items))
    rows = {img.source_ref: img for img in session.scalars(
        select(Image).where(Image.collection_id == ctx.coll_id, Image.source_ref.in_(refs)))}
    have: dict[int, set[int]] = {}
    if rows:
        for image_id, variant_id in session.execute(select(ImageDescriptor.image_id, ImageDescriptor.variant_id)
                                                    .where(ImageDescriptor.image_id.in_([r.id for r in rows.values()]))):
            have.setdefault(image_id, set()).add(variant_id)
    summary = ctx.summary
    todo: list[tuple[Any, Image, list[str]]] = []
    seen: set[str] = set()
    for item in items:
        if item.source_ref in seen:
            summary._skip("repeated-in-source")
            continue
        seen.add(item.source_ref)
        img = rows.get(item.source_ref)
        if img is None:
            img = Image(collection_id=ctx.coll_id, source_ref=item.source_ref, status=ImageStatus.pending, extra={})
            _apply_metadata(img, item.metadata or {})
            session.add(img)
        elif img.status == ImageStatus.duplicate:
            summary._skip("duplicate")
            continue
        elif img.status == ImageStatus.done:
            missing = [v.name for v in ctx.variants if v.id not in have.get(img.id, set())]
            if not missing:
                summary._skip("already-done")
                continue
            todo.append((item, img, missing))
            continue
        else:  # pending (an interrupted run) or failed (retried: the cause may be gone)
            _apply_metadata(img, item.metadata or {})
        todo.append((item, img, [v.name for v in ctx.variants]))
    session.commit()  # registration is durable before any work on the image

    works: list[_Work] = []
    chunk_shas: dict[str, _Work] = {}
    stored_ok = {img.id: bool(img.sha256 and img.file_path and Path(img.file_path).is_file()) for _, img, _ in todo}
    fetched = _fetch_all(ctx, [item for item, img, _ in todo if not stored_ok[img.id]])
    for item, img, variant_names in todo:
        stored = stored_ok[img.id]
        if stored:  # fetched and stored by an earlier run: never fetched again
            path, sha = Path(img.file_path), img.sha256
        else:
            path = fetched[item.source_ref]
            if isinstance(path, FetchError):
                _mark_failed(session, img, summary, "fetch-failed", str(path))
                continue
            if isinstance(path, OSError):
                _mark_failed(session, img, summary, "unreadable", f"{type(path).__name__}: {path}")
                continue
            sha = sha256_file(path)
            if img.sha256 != sha:
                original = chunk_shas.get(sha)
                other = None if original else session.scalar(select(Image).where(
                    Image.collection_id == ctx.coll_id, Image.sha256 == sha, Image.id != img.id))
                if original is not None:
                    _mark_duplicate(img, session.get(Image, original.image_id), sha, summary)
                    continue
                if other is not None:
                    _mark_duplicate(img, other, sha, summary)
                    continue
                if not _claim_sha(session, img, sha, ctx, summary):
                    continue
        work = _Work(img.id, img.source_ref, path, sha, Path(img.file_path).suffix if stored else _guess_ext(path),
                     variant_names, stored=stored)
        chunk_shas[sha] = work
        works.append(work)
    session.commit()
    return works


def _fetch_all(ctx: _Ctx, items: list) -> dict[str, Path | Exception]:
    """source_ref -> local file or the error. Downloads run in threads (the Fetcher is thread-safe and
    keeps its per-host rate limit); local files need no thread."""
    def one(item) -> Path | Exception:
        try:
            return _fetch(ctx, item)
        except (FetchError, OSError) as exc:
            return exc

    remote = [i for i in items if not getattr(i, "local_path", None)]
    if remote:
        ctx.get_fetcher()  # built once, before the threads share it
    out = {i.source_ref: one(i) for i in items if getattr(i, "local_path", None)}
    if len(remote) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(8, len(remote)), thread_name_prefix="vislink-fetch") as pool:
            out.update(zip((i.source_ref for i in remote), pool.map(one, remote)))
    else:
        out.update((i.source_ref, one(i)) for i in remote)
    return out


def _fetch(ctx: _Ctx, item) -> Path:
    if getattr(item, "local_path", None):
        path = Path(item.local_path)
        if not path.is_file():
            raise FetchError(f"{path}: no such file")
        return path
    if getattr(item, "url", None):
        return Path(ctx.get_fetcher().fetch(item.url))
    raise FetchError(f"{item.source_ref}: the source gave neither a file nor a URL")


def _claim_sha(session: Session, img: Image, sha: str, ctx: _Ctx, summary: IngestSummary) -> bool:
    """Set the image's sha256; the unique constraint decides races between concurrent workers."""
    try:
        with session.begin_nested():
            img.sha256 = sha
            session.flush()
        return True
    except IntegrityError:
        session.refresh(img)
        other = session.scalar(select(Image).where(Image.collection_id == ctx.coll_id, Image.sha256 == sha))
        _mark_duplicate(img, other, sha, summary)
        return False


# -- stage C: store, upsert, mark done (parent process) ----------------------------------------------------
def _finish(ctx: _Ctx, works: list[_Work], results: list) -> int:
    from vislink.index import Point
    from vislink.index.payload import image_payload

    summary = ctx.summary
    ok: list[tuple[_Work, Any]] = []
    with session_scope() as session:
        bad: dict[int, Any] = {}
        for work, res in zip(works, results):
            img = session.get(Image, work.image_id)
            if res.vectors is None:
                _mark_failed(session, img, summary, res.reason, res.detail)
                bad[img.id] = res
                continue
            if not work.stored:
                img.file_path = str(store_file(ctx.settings, work.path, work.sha256, work.ext))
            img.width, img.height = res.width, res.height
            ok.append((work, res))
        if bad:  # a copy of a bad file is just as bad (it was taken for a duplicate before decoding)
            for child in session.scalars(select(Image).where(Image.duplicate_of_id.in_(list(bad)))):
                res = bad[child.duplicate_of_id]
                child.duplicate_of_id = None
                if summary._unskip_duplicate(child.id):
                    _mark_failed(session, child, summary, res.reason, res.detail)
                else:
                    child.status, child.failure_reason = ImageStatus.failed, f"{res.reason}: {res.detail}"
    if not ok:
        return 0
    with session_scope() as session:
        images = {w.image_id: session.get(Image, w.image_id) for w, _ in ok}
        for v in ctx.variants:
            points = [Point(w.image_id, r.vectors[v.name], image_payload(images[w.image_id], ctx.coll_name))
                      for w, r in ok if v.name in w.variants]
            if points:
                ctx.index.upsert(v.qdrant_collection, points)  # before `done`: see the module docstring
        by_name = {v.name: v.id for v in ctx.variants}
        for work, _ in ok:
            img = images[work.image_id]
            for name in work.variants:
                session.merge(ImageDescriptor(image_id=img.id, variant_id=by_name[name],
                                              encoded_at=datetime.now(timezone.utc)))
            img.status = ImageStatus.done
            img.failure_reason = None
        # Duplicates registered while their original was still being encoded get its stored file now.
        for child in session.scalars(select(Image).where(Image.duplicate_of_id.in_(list(images)),
                                                         Image.file_path.is_(None))):
            child.file_path = images[child.duplicate_of_id].file_path
    for work, _ in ok:  # after the commit: these lines say what is durably done (the worker tests count them)
        log.info("encoded image %d (%s) for %s", work.image_id, work.source_ref, ",".join(work.variants))
    summary.done += len(ok)
    return len(ok)


# -- the loop ---------------------------------------------------------------------------------------------
def _run(ctx: _Ctx, chunks: Iterator[list], prepare: Callable[[_Ctx, Session, list], list[_Work]], *,
         workers: int, total: int | None, progress: bool, desc: str) -> None:
    from vislink.ingest.workers import run_batches

    run_batches(ctx, chunks, prepare, _finish, workers=workers, total=total, progress=progress, desc=desc)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _start_run(coll_id: int, source_kind: str, source_ref: str | None, params: dict, *,
               embedded: bool = False) -> int:
    with session_scope() as session:
        if embedded:
            # The embedded index admits one process per data folder, so a local run still marked running
            # is one that was killed: say so. (Queued runs and server set-ups may really run in parallel.)
            for stale in session.scalars(select(IngestRun).where(IngestRun.collection_id == coll_id,
                                                                 IngestRun.status == RunStatus.running)):
                if not (stale.params or {}).get("queued"):
                    stale.status = RunStatus.interrupted
        run = IngestRun(collection_id=coll_id, source_kind=source_kind, source_ref=source_ref,
                        status=RunStatus.running, params=params)
        session.add(run)
        session.flush()
        return run.id


def _end_run(summary: IngestSummary, status: RunStatus) -> None:
    with session_scope() as session:
        run = session.get(IngestRun, summary.run_id)
        run.status = status
        run.finished_at = datetime.now(timezone.utc)
        run.n_done, run.n_skipped, run.n_failed = summary.done, summary.skipped, summary.failed
        run.failures_by_reason = dict(summary.failures_by_reason)
        run.params = {**(run.params or {}), "skipped_by_reason": dict(summary.skipped_by_reason),
                      "failures": [list(f) for f in summary.failures], "seconds": round(summary.seconds, 3)}


def _execute(ctx: _Ctx, chunks, prepare, *, workers, total, progress, desc) -> IngestSummary:
    status = RunStatus.failed
    start = time.perf_counter()
    try:
        _run(ctx, chunks, prepare, workers=workers, total=total, progress=progress, desc=desc)
        status = RunStatus.finished
    except KeyboardInterrupt:
        status = RunStatus.interrupted
        raise
    finally:
        ctx.summary.seconds = time.perf_counter() - start
        _end_run(ctx.summary, status)
    return ctx.summary


def ingest(collection: str, items: Iterable, *, variants: list[str] | None = None, workers: int = 1,
           progress: bool = True, weights: str | None = None, batch_size: int = 16, source_kind: str = "items",
           source_ref: str | None = None, fetcher: Any = None, index: Any = None) -> IngestSummary:
    """Ingest ``items`` (``SourceItem``s) into ``collection``, creating it with ``variants`` (default: the
    three pool5 variants) and ``weights`` (default: settings) when new. Re-running skips what is done.
    The summary is also stored in an ``IngestRun`` row."""
    from vislink.index import open_index
    from vislink.ingest.collections import ensure_collection, ensure_index_collections
    from vislink.store import collection_variants

    settings = get_settings()
    settings.ensure_dirs()
    with session_scope() as session:
        coll = ensure_collection(session, collection, variants=variants, weights=weights, source_kind=source_kind,
                                 source_ref=source_ref, settings=settings)
        rows = collection_variants(session, coll)
        coll_id, weights_name = coll.id, rows[0].weights_name
        index = index or open_index(settings)
        ensure_index_collections(index, rows)
        all_variants = _variants(session, coll_id)
    run_id = _start_run(coll_id, source_kind, source_ref, {"variants": [v.name for v in all_variants],
                                                           "weights": weights_name, "workers": workers},
                        embedded=settings.effective_index_backend in ("qdrant-edge", "qdrant-local"))
    ctx = _Ctx(settings, coll_id, collection, all_variants, weights_name, index,
               IngestSummary(collection, run_id), fetcher)
    total = len(items) if hasattr(items, "__len__") else None
    summary = _execute(ctx, _chunks(items, batch_size), _prepare, workers=workers, total=total, progress=progress,
                       desc=f"ingest {collection}")
    if summary.done >= OPTIMIZE_AFTER:
        # Embedded qdrant-edge has no background optimizer: merge segments and build the HNSW graph now.
        for v in all_variants:
            index.optimize(v.qdrant_collection)
    _add_pending_pca_variants(collection, variants, workers=workers, progress=progress)
    return summary


def _add_pending_pca_variants(collection: str, variants: list[str] | None, *, workers: int, progress: bool) -> None:
    """PCA variants asked for at ingest are fitted once the base descriptors exist."""
    from vislink.encoder.variants import parse_variant
    from vislink.ingest.collections import add_variant

    for name in variants or []:
        if parse_variant(name).pca_dim is not None:
            add_variant(collection, name, workers=workers, progress=progress)


# -- uploads (the UI) -------------------------------------------------------------------------------------
def ingest_upload(collection: str, filename: str, data: bytes, *, variants: list[str] | None = None) -> Image:
    """Validate, store under its hash, encode for every variant of ``collection`` and index one uploaded
    file; it is searchable when this returns. Identical bytes already in the collection give that image.
    Raises ``BadImage`` (with its reason) for files that are too big or not usable images."""
    from vislink.encoder.images import open_rgb

    settings = get_settings()
    limit = settings.max_upload_mb * 1024 * 1024
    if len(data) > limit:
        raise BadImage(filename, "too-large", f"{len(data) / 1e6:.1f} MB, the limit is {settings.max_upload_mb} MB "
                                              "(VISLINK_MAX_UPLOAD_MB)")
    open_rgb(data, name=filename)  # a clear error now, before anything is registered
    item = _upload_item(filename, data, settings)
    summary = ingest(collection, [item], variants=variants, workers=1, progress=False, source_kind="upload",
                     source_ref=filename)
    with session_scope() as session:
        img = session.scalar(select(Image).where(Image.collection_id == _collection_id(session, collection),
                                                 Image.source_ref == item.source_ref))
        if img.status == ImageStatus.duplicate:
            img = session.get(Image, img.duplicate_of_id)
        if img.status != ImageStatus.done:
            reason, _, detail = (img.failure_reason or "unreadable").partition(": ")
            raise BadImage(filename, reason, detail or summary.format())
        session.expunge(img)
        return img


def _collection_id(session: Session, name: str) -> int:
    from vislink.store import get_collection

    return get_collection(session, name).id


def _upload_item(filename: str, data: bytes, settings: Settings):
    from vislink.ingest.sources.upload import upload_item

    return upload_item(filename, data, cache_dir=settings.cache_dir)
