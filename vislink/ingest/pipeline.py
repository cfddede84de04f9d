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
The run's ``IngestRun`` counts are written in the same transaction as step 5, batch by batch, so a killed run's
record says what it did; the next local run (or ``vislink reconcile``) marks it interrupted (``close_stale_runs``).

The public API is what every runner calls: the local runner (``runner.ingest``), the queue workers
(``queue.run_batch``) and add-variant (``reencode.encode_stored``):

- what a run is: ``IngestContext`` (collection, ``VariantTarget``s, weights, index, ``IngestSummary``),
  ``load_targets``, ``start_run`` / ``end_run`` (its ``IngestRun`` row);
- how work is cut: ``batches(items, size)``; ``prepare_items`` turns a batch of source items into
  ``WorkItem``s (register, fetch, hash, dedup);
- how one batch is executed: encode the work items (``workers.encode_batch``), then ``finish_batch``;
  ``execute_run`` runs that loop on this machine and records the run.
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

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vislink.config import Settings
from vislink.errors import FetchError
from vislink.hashing import sha256_file
from vislink.store import DescriptorVariant, Image, ImageDescriptor, ImageStatus, IngestRun, RunStatus, session_scope

log = logging.getLogger(__name__)

# SourceItem.metadata keys that are Image columns; anything else goes into Image.extra.
IMAGE_FIELDS = ("artist", "artist_dates", "title", "date_text", "year_start", "year_end", "technique", "location",
                "form", "type", "school", "timeframe")
