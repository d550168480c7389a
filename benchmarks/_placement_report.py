"""The placement benchmark's HTML report: plots and tables, self-contained (plotly.js
inlined once), written from the benchmark's aggregated figures."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

__all__ = ["write_report"]

#: Metrics plotted as bars with their confidence intervals: key, title, scale.
BAR_METRICS = (
    ("objective", "placement objective (lower is better)", 1.0),
    ("hot_share", "hot node-time, % (CPU > 0.85)", 100.0),
    ("p95_cpu", "p95 node CPU", 1.0),
    ("availability", "availability, %", 100.0),
    ("pending_p95_s", "pending time p95, s", 1.0),
)


def _cdf_figure(level: str, cdfs: Mapping[str, np.ndarray], edges: np.ndarray) -> go.Figure:
    fig = go.Figure()
    for name, hist in cdfs.items():
        cdf = np.cumsum(hist) / max(float(np.sum(hist)), 1.0)
        fig.add_trace(go.Scatter(x=edges[1:], y=cdf, mode="lines", name=name))
    fig.add_vline(x=0.85, line_dash="dash", annotation_text="hot 0.85")
    fig.add_vline(x=0.65, line_dash="dot", annotation_text="target 0.65")
    fig.update_layout(
        title=f"CDF of node CPU utilisation — {level} level (all seeds, after warm-up)",
        xaxis_title="node CPU utilisation",
        yaxis_title="share of node-time at or below",
    )
    return fig


def _heatmap(title: str, matrix: np.ndarray, hours: np.ndarray) -> go.Figure:
    order = np.argsort(matrix.mean(axis=0))
    fig = go.Figure(
        go.Heatmap(
            z=matrix[:, order].T,
            x=hours,
            zmin=0.0,
            zmax=1.0,
            colorscale="RdYlGn_r",
            colorbar={"title": "CPU"},
        )
    )
    fig.update_layout(
        title=title, xaxis_title="hours into the window", yaxis_title="nodes (by mean CPU)"
    )
    return fig


def _bars(
    level: str, metric: str, title: str, scale: float, table: Mapping[str, Mapping[str, Any]]
) -> go.Figure:
    names = list(table)
    means = [table[n][metric].mean * scale for n in names]
    up = [max(table[n][metric].high * scale - m, 0.0) for n, m in zip(names, means, strict=True)]
    down = [max(m - table[n][metric].low * scale, 0.0) for n, m in zip(names, means, strict=True)]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=means,
            error_y={"type": "data", "array": up, "arrayminus": down, "visible": True},
        )
    )
    fig.update_layout(title=f"{title} — {level} level (mean, 95 % CI over seeds)")
    return fig


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(
    path: Path,
    *,
    title: str,
    intro: Sequence[str],
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Any]], str]],
    estimates: Mapping[str, Mapping[str, Mapping[str, Any]]],
    cdfs: Mapping[str, Mapping[str, np.ndarray]],
    edges: np.ndarray,
    heatmaps: Sequence[tuple[str, np.ndarray, np.ndarray]],
) -> Path:
    """Write the report.

    Args:
        path: the HTML file.
        title: the page title.
        intro: paragraphs (plain text) explaining the run and the reading of the figures.
        tables: ``(heading, headers, rows, note)`` each, shown in order.
        estimates: level -> scheduler -> metric -> :class:`simulator.evaluation.Estimate`.
        cdfs: level -> scheduler -> histogram counts of node CPU over ``edges``.
        edges: the histogram bin edges.
        heatmaps: ``(title, matrix [time, node], hours)`` each.
    """
    figures: list[go.Figure] = []
    for level, per in cdfs.items():
        figures.append(_cdf_figure(level, per, edges))
    for heading, matrix, hours in heatmaps:
        figures.append(_heatmap(heading, matrix, hours))
    for level, table in estimates.items():
        for metric, label, scale in BAR_METRICS:
            figures.append(_bars(level, metric, label, scale, table))
    parts = [
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 6px;font-size:13px}th{background:#eee}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *(f"<p>{html.escape(p)}</p>" for p in intro),
    ]
    for heading, headers, rows, note in tables:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if note:
            parts.append(f"<p>{html.escape(note)}</p>")
        parts.append(_table(headers, rows))
    parts.append("<h2>Plots</h2>")
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), default_height=420))
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path
