"""Evaluation dashboard: the stored runs (``EvaluationRun`` rows written by ``vislink evaluate``), a table
per descriptor variant, recall-against-rank curves and the per-query ranks of every target."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
import streamlit as st

from vislink.ui import data
from vislink.ui.data import flatten, recall_curves
from vislink.ui import components as ui

st.title("Evaluation")

def _label(run: data.RunInfo) -> str:
    when = run.started_at.strftime("%Y-%m-%d %H:%M") if run.started_at else "?"
    return f"#{run.id} {run.variant_name} · {run.benchmark or run.collection or ''} · {when}"


def _metric_order(key: str) -> tuple:
    # R@n (the paper's weighted recall) by n, then mAP, then unweighted recall@n, then anything else.
    curves = recall_curves({key: 0.0})
    if "R" in curves:
        return (0, next(iter(curves["R"])), key)
    if key == "mAP":
        return (1, 0, key)
    if "recall" in curves:
        return (2, next(iter(curves["recall"])), key)
    return (3, 0, key)


def _row(run: data.RunInfo) -> dict:
    row = {"run": run.id, "variant": run.variant_name}
    metrics = flatten(run.metrics)
    # Recalls and mAP in %, as the CLI prints them; any other number as stored.
    row.update({k: round(100 * metrics[k], 1) if _metric_order(k)[0] < 3 else round(metrics[k], 4)
                for k in sorted(metrics, key=_metric_order)})
    row.update({"benchmark": run.benchmark or "", "collection": run.collection or "", "queries": run.n_queries,
                "gallery": run.n_gallery, "started": run.started_at, "split": run.split_name or "",
                "weights": (run.weights_sha256 or "")[:12], "code": run.code_version or ""})
    return row


def _table1(latest: list[data.RunInfo]) -> pd.DataFrame:
    """The paper's Table 1 as ``vislink evaluate`` prints it (method, D, R[n] and mAP in %, queries), the
    latest run of each variant, with the cut-offs that mean something for the size of the gallery."""
    header, rows = data.table1(latest, data.run_dimensions(r.id for r in latest))
    return pd.DataFrame(rows, columns=header)


def main() -> None:
    runs = data.evaluation_runs()
    if not runs:
        st.info("No evaluation run stored yet. Run `vislink evaluate --collection C --variants ...` or "
                "`vislink benchmark ...`; runs appear here with their history.")
        return
    by_variant: dict[str, list[data.RunInfo]] = defaultdict(list)
    for run in runs:
        by_variant[run.variant_name].append(run)
    st.subheader("Latest run of each variant")
    newest = [rs[0] for rs in by_variant.values()]
    st.dataframe(_table1(newest), hide_index=True)
    st.caption("Weighted recall R[n] (the paper's) and mAP in %, as `vislink evaluate` prints them; columns up to "
               f"a quarter of the gallery ({min((r.n_gallery for r in newest if r.n_gallery), default=0)} images), "
               "where recall still tells methods apart.")
    st.subheader(f"History ({len(runs)} runs, metrics in %)")
    st.dataframe(pd.DataFrame([_row(r) for r in runs]), hide_index=True)

    st.subheader("Per variant")
    tabs = st.tabs(list(by_variant))
    for tab, (variant, variant_runs) in zip(tabs, by_variant.items()):
        with tab:
            st.dataframe(pd.DataFrame([_row(r) for r in variant_runs]), hide_index=True)

    st.subheader("Recall against rank")
    latest = {v: rs[0].id for v, rs in by_variant.items()}  # runs come newest first
    labels = {r.id: _label(r) for r in runs}
    chosen = st.multiselect("Runs", [r.id for r in runs], default=list(latest.values()), key="ev_runs",
                            persist_state="session",
                            format_func=labels.get)
    curves = {rid: recall_curves(next(r.metrics for r in runs if r.id == rid)) for rid in chosen}
    series_names = sorted({s for c in curves.values() for s in c}, key=lambda s: (s != "R", s))
    if not series_names:
        st.caption("The chosen runs store no recall-at-rank metrics (keys like R@20).")
    else:
        series = st.selectbox("Metric family", series_names, key="ev_series", persist_state="session",
                              format_func=lambda s: {"R": "R[n], weighted (the paper's)",
                                                     "recall": "recall@n, unweighted"}.get(s, s))
        frame = pd.DataFrame({labels[rid]: 100 * pd.Series(c.get(series, {}), dtype=float)
                              for rid, c in curves.items()}).sort_index()
        frame.index.name = "rank n"
        st.line_chart(frame, x_label="rank n", y_label="recall (%)")

    st.subheader("Per query (ranks of every target)")
    run_id = st.selectbox("Run", [r.id for r in runs], key="ev_detail", persist_state="session", format_func=labels.get)
    with ui.guard():
        rows = data.evaluation_query_results(int(run_id))
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True)
        else:
            st.caption("This run stored no per-query ranks.")


main()
