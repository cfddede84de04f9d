"""`vislink groups ...` and `vislink link ...`: the annotated link graph from the command line.

Images are named by ref: source_ref, WGA path (a/aachen/allegory.jpg) or image id."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

groups_app = typer.Typer(help="Annotated groups of linked images: import, export, statistics, splits, edits, undo.",
                         no_args_is_help=True)
link_app = typer.Typer(help="Typed links between two images (positive, negative, duplicate, proposal).",
                       no_args_is_help=True)

COLLECTION = typer.Option(..., "--collection", "-c", help="Collection name.")
ANNOTATOR = typer.Option(None, "--annotator", "-a", help="Who makes the edit (an annotator name; audited).")
EXPECTED_VERSION = typer.Option(None, "--expected-version", help="Refuse if the group changed since this version.")


def _session():
    from vislink.config import get_settings
    from vislink.store import session_scope

    # explicit URL: get_engine(None) is memoised for the process, settings may change (tests)
    return session_scope(get_settings().database_url)


def _annotator_id(session, name: str | None) -> int | None:
    if not name:
        return None
    from vislink.graph.annotators import get_annotator

    return get_annotator(session, name).id


@groups_app.command("import")
def import_cmd(
    file: Path = typer.Argument(...,
                                help="File to import: Replica links.csv, or a vislink CSV / JSON / GraphML / GEXF."),
    collection: str = COLLECTION,
    fmt: Optional[str] = typer.Option(None, "--format", "-f",
                                      help="replica, csv, json, graphml or gexf (default: from the file)."),
    images_csv: Optional[Path] = typer.Option(None, "--images-csv",
                                              help="Replica images.csv (default: next to links.csv)."),
    annotator: Optional[str] = ANNOTATOR,
    ref: str = typer.Option("auto", "--ref", help="How the file names images: auto, id, source_ref, wga_path."),
    groups: bool = typer.Option(True, "--groups/--no-groups",
                                help="Replica: also make one group per Replica group with 2+ images present."),
    split_name: str = typer.Option("replica", "--split-name", help="Replica: name of the split from the set column "
                                                                    "('' for none)."),
) -> None:
    """Import groups and links into a collection (one undoable change)."""
    from vislink.errors import NotFound
    from vislink.graph import get_collection, import_graph, import_replica, is_replica_file

    if not file.is_file():
        raise NotFound(f"{file}: no such file")
    with _session() as session:
        coll = get_collection(session, collection)
        who = _annotator_id(session, annotator)
        if is_replica_file(file, fmt):
            report = import_replica(session, coll.id, file, images_csv, annotator_id=who, create_groups=groups,
                                    split_name=split_name or None)
        else:
            report = import_graph(session, coll.id, file, fmt, annotator_id=who, ref_kind=ref)
        typer.echo(report.summary())


@groups_app.command("export")
def export_cmd(
    file: Path = typer.Argument(..., help="Output file: .json, .csv, .graphml or .gexf (opens in Gephi)."),
    collection: str = COLLECTION,
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="json, csv, graphml or gexf (default: suffix)."),
    ref: str = typer.Option("source_ref", "--ref", help="How to name images: source_ref, wga_path or id."),
) -> None:
    """Export a collection's groups, links and their annotators (import reads it back losslessly)."""
    from vislink.graph import export_graph, get_collection

    if ref not in ("source_ref", "wga_path", "id"):
        raise typer.BadParameter("use source_ref, wga_path or id", param_hint="--ref")
    with _session() as session:
        data = export_graph(session, get_collection(session, collection).id, file, fmt, ref)
    typer.echo(f"wrote {file}: {len(data.groups)} groups, {len(data.links)} links, {len(data.annotators)} annotators")


