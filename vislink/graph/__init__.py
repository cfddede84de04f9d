"""The annotated link graph: groups (cliques of linked images) and typed links stored in SQL, seen as a
networkx graph; edits with optimistic concurrency, audit and undo; splits by connected component;
import and export (Replica CSV, JSON, CSV, GraphML, GEXF). See docs/graph.md."""

from vislink.graph.annotators import create_annotator, get_annotator, get_or_create, list_annotators, verify_password
from vislink.graph.audit import UndoResult, undo_last
from vislink.graph.build import (
    Neighbour,
    build_graph,
    connected_components,
    group_members,
    negative_pairs,
    neighbours,
    path_edges,
    proposals,
    shortest_path,
)
from vislink.graph.edits import (
    add_member,
    create_group,
    delete_group,
    group_of,
    load_group,
    members_of,
    merge_groups,
    remove_link,
    remove_member,
    set_link,
    split_group,
    update_group,
)
from vislink.graph.io import ImportReport, export_graph, import_graph, is_replica_file
from vislink.graph.queries import (
    GroupInfo,
    LinkInfo,
    group_info,
    group_memberships,
    group_titles,
    image_links,
    link_info,
    link_status,
    list_groups,
)
from vislink.graph.refs import ImageResolver, get_collection, wga_path_of
from vislink.graph.replica import ReplicaReport, import_replica
from vislink.graph.splits import assign_split, get_split, import_split, split_parts, split_summary
from vislink.graph.stats import GraphStats, format_stats, graph_stats, plot_group_sizes
from vislink.graph.titles import default_title, display_artist, group_label, title_from
from vislink.graph.view import GraphView, ViewEdge, ViewNode, neighbourhood_view

__all__ = [
    "GraphStats", "GraphView", "GroupInfo", "ImageResolver", "ImportReport", "LinkInfo", "Neighbour",
    "ReplicaReport", "UndoResult", "ViewEdge", "ViewNode", "add_member", "assign_split", "build_graph",
    "connected_components", "create_annotator", "create_group", "default_title", "delete_group", "display_artist",
    "export_graph", "format_stats", "get_annotator", "get_collection", "get_or_create", "get_split",
    "graph_stats", "group_info", "group_label", "group_members", "group_memberships", "group_of", "group_titles",
    "image_links", "import_graph", "import_replica", "import_split", "is_replica_file", "link_info",
    "link_status", "list_annotators", "list_groups", "load_group", "members_of", "merge_groups", "negative_pairs",
    "neighbourhood_view", "neighbours", "path_edges", "plot_group_sizes", "proposals", "remove_link",
    "remove_member", "set_link", "shortest_path", "split_group", "split_parts", "split_summary", "title_from",
    "undo_last", "update_group", "verify_password", "wga_path_of",
]
