"""Find and repair disagreements between the SQL store (the source of truth) and the vector index.

For each descriptor variant of each collection:
- **orphan points**: points whose image is not ``done`` with a descriptor row for the variant (a run killed
  between upsert and commit, a deleted image): deleted. A pending image is encoded again by the next ingest.
- **missing points**: descriptor rows (or a whole Qdrant collection) without their point: the rows are
  dropped and the images encoded again from their stored files.
- **payload drift**: a point whose payload differs from what the image's SQL row says (metadata edited
  after ingest): the payload is rewritten (same vector).
- **missing descriptors**: done images without a descriptor row for the variant (a variant added and
  interrupted): encoded.

And for the runs (``reconcile_runs``): a local run still marked running while nothing runs (it was killed) is
marked interrupted, its record's done count brought up to what it committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from vislink.config import get_settings
from vislink.store import Collection, DescriptorVariant, Image, ImageDescriptor, ImageStatus, session_scope

log = logging.getLogger(__name__)


@dataclass
class VariantReport:
    collection: str
    variant: str
    qdrant_collection: str
    points: int = 0
    rows: int = 0
    orphan_points: list[int] = field(default_factory=list)
    missing_points: list[int] = field(default_factory=list)
    payload_drift: list[int] = field(default_factory=list)
    missing_descriptors: list[int] = field(default_factory=list)
    collection_missing: bool = False

    @property
    def ok(self) -> bool:
        return not (self.orphan_points or self.missing_points or self.payload_drift or self.missing_descriptors
                    or self.collection_missing)

    def format(self) -> str:
        head = f"{self.collection} / {self.variant}: {self.points} points, {self.rows} done rows"
        if self.ok:
            return head + ": in agreement"
        parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in (
            ("orphan_points", self.orphan_points), ("missing_points", self.missing_points),
            ("payload_drift", self.payload_drift), ("missing_descriptors", self.missing_descriptors)) if v]
        if self.collection_missing:
            parts.insert(0, "Qdrant collection missing")
        return head + ": " + ", ".join(parts)


@dataclass
class RunReport:
    """A killed local run's record, as found (``done_before``) and as repaired (``done``)."""

    run_id: int
    collection: str
    source_kind: str
    done_before: int
    done: int

    def format(self) -> str:
        counts = (f"{self.done} done (its record said {self.done_before})" if self.done != self.done_before
                  else f"{self.done} done")
        return f"run {self.run_id} ({self.collection}, {self.source_kind}) was killed: interrupted, {counts}"


def reconcile_runs(collection: str | None = None, *, repair: bool = True) -> list[RunReport]:
    """Local runs still marked running although none can be (this process holds the embedded index): marked
    interrupted, ``n_done`` brought up to the images they finished (``pipeline.close_stale_runs``). With a
    server index (runs of several machines may really be running) nothing is touched."""
    from vislink.index import open_index
    from vislink.ingest.pipeline import close_stale_runs, done_by_run
    from vislink.store import get_collection

    settings = get_settings()
    if settings.effective_index_backend not in ("qdrant-edge", "qdrant-local"):
        return []
    open_index(settings)  # the embedded index admits one process: no other local run is alive now
    with session_scope() as session:
        coll_id = get_collection(session, collection).id if collection is not None else None
        names = dict(session.execute(select(Collection.id, Collection.name)).all())
        out = [RunReport(r.id, names[r.collection_id], r.source_kind, r.n_done or 0,
                         max(r.n_done or 0, done_by_run(session, r)))
               for r in close_stale_runs(session, coll_id, repair=False)]
        if repair:
            close_stale_runs(session, coll_id)
    for rep in out:
        log.info("%s", rep.format())
    return out


def _scroll_all(index, name: str) -> dict[int, dict]:
    points: dict[int, dict] = {}
    offset = None
    while True:
        page, offset = index.scroll(name, limit=1024, offset=offset)
        for pid, payload, _ in page:
            points[pid] = payload
        if offset is None:
            return points


def _same(a, b) -> bool:
    return all(a.get(k) == b.get(k) for k in b)


def check(collection: str | None = None) -> list[VariantReport]:
    """What disagrees, per variant (reads only)."""
    from vislink.index import open_index
    from vislink.index.payload import image_payload

    index = open_index(get_settings())
    reports = []
    with session_scope() as session:
        q = select(Collection).order_by(Collection.name)
        if collection is not None:
            from vislink.store import get_collection

            q = q.where(Collection.id == get_collection(session, collection).id)
        for coll in session.scalars(q):
            done = {img.id: img for img in session.scalars(
                select(Image).where(Image.collection_id == coll.id, Image.status == ImageStatus.done))}
            for var in session.scalars(select(DescriptorVariant).where(DescriptorVariant.collection_id == coll.id)
                                       .order_by(DescriptorVariant.id)):
                rep = VariantReport(coll.name, var.name, var.qdrant_collection)
                rows = set(session.scalars(select(ImageDescriptor.image_id)
                                           .where(ImageDescriptor.variant_id == var.id)))
                rep.rows = len(rows)
                if index.collection_exists(var.qdrant_collection):
                    points = _scroll_all(index, var.qdrant_collection)
                else:
                    rep.collection_missing, points = True, {}
                rep.points = len(points)
                good = rows & done.keys()
                rep.orphan_points = sorted(set(points) - good)
                rep.missing_points = sorted(rows - set(points))
                rep.missing_descriptors = sorted(done.keys() - rows)
                rep.payload_drift = sorted(i for i in good & set(points)
                                           if not _same(points[i], image_payload(done[i], coll.name)))
                reports.append(rep)
    return reports


def reconcile(collection: str | None = None, *, repair: bool = True, progress: bool = True,
              workers: int = 1) -> list[VariantReport]:
    """Check, then (with ``repair``) make the index agree with SQL. Returns the reports of the check."""
    from vislink.index import Point, open_index
    from vislink.index.payload import PAYLOAD_INDEXES, image_payload
    from vislink.ingest.reencode import encode_stored

    reports = check(collection)
    if not repair:
        return reports
    reconcile_runs(collection)
    index = open_index(get_settings())
    for rep in reports:
        if rep.ok:
            continue
        with session_scope() as session:
            var = session.scalar(select(DescriptorVariant).where(DescriptorVariant.qdrant_collection ==
                                                                 rep.qdrant_collection))
            coll_id, var_id = var.collection_id, var.id
            if rep.collection_missing:
                index.create_collection(var.qdrant_collection, var.dimension, payload_indexes=PAYLOAD_INDEXES)
            if rep.orphan_points:
                index.delete(var.qdrant_collection, rep.orphan_points)
            if rep.payload_drift:
                found = index.retrieve(var.qdrant_collection, rep.payload_drift, with_vectors=True)
                points = [Point(pid, vec, image_payload(session.get(Image, pid), rep.collection))
                          for pid, _, vec in found]
                index.upsert(var.qdrant_collection, points)
            if rep.missing_points:
                session.execute(delete(ImageDescriptor).where(ImageDescriptor.variant_id == var_id,
                                                              ImageDescriptor.image_id.in_(rep.missing_points)))
        todo = sorted(set(rep.missing_points) | set(rep.missing_descriptors))
        if todo:
            encode_stored(coll_id, [var_id], image_ids=todo, workers=workers, progress=progress,
                          source_kind="reconcile")
        log.info("repaired %s", rep.format())
    return reports