@groups_app.command("stats")
def stats_cmd(
    collection: str = COLLECTION,
    png: Optional[Path] = typer.Option(None, "--png", help="Also draw the group size histograms into this PNG."),
) -> None:
    """Group and component size histograms (as the paper's Fig. 3) and link counts."""
    from vislink.graph import format_stats, get_collection, graph_stats, plot_group_sizes

    with _session() as session:
        stats = graph_stats(session, get_collection(session, collection).id)
    typer.echo(format_stats(stats))
    if png is not None:
        typer.echo(f"wrote {plot_group_sizes(stats, png)}")


@groups_app.command("split")
def split_cmd(
    collection: str = COLLECTION,
    name: str = typer.Option("default", "--name", help="Split name."),
    fractions: str = typer.Option("0.5,0.25,0.25", "--fractions", help="Target image fractions train,val,test."),
    seed: int = typer.Option(0, "--seed", help="Seed (same seed, same split)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing split of that name."),
    distractors: Optional[str] = typer.Option(None, "--distractors",
                                              help="Put images in no group or link into this part (default: none)."),
) -> None:
    """Assign connected components to train / val / test, balanced by component size."""
    from vislink.errors import VislinkError
    from vislink.graph import assign_split, get_collection, split_summary

    try:
        values = [float(x) for x in fractions.split(",")]
    except ValueError:
        raise VislinkError(f"--fractions must be three numbers like 0.5,0.25,0.25 (got {fractions!r})") from None
    with _session() as session:
        coll = get_collection(session, collection)
        split = assign_split(session, coll.id, name, values, seed, overwrite=overwrite, distractor_part=distractors)
        summary = split_summary(session, split.id)
    for part in ("train", "val", "test"):
        entry = summary[part]
        sizes = " ".join(f"{s}x{n}" for s, n in entry["sizes"].items())
        typer.echo(f"{part:5} {entry['images']:6} images  {entry['components']:5} components  sizes {sizes}")


@groups_app.command("path")
def path_cmd(a: str = typer.Argument(..., help="First image (ref)."),
             b: str = typer.Argument(..., help="Second image (ref)."), collection: str = COLLECTION) -> None:
    """The shortest chain of confirmed links between two artworks."""
    from vislink.graph import ImageResolver, build_graph, get_collection, path_edges, shortest_path

    with _session() as session:
        coll = get_collection(session, collection)
        resolver = ImageResolver(session, coll.id)
        graph = build_graph(session, coll.id)
        path = shortest_path(session, resolver.require(a), resolver.require(b), graph)
        for edge in [None, *path_edges(graph, path)]:
            image = resolver.by_id[path[0] if edge is None else edge["b"]]
            via = ""
            if edge is not None:
                via = (f"  <- {edge['type']}" + (f" (group {edge['group']})" if edge["group"] else "")
                       + (f" link {edge['link']}" if edge["link"] else ""))
            typer.echo(f"{image.id:8}  {image.source_ref}{via}")
    typer.echo(f"{len(path) - 1} step(s)")


