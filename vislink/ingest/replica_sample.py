"""The demo's online sample: a few hundred Web Gallery of Art images, including groups of linked works.

Nothing is shipped with vislink: the WGA catalog comes from wga.hu and the expert-annotated links from EPFL's
Replica project (the ``morpho_dataset.csv`` published in ``ludovicaschaerf/pattern_clusters``), both downloaded
at run time into the data folder's cache. The links between two WGA images become positive links; their
connected components are the linked groups of the sample; catalog paintings fill the rest as distractors.
Replica's file is read by ``vislink.formats.replica.replica_wga_links``; ``vislink.ingest.demo`` downloads,
ingests and links the sample.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from vislink.ingest.sources.base import SourceItem
from vislink.ingest.sources.wga import WGA_BASE_URL, wga_catalog_items

WGA_CATALOG_URL = "https://www.wga.hu/database/download/data_xls.zip"
REPLICA_LINKS_URL = ("https://raw.githubusercontent.com/ludovicaschaerf/pattern_clusters/"
                     "fa6957f9bdeffa7307ecd2fcb792509264152d75/my-application/data/morphograph/morpho_dataset.csv")


@dataclass
class DemoSample:
    items: list[SourceItem]
    links: list[tuple[str, str]]  # pairs of WGA paths (extra["wga_path"]) to link as positive
    groups: list[list[str]] = field(default_factory=list)

    @property
    def n_linked(self) -> int:
        return sum(len(g) for g in self.groups)


def build_demo_sample(catalog: Path | str, links: list[tuple[str, str]], *, size: int = 300,
                      linked_share: float = 0.5, seed: int = 0, base_url: str = WGA_BASE_URL) -> DemoSample:
    """About ``size`` catalog images: whole linked groups (largest first) up to ``linked_share`` of the
    sample, then paintings drawn at random (seeded) as distractors. Groups with an image missing from the
    catalog are left out, so that every link of the sample can be imported."""
    catalog_items = {item.metadata["extra"]["wga_path"]: item for item in wga_catalog_items(catalog, base_url=base_url)}
    graph = nx.Graph()
    graph.add_edges_from(links)
    components = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: (-len(c), c[0]))
    chosen: list[list[str]] = []
    budget = int(size * linked_share)
    for component in components:
        if all(p in catalog_items for p in component) and sum(map(len, chosen)) + len(component) <= budget:
            chosen.append(component)
    linked_paths = {p for c in chosen for p in c}
    paintings = sorted(p for p, item in catalog_items.items()
                       if p not in linked_paths and (item.metadata.get("form") or "").lower() == "painting")
    rng = random.Random(seed)
    distractors = rng.sample(paintings, min(len(paintings), max(0, size - len(linked_paths))))
    items = [catalog_items[p] for p in sorted(linked_paths) + sorted(distractors)]
    sample_links = [(a, b) for a, b in links if a in linked_paths and b in linked_paths]
    return DemoSample(items=items, links=sample_links, groups=chosen)
