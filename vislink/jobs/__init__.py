"""Jobs: long work and short requests kept in the SQL store (``vislink.store.jobs``) and run by the process that
holds the embedded index, so that the CLI and the UI work while the other runs (docs/jobs.md).

- ``kinds``: what each job kind does (ingest, add-variant, evaluate; the short requests search and index-info),
  registered by name;
- ``holder``: ``Holder`` runs them in background threads (``vislink worker --embedded``, the UI's process);
- ``client``: what an asking process does: ``index_holder`` (run here, or who holds the index), ``submit``,
  ``follow``, ``ask`` (a short request and its answer).
"""

from vislink.jobs.client import ask, follow, held_elsewhere, index_holder, submit
from vislink.jobs.holder import Holder, start_holder
from vislink.jobs.kinds import JobCancelled, JobContext, get_kind, list_kinds, quick_kinds

__all__ = ["Holder", "JobCancelled", "JobContext", "ask", "follow", "get_kind", "held_elsewhere", "index_holder",
           "list_kinds", "quick_kinds", "start_holder", "submit"]
