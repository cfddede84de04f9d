"""Import and export of the link graph: JSON, CSV, GraphML and GEXF (Gephi), all through one neutral
form, ``GraphData`` (annotators, groups with member refs, typed links), so that export then import is
lossless in every format that can carry it.

Image refs: ``source_ref`` by default (stable across databases), or ``wga_path`` or ``id``; on import
``auto`` tries source_ref, WGA path, then image id. Group keys: the group's ``external_id`` (an imported
group keeps the key it came with), else ``vislink:<id>``; on import the key becomes ``external_id`` and a
group with that key already in the collection is completed rather than duplicated.

Formats:
- JSON: ``{"format": "vislink-graph", "version": 1, "annotators": [...], "groups": [{"key", "title", "note",
  "created_by", "members": [refs]}], "links": [{"a", "b", "type", "note", "annotator"}]}``. On import also
  ``{"groups": {key: [refs]}}``, ``{"pairs": [...]}`` or a bare list of pairs (dicts) or of groups (lists).
- CSV: ``kind,ref_a,ref_b,type,group,title,note,annotator`` (``kind`` member or link), every cell a spreadsheet
  would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR first) written with a leading ``'``
  (``formats.spreadsheet``) and read back without it in this format (the one vislink writes); on import also a
  groups CSV (``ref``/``image``/``image_id``/``source_ref``/``wga_path`` and ``group``, optional ``title``)
  or a pairs CSV (``ref_a``, ``ref_b``, optional ``type``, ``note``, ``annotator``).
- GraphML / GEXF: nodes are refs with ``group``, ``group_title``, ``group_note``, ``group_created_by``
  (and ``artist``/``title`` for display); edges are group clique edges (``in_group``) and links
  (``link_type`` not empty, ``note``, ``annotator``). GraphML also keeps annotator details as a graph
  attribute; GEXF (no graph attributes) keeps annotator names only. Empty strings read back as no value.

Files written before groups had titles call the title ``name`` (JSON, CSV) or ``group_name`` (GraphML, GEXF):
import reads those too. A group imported without a title gets its members' common artist and title
(``titles.default_title``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from vislink.errors import NotFound, VislinkError
from vislink.formats.replica import is_replica_links_csv
from vislink.formats.spreadsheet import escape_cell, unescape_cell
from vislink.graph.annotators import get_or_create
from vislink.graph.audit import Change
from vislink.graph.edits import add_member, create_group, parse_link_type, set_links
from vislink.graph.refs import SHA256_REF, ImageResolver
from vislink.store.models import Annotator, Group, GroupMember, Image, Link, LinkType

FORMATS = ("json", "csv", "graphml", "gexf")
CSV_COLUMNS = ["kind", "ref_a", "ref_b", "type", "group", "title", "note", "annotator"]
_REF_COLUMNS = ("ref", "image", "image_id", "source_ref", "wga_path")


@dataclass
class GraphData:
    annotators: list[dict] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)


@dataclass
class ImportReport:
    groups_created: int = 0
    groups_completed: int = 0
    members_added: int = 0
    links_set: int = 0
    links_unchanged: int = 0
    annotators: int = 0
    missing_refs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"{self.groups_created} groups created, {self.groups_completed} completed "
                f"({self.members_added} members added), {self.links_set} links set, "
                f"{self.links_unchanged} unchanged, {self.annotators} annotators")
        if self.missing_refs:
            text += f"; {len(self.missing_refs)} refs not in the collection (e.g. {self.missing_refs[0]})"
        if self.skipped:
            text += f"; {len(self.skipped)} skipped (e.g. {self.skipped[0]})"
        return text


def format_of(path: Path | str, fmt: str | None = None) -> str:
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise VislinkError(f"{path}: unknown graph format {fmt!r}; use one of {', '.join(FORMATS)} "
                           "(from the file suffix or --format)")
    return fmt


def is_replica_file(path: Path | str, fmt: str | None = None) -> bool:
    """Whether importing ``path`` means reading Replica's ``links.csv`` (``import_replica``) rather than a
    vislink graph file (``import_graph``): ``fmt`` ``replica``, or no ``fmt`` and a ``.csv`` whose header has
    uid1 and uid2."""
    if fmt is not None:
        return fmt.lower() == "replica"
    return Path(path).suffix.lower() == ".csv" and is_replica_links_csv(path)


def _blank(value) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


# -- export --------------------------------------------------------------------------------------------

def collect_graph_data(session: Session, collection_id: int, ref: str = "source_ref") -> GraphData:
    resolver = ImageResolver(session, collection_id)
    names = {a.id: a.name for a in session.scalars(select(Annotator))}
    used: set[int] = set()
    data = GraphData()
    for group in session.scalars(select(Group).where(Group.collection_id == collection_id).order_by(Group.id)):
        members = session.scalars(select(GroupMember.image_id).where(GroupMember.group_id == group.id)
                                  .order_by(GroupMember.image_id)).all()
        used.add(group.created_by_id)
        data.groups.append({"key": group.external_id or f"vislink:{group.id}", "title": group.title,
                            "note": group.note, "created_by": names.get(group.created_by_id),
                            "members": [resolver.ref_of(m, ref) for m in members]})
    image = aliased(Image)
    links = session.scalars(select(Link).join(image, image.id == Link.image_a_id)
                            .where(image.collection_id == collection_id).order_by(Link.id))
    for link in links:
        used.add(link.annotator_id)
        data.links.append({"a": resolver.ref_of(link.image_a_id, ref), "b": resolver.ref_of(link.image_b_id, ref),
                           "type": LinkType(link.type).value, "note": link.note,
                           "annotator": names.get(link.annotator_id)})
    for annotator in session.scalars(select(Annotator).where(Annotator.id.in_([u for u in used if u]))
                                     .order_by(Annotator.name)):
        data.annotators.append({"name": annotator.name, "display_name": annotator.display_name,
                                "email": annotator.email, "is_active": annotator.is_active})
    return data


def to_networkx(data: GraphData, images: dict[str, dict] | None = None):
    import networkx as nx

    graph = nx.Graph(format="vislink-graph", annotators=json.dumps(data.annotators))
    images = images or {}

    def node(ref: str) -> None:
        if ref not in graph:
            info = images.get(ref, {})
            graph.add_node(ref, group="", group_title="", group_note="", group_created_by="",
                           artist=info.get("artist") or "", title=info.get("title") or "")

    for group in data.groups:
        for ref in group["members"]:
            node(ref)
            graph.nodes[ref].update(group=group["key"], group_title=group["title"] or "",
                                    group_note=group["note"] or "", group_created_by=group["created_by"] or "")
        for a, b in combinations(group["members"], 2):
            graph.add_edge(a, b, in_group=group["key"], link_type="", note="", annotator="")
    for link in data.links:
        node(link["a"]), node(link["b"])
        attrs = graph.get_edge_data(link["a"], link["b"]) or {"in_group": ""}
        attrs.update(link_type=link["type"], note=link["note"] or "", annotator=link["annotator"] or "")
        graph.add_edge(link["a"], link["b"], **attrs)
    return graph


def from_networkx(graph) -> GraphData:
    data = GraphData(annotators=json.loads(graph.graph.get("annotators") or "[]"))
    groups: dict[str, dict] = {}
    named: set[str] = set()
    for ref, attrs in graph.nodes(data=True):
        key = _blank(attrs.get("group"))
        if key is None:
            continue
        group = groups.setdefault(key, {"key": key,
                                        "title": _blank(attrs.get("group_title", attrs.get("group_name"))),
                                        "note": _blank(attrs.get("group_note")),
                                        "created_by": _blank(attrs.get("group_created_by")), "members": []})
        group["members"].append(str(ref))
    for a, b, attrs in graph.edges(data=True):
        link_type = _blank(attrs.get("link_type"))
        if link_type is not None:
            data.links.append({"a": str(a), "b": str(b), "type": link_type, "note": _blank(attrs.get("note")),
                               "annotator": _blank(attrs.get("annotator"))})
    data.groups = list(groups.values())
    named |= {g["created_by"] for g in data.groups} | {l["annotator"] for l in data.links}
    known = {a["name"] for a in data.annotators}
    data.annotators += [{"name": n} for n in sorted(x for x in named if x and x not in known)]
    return data


def write_graph(data: GraphData, path: Path | str, fmt: str | None = None,
                images: dict[str, dict] | None = None) -> Path:
    path = Path(path)
    fmt = format_of(path, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        payload = {"format": "vislink-graph", "version": 1, "annotators": data.annotators, "groups": data.groups,
                   "links": data.links}
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
    elif fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, CSV_COLUMNS)
            writer.writeheader()

            def row(**cells) -> None:  # no cell a spreadsheet would run as a formula
                writer.writerow({k: escape_cell(v) for k, v in cells.items()})

            for group in data.groups:
                for ref in group["members"]:
                    row(kind="member", ref_a=ref, group=group["key"], title=group["title"], note=group["note"],
                        annotator=group["created_by"])
            for link in data.links:
                row(kind="link", ref_a=link["a"], ref_b=link["b"], type=link["type"], note=link["note"],
                    annotator=link["annotator"])
    else:
        import networkx as nx

        graph = to_networkx(data, images)
        (nx.write_graphml if fmt == "graphml" else nx.write_gexf)(graph, path)
    return path


def export_graph(session: Session, collection_id: int, path: Path | str, fmt: str | None = None,
                 ref: str = "source_ref") -> GraphData:
    data = collect_graph_data(session, collection_id, ref)
    images = {}
    if format_of(path, fmt) in ("graphml", "gexf"):  # titles make the graph readable in Gephi
        resolver = ImageResolver(session, collection_id)
        images = {resolver.ref_of(i, ref): {"artist": im.artist, "title": im.title}
                  for i, im in resolver.by_id.items()}
    write_graph(data, path, fmt, images)
    return data


# -- import --------------------------------------------------------------------------------------------

def _read_csv(path: Path) -> GraphData:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        rows = [{k.strip().lower(): v for k, v in row.items() if k is not None} for row in reader]
    data = GraphData()
    groups: dict[str, dict] = {}
    ref_column = next((c for c in _REF_COLUMNS if c in columns), None)
    if "kind" in columns:  # vislink's own format: undo write_graph's formula escaping
        rows = [{k: unescape_cell(v) for k, v in row.items()} for row in rows]
    if "kind" in columns or {"ref_a", "ref_b"} <= set(columns):
        for line, row in enumerate(rows, start=2):
            kind = (row.get("kind") or "link").strip().lower()
            if kind == "member":
                key = _blank(row.get("group"))
                if key is None or not _blank(row.get("ref_a")):
                    raise VislinkError(f"{path}:{line}: a member row needs ref_a and group")
                group = groups.setdefault(key, {"key": key, "title": _blank(row.get("title", row.get("name"))),
                                                "note": _blank(row.get("note")),
                                                "created_by": _blank(row.get("annotator")), "members": []})
                group["members"].append(row["ref_a"].strip())
            elif kind == "link":
                if not _blank(row.get("ref_a")) or not _blank(row.get("ref_b")):
                    raise VislinkError(f"{path}:{line}: a link row needs ref_a and ref_b")
                data.links.append({"a": row["ref_a"].strip(), "b": row["ref_b"].strip(),
                                   "type": _blank(row.get("type")) or "positive", "note": _blank(row.get("note")),
                                   "annotator": _blank(row.get("annotator"))})
            else:
                raise VislinkError(f"{path}:{line}: unknown kind {kind!r} (member or link)")
    elif ref_column is None and {"file", "group"} <= set(columns):
        # A `file,group` manifest (what `vislink benchmark groups` reads): files relative to the CSV, matched to the
        # collection's images by content (sha256) wherever they came from, else by their path.
        for line, row in enumerate(rows, start=2):
            key, name = _blank(row.get("group")), _blank(row.get("file"))
            if key is None or name is None:
                continue  # a distractor row
            group = groups.setdefault(key, {"key": key, "title": None, "note": None, "created_by": None,
                                            "members": []})
            group["members"].append(_manifest_ref(path.parent, name.strip()))
            group["title"] = group["title"] or _blank(row.get("title"))
    elif ref_column and "group" in columns:
        for line, row in enumerate(rows, start=2):
            key, ref = _blank(row.get("group")), _blank(row.get(ref_column))
            if key is None or ref is None:
                continue  # an image in no group (a distractor row)
            group = groups.setdefault(key, {"key": key, "title": None, "note": None, "created_by": None,
                                            "members": []})
            group["members"].append(ref.strip())
            group["title"] = group["title"] or _blank(row.get("title"))
    else:
        raise VislinkError(f"{path}: cannot tell what this CSV holds from its columns {columns}; expected "
                           f"{','.join(CSV_COLUMNS)}, or a groups CSV (ref and group), or a file,group manifest, "
                           "or a pairs CSV (ref_a, ref_b[, type, note])")
    data.groups = list(groups.values())
    data.annotators = [{"name": n} for n in sorted({g["created_by"] for g in data.groups if g["created_by"]}
                                                  | {l["annotator"] for l in data.links if l["annotator"]})]
    return data


def _manifest_ref(folder: Path, name: str) -> str:
    """A manifest file as an image ref: ``sha256:<hex>`` of its content when the file is there (it matches the
    image whatever its source_ref), else its path as written (matched as a source_ref or a WGA path)."""
    from vislink.hashing import sha256_file

    file = (folder / name).resolve()
    return f"{SHA256_REF}{sha256_file(file)}" if file.is_file() else name


def _read_json(path: Path) -> GraphData:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise VislinkError(f"{path}: not valid JSON ({exc})") from exc
    data = GraphData()

    def pair(item) -> dict:
        if not isinstance(item, dict):
            raise VislinkError(f"{path}: a pair must be an object with a and b (or ref_a and ref_b), got {item!r}")
        a, b = item.get("a", item.get("ref_a")), item.get("b", item.get("ref_b"))
        if a is None or b is None:
            raise VislinkError(f"{path}: a pair needs a and b (or ref_a and ref_b): {item!r}")
        return {"a": str(a), "b": str(b), "type": item.get("type") or "positive", "note": item.get("note"),
                "annotator": item.get("annotator")}

    if isinstance(payload, list):
        if all(isinstance(x, list) for x in payload):
            payload = {"groups": {str(i): members for i, members in enumerate(payload)}}
        else:
            payload = {"links": payload}
    if not isinstance(payload, dict):
        raise VislinkError(f"{path}: expected a JSON object with groups and/or links")
    groups = payload.get("groups") or []
    if isinstance(groups, dict):
        groups = [{"key": str(k), "members": v} for k, v in groups.items()]
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("members"), list):
            raise VislinkError(f"{path}: a group needs a list of members: {str(group)[:100]}")
        data.groups.append({"key": str(group.get("key") or f"json:{len(data.groups)}"),
                            "title": group.get("title", group.get("name")),
                            "note": group.get("note"), "created_by": group.get("created_by"),
                            "members": [str(m) for m in group["members"]]})
    data.links = [pair(item) for item in (payload.get("links") or payload.get("pairs") or [])]
    data.annotators = [a if isinstance(a, dict) else {"name": str(a)} for a in payload.get("annotators") or []]
    return data


def read_graph(path: Path | str, fmt: str | None = None) -> GraphData:
    path = Path(path)
    fmt = format_of(path, fmt)
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    if fmt == "csv":
        return _read_csv(path)
    if fmt == "json":
        return _read_json(path)
    import networkx as nx

    try:
        graph = nx.read_graphml(path) if fmt == "graphml" else nx.read_gexf(path)
    except Exception as exc:  # the XML readers raise many kinds; say which file and why
        raise VislinkError(f"{path}: cannot read as {fmt} ({type(exc).__name__}: {exc})") from exc
    return from_networkx(graph)


def apply_graph_data(session: Session, collection_id: int, data: GraphData, *, annotator_id: int | None = None,
                     ref_kind: str = "auto", change: Change | None = None) -> ImportReport:
    """Write imported groups and links into the collection as one undoable change."""
    report = ImportReport()
    resolver = ImageResolver(session, collection_id, ref_kind)
    change = change or Change(session, annotator_id, "import")
    ids: dict[str, int] = {}
    for entry in data.annotators:
        annotator = get_or_create(session, entry["name"], display_name=entry.get("display_name"),
                                  email=entry.get("email"))
        annotator.display_name = annotator.display_name or entry.get("display_name")
        annotator.email = annotator.email or entry.get("email")
        ids[annotator.name] = annotator.id
        report.annotators += 1

    def who(name: str | None) -> int | None:
        if not name:
            return None
        if name not in ids:
            ids[name] = get_or_create(session, name).id
        return ids[name]

    def resolve(refs) -> list[int]:
        found = []
        for ref in refs:
            image_id = resolver.get(ref)
            if image_id is None:
                if ref not in report.missing_refs:
                    report.missing_refs.append(str(ref))
            else:
                found.append(image_id)
        return found

    for group in data.groups:
        members = resolve(group["members"])
        if not members:
            report.skipped.append(f"group {group['key']}: none of its images is in the collection")
            continue
        existing = session.scalar(select(Group).where(Group.collection_id == collection_id,
                                                      Group.external_id == group["key"]))
        current = {r[0] for r in session.execute(select(GroupMember.image_id, GroupMember.group_id)
                                                  .where(GroupMember.image_id.in_(members)))
                   if existing is None or r[1] != existing.id}
        elsewhere = [m for m in members if m in current]
        for image_id in elsewhere:
            report.skipped.append(f"image {image_id} of group {group['key']} is already in another group")
        members = [m for m in members if m not in current]
        if not members:
            continue
        if existing is None:
            create_group(session, members, annotator_id=annotator_id, title=_blank(group.get("title")),
                         note=_blank(group.get("note")), external_id=group["key"], change=change,
                         created_by_id=who(group.get("created_by")))
            report.groups_created += 1
        else:
            have = set(session.scalars(select(GroupMember.image_id).where(GroupMember.group_id == existing.id)))
            new = [m for m in members if m not in have]
            for image_id in new:
                add_member(session, existing.id, image_id, annotator_id=annotator_id, change=change)
            report.groups_completed += bool(new)
            report.members_added += len(new)
    items = []
    for link in data.links:
        pair = resolve([link["a"], link["b"]])
        if len(pair) == 2:
            items.append((pair[0], pair[1], parse_link_type(link.get("type") or "positive"),
                          _blank(link.get("note")), who(link.get("annotator"))))
    result = set_links(session, collection_id, items, change=change)
    report.links_set, report.links_unchanged = result["set"], result["unchanged"]
    report.skipped += [f"link {a} - {b}: {reason}" for a, b, reason in result["skipped"]]
    session.flush()
    return report


def import_graph(session: Session, collection_id: int, path: Path | str, fmt: str | None = None, *,
                 annotator_id: int | None = None, ref_kind: str = "auto") -> ImportReport:
    return apply_graph_data(session, collection_id, read_graph(path, fmt), annotator_id=annotator_id,
                            ref_kind=ref_kind)
