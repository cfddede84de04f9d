"""After an ingest: collections that crossed the index policy's threshold get their HNSW graph built, without
the ingest waiting for it (vislink.index.policy, docs/index.md "Index policy").

- Embedded index (qdrant-edge): an ``index-optimize`` job is queued in the store. The holder (`vislink ui`,
  `vislink worker --embedded`) runs it after the ingest, in its long-job thread, while searches go on (exactly,
  until the graph is done); with no holder it waits for one, or for `vislink index optimize`. Building in the
  ingest itself would hold its answer for minutes (46 s at 100k x 512 on 2 cores, 24 min at 40k x 2048), and a
  background thread would die with a command-line ingest's process.
- Qdrant server: a collection set to exact (`vislink index optimize --mode exact`, m=0) gets its HNSW
  configuration back at once and the server builds in the background. Collections the server made keep its
  own graph (m 16 by default, above its 10 MB indexing threshold) and are left alone.
- Other backends (qdrant-local, memory) have no graph: nothing to do.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from vislink.index.policy import IndexPolicy, collection_dim

log = logging.getLogger(__name__)

KIND = "index-optimize"


def queue_index_builds(index: Any, collections: Iterable[str], settings: Any = None) -> list[str]:
    """For each collection that is exact and has at least the threshold's points: queue (embedded) or start
    (server) its HNSW build. Returns one line per collection acted on (also logged)."""
    policy = IndexPolicy.from_settings(settings)
    lines = []
    for name in collections:
        if index.index_mode(name).approximate:
            continue
        points = index.count(name)
        dim = collection_dim(index, name) if points else None
        mode = policy.mode_for(points, dim=dim)
        if not mode.approximate:
            continue
        if index.name == "qdrant-server":
            index.optimize(name, mode)
            lines.append(f"{name}: {points} points, at least {policy.min_points_for(dim)}: the server builds "
                         f"{mode.describe()} in the background")
        elif index.name.endswith("qdrant-edge"):  # locked-qdrant-edge: the workers' shared folder
            job = _queue(name)
            lines.append(f"{name}: {points} points, at least {policy.min_points_for(dim)}: " +
                         (f"queued job {job} ({KIND}) to build {mode.describe()}; the index holder runs it "
                          "(`vislink ui`, `vislink worker --embedded`), or run `vislink index optimize " + name + "`"
                          if job is not None else f"an {KIND} job for it is already queued"))
        else:
            continue
        log.info("index policy: %s", lines[-1])
    return lines


def _queue(collection: str) -> int | None:
    """Queue an index-optimize job for ``collection`` unless one is queued or running; its id."""
    from vislink.store import session_scope
    from vislink.store.jobs import list_jobs, submit

    with session_scope() as s:
        for job in list_jobs(s, kinds=[KIND], states=["queued", "running"], limit=200):
            if collection in (job.arguments or {}).get("collections", []):
                return None
        return submit(s, KIND, {"collections": [collection], "all": False, "mode": "auto", "quantization": None,
                                "recall_queries": 32})