_EXT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}
MAX_LISTED_FAILURES = 50


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
    duplicate_ids: set[int] = field(default_factory=set, repr=False)  # images this run counted as duplicates

    @property
    def duplicates(self) -> int:
        return self.skipped_by_reason.get("duplicate", 0)

    def record_failure(self, ref: str, reason: str, detail: str = "") -> None:
        self.failed += 1
        self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append((ref, f"{reason}: {detail}" if detail else reason))

    def record_skip(self, reason: str) -> None:
        self.skipped += 1
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1

    def record_duplicate(self, image_id: int) -> None:
        self.record_skip("duplicate")
        self.duplicate_ids.add(image_id)

    def take_back_duplicate(self, image_id: int) -> bool:
        """Take back a duplicate counted by this run (its original turned out bad); False if not ours."""
        if image_id not in self.duplicate_ids:
            return False
        self.duplicate_ids.discard(image_id)
        self.skipped -= 1
        self.skipped_by_reason["duplicate"] -= 1
        return True

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain data (a queued job's return value)."""
        return {"collection": self.collection, "run_id": self.run_id, "done": self.done, "skipped": self.skipped,
                "failed": self.failed, "failures_by_reason": dict(self.failures_by_reason),
                "skipped_by_reason": dict(self.skipped_by_reason), "failures": [list(f) for f in self.failures],
                "seconds": self.seconds}

    def format(self) -> str:
        rate = f" in {self.seconds:.1f} s ({self.done / self.seconds:.2f} images/s)" if self.seconds > 0 else ""
        lines = [f"collection {self.collection}: {self.done} done, {self.skipped} skipped, {self.failed} failed{rate}"]
        for reason, n in sorted(self.skipped_by_reason.items()):
            lines.append(f"  skipped {reason}: {n}")
        for reason, n in sorted(self.failures_by_reason.items()):
            lines.append(f"  failed {reason}: {n}")
        return "\n".join(lines)


@dataclass
class VariantTarget:
    """A plain copy of a ``DescriptorVariant`` row, safe to use outside its session: where vectors go."""

    id: int
    name: str
    qdrant_collection: str
    pca_path: str | None
    weights_name: str  # the weights (or ONNX model) that compute it, as its row records them


@dataclass
class WorkItem:
    """One image ready to decode and encode: registered, fetched, hashed, not a duplicate."""

    image_id: int
    source_ref: str
    path: Path  # the file to decode
    sha256: str
    ext: str
    variants: list[str]
    stored: bool = False  # already in the content-addressed store


@dataclass
class IngestContext:
    """What a run is: the collection, the variants it writes, the weights, the index and the summary it fills."""

    settings: Settings
    coll_id: int
    coll_name: str
    variants: list[VariantTarget]
    index: Any
    summary: IngestSummary
    fetcher: Any = None

    @property
    def weights(self) -> dict[str, str]:
        """{variant: weights name}: what ``workers.encode_batch`` computes each variant with."""
        return {v.name: v.weights_name for v in self.variants}

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


def load_targets(session: Session, coll_id: int, ids: Sequence[int] | None = None) -> list[VariantTarget]:
    """The collection's variants (or those of ``ids``) as ``VariantTarget``s, in the order they were added."""
    q = select(DescriptorVariant).where(DescriptorVariant.collection_id == coll_id).order_by(DescriptorVariant.id)
    if ids is not None:
        q = q.where(DescriptorVariant.id.in_(list(ids)))
    return [VariantTarget(v.id, v.name, v.qdrant_collection, v.pca_path, v.weights_name) for v in session.scalars(q)]


def _mark_failed(session: Session, img: Image, summary: IngestSummary, reason: str, detail: str = "") -> None:
    if img.sha256:
        img.extra = {**(img.extra or {}), "sha256": img.sha256}
    img.sha256 = None  # a failed file must not block a good copy of the same bytes... nor be deduplicated
    img.status = ImageStatus.failed
    img.failure_reason = f"{reason}: {detail}" if detail else reason
    summary.record_failure(img.source_ref, reason, detail)


def _mark_duplicate(img: Image, original: Image, sha: str, summary: IngestSummary) -> None:
    img.status = ImageStatus.duplicate
    img.duplicate_of_id = original.id
    img.file_path = original.file_path
    img.failure_reason = None
    img.extra = {**(img.extra or {}), "sha256": sha}
    summary.record_duplicate(img.id)


def _apply_metadata(img: Image, metadata: dict[str, Any]) -> None:
    for key in IMAGE_FIELDS:
        if key in metadata:
            setattr(img, key, metadata[key])
    extra = {k: v for k, v in metadata.items() if k not in IMAGE_FIELDS and k != "extra"}
    extra.update(metadata.get("extra") or {})
    img.extra = {**(img.extra or {}), **extra}


# -- stage A: register, fetch, hash, dedup (parent process) ------------------------------------------------
def prepare_items(ctx: IngestContext, session: Session, items: list) -> list[WorkItem]:
    """Register a batch of ``SourceItem``s, fetch what is not stored yet, hash and deduplicate: the images
    left to encode. Failures and skips are counted in ``ctx.summary``; every write is committed here."""
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
            summary.record_skip("repeated-in-source")
            continue
        seen.add(item.source_ref)
        img = rows.get(item.source_ref)
        if img is None:
            img = Image(collection_id=ctx.coll_id, source_ref=item.source_ref, status=ImageStatus.pending, extra={})
            _apply_metadata(img, item.metadata or {})
            session.add(img)
        elif img.status == ImageStatus.duplicate:
            summary.record_skip("duplicate")
            continue
        elif img.status == ImageStatus.done:
            missing = [v.name for v in ctx.variants if v.id not in have.get(img.id, set())]
            if not missing:
                summary.record_skip("already-done")
                continue
            todo.append((item, img, missing))
            continue
        else:  # pending (an interrupted run) or failed (retried: the cause may be gone)
            _apply_metadata(img, item.metadata or {})
        todo.append((item, img, [v.name for v in ctx.variants]))
    session.commit()  # registration is durable before any work on the image

    works: list[WorkItem] = []
    chunk_shas: dict[str, WorkItem] = {}
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
            try:
                sha = sha256_file(path)
            except OSError as exc:  # permission denied, a file gone or unreadable since it was listed
                _mark_failed(session, img, summary, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}")
                continue
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
        work = WorkItem(img.id, img.source_ref, path, sha, Path(img.file_path).suffix if stored else _guess_ext(path),
                     variant_names, stored=stored)
        chunk_shas[sha] = work
        works.append(work)
    session.commit()
    return works


def _fetch_all(ctx: IngestContext, items: list) -> dict[str, Path | Exception]:
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


def _fetch(ctx: IngestContext, item) -> Path:
    if getattr(item, "local_path", None):
        path = Path(item.local_path)
        if not path.is_file():
            raise FetchError(f"{path}: no such file")
        return path
    if getattr(item, "url", None):
        return Path(ctx.get_fetcher().fetch(item.url, expect="image"))  # a page or text is never kept
    raise FetchError(f"{item.source_ref}: the source gave neither a file nor a URL")


def _claim_sha(session: Session, img: Image, sha: str, ctx: IngestContext, summary: IngestSummary) -> bool:
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
def finish_batch(ctx: IngestContext, works: list[WorkItem], results: list) -> int:
    """Store the files, upsert the vectors and mark the images done (``results``: one ``EncodeResult`` per
    work item, in order). Returns how many images are done."""
    from vislink.index import Point
    from vislink.index.base import SparseVector
    from vislink.index.payload import image_payload
    from vislink.encoder.regions import Regions, region_payload
    from vislink.local.bow import DENSE_PLACEHOLDER

    summary = ctx.summary
    ok: list[tuple[WorkItem, Any]] = []
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
                if summary.take_back_duplicate(child.id):
                    _mark_failed(session, child, summary, res.reason, res.detail)
                else:
                    child.status, child.failure_reason = ImageStatus.failed, f"{res.reason}: {res.detail}"
        if not ok:
            _checkpoint(session, summary, 0)
    if not ok:
        return 0
    with session_scope() as session:
        images = {w.image_id: session.get(Image, w.image_id) for w, _ in ok}
        for v in ctx.variants:
            mine = [(w, r.vectors[v.name]) for w, r in ok if v.name in w.variants]
            # A bag of words (sift-bow) is the point's sparse vector, beside a constant dense placeholder.
            sparse = [vec for _, vec in mine] if mine and isinstance(mine[0][1], SparseVector) else None
            # A -regions variant: the global descriptor, its regions as the point's multivector, boxes in the payload.
            regional = [vec for _, vec in mine] if mine and isinstance(mine[0][1], Regions) else None
            points = [Point(w.image_id, DENSE_PLACEHOLDER if sparse else vec.vector if regional else vec,
                            {**image_payload(images[w.image_id], ctx.coll_name),
                             **(region_payload(vec) if regional else {})}) for w, vec in mine]
            if points:
                ctx.index.upsert(v.qdrant_collection, points, sparse=sparse,  # before `done`: see the module docstring
                                 regions=[r.vectors for r in regional] if regional else None)
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
        _checkpoint(session, summary, len(ok))
    for work, _ in ok:  # after the commit: these lines say what is durably done (the worker tests count them)
        log.info("encoded image %d (%s) for %s", work.image_id, work.source_ref, ",".join(work.variants))
    summary.done += len(ok)
    return len(ok)


def _checkpoint(session: Session, summary: IngestSummary, done_now: int) -> None:
    """The run's counts as of this batch, written in the transaction that marks its images done (or failed):
    a run killed at any moment keeps a record of what it committed. Local runs only (``summary.run_id``); the
    queue adds each job's counts when the job ends."""
    if summary.run_id is None:
        return
    run = session.get(IngestRun, summary.run_id)
    if run is None:
        return
    run.n_done, run.n_skipped, run.n_failed = summary.done + done_now, summary.skipped, summary.failed
    run.failures_by_reason = dict(summary.failures_by_reason)


# -- a run: the loop, the IngestRun row -------------------------------------------------------------------
def batches(items: Iterable, size: int) -> Iterator[list]:
    """``items`` cut into lists of ``size`` (the last may be shorter): the unit of prepare / encode / finish."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def start_run(coll_id: int, source_kind: str, source_ref: str | None, params: dict, *,
              embedded: bool = False) -> int:
    """Record a new running ``IngestRun`` and return its id. ``embedded``: this process holds the embedded
    index, so any other local run still marked running was killed and is marked interrupted."""
    with session_scope() as session:
        if embedded:
            # The embedded index admits one process per data folder, so a local run still marked running
            # is one that was killed: say so. (Queued runs and server set-ups may really run in parallel.)
            close_stale_runs(session, coll_id)
        run = IngestRun(collection_id=coll_id, source_kind=source_kind, source_ref=source_ref,
                        status=RunStatus.running, params=params)
        session.add(run)
        session.flush()
        return run.id


def done_by_run(session: Session, run: IngestRun) -> int:
    """How many images ``run`` finished, read from the store: images of its collection that are done with a
    descriptor encoded between the run's start and the next run's (local runs of one data folder never
    overlap). What a run's record should say even when the run was killed before writing its counts."""
    end = session.scalar(select(func.min(IngestRun.started_at)).where(IngestRun.collection_id == run.collection_id,
                                                                      IngestRun.id != run.id,
                                                                      IngestRun.started_at > run.started_at))
    q = (select(func.count(func.distinct(ImageDescriptor.image_id)))
         .join(Image, Image.id == ImageDescriptor.image_id)
         .where(Image.collection_id == run.collection_id, Image.status == ImageStatus.done,
                ImageDescriptor.encoded_at >= run.started_at))
    if end is not None:
        q = q.where(ImageDescriptor.encoded_at < end)
    return int(session.scalar(q) or 0)


def close_stale_runs(session: Session, coll_id: int | None = None, *, repair: bool = True) -> list[IngestRun]:
    """Local runs still marked running, for a caller that holds the embedded index (so no other local run is
    alive: these were killed): each is marked interrupted, its ``n_done`` brought up to what it committed
    (``done_by_run``; records of runs killed before counts were written batch by batch said 0) and
    ``params["recovered_done"]`` says so. Queued runs are left alone (their workers may still be running).
    Returns the runs (unchanged with ``repair=False``)."""
    q = select(IngestRun).where(IngestRun.status == RunStatus.running).order_by(IngestRun.id)
    if coll_id is not None:
        q = q.where(IngestRun.collection_id == coll_id)
    stale = [run for run in session.scalars(q) if not (run.params or {}).get("queued")]
    for run in stale if repair else ():
        done = done_by_run(session, run)
        if done > (run.n_done or 0):
            log.info("run %d: %d images done, its record said %d", run.id, done, run.n_done or 0)
            run.params = {**(run.params or {}), "recovered_done": done - (run.n_done or 0)}
            run.n_done = done
        run.status = RunStatus.interrupted
    return stale


def end_run(summary: IngestSummary, status: RunStatus) -> None:
    """Store the run's counts and final status on its ``IngestRun`` row."""
    with session_scope() as session:
        run = session.get(IngestRun, summary.run_id)
        run.status = status
        run.finished_at = datetime.now(timezone.utc)
        run.n_done, run.n_skipped, run.n_failed = summary.done, summary.skipped, summary.failed
        run.failures_by_reason = dict(summary.failures_by_reason)
        run.params = {**(run.params or {}), "skipped_by_reason": dict(summary.skipped_by_reason),
                      "failures": [list(f) for f in summary.failures], "seconds": round(summary.seconds, 3)}


Prepare = Callable[[IngestContext, Session, list], list[WorkItem]]


def execute_run(ctx: IngestContext, chunks: Iterator[list], prepare: Prepare = prepare_items, *, workers: int = 1,
                total: int | None = None, progress: bool = True, desc: str = "ingest") -> IngestSummary:
    """Run the loop over ``chunks`` on this machine: ``prepare`` each chunk (``prepare_items`` for source
    items, or another function turning a chunk into ``WorkItem``s), encode in ``workers`` (see ``workers``),
    ``finish_batch`` in order. The run's row says finished, interrupted (Ctrl-C) or failed at the end."""
    from vislink.ingest.workers import run_batches

    status = RunStatus.failed
    start = time.perf_counter()
    try:
        run_batches(ctx, chunks, prepare, finish_batch, workers=workers, total=total, progress=progress, desc=desc)
        status = RunStatus.finished
    except KeyboardInterrupt:
        status = RunStatus.interrupted
        raise
    finally:
        ctx.summary.seconds = time.perf_counter() - start
        end_run(ctx.summary, status)
    return ctx.summary