@groups_app.command("travel")
def travel_cmd(
    group_id: Optional[int] = typer.Argument(None, help="The group (or give --image)."),
    image: Optional[str] = typer.Option(None, "--image", help="Instead of a group: this image's linked component "
                                                              "(ref: source_ref, WGA path or id)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Write the timeline and map into this PNG."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the members, places and links as JSON."),
    collection: str = COLLECTION,
) -> None:
    """A pattern's travel: the members by date with their places (timeline and map), as text, PNG and JSON."""
    from vislink.errors import ConfigError, NotFound
    from vislink.graph import ImageResolver, get_collection
    from vislink.graph.travel import component_travel, group_travel
    from vislink.graph.travel_plot import save_png
    from vislink.store.models import Group
    from vislink.ui import thumbs

    if (group_id is None) == (image is None):
        raise ConfigError("give a GROUP_ID or --image REF (one of them)")
    with _session() as session:
        coll = get_collection(session, collection)
        make = lambda items: thumbs.thumbnails(items, 128)  # noqa: E731 - the drawing's thumbnails
        if image is not None:
            travel = component_travel(session, ImageResolver(session, coll.id).require(image), thumbnails=make)
        else:
            group = session.get(Group, group_id)
            if group is None or group.collection_id != coll.id:
                raise NotFound(f"no group with id {group_id} in collection {collection!r}")
            travel = group_travel(session, group_id, thumbnails=make)
    typer.echo(f"{travel.title}: {len(travel.members)} images" + (" (nearest part)" if travel.truncated else ""))
    for m in travel.members:
        where = (f"{m.place['name']}" + (" (school region)" if m.place["kind"] == "school" else "")
                 if m.place else f"? ({m.place_reason})")
        typer.echo(f"{m.id:8}  {m.date or 'undated':14.14} {m.label:28.28} {where}")
    if json_out is not None:
        travel.to_json(json_out)
        typer.echo(f"wrote {json_out}")
    if png is not None:
        typer.echo(f"wrote {save_png(travel, png)}")


@groups_app.command("list")
def list_cmd(collection: str = COLLECTION,
             limit: int = typer.Option(50, "--limit", help="Show at most N groups.")) -> None:
    """Groups of a collection: id, version, size, title."""
    from vislink.graph import get_collection, list_groups

    with _session() as session:
        groups = list_groups(session, get_collection(session, collection).id, limit=None, newest_first=False)
    for group in groups[:limit]:
        typer.echo(f"{group.id:6}  v{group.version:<3} {len(group.member_ids):4} images  {group.title or ''}")
    typer.echo(f"{len(groups)} groups")


@groups_app.command("create")
def create_cmd(refs: List[str] = typer.Argument(..., help="Images of the new group."), collection: str = COLLECTION,
               annotator: Optional[str] = ANNOTATOR,
               title: Optional[str] = typer.Option(None, "--title", "--name",
                                                   help="Its title (default: the images' common artist and title)."),
               note: Optional[str] = typer.Option(None, "--note")) -> None:
    """Make a new group of these images."""
    from vislink.graph import ImageResolver, create_group, get_collection

    with _session() as session:
        resolver = ImageResolver(session, get_collection(session, collection).id)
        group = create_group(session, [resolver.require(r) for r in refs],
                             annotator_id=_annotator_id(session, annotator), title=title, note=note)
        typer.echo(f"group {group.id} created with {len(set(refs))} images: {group.title or 'untitled'}")


@groups_app.command("add")
def add_cmd(group_id: int, ref: str, collection: str = COLLECTION, annotator: Optional[str] = ANNOTATOR,
            expected_version: Optional[int] = EXPECTED_VERSION) -> None:
    """Add an image to a group."""
    from vislink.graph import ImageResolver, add_member, get_collection

    with _session() as session:
        resolver = ImageResolver(session, get_collection(session, collection).id)
        group = add_member(session, group_id, resolver.require(ref), annotator_id=_annotator_id(session, annotator),
                           expected_version=expected_version)
        typer.echo(f"group {group.id} now at version {group.version}")


@groups_app.command("remove")
def remove_cmd(group_id: int, ref: str, collection: str = COLLECTION, annotator: Optional[str] = ANNOTATOR,
               expected_version: Optional[int] = EXPECTED_VERSION) -> None:
    """Take an image out of a group."""
    from vislink.graph import ImageResolver, get_collection, remove_member

    with _session() as session:
        resolver = ImageResolver(session, get_collection(session, collection).id)
        group = remove_member(session, group_id, resolver.require(ref), annotator_id=_annotator_id(session, annotator),
                              expected_version=expected_version)
        typer.echo(f"group {group.id} now at version {group.version}")


@groups_app.command("merge")
def merge_cmd(target: int = typer.Argument(..., help="The group that stays (keeps its id and title)."),
              sources: List[int] = typer.Argument(..., help="Groups whose images move into TARGET; they are deleted."),
              annotator: Optional[str] = ANNOTATOR) -> None:
    """Merge the SOURCES groups into TARGET (one undoable edit)."""
    from vislink.graph import group_info, group_label, merge_groups

    with _session() as session:
        group = merge_groups(session, target, sources, annotator_id=_annotator_id(session, annotator))
        info = group_info(session, group.id)
        typer.echo(f"merged into {group_label(info.id, info.title)}: {len(info.member_ids)} images")


@groups_app.command("rename")
def rename_cmd(group_id: int = typer.Argument(..., help="The group."),
               title: Optional[str] = typer.Argument(None, help="Its new title (default: the title made from its "
                                                                "images' common artist and title)."),
               annotator: Optional[str] = ANNOTATOR, expected_version: Optional[int] = EXPECTED_VERSION) -> None:
    """Set a group's title (shown wherever the group is named)."""
    from vislink.graph import group_label, update_group

    with _session() as session:
        group = update_group(session, group_id, title=title, annotator_id=_annotator_id(session, annotator),
                             expected_version=expected_version)
        typer.echo(f"{group_label(group.id, group.title)} (version {group.version})")


@groups_app.command("delete")
def delete_cmd(group_id: int, annotator: Optional[str] = ANNOTATOR) -> None:
    """Delete a group (its images stay; undo brings it back)."""
    from vislink.graph import delete_group

    with _session() as session:
        delete_group(session, group_id, annotator_id=_annotator_id(session, annotator))
        typer.echo(f"group {group_id} deleted")


@groups_app.command("undo")
def undo_cmd(annotator: str = typer.Option(..., "--annotator", "-a", help="Whose last edit to undo.")) -> None:
    """Undo an annotator's last edit (refused if someone changed the same things since)."""
    from vislink.graph import undo_last

    with _session() as session:
        result = undo_last(session, _annotator_id(session, annotator))
        typer.echo(f"undid {result.action} ({result.n_events} change(s))")


@link_app.command("add")
def link_add(a: str, b: str, collection: str = COLLECTION,
             type: str = typer.Option("positive", "--type", "-t", help="positive, negative, duplicate or proposal."),
             note: Optional[str] = typer.Option(None, "--note"), annotator: Optional[str] = ANNOTATOR) -> None:
    """Create or change the link between two images."""
    from vislink.graph import ImageResolver, get_collection, set_link

    with _session() as session:
        resolver = ImageResolver(session, get_collection(session, collection).id)
        link = set_link(session, resolver.require(a), resolver.require(b), type, note,
                        annotator_id=_annotator_id(session, annotator))
        typer.echo(f"link {link.id}: {link.image_a_id} - {link.image_b_id} {link.type.value}")


@link_app.command("remove")
def link_remove(a: str, b: str, collection: str = COLLECTION, annotator: Optional[str] = ANNOTATOR) -> None:
    """Remove the link between two images."""
    from vislink.graph import ImageResolver, get_collection, remove_link

    with _session() as session:
        resolver = ImageResolver(session, get_collection(session, collection).id)
        remove_link(session, resolver.require(a), resolver.require(b), annotator_id=_annotator_id(session, annotator))
        typer.echo("link removed")


@link_app.command("list")
def link_list(ref: str, collection: str = COLLECTION) -> None:
    """Everything linked to an image: group mates and links of every type."""
    from vislink.graph import ImageResolver, get_collection, neighbours

    with _session() as session:
        resolver = ImageResolver(session, get_collection(session, collection).id)
        for n in neighbours(session, resolver.require(ref)):
            via = f"group {n.group_id}" if n.group_id else f"link {n.link_id}"
            typer.echo(f"{n.image_id:8}  {n.type:9} {via:12} {resolver.by_id[n.image_id].source_ref}"
                       + (f"  ({n.note})" if n.note else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(groups_app, name="groups")
    app.add_typer(link_app, name="link")
