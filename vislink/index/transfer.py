"""Move a collection's points between index backends without encoding again (issue #18 item 4).

``export_collection(index, name, folder)`` writes the collection as batched ``.npz`` files (ids, dense vectors,
payloads as JSON, and the sparse vectors / regional multivectors where the collection has them) and, last, a
``manifest.json`` (dimension, sparse / regions flags, payload indexes, count, each batch's sha256).
``import_collection(index, folder)`` creates the collection in another index and upserts the batches; it is
resumable: a batch whose ids are all present in the target already is skipped, so a killed import run again
continues where it stopped, and the target's count is checked against the manifest at the end.

Works between any two ``VectorIndex`` objects (qdrant-edge, qdrant-local, qdrant-server, memory).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from vislink.errors import FormatError, IndexUnavailable, NotFound
from vislink.index.base import Point, SparseVector, VectorIndex
from vislink.index.payload import PAYLOAD_INDEXES

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "vislink-index-export"
FORMAT_VERSION = 1
DEFAULT_BATCH = 1024


@dataclass
class TransferSummary:
    collection: str
    folder: Path
    count: int = 0          # points in the manifest
    batches: int = 0        # batches in the manifest
    written: int = 0        # batches exported or upserted by this run
    skipped: int = 0        # batches found already present in the target (import only)
    target_count: int | None = None
    dim: int = 0
    sparse: bool = False
    regions: bool = False
    notes: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def collection_layout(index: VectorIndex, collection: str, sample: list[tuple[int, Any, np.ndarray | None]]
                      ) -> tuple[int, bool, bool]:
    """(dim, sparse, regions) of a collection, found through the public interface from a first page of points."""
    if not sample or sample[0][2] is None:
        raise IndexUnavailable(f"vector collection {collection} in {index.name} is empty: nothing to export")
    dim = int(np.asarray(sample[0][2]).shape[0])
    ids = [pid for pid, _, _ in sample]
    probe = np.zeros((1, dim), dtype=np.float32)
    probe[0, 0] = 1.0
    try:
        index.query_regions(collection, probe, limit=1)
        regions = True
    except (IndexUnavailable, NotImplementedError):
        regions = False
    sparse = False
    try:
        sparse = bool(index.retrieve_sparse(collection, ids))
    except (IndexUnavailable, NotImplementedError):
        pass
    if not sparse:  # a sparse collection whose first points carry no sparse vector: ask the collection itself
        try:
            index.query_sparse(collection, SparseVector((0,), (1.0,)), limit=1)
            sparse = True
        except Exception:  # noqa: BLE001 - every backend refuses it its own way (qdrant-client: its own errors)
            pass
    return dim, sparse, regions


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def export_collection(index: VectorIndex, collection: str, folder: str | Path, *, batch_size: int = DEFAULT_BATCH,
                      payload_indexes: Mapping[str, str] | None = None, progress: bool = True,
                      on_batch: Callable[[int], None] | None = None) -> TransferSummary:
    """Write ``collection`` of ``index`` to ``folder`` (created; its old batches are replaced).
    ``payload_indexes`` default: vislink's (``PAYLOAD_INDEXES``) for ``vislink_*`` collections, none otherwise."""
    if not index.collection_exists(collection):
        raise NotFound(f"no vector collection named {collection!r} in {index.name}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # written last: a folder without one is an unfinished export
    for old in folder.glob("batch-*.npz"):
        old.unlink()
    if payload_indexes is None:
        payload_indexes = PAYLOAD_INDEXES if collection.startswith("vislink_") else {}
    total = index.count(collection)
    page, offset = index.scroll(collection, limit=batch_size, with_vectors=True)
    dim, sparse, regions = collection_layout(index, collection, page)
    summary = TransferSummary(collection, folder, dim=dim, sparse=sparse, regions=regions)
    batches: list[dict[str, Any]] = []
    bar = _bar(progress, total, f"export {collection}")
    try:
        while page:
            ids = np.array([pid for pid, _, _ in page], dtype=np.int64)
            arrays: dict[str, np.ndarray] = {
                "ids": ids,
                "vectors": np.stack([np.asarray(v, dtype=np.float32) for _, _, v in page]),
                "payloads": np.array(json.dumps([p for _, p, _ in page], default=str)),
            }
            if sparse:
                found = index.retrieve_sparse(collection, ids.tolist())
                svs = [found.get(int(i)) for i in ids]
                arrays["sparse_present"] = np.array([sv is not None for sv in svs], dtype=bool)
                arrays["sparse_offsets"] = np.cumsum([0] + [len(sv.indices) if sv else 0 for sv in svs]).astype(np.int64)
                arrays["sparse_indices"] = np.array([k for sv in svs if sv for k in sv.indices], dtype=np.int64)
                arrays["sparse_values"] = np.array([v for sv in svs if sv for v in sv.values], dtype=np.float32)
            if regions:
                found_r = index.retrieve_regions(collection, ids.tolist())
                mats = [found_r.get(int(i)) for i in ids]
                arrays["region_offsets"] = np.cumsum([0] + [len(m) if m is not None else 0 for m in mats]).astype(np.int64)
                present = [np.asarray(m, dtype=np.float32) for m in mats if m is not None]
                arrays["region_vectors"] = (np.concatenate(present) if present
                                            else np.zeros((0, dim), dtype=np.float32))
            name = f"batch-{len(batches):06d}.npz"
            _write_npz(folder / name, arrays)
            batches.append({"file": name, "count": int(len(ids)), "first_id": int(ids[0]), "last_id": int(ids[-1]),
                            "sha256": _sha256(folder / name)})
            summary.written += 1
            summary.count += len(ids)
            bar.update(len(ids))
            if on_batch is not None:
                on_batch(len(batches))
            if offset is None:
                break
            page, offset = index.scroll(collection, limit=batch_size, offset=offset, with_vectors=True)
    finally:
        bar.close()
    summary.batches = len(batches)
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "collection": collection, "source_backend": index.name,
                "dim": dim, "distance": "cosine", "sparse": sparse, "regions": regions,
                "payload_indexes": dict(payload_indexes), "count": summary.count, "batch_size": batch_size,
                "batches": batches}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, folder / MANIFEST)
    if summary.count != total:
        summary.notes.append(f"the collection counted {total} points before the export and {summary.count} were "
                             "written (was it written to meanwhile?)")
    return summary


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an export folder, checked; FormatError naming the file otherwise."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FormatError(str(path), "missing: not an export folder, or an export that did not finish "
                          "(`vislink index export` writes it last)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FormatError(str(path), f"unreadable manifest: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FormatError(str(path), f"not a vislink index export (format {FORMAT!r} expected)")
    if manifest.get("version") != FORMAT_VERSION:
        raise FormatError(str(path), f"export format version {manifest.get('version')!r}; this vislink reads "
                          f"version {FORMAT_VERSION}")
    for key, kind in (("collection", str), ("dim", int), ("count", int), ("batches", list),
                      ("payload_indexes", dict)):
        if not isinstance(manifest.get(key), kind):
            raise FormatError(str(path), f"field {key!r} missing or not a {kind.__name__}")
    for i, batch in enumerate(manifest["batches"]):
        if not (isinstance(batch, dict) and isinstance(batch.get("file"), str) and isinstance(batch.get("count"), int)
                and isinstance(batch.get("sha256"), str)) or "/" in batch["file"] or batch["file"].startswith("."):
            raise FormatError(str(path), f"batch entry {i} is malformed (file, count, sha256 expected)")
    if sum(b["count"] for b in manifest["batches"]) != manifest["count"]:
        raise FormatError(str(path), "the batches' counts do not add up to the manifest's count")
    return manifest


