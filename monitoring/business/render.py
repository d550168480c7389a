"""The business report as tables (rich, for the terminal) and a self-contained HTML page.

The page states where every number comes from: the comparisons it read, the cost model's
inputs (and the file they came from), the formulas, and the sensitivity of the result to
each input. plotly.js is inlined once, so the page opens offline.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import plotly.graph_objects as go
from rich.table import Table

from monitoring.business.report import FIGURES, BusinessReport

__all__ = ["figures_table", "savings_table", "sensitivity_table", "write_html", "write_json"]


def _fmt(fmt: str, value: float) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def _money(report: BusinessReport, value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:,.0f} {report.costs.currency}"


def _schedulers(report: BusinessReport) -> list[str]:
    names = list(dict.fromkeys(n for c in report.comparisons for n in c.figures))
    first = [report.baseline, report.candidate]
    return first + [n for n in names if n not in first]


def figures_table(report: BusinessReport) -> Table:
    """Measured figures per scheduler (mean over the comparisons)."""
    n = len(report.comparisons)
    title = "Measured on the replay" + (f" (mean of {n} comparisons)" if n > 1 else "")
    table = Table(title=title, header_style="bold")
    table.add_column("scheduler", style="bold")
    for label, _ in FIGURES.values():
        table.add_column(label, justify="right")
    for name in _schedulers(report):
        if not all(name in c.figures for c in report.comparisons):
            continue
        capped = any(c.figures[name].capped for c in report.comparisons)
        cells = []
        for key, (_, fmt) in FIGURES.items():
            cell = _fmt(fmt, report.figure(name, key))
            cells.append(cell + ("≥" if key == "nodes_needed" and capped else ""))
        table.add_row(name, *cells)
    return table


def savings_table(report: BusinessReport) -> Table:
    """Savings of the candidate over the baseline (mean, and range over comparisons)."""
    m = report.mean_savings()
    c = report.costs
    table = Table(
        title=f"{report.candidate} against {report.baseline}: per year "
        f"(period {c.period_years:g} y)",
        header_style="bold",
    )
    for col in ("item", "value", "range over comparisons", "from"):
        table.add_column(col, justify="left" if col in ("item", "from") else "right")

    def row(label: str, key: str, how: str, money: bool = True, pattern: str = "{:,.2f}") -> None:
        fmt = (lambda v: _money(report, v)) if money else (lambda v: _fmt(pattern, v))
        spread = f"{fmt(m[key + '_min'])} … {fmt(m[key + '_max'])}"
        table.add_row(label, fmt(m[key]), spread if len(report.savings) > 1 else "", how)

    row("nodes saved", "nodes_saved", "Δ nodes needed at target p95", money=False)
    row("node savings", "node_savings", f"× {c.node_hourly_cost:g}/h × 8760 h")
    row("unavailable minutes avoided", "unavailable_minutes_saved", "Δ(1 − A) × 525,600", False)
    row(
        "unavailability savings",
        "unavailability_savings",
        f"× {c.unavailability_cost_per_minute:g}/min",
    )
    row("platform cost", "platform_cost", f"{c.platform_hourly_cost:g}/h × 8760 h")
    row("net per year", "net_per_year", "savings − platform cost")
    row("net over the period", "net_period", f"− one-off {c.implementation_cost:g}")
    row("ROI", "roi", "net / (platform + one-off)", money=False, pattern="{:,.0%}")
    return table


def sensitivity_table(report: BusinessReport) -> Table:
    """Net over the period and ROI with each input alone scaled by each factor, and the
    input's break-even value."""
    table = Table(title="Sensitivity (one input at a time)", header_style="bold")
    table.add_column("input")
    factors = list(report.costs.sensitivity_factors)
    for f in factors:
        table.add_column(f"×{f:g}: net / ROI", justify="right")
    table.add_column("break-even", justify="right")
    by_input: dict[str, dict[float, dict]] = {}
    for r in report.sensitivity:
        by_input.setdefault(str(r["input"]), {})[float(r["factor"])] = r
    for name, rows in by_input.items():
        cells = []
        for f in factors:
            r = rows.get(f)
            if r is None:
                cells.append("–")
                continue
            net, roi = _money(report, float(r["net_period"])), _fmt("{:,.0%}", float(r["roi"]))
            cells.append(f"{net} / {roi}")
        be = report.break_even.get(name)
        table.add_row(name, *cells, "–" if be is None else f"{be:,.4g}")
    return table


