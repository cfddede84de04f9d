"""Job kinds by name: ``register_kind(name, quick=...)``; ``get_kind(name)``. A kind is a function
``(ctx: JobContext, arguments: dict) -> dict`` (the job's result, plain JSON data) run by a holder. Long kinds
report progress through ``ctx`` and stop at ``ctx.check()`` when cancelled; quick kinds (short requests a
command waits for: a search, the index's collections) run on their own thread beside the long one."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vislink.errors import ConfigError

KindFn = Callable[["JobContext", dict], dict]


class JobCancelled(Exception):
    """Raised by ``JobContext.check`` when the job was cancelled (or its holder is stopping)."""

    def __init__(self, requeue: bool = False):
        super().__init__("stopping: the holder stops" if requeue else "cancelled")
        self.requeue = requeue  # the holder stops: the job goes back to the queue instead of ending


@dataclass
class Kind:
    name: str
    fn: KindFn
    quick: bool
    help: str


_KINDS: dict[str, Kind] = {}


def register_kind(name: str, *, quick: bool = False, help: str = "") -> Callable[[KindFn], KindFn]:
    def deco(fn: KindFn) -> KindFn:
        _KINDS[name] = Kind(name, fn, quick, help or (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return deco


def get_kind(name: str) -> Kind:
    if name not in _KINDS:
        raise ConfigError(f"unknown job kind {name!r}; known: {', '.join(sorted(_KINDS))}")
    return _KINDS[name]


def list_kinds() -> list[str]:
    return sorted(_KINDS)


def quick_kinds() -> list[str]:
    return sorted(k for k, v in _KINDS.items() if v.quick)


class JobContext:
    """What a running job sees: its id, ``report`` (progress, written by the holder's next heartbeat) and
    ``check`` (raises ``JobCancelled`` once the job was cancelled or its holder stops)."""

    def __init__(self, job_id: int, index: Any = None):
        self.job_id = job_id
        self.index = index
        self.cancel = threading.Event()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._progress: dict[str, Any] = {}

    def report(self, *, done: int | None = None, total: int | None = None, counts: dict | None = None,
               errors: list | None = None, message: str | None = None) -> None:
        with self._lock:
            for key, value in (("progress_done", done), ("progress_total", total), ("counts", counts),
                               ("errors", errors), ("message", message)):
                if value is not None:
                    self._progress[key] = value

    def take_progress(self) -> dict[str, Any]:
        with self._lock:
            out, self._progress = self._progress, {}
            return out

    def check(self) -> None:
        if self.stopping.is_set():
            raise JobCancelled(requeue=True)
        if self.cancel.is_set():
            raise JobCancelled()


# -- ingest ----------------------------------------------------------------------------------------------------
def source_stream(source: dict[str, Any]):
    """(items, source_kind, source_ref) of a source description: {"kind": "folder", "root", "metadata"},
    {"kind": "iiif", "manifest", "all_canvases"}, {"kind": "urls", "csv"}, {"kind": "wga", "catalog",
    "images_root", "where", "timeframe", "limit"} or {"kind": "files", "paths"}."""
    from vislink.ingest import sources
    from vislink.ingest.sources.base import SourceItem

    kind = source.get("kind")
    if kind == "folder":
        from vislink.ingest.sources.folder import folder_items

        root = Path(source["root"])
        meta = Path(source["metadata"]) if source.get("metadata") else None
        return folder_items(root, meta), "folder", str(root.resolve())
    if kind == "iiif":
        return (sources.iiif_items(source["manifest"], all_canvases=bool(source.get("all_canvases"))), "iiif",
                source["manifest"])
    if kind == "urls":
        return sources.url_csv_items(Path(source["csv"])), "urls", source["csv"]
    if kind == "wga":
        root = Path(source["images_root"]) if source.get("images_root") else None
        return (sources.wga_catalog_items(Path(source["catalog"]), images_root=root, where=source.get("where"),
                                          timeframe=source.get("timeframe"), limit=source.get("limit")),
                "wga", source["catalog"])
    if kind == "files":
        items = [SourceItem(str(Path(p).resolve()), {"title": Path(p).stem, "extra": {}},
                            local_path=Path(p).resolve()) for p in source["paths"]]
        return items, source.get("source_kind", "file"), source.get("source_ref")
    raise ConfigError(f"unknown ingest source {kind!r}: folder, iiif, urls, wga or files")


def left_out_lines(stream, n_items: int) -> list[str]:
    """What a source left out (unreadable rows, missing files), as the CLI prints it."""
    counts = getattr(stream, "counts", None)
    if counts is None or not getattr(stream, "skipped", None):
        return []
    lines = [f"source: {n_items} items, {len(stream.skipped)} left out ("
             + ", ".join(f"{n} {reason}" for reason, n in counts().most_common()) + ")"]
    for left in stream.skipped[:10]:
        lines.append(f"  left out {left.source_ref}: {left.reason}" + (f" ({left.detail})" if left.detail else ""))
    if len(stream.skipped) > 10:
        lines.append(f"  ... and {len(stream.skipped) - 10} more")
    return lines


def _counts(summary) -> dict[str, Any]:
    return {"done": summary.done, "skipped": summary.skipped, "failed": summary.failed,
            "failures_by_reason": dict(summary.failures_by_reason),
            "skipped_by_reason": dict(summary.skipped_by_reason)}


@register_kind("ingest", help="ingest a source (folder, IIIF, URL CSV, WGA catalog, files) into a collection")
def run_ingest(ctx: JobContext, args: dict) -> dict:
    """Ingest a source into a collection (resumable: a job run again skips what is done)."""
    from vislink.ingest.runner import ingest

    stream, source_kind, source_ref = source_stream(args["source"])
    items = list(stream)
    ctx.report(total=len(items), done=0, message=f"ingesting {len(items)} items into {args['collection']}")
    ctx.check()

    run_ids: list[int] = []

    def on_batch(summary) -> None:
        if not run_ids and summary.run_id is not None:
            run_ids.append(summary.run_id)
        ctx.report(done=summary.done + summary.skipped + summary.failed, counts=_counts(summary),
                   errors=[list(f) for f in summary.failures])
        ctx.check()

    try:
        summary = ingest(args["collection"], items, variants=args.get("variants") or None,
                         weights=args.get("weights"), batch_size=int(args.get("batch_size") or 16),
                         workers=int(args.get("workers") or 1), progress=False, source_kind=source_kind,
                         source_ref=source_ref, index=ctx.index, on_batch=on_batch)
    except JobCancelled as exc:
        if run_ids:  # the run stopped on purpose: its record says interrupted, not failed
            _mark_interrupted(run_ids[0], "job stopped by its holder" if exc.requeue else "job cancelled")
        raise
    ctx.report(done=summary.done + summary.skipped + summary.failed, counts=_counts(summary),
               errors=[list(f) for f in summary.failures], message="finished")
    return {"lines": left_out_lines(stream, len(items)) + [summary.format()], "summary": summary.as_dict()}


def _mark_interrupted(run_id: int, why: str) -> None:
    from vislink.store import IngestRun, RunStatus, session_scope

    with session_scope() as session:
        run = session.get(IngestRun, run_id)
        if run is not None:
            run.status = RunStatus.interrupted
            run.params = {**(run.params or {}), "stopped": why}


@register_kind("add-variant", help="compute a new descriptor variant of a collection from its stored files")
def run_add_variant(ctx: JobContext, args: dict) -> dict:
    """Compute a new descriptor variant of a collection from its stored files."""
    from vislink.ingest.reencode import add_variant

    ctx.report(message=f"adding {args['variant']} to {args['collection']}")
    row = add_variant(args["collection"], args["variant"], sample=args.get("sample"),
                      workers=int(args.get("workers") or 1), progress=False)
    return {"lines": [f"variant {row.name} of {args['collection']}: {row.dimension}-d, Qdrant collection "
                      f"{row.qdrant_collection}"]}


@register_kind("evaluate", help="evaluate a collection's descriptor variants (weighted recall, stored runs)")
def run_evaluate(ctx: JobContext, args: dict) -> dict:
    """Evaluate descriptor variants of a collection (what `vislink evaluate` runs once)."""
    from vislink.evaluation.reports import format_table, table1_cutoffs
    from vislink.evaluation.schedule import evaluate_and_check

    ctx.report(message=f"evaluating {args['collection']}")
    max_drop = float(args.get("max_drop", 0.02))
    result = evaluate_and_check(args["collection"], args.get("variants") or None, split=args.get("split"),
                                part=args.get("part", "test"), cutoffs=args["cutoffs"],
                                out=Path(args["out"]) if args.get("out") else None, max_drop=max_drop,
                                max_depth=args.get("max_depth"), progress=False)
    r0 = result.reports[0]
    gallery = min(r.n_gallery for r in result.reports)
    lines = [f"{result.title}: {r0.n_queries} queries, {r0.n_gallery} images searched (exact), weighted recall in %",
             format_table(result.reports, table1_cutoffs(r0.cutoffs, gallery)),
             f"runs stored: {', '.join(str(r.run_id) for r in result.reports)}; reports: "
             f"{result.paths['markdown']}, {result.paths['json']}, {result.paths['plot']}"]
    alerts = [f"ALERT: {d.message()} (more than {100 * max_drop:.1f} allowed)" for d in result.drops]
    return {"lines": lines, "alerts": alerts, "exit_code": 3 if result.drops else 0}


@register_kind("benchmark-transforms", help="the transformations benchmark of a collection (its own index)")
def run_benchmark_transforms(ctx: JobContext, args: dict) -> dict:
    """`vislink benchmark transforms --collection`: robustness of a collection's variants to link-like
    transformations, searched in the collection's own index."""
    from vislink.config import get_settings
    from vislink.evaluation.reports import format_transforms_table, write_transform_reports
    from vislink.evaluation.transforms import benchmark_collection

    collection = args["collection"]
    ctx.report(message=f"benchmarking transformations on {collection}")
    cuts = tuple(args["cutoffs"])
    reports = benchmark_collection(collection, args.get("variants"), transforms=args.get("transforms"),
                                   strength=float(args["strength"]), sample=args.get("sample"),
                                   seed=int(args.get("seed", 0)), cutoffs=cuts, cache=bool(args.get("cache", True)),
                                   progress=False, store=bool(args.get("store", True)))
    r0 = reports[0]
    out = Path(args["out"]) if args.get("out") else get_settings().reports_dir
    paths = write_transform_reports(reports, out, title=f"Benchmark transforms:{collection}", cutoffs=cuts)
    stored = f"runs stored: {', '.join(str(r.run_id) for r in reports)}; " if args.get("store", True) else ""
    return {"lines": [f"transforms:{collection}: {r0.params['n_images']} images x {len(r0.params['transforms'])} "
                      f"transformations (strength {args['strength']}) searched among {r0.n_gallery} untransformed "
                      "images (exact); in %", format_transforms_table(reports),
                      f"{stored}reports: {paths['markdown']}, {paths['json']}, {paths['plot']}"]}


@register_kind("proposals-build", help="propose links over a whole collection (nearest-neighbour pairs, docs/discovery.md)")
def run_proposals_build(ctx: JobContext, args: dict) -> dict:
    """`vislink proposals build`: every image's top k searched in the held index, the pairs the rule keeps
    stored as open proposals (verdicts kept)."""
    from vislink.evaluation.proposals import build_proposals

    ctx.report(message=f"proposing links in {args['collection']} / {args['variant']}")

    def on_progress(done: int, total: int) -> None:
        ctx.report(done=done, total=total)
        ctx.check()  # a cancelled build stops between chunks; the open proposals are replaced only at the end

    report = build_proposals(args["collection"], args["variant"], k=int(args.get("k", 10)),
                             min_score=None if args.get("min_score") is None else float(args["min_score"]), rule=args.get("rule", "mutual"),
                             cross_artist=bool(args.get("cross_artist")), date_order=bool(args.get("date_order")),
                             school=args.get("school"), form=args.get("form"), verify=bool(args.get("verify")),
                             index=ctx.index, on_progress=on_progress)
    ctx.report(message="finished")
    return {"lines": [report.summary()], "report": report.as_dict()}


# -- short requests ----------------------------------------------------------------------------------------------
@register_kind("search", quick=True, help="a search answered by the holder (`vislink search` while it holds the index)")
def run_search(ctx: JobContext, args: dict) -> dict:
    """A search, with `vislink search`'s arguments; the results as plain data."""
    from vislink.search import parse_filter_args, search

    image = Path(args["image"]) if args.get("image") else None
    results = search(image, image_id=args.get("image_id"), collection=args["collection"],
                     variant=args.get("variant"), limit=int(args.get("limit", 20)), offset=int(args.get("offset", 0)),
                     filters=parse_filter_args(args.get("filters") or []), mirrored=bool(args.get("mirrored")),
                     exact=bool(args.get("exact")), verify=bool(args.get("verify")), verify_top=args.get("verify_top"),
                     region=args.get("region"), regions=args.get("regions"))
    return {"results": json.loads(json.dumps([r.as_dict() for r in results], default=str))}


@register_kind("index-info", quick=True, help="the held index's name and collections (`vislink doctor`)")
def run_index_info(ctx: JobContext, args: dict) -> dict:
    """The index this holder holds: its backend name and collections."""
    names = ctx.index.list_collections()
    return {"name": ctx.index.name, "collections": sorted(names)}


# -- the index policy ------------------------------------------------------------------------------------------
@register_kind("index-optimize", help="apply the index policy: HNSW (and int8) where a collection passed the "
                                      "threshold (`vislink index optimize`, queued by an ingest that crossed it)")
def run_index_optimize(ctx: JobContext, args: dict) -> dict:
    """Build HNSW graphs where the index policy says so (vislink.index.policy); one collection at a time, a
    cancel taking effect between collections (Edge's build itself cannot be interrupted)."""
    from vislink.index.policy import optimize_collection

    index = ctx.index
    if index is None:
        from vislink.index import open_index

        index = open_index()
    names = index.list_collections() if args.get("all") else list(args.get("collections") or [])
    lines, reports = [], []
    for done, name in enumerate(names):
        ctx.check()
        ctx.report(done=done, total=len(names), message=f"optimizing {name}")
        report = optimize_collection(index, name, mode=args.get("mode") or "auto",
                                     quantization=args.get("quantization"),
                                     recall_queries=int(args.get("recall_queries") or 32))
        lines.append(report.describe())
        reports.append(report.as_dict())
    ctx.report(done=len(names), total=len(names), message="finished")
    return {"lines": lines, "reports": reports}
