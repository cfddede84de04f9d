"""Statistics of the link graph: group and component size histograms (as the paper's Fig. 3), link
counts by type; as text and as a PNG drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from vislink.graph.build import build_graph, connected_components, group_members
from vislink.store.models import Collection, Image, Link


@dataclass
class GraphStats:
    collection: str
    n_images: int
    n_groups: int
    n_grouped_images: int
    n_linked_images: int  # nodes of the confirmed graph
    group_sizes: dict[int, int] = field(default_factory=dict)  # size -> number of groups
    component_sizes: dict[int, int] = field(default_factory=dict)  # size -> number of components
    links_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def n_components(self) -> int:
        return sum(self.component_sizes.values())


def graph_stats(session: Session, collection_id: int) -> GraphStats:
    collection = session.get(Collection, collection_id)
    groups = group_members(session, collection_id)
    graph = build_graph(session, collection_id)
    image = aliased(Image)
    by_type = session.execute(select(Link.type, func.count()).join(image, image.id == Link.image_a_id)
                              .where(image.collection_id == collection_id).group_by(Link.type)).all()
    return GraphStats(
        collection=collection.name if collection else str(collection_id),
        n_images=session.scalar(select(func.count()).select_from(Image).where(Image.collection_id == collection_id)),
        n_groups=len(groups),
        n_grouped_images=sum(len(m) for m in groups.values()),
        n_linked_images=graph.number_of_nodes(),
        group_sizes=dict(sorted(Counter(len(m) for m in groups.values()).items())),
        component_sizes=dict(sorted(Counter(len(c) for c in connected_components(session, collection_id, graph))
                                    .items())),
        links_by_type={getattr(t, "value", t): n for t, n in sorted(by_type, key=lambda r: str(r[0]))},
    )


def format_histogram(sizes: dict[int, int], width: int = 40, label: str = "groups") -> str:
    if not sizes:
        return f"  (no {label})"
    top = max(sizes.values())
    lines = [f"  {'size':>5}  {label:>7}"]
    for size, count in sorted(sizes.items()):
        bar = "#" * max(1, round(width * count / top))
        lines.append(f"  {size:>5}  {count:>7}  {bar}")
    return "\n".join(lines)


def format_stats(stats: GraphStats) -> str:
    links = ", ".join(f"{t} {n}" for t, n in stats.links_by_type.items()) or "none"
    return "\n".join([
        f"collection {stats.collection}: {stats.n_images} images",
        f"groups: {stats.n_groups} holding {stats.n_grouped_images} images",
        f"links: {links}",
        f"confirmed graph: {stats.n_linked_images} linked images in {stats.n_components} connected components",
        "group sizes:",
        format_histogram(stats.group_sizes, label="groups"),
        "connected component sizes:",
        format_histogram(stats.component_sizes, label="comps"),
    ])


def plot_group_sizes(stats: GraphStats, path: Path | str) -> Path:
    """Bar charts of group sizes and component sizes, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # headless: the CLI and the workers have no display
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(9, 3.6), dpi=100)
    for i, (title, sizes) in enumerate((("groups", stats.group_sizes), ("connected components",
                                                                         stats.component_sizes))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.bar(list(sizes.keys()), list(sizes.values()), color="#4b6c9c")
        ax.set_xlabel(f"{title[:-1] if title.endswith('s') else title} size (images)")
        ax.set_ylabel(f"number of {title}")
        ax.set_title(f"{stats.collection}: {sum(sizes.values())} {title}")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
