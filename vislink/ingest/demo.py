"""The demo's collection, filled from the Python API as `vislink demo` fills it: encoder weights installed, a
folder of images or the online sample (Web Gallery of Art images with Replica's expert links between them,
see ``replica_sample``) ingested, the links imported, a ``demo`` annotator account created.

Each function reports its steps through ``step`` (a callable taking one line; default: the log), so the CLI
can print them."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from sqlalchemy import select

from vislink.config import Settings, get_settings
from vislink.errors import ConfigError, FetchError
from vislink.formats.replica import replica_wga_links
from vislink.ingest.replica_sample import REPLICA_LINKS_URL, WGA_CATALOG_URL, build_demo_sample

if TYPE_CHECKING:
    from vislink.ingest.pipeline import IngestSummary

log = logging.getLogger(__name__)

DEMO_ANNOTATOR = "demo"
REPLICA_ANNOTATOR = "replica"
Step = Callable[[str], None]


@dataclass
class DemoIngest:
    """What a demo ingest did: the ingest summary and, for the online sample, the expert links imported."""

    summary: IngestSummary
    n_links: int | None = None

    def format(self) -> str:
        text = self.summary.format()
        if self.n_links is not None:
            text += f"\n{self.n_links} expert links imported (Replica)"
        return text


def ensure_weights(weights: str, settings: Settings | None = None, step: Step | None = None):
    """Install the encoder weights ``weights`` unless they are ready; returns their ``WeightsInfo``."""
    from vislink.encoder.weights import describe_weights, install_weights

    step = step or log.info
    info = describe_weights(weights, settings)
    if not info.installed:
        step(f"installing encoder weights {weights}")
        info = install_weights(weights, settings)
    step(f"encoder weights {info.name} ready ({info.message})")
    return info


def ingest_demo_folder(collection: str, images: Path, metadata: Path | None = None, *, weights: str | None = None,
                       workers: int = 1, step: Step | None = None) -> DemoIngest:
    """Ingest every image under the folder ``images`` (with an optional metadata CSV keyed by relative path)."""
    from vislink.ingest import ingest
    from vislink.ingest.sources import folder_items

    step = step or log.info
    if not Path(images).is_dir():
        raise ConfigError(f"--images {images}: not a folder")
    step(f"ingesting {images} into collection {collection!r}")
    items = folder_items(images, metadata)
    summary = ingest(collection, items, weights=weights, workers=workers, source_kind="folder",
                     source_ref=str(Path(images).resolve()))
    return DemoIngest(summary)


def ingest_demo_sample(collection: str, *, size: int = 300, weights: str | None = None, workers: int = 1,
                       settings: Settings | None = None, catalog_url: str = "", links_url: str = "",
                       wga_url: str = "", step: Step | None = None) -> DemoIngest:
    """Download the WGA catalog and Replica's links (cached in the data folder), ingest a sample of about
    ``size`` images holding whole linked groups, and import the links between them. ``catalog_url``,
    ``links_url`` and ``wga_url`` replace the real sites (tests serve copies locally)."""
    from vislink.ingest import ingest
    from vislink.ingest.fetch import Fetcher
    from vislink.ingest.sources.wga import WGA_BASE_URL

    step = step or log.info
    settings = settings or get_settings()
    catalog_url = catalog_url or WGA_CATALOG_URL
    fetcher = Fetcher(settings.cache_dir / "http", timeout=60, connect_timeout=10, retries=2)
    try:
        step("downloading the Web Gallery of Art catalog and Replica's links")
        catalog = fetcher.fetch(catalog_url)
        links_file = fetcher.fetch(links_url or REPLICA_LINKS_URL)
    except FetchError as exc:
        raise FetchError(f"{exc}\nOffline? Give the demo a folder of images instead: ./run demo --images DIR") from exc
    # The catalog's .zip needs its own suffix for the reader; the cache names files by content.
    catalog_copy = settings.cache_dir / ("wga-catalog" + (Path(catalog_url.rsplit("/", 1)[-1]).suffix or ".zip"))
    catalog_copy.write_bytes(Path(catalog).read_bytes())
    sample = build_demo_sample(catalog_copy, replica_wga_links(links_file), size=size,
                               base_url=wga_url or WGA_BASE_URL)
    step(f"ingesting {len(sample.items)} WGA images ({len(sample.groups)} linked groups, "
         f"{sample.n_linked} linked images) into collection {collection!r}")
    summary = ingest(collection, sample.items, weights=weights, workers=workers, source_kind="wga-demo",
                     source_ref=catalog_url, fetcher=fetcher)
    return DemoIngest(summary, import_wga_links(collection, sample.links))


def import_wga_links(collection: str, links: list[tuple[str, str]], *, annotator: str = REPLICA_ANNOTATOR) -> int:
    """Positive links between the collection's encoded images named by WGA path (``extra["wga_path"]``), as one
    undoable change of ``annotator``; pairs with an end not in the collection are left out. Returns the
    number of links the collection now has among ``links`` (set or already there)."""
    from vislink.graph.annotators import get_or_create
    from vislink.graph.audit import Change
    from vislink.graph.edits import set_links
    from vislink.store import Image, ImageStatus, get_collection, session_scope

    with session_scope() as session:
        coll = get_collection(session, collection)
        by_path = {img.extra.get("wga_path"): img.id for img in session.scalars(
            select(Image).where(Image.collection_id == coll.id, Image.status == ImageStatus.done))}
        who = get_or_create(session, annotator, display_name="EPFL Replica (imported)")
        pairs = [(by_path[a], by_path[b], "positive", None, who.id) for a, b in links
                 if a in by_path and b in by_path]
        result = set_links(session, coll.id, pairs, change=Change(session, who.id, "import_replica"))
    return result["set"] + result["unchanged"]


def ensure_annotator(name: str = DEMO_ANNOTATOR, display_name: str = "Demo annotator") -> str | None:
    """An annotator account ``name`` with a fresh random password, the first time only: returns the
    password when the account was created, None when it existed already."""
    from vislink.graph.annotators import create_annotator, find_annotator
    from vislink.store import session_scope

    with session_scope() as session:
        if find_annotator(session, name) is not None:
            return None
        password = secrets.token_urlsafe(9)
        create_annotator(session, name, password, display_name=display_name)
        return password
