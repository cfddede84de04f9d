"""Reports of evaluation runs: the paper's Table 1 (method, D, R[20], R[50], R[100], R[200]) as text and
Markdown, the per-query ranks of every target (Table 2), JSON with everything, and a recall-against-rank
plot (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from vislink.errors import ConfigError
from vislink.evaluation.metrics import metric_key, recall_curve
from vislink.evaluation.records import RunReport

TABLE1_CUTOFFS = (20, 50, 100, 200)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def table_rows(reports: Sequence[RunReport], cutoffs: Sequence[int] = TABLE1_CUTOFFS, *, with_map: bool = True
               ) -> tuple[list[str], list[list[str]]]:
    header = ["method", "D"] + [f"R[{n}]" for n in cutoffs] + (["mAP"] if with_map else []) + ["queries"]
    loc = any("localisation" in r.metrics for r in reports)  # benchmark groups with boxes (docs/evaluation.md)
    if loc:
        header.insert(-1, "loc@10")
    rows = []
    for r in reports:
        row = [r.variant, str(r.dimension) if r.dimension else "-"]
        row += [_pct(r.metrics.get(metric_key(n))) for n in cutoffs]
        if with_map:
            row.append(_pct(r.metrics.get("mAP")))
        if loc:
            row.append(_pct(r.metrics.get("localisation")))
        row.append(str(r.n_queries))
        rows.append(row)
    return header, rows


def format_table(reports: Sequence[RunReport], cutoffs: Sequence[int] = TABLE1_CUTOFFS, *, with_map: bool = True
                 ) -> str:
    """Table 1 as aligned plain text (recalls in percent, the paper's weighting)."""
    header, rows = table_rows(reports, cutoffs, with_map=with_map)
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def markdown_table(reports: Sequence[RunReport], cutoffs: Sequence[int] = TABLE1_CUTOFFS, *, with_map: bool = True
                   ) -> str:
    header, rows = table_rows(reports, cutoffs, with_map=with_map)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def _rank_text(rank: int | None) -> str:
    return "-" if rank is None else str(rank)


def format_ranks(report: RunReport, *, limit: int | None = None) -> str:
    """Table 2: for each query, the rank of every target (ascending; '-' never found), its AP."""
    lines = [f"{report.variant}: rank of every target (query excluded from the ranking)"]
    results = report.results if limit is None else report.results[:limit]
    width = max((len(r.query.ref or str(r.query.query_id)) for r in results), default=5)
    for r in results:
        name = r.query.ref or str(r.query.query_id)
        ranks = ", ".join(_rank_text(x) for x in r.sorted_ranks)
        lines.append(f"  {name.ljust(width)}  AP {100 * r.average_precision:5.1f}  ranks {ranks}")
    if limit is not None and len(report.results) > limit:
        lines.append(f"  ... {len(report.results) - limit} more queries (see the JSON report)")
    return "\n".join(lines)


def report_dict(report: RunReport) -> dict:
    return {
        "run_id": report.run_id, "variant": report.variant, "dimension": report.dimension,
        "collection": report.collection, "benchmark": report.benchmark, "split": report.split_name,
        "weights_name": report.weights_name, "weights_sha256": report.weights_sha256,
        "code_version": report.code_version,
        "started_at": report.started_at.isoformat() if report.started_at else None,
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
        "n_queries": report.n_queries, "n_gallery": report.n_gallery, "cutoffs": list(report.cutoffs),
        "metrics": report.metrics, "params": report.params,
        "queries": [
            {"query": r.query.ref or r.query.query_id, "image_id": r.query.image_id, "n_targets": r.n_targets,
             "weight": r.weight, "average_precision": r.average_precision, "target_ranks": r.sorted_ranks,
             **({"targets": [{"target": t, "rank": k} for t, k in zip(r.target_refs, r.ranks)]}
                if r.target_refs else {})}
            for r in report.results
        ],
    }


def markdown_report(reports: Sequence[RunReport], *, title: str, cutoffs: Sequence[int] = TABLE1_CUTOFFS,
                    alerts: Sequence[str] = (), max_table2: int = 100) -> str:
    lines = [f"# {title}", ""]
    for alert in alerts:
        lines += [f"> **ALERT**: {alert}", ""]
    lines += ["Recall in percent with the paper's weights w(I) = sqrt(|T_I|)/(|T_I|+1); exact search, the query "
              "excluded from its own ranking.", "", markdown_table(reports, cutoffs), ""]
    all_cutoffs = sorted({n for r in reports for n in r.cutoffs})
    lines += ["## All metrics", "", "| method | " + " | ".join(
        [f"R[{n}]" for n in all_cutoffs] + [f"unweighted R[{n}]" for n in all_cutoffs] + ["mAP"]) + " |",
        "|---|" + "---:|" * (2 * len(all_cutoffs) + 1)]
    for r in reports:
        vals = [_pct(r.metrics.get(metric_key(n))) for n in all_cutoffs]
        vals += [_pct(r.metrics.get(metric_key(n, weighted=False))) for n in all_cutoffs]
        lines.append(f"| {r.variant} | " + " | ".join(vals + [_pct(r.metrics.get('mAP'))]) + " |")
    lines += ["", "## Runs", "", "| method | run | queries | gallery | split | weights sha256 | code | finished |",
              "|---|---:|---:|---:|---|---|---|---|"]
    for r in reports:
        finished = r.finished_at.strftime("%Y-%m-%d %H:%M UTC") if r.finished_at else "-"
        lines.append(f"| {r.variant} | {r.run_id or '-'} | {r.n_queries} | {r.n_gallery} | {r.split_name or '-'} | "
                     f"{(r.weights_sha256 or '-')[:12]} | {r.code_version or '-'} | {finished} |")
    for r in reports:
        lines += ["", f"## Ranks of every target: {r.variant}", "", "| query | targets | AP | ranks |",
                  "|---|---:|---:|---|"]
        for q in r.results[:max_table2]:
            ranks = ", ".join(_rank_text(x) for x in q.sorted_ranks)
            lines.append(f"| {q.query.ref or q.query.query_id} | {q.n_targets} | {100 * q.average_precision:.1f} | "
                         f"{ranks} |")
        if len(r.results) > max_table2:
            lines.append(f"\n{len(r.results) - max_table2} more queries in the JSON report.")
    return "\n".join(lines) + "\n"


def plot_recall(reports: Sequence[RunReport], path: Path, *, title: str = "") -> Path:
    """Weighted R[n] against n (1 to the largest cutoff), one line per variant."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    try:
        for r in reports:
            if not r.results:
                continue
            max_n = max(r.cutoffs)
            curve = recall_curve([q.ranks for q in r.results], max_n)
            ax.plot(range(1, max_n + 1), 100 * curve, label=f"{r.variant} (D={r.dimension or '?'})")
        ax.set_xscale("log")
        ax.set_xlabel("rank n")
        ax.set_ylabel("weighted recall R[n] (%)")
        ax.set_ylim(0, 100)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(title)
        if reports:
            ax.legend(loc="lower right", fontsize="small")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def write_reports(reports: Sequence[RunReport], out_dir: Path, *, title: str, cutoffs: Sequence[int] = TABLE1_CUTOFFS,
                  alerts: Sequence[str] = (), stem: str | None = None) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the report folder {out_dir}: {exc.strerror or exc}") from exc
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if stem is None:
        # Run ids keep two runs of the same second (a schedule catching up) from overwriting each other.
        runs = "-".join(f"r{r.run_id}" for r in reports[:1] if r.run_id is not None)
        stem = "-".join(x for x in (f"evaluation-{_slug(reports[0].label if reports else 'none')}", stamp, runs) if x)
    paths = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md", "plot": out_dir / f"{stem}.png"}
    payload = {"title": title, "alerts": list(alerts), "runs": [report_dict(r) for r in reports]}
    try:
        paths["json"].write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        paths["markdown"].write_text(markdown_report(reports, title=title, cutoffs=cutoffs, alerts=alerts),
                                     encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write reports into {out_dir}: {exc.strerror or exc}") from exc
    plot_recall(reports, paths["plot"], title=title)
    return paths


# -- the transformations benchmark (vislink.evaluation.transforms) -------------------------------------------

TRANSFORM_COLUMNS = ("top1", "R@5", "mAP")


def transform_rows(reports: Sequence[RunReport], columns: Sequence[str] = TRANSFORM_COLUMNS
                   ) -> tuple[list[str], list[list[str]]]:
    """One row per (variant, transformation), then the variant's row over every transformation ("all")."""
    header = ["method", "transformation"] + ["top-1" if c == "top1" else c.replace("@", "[") + "]" if "@" in c
                                             else c for c in columns] + ["queries"]
    rows = []
    for r in reports:
        names = list(r.params.get("transforms") or [k for k, v in r.metrics.items() if isinstance(v, dict)])
        per = len(r.results) // len(names) if names else 0
        for name in names:
            block = r.metrics.get(name) or {}
            rows.append([r.variant, name] + [_pct(block.get(c)) for c in columns] + [str(per)])
        rows.append([r.variant, "all"] + [_pct(r.metrics.get(c)) for c in columns] + [str(r.n_queries)])
    return header, rows


def format_transforms_table(reports: Sequence[RunReport], columns: Sequence[str] = TRANSFORM_COLUMNS) -> str:
    """The transformations benchmark as aligned text (percent): top-1, R[5], mAP per transformation."""
    header, rows = transform_rows(reports, columns)
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(row) for row in rows])


