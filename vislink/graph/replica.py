"""Import of the Replica link annotations (EPFL, restricted to WGA images): ``links.csv``
(``uid1,uid2,group``) with ``images.csv`` (``uid, group, wga_page_url, wga_image_url, ..., set``).

Images are matched to the collection by WGA path: Replica's ``http://www.wga.hu/art/<path>`` against the
collection images' ``extra["wga_path"]`` (or a WGA ``source_ref``). Only links whose two ends are present
are imported, as positive links. Replica's ``group`` is the connected component of its links, not a
clique; the links are kept as they are and, by default, each Replica group with two or more present
images also becomes a vislink group (key ``replica:<group>``, note ``Replica group <group>``, titled after its
members' common artist and title). That is what the evaluation protocol
uses as targets, and it keeps images related when the images linking them are missing from the
collection. The ``set`` column becomes a split (default name ``replica``; rows without a set get no part).
The whole import is one change: ``undo_last`` of the importing annotator reverts it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from vislink.formats.replica import read_replica_files
from vislink.graph.audit import Change
from vislink.graph.io import GraphData, ImportReport, apply_graph_data
from vislink.graph.refs import ImageResolver
from vislink.graph.splits import PARTS, import_split


@dataclass
class ReplicaReport:
    n_images: int = 0  # rows of images.csv
    n_present: int = 0  # of those, found in the collection
    n_links: int = 0  # rows of links.csv
    n_links_present: int = 0  # both ends found
    n_groups: int = 0  # Replica groups
    n_groups_present: int = 0  # with two or more images found
    split_id: int | None = None
    split_counts: dict[str, int] = field(default_factory=dict)
    missing_examples: list[str] = field(default_factory=list)
    graph: ImportReport | None = None

    @property
    def n_missing(self) -> int:
        return self.n_images - self.n_present

    def summary(self) -> str:
        lines = [f"Replica images: {self.n_present} of {self.n_images} present in the collection, "
                 f"{self.n_missing} missing",
                 f"links: {self.n_links_present} of {self.n_links} with both ends present",
                 f"groups: {self.n_groups_present} of {self.n_groups} with two or more images present"]
        if self.graph is not None:
            lines.append(f"written: {self.graph.summary()}")
        if self.split_counts:
            lines.append("split: " + ", ".join(f"{p} {n}" for p, n in self.split_counts.items()))
        if self.missing_examples:
            lines.append("missing, e.g.: " + ", ".join(self.missing_examples[:5]))
        return "\n".join(lines)


def import_replica(session: Session, collection_id: int, links_csv: Path | str, images_csv: Path | str | None = None,
                   *, annotator_id: int | None = None, create_groups: bool = True,
                   split_name: str | None = "replica", overwrite_split: bool = True) -> ReplicaReport:
    files = read_replica_files(links_csv, images_csv)
    resolver = ImageResolver(session, collection_id, "wga_path")
    report = ReplicaReport(n_images=len(files.images), n_links=len(files.links))

    path_of = files.wga_paths()  # uid -> wga path (the import's image ref)
    present: dict[str, int] = {}  # uid -> image id
    groups: dict[str, list[str]] = defaultdict(list)
    sets: dict[int, str] = {}
    for row in files.images:
        image_id = resolver.get(row.wga_path)
        if image_id is None:
            if len(report.missing_examples) < 20:
                report.missing_examples.append(row.wga_path)
            continue
        present[row.uid] = image_id
        if row.group:
            groups[row.group].append(row.uid)
        if row.part in PARTS:
            sets[image_id] = row.part
    report.n_present = len(present)
    report.n_groups = len({row.group for row in files.images if row.group})

    data = GraphData()
    for link in files.links:
        if link.uid1 in present and link.uid2 in present:
            data.links.append({"a": path_of[link.uid1], "b": path_of[link.uid2], "type": "positive",
                               "note": None, "annotator": None})
    report.n_links_present = len(data.links)
    for key, uids in sorted(groups.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0):
        if len(uids) >= 2:
            report.n_groups_present += 1
            if create_groups:
                data.groups.append({"key": f"replica:{key}", "title": None, "note": f"Replica group {key}",
                                    "created_by": None, "members": sorted(path_of[u] for u in uids)})
    change = Change(session, annotator_id, "import_replica")
    report.graph = apply_graph_data(session, collection_id, data, annotator_id=annotator_id, ref_kind="wga_path",
                                    change=change)
    if split_name and sets:
        split = import_split(session, collection_id, split_name, sets, overwrite=overwrite_split)
        report.split_id = split.id
        report.split_counts = {p: sum(1 for v in sets.values() if v == p) for p in PARTS}
    return report