def _load_batch(folder: Path, batch: Mapping[str, Any], dim: int
                ) -> tuple[list[Point], list[SparseVector] | None, list[np.ndarray] | None, list[int]]:
    path = folder / batch["file"]
    if not path.is_file():
        raise FormatError(str(path), "batch file missing")
    if _sha256(path) != batch["sha256"]:
        raise FormatError(str(path), "sha256 differs from the manifest's (damaged or replaced file)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        payloads = json.loads(str(arrays["payloads"]))
        ids = [int(i) for i in arrays["ids"]]
        vectors = arrays["vectors"]
    except (OSError, KeyError, ValueError) as exc:
        raise FormatError(str(path), f"unreadable batch: {exc}") from exc
    if len(ids) != batch["count"] or vectors.shape != (len(ids), dim) or len(payloads) != len(ids):
        raise FormatError(str(path), f"holds {len(ids)} ids, vectors {vectors.shape} and {len(payloads)} payloads; "
                          f"the manifest says {batch['count']} points of {dim} dims")
    points = [Point(pid, vectors[j], payloads[j]) for j, pid in enumerate(ids)]
    sparse = regions = None
    if "sparse_offsets" in arrays:
        off, idx, val, present = (arrays["sparse_offsets"], arrays["sparse_indices"], arrays["sparse_values"],
                                  arrays["sparse_present"])
        sparse = [SparseVector(tuple(int(k) for k in idx[off[j]:off[j + 1]]),
                               tuple(float(v) for v in val[off[j]:off[j + 1]])) if present[j] else None
                  for j in range(len(ids))]
    if "region_offsets" in arrays:
        off, mats = arrays["region_offsets"], arrays["region_vectors"]
        regions = [mats[off[j]:off[j + 1]] if off[j + 1] > off[j] else None for j in range(len(ids))]
    return points, sparse, regions, ids


def _upsert(index: VectorIndex, collection: str, points: list[Point], sparse, regions) -> None:
    """Upsert a batch; points lacking a sparse vector or regions go in groups of their own (the interface
    takes those per call, for every point of it)."""
    groups: dict[tuple[bool, bool], list[int]] = {}
    for j in range(len(points)):
        key = (sparse is not None and sparse[j] is not None, regions is not None and regions[j] is not None)
        groups.setdefault(key, []).append(j)
    for (has_sparse, has_regions), rows in groups.items():
        index.upsert(collection, [points[j] for j in rows],
                     sparse=[sparse[j] for j in rows] if has_sparse else None,
                     regions=[regions[j] for j in rows] if has_regions else None)


def import_collection(index: VectorIndex, folder: str | Path, *, collection: str | None = None,
                      overwrite: bool = False, progress: bool = True,
                      on_batch: Callable[[int], None] | None = None) -> TransferSummary:
    """Load an export folder into ``index`` (as ``collection``, default the exported name). Resumable: batches
    whose ids are all in the target already are skipped (``overwrite=True`` upserts every batch again).
    ``on_batch(k)`` is called after the k-th batch is handled."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    name = collection or manifest["collection"]
    dim = int(manifest["dim"])
    summary = TransferSummary(name, folder, count=manifest["count"], batches=len(manifest["batches"]), dim=dim,
                              sparse=bool(manifest.get("sparse")), regions=bool(manifest.get("regions")))
    index.create_collection(name, dim, payload_indexes=manifest["payload_indexes"], sparse=summary.sparse,
                            regions=summary.regions)
    bar = _bar(progress, summary.count, f"import {name}")
    try:
        for k, batch in enumerate(manifest["batches"], 1):
            points, sparse, regions, ids = _load_batch(folder, batch, dim)
            if not overwrite and len(index.retrieve(name, ids)) == len(ids):
                summary.skipped += 1
            else:
                _upsert(index, name, points, sparse, regions)
                summary.written += 1
            bar.update(len(ids))
            if on_batch is not None:
                on_batch(k)
    finally:
        bar.close()
    summary.target_count = index.count(name)
    if summary.target_count < summary.count:
        raise IndexUnavailable(f"{name} in {index.name} holds {summary.target_count} points after the import of "
                               f"{summary.count} from {folder}: run the import again")
    if summary.target_count > summary.count:
        summary.notes.append(f"{name} in {index.name} holds {summary.target_count - summary.count} points beyond "
                             "the export's (it was not empty)")
    return summary


def export_folders(folder: str | Path) -> list[Path]:
    """The export folders at ``folder``: itself when it holds a manifest, else its sub-folders that do."""
    folder = Path(folder)
    if (folder / MANIFEST).exists():
        return [folder]
    subs = sorted(p for p in folder.iterdir() if (p / MANIFEST).exists()) if folder.is_dir() else []
    if not subs:
        raise FormatError(str(folder / MANIFEST), "missing: no export here (nor in a sub-folder)")
    return subs


class _NoBar:
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


def _bar(progress: bool, total: int, desc: str):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="pt")