def markdown_transforms_table(reports: Sequence[RunReport], columns: Sequence[str] = TRANSFORM_COLUMNS) -> str:
    header, rows = transform_rows(reports, columns)
    out = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    return "\n".join(out + ["| " + " | ".join(row) + " |" for row in rows])


def write_transform_reports(reports: Sequence[RunReport], out_dir: Path, *, title: str,
                            cutoffs: Sequence[int] = (1, 5, 10, 20)) -> dict[str, Path]:
    """``write_reports`` for the transformations benchmark, the per-transformation table at the top of the
    Markdown report."""
    paths = write_reports(reports, out_dir, title=title, cutoffs=cutoffs)
    text = paths["markdown"].read_text(encoding="utf-8")
    head, _, rest = text.partition("\n")
    section = ("\n\n## Per transformation (top-1: the original ranked first; in %)\n\n"
               + markdown_transforms_table(reports) + "\n")
    paths["markdown"].write_text(head + section + rest, encoding="utf-8")
    return paths


def table1_cutoffs(available: Iterable[int], n_gallery: int) -> list[int]:
    """The R[n] columns of Table 1 for a gallery of ``n_gallery`` images, the same in the CLI and the UI: the
    evaluated cut-offs up to a quarter of the gallery (past that every method finds nearly everything: R[20] of 9
    images says nothing), and at least the two smallest."""
    stored = sorted({int(n) for n in available})
    shown = [n for n in stored if n <= max(1, n_gallery) / 4]
    return shown if len(shown) >= 2 else stored[:2]
