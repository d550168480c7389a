"""The comparison report: one table, ``results.json``, ``run.json`` and an HTML page.

The HTML page is self-contained (plotly.js is inlined once), so it opens offline. Its
plots: node CPU distribution per scheduler, share of hot nodes over time, availability
and its causes, and the placement objective.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from rich.table import Table

from simulator.engine import SimResult
from simulator.metrics import HOT_THRESHOLD, METRIC_LABELS, TARGET, hot_share_series

__all__ = ["render_table", "series_for_report", "write_html", "write_results"]

HIST_BINS = np.linspace(0.0, 1.0, 51)
MAX_POINTS = 600


def _fmt(key: str, value: Any) -> str:
    fmt = METRIC_LABELS[key][1]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def render_table(results: dict[str, dict[str, Any]], title: str = "") -> Table:
    """A rich table: a row per scheduler, the metrics as columns."""
    table = Table(title=title or None, header_style="bold")
    table.add_column("scheduler", style="bold", no_wrap=True)
    for key in METRIC_LABELS:
        label = METRIC_LABELS[key][0]
        widest = max(len(word) for word in label.split())
        table.add_column(label, justify="right", overflow="fold", min_width=widest)
    for name, figures in results.items():
        table.add_row(name, *(_fmt(k, figures.get(k)) for k in METRIC_LABELS))
    return table


def series_for_report(result: SimResult) -> dict[str, Any]:
    """The small per-run series the HTML report plots (downsampled, JSON-ready)."""
    keep = result.times >= result.warmup_s
    if not keep.any():
        keep[:] = True
    cpu = result.node_cpu[keep]
    hist, _ = np.histogram(cpu.ravel(), bins=HIST_BINS)
    hot = hot_share_series(result)
    stride = max(1, hot.size // MAX_POINTS)
    return {
        "cpu_hist": (hist / max(hist.sum(), 1)).tolist(),
        "hist_edges": HIST_BINS.tolist(),
        "time_h": (result.times[::stride] / 3600.0).tolist(),
        "hot_share": hot[::stride].tolist(),
        "mean_cpu_t": result.node_cpu.mean(axis=1)[::stride].tolist(),
        "pending_t": result.pending[::stride].tolist(),
        "warmup_h": result.warmup_s / 3600.0,
    }


def write_results(
    out: Path, results: dict[str, dict[str, Any]], run: dict[str, Any]
) -> tuple[Path, Path]:
    """Write ``results.json`` (keyed by scheduler name) and ``run.json`` (dataset,
    settings, series)."""
    out.mkdir(parents=True, exist_ok=True)
    res_path, run_path = out / "results.json", out / "run.json"
    res_path.write_text(json.dumps(results, indent=2, sort_keys=False, allow_nan=True))
    run_path.write_text(json.dumps(run, indent=2, default=str, allow_nan=True))
    return res_path, run_path


def _figures(results: dict[str, dict[str, Any]], series: dict[str, dict[str, Any]]):
    names = list(results)
    dist = go.Figure()
    for name in names:
        s = series[name]
        centers = (np.asarray(s["hist_edges"][:-1]) + np.asarray(s["hist_edges"][1:])) / 2
        dist.add_trace(go.Scatter(x=centers, y=s["cpu_hist"], mode="lines", name=name))
    dist.add_vline(x=HOT_THRESHOLD, line_dash="dash", annotation_text="hot 0.85")
    dist.add_vline(x=TARGET, line_dash="dot", annotation_text="target 0.65")
    dist.update_layout(
        title="Node CPU utilisation distribution (share of node-time, after warm-up)",
        xaxis_title="node CPU utilisation",
        yaxis_title="share of node-time",
    )
    hot = go.Figure()
    for name in names:
        s = series[name]
        hot.add_trace(go.Scatter(x=s["time_h"], y=s["hot_share"], mode="lines", name=name))
    warmup_h = max((series[n].get("warmup_h", 0.0) for n in names), default=0.0)
    if warmup_h > 0:
        hot.add_vrect(
            x0=0,
            x1=warmup_h,
            fillcolor="grey",
            opacity=0.15,
            line_width=0,
            annotation_text="warm-up (not measured)",
            annotation_position="top left",
        )
    hot.update_layout(
        title="Share of hot nodes (CPU > 0.85) over time",
        xaxis_title="hours",
        yaxis_title="share of nodes",
        yaxis_tickformat=".0%",
    )
    avail = go.Figure()
    for key, label in (
        ("impacted_pending", "pending > 60 s"),
        ("impacted_cpu", "on CPU-overloaded node"),
        ("impacted_oom", "OOM-evicted"),
    ):
        avail.add_trace(go.Bar(x=names, y=[results[n][key] for n in names], name=label))
    avail.update_layout(
        barmode="stack",
        title="Unavailability by cause (share of pod-time; availability = 1 − total)",
        yaxis_tickformat=".2%",
    )
    obj = go.Figure(
        go.Bar(x=names, y=[results[n]["objective"] for n in names], marker_color="#7a5195")
    )
    obj.update_layout(title="Placement objective: mean max(0, CPU − 0.65) (lower is better)")
    return [dist, hot, avail, obj]


def write_html(
    out: Path,
    results: dict[str, dict[str, Any]],
    series: dict[str, dict[str, Any]],
    run: dict[str, Any],
) -> Path:
    """Write ``report.html``: the context, the table and the plots."""
    figs = _figures(results, series)
    parts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), default_height=420)
        for i, fig in enumerate(figs)
    ]
    head = "".join(f"<th>{html.escape(METRIC_LABELS[k][0])}</th>" for k in METRIC_LABELS)
    rows = "".join(
        "<tr><th>{}</th>{}</tr>".format(
            html.escape(name),
            "".join(f"<td>{html.escape(_fmt(k, figures.get(k)))}</td>" for k in METRIC_LABELS),
        )
        for name, figures in results.items()
    )
    ds = run.get("dataset", {})
    first = next(iter(results.values()), {})
    context = (
        f"<p><b>Dataset:</b> {html.escape(str(ds.get('description', '')))}<br>"
        f"<b>Nodes:</b> {ds.get('nodes')} &nbsp; <b>pods:</b> {ds.get('pods')} &nbsp; "
        f"<b>seed:</b> {run.get('seed')} &nbsp; "
        f"<b>step:</b> {run.get('config', {}).get('step_s')} s"
        f"</p><p>Requested share of the cluster: CPU {first.get('requested_cpu_share', 0):.1%},"
        f" memory {first.get('requested_mem_share', 0):.1%}. Used share: CPU "
        f"{first.get('used_cpu_share', 0):.1%}, memory {first.get('used_mem_share', 0):.1%}. "
        "A fixed workload on a fixed cluster has a fixed mean utilisation: what a scheduler "
        "changes is where the load lands (hot spots, balance, headroom, packing). Figures are "
        "measured after the warm-up.</p>"
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>HYDATIS simulator comparison</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>
<h1>Scheduler comparison</h1>{context}
<table><tr><th>scheduler</th>{head}</tr>{rows}</table>
{"".join(parts)}
</body></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path