def _plots(report: BusinessReport) -> list[go.Figure]:
    names = [n for n in _schedulers(report) if all(n in c.figures for c in report.comparisons)]
    quality = go.Figure()
    for key in ("p95_cpu", "hot_share", "pending_share"):
        quality.add_trace(
            go.Bar(x=names, y=[report.figure(n, key) for n in names], name=FIGURES[key][0])
        )
    quality.update_layout(
        barmode="group",
        title="Load and waiting per scheduler (lower is better)",
        yaxis_tickformat=".1%",
    )
    avail = go.Figure(
        go.Bar(
            x=names, y=[1 - report.figure(n, "availability") for n in names], marker_color="#d45087"
        )
    )
    avail.update_layout(
        title="Unavailability: 1 − availability (share of pod-time)", yaxis_tickformat=".2%"
    )
    nodes = go.Figure(
        go.Bar(x=names, y=[report.figure(n, "nodes_needed") for n in names], marker_color="#2f4b7c")
    )
    sim_nodes = report.figure(names[0], "nodes") if names else math.nan
    nodes.add_hline(y=sim_nodes, line_dash="dash", annotation_text="nodes simulated")
    nodes.update_layout(
        title=f"Nodes needed to keep p95 node CPU ≤ {report.costs.target_p95_utilization:g}"
    )
    m = report.mean_savings()
    wf = go.Figure(
        go.Waterfall(
            x=["node savings", "unavailability savings", "platform cost", "net per year"],
            measure=["relative", "relative", "relative", "total"],
            y=[m["node_savings"], m["unavailability_savings"], -m["platform_cost"], 0.0],
        )
    )
    wf.update_layout(
        title=f"Per year, {report.candidate} against {report.baseline} ({report.costs.currency})"
    )
    sens = go.Figure()
    by_input: dict[str, list[tuple[float, float]]] = {}
    for r in report.sensitivity:
        by_input.setdefault(str(r["input"]), []).append(
            (float(r["factor"]), float(r["net_period"]))
        )
    for name, pts in by_input.items():
        pts.sort()
        sens.add_trace(
            go.Scatter(
                x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name
            )
        )
    sens.add_hline(y=0.0, line_dash="dot")
    sens.update_layout(
        title="Net over the period with one input scaled",
        xaxis_title="factor on the input",
        yaxis_title=report.costs.currency,
    )
    return [quality, avail, nodes, wf, sens]


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c.header))}</th>" for c in table.columns)
    rows = []
    for i in range(table.row_count):
        cells = "".join(f"<td>{html.escape(str(c._cells[i]))}</td>" for c in table.columns)
        rows.append(f"<tr>{cells}</tr>")
    title = f"<h3>{html.escape(str(table.title))}</h3>" if table.title else ""
    return f"{title}<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_html(report: BusinessReport, path: str | Path, *, costs_source: str = "") -> Path:
    """Write the report page: context, tables, plots, cost inputs and formulas."""
    figs = _plots(report)
    parts = [
        f.to_html(full_html=False, include_plotlyjs=(i == 0), default_height=400)
        for i, f in enumerate(figs)
    ]
    sources = "".join(
        f"<li>{html.escape(str(c.source))}: {html.escape(c.description)}, {c.nodes} nodes, "
        f"{c.horizon_s / 3600:.1f} h replayed</li>"
        for c in report.comparisons
    )
    inputs = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in report.costs.model_dump(mode="json").items()
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>HYDATIS business report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>
<h1>Business report: {html.escape(report.candidate)} against {html.escape(report.baseline)}</h1>
<p>Both schedulers replayed the same workload with the same seed; every difference below is
measured, and every amount follows from it and the cost inputs listed at the end
{f"(from {html.escape(costs_source)})" if costs_source else ""}. A fixed workload has a fixed
mean utilisation: what a scheduler changes is where the load lands, hence the p95, the hot
node-time and the nodes needed to keep p95 at the target.</p>
<ul>{sources}</ul>
{_table_html(figures_table(report))}
{_table_html(savings_table(report))}
{_table_html(sensitivity_table(report))}
{"".join(parts)}
<h2>Cost inputs</h2><table>{inputs}</table>
<h2>Formulas</h2><ul>
<li>nodes needed = ceil(N × p95 node CPU / target p95): the nodes that bring the measured p95
to the target for the same demand (first order: the distribution's shape is assumed to hold
when the cluster is resized; a p95 of 1.0 is capped, so its nodes needed is a lower bound, ≥).</li>
<li>node savings per year = (needed<sub>baseline</sub> − needed<sub>candidate</sub>) × node hourly
cost × 8760.</li>
<li>unavailability savings per year = (A<sub>candidate</sub> − A<sub>baseline</sub>) × 525,600 ×
cost of a minute of unavailability (A: availability, a share of pod-time).</li>
<li>net per year = node + unavailability savings − platform hourly cost × 8760; over the period,
less the one-off cost; ROI = net over the period / (platform cost over the period + one-off).</li>
</ul></body></html>"""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def write_json(report: BusinessReport, path: str | Path) -> Path:
    """Write everything the report computed as JSON (NaN as null)."""

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(clean(report.to_dict()), indent=2, default=str), encoding="utf-8")
    return out
