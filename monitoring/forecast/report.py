"""The forecast's table and its HTML page (self-contained: plotly.js inlined once)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from monitoring.forecast.capacity import CapacityNeed
from monitoring.forecast.errors import format_duration
from monitoring.forecast.forecaster import Forecast

__all__ = ["forecast_table", "write_forecast_html"]

#: History shown before the forecast: this many horizons, at most two weeks.
HISTORY_HORIZONS = 3
MAX_HISTORY_S = 14 * 86400.0
MAX_POINTS = 3000


def _fmt_nodes(n: int | None, f: float | None) -> str:
    if n is not None:
        return str(n)
    return "–" if f is None else f"×{f:.2f}"


def forecast_table(forecasts: list[Forecast], needs: list[CapacityNeed]) -> pd.DataFrame:
    """One row per series: the chosen model, its backtest score, demand now and ahead, and
    the nodes needed (or the factor of today's capacity, where node sizes are unknown)."""
    rows = []
    for fc, need in zip(forecasts, needs, strict=True):
        r = fc.result
        s = fc.series
        levels = sorted(r.bounds)
        top = f"hi{levels[-1]}" if levels else "point"
        mid = f"hi{levels[0]}" if levels else "point"
        row = {
            "series": s.name,
            "unit": s.unit,
            "horizon": format_duration(fc.horizon_s),
            "model": r.model,
            "backtest 1-WAPE": 1 - r.backtest_wape[r.model],
            "windows": r.windows,
            "last hour": float(
                s.values[-max(1, min(s.values.size, round(3600 / s.step_s))) :].mean()
            ),
            "mean ahead": float(r.mean.mean()),
            f"p{need.quantile * 100:g} point": need.demand["point"],
            f"p{need.quantile * 100:g} {mid}": need.demand[mid],
            f"p{need.quantile * 100:g} {top}": need.demand[top],
            "nodes now": "–" if need.nodes_now is None else str(need.nodes_now),
            "nodes needed": _fmt_nodes(need.nodes["point"], need.factor["point"]),
            f"nodes {mid}": _fmt_nodes(need.nodes[mid], need.factor[mid]),
            f"nodes {top}": _fmt_nodes(need.nodes[top], need.factor[top]),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _thin(x: np.ndarray) -> slice:
    return slice(None, None, max(1, x.size // MAX_POINTS))


def _figure(fc: Forecast, need: CapacityNeed) -> go.Figure:
    s, r = fc.series, fc.result
    keep = int(min(HISTORY_HORIZONS * fc.horizon_s, MAX_HISTORY_S) / s.step_s)
    hist_t = s.times()[-keep:]
    hist_y = s.values[-keep:]
    fig = go.Figure()
    th, tf = _thin(hist_y), _thin(r.mean)
    fig.add_trace(go.Scatter(x=hist_t[th], y=hist_y[th], name="history", line={"width": 1}))
    shades = {0: "rgba(31,119,180,0.15)", 1: "rgba(31,119,180,0.3)"}
    for i, lv in enumerate(sorted(r.bounds, reverse=True)):
        lo, hi = r.bounds[lv]
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([fc.times[tf], fc.times[tf][::-1]]),
                y=np.concatenate([hi[tf], lo[tf][::-1]]),
                fill="toself",
                fillcolor=shades.get(i, shades[1]),
                line={"width": 0},
                name=f"{lv} % interval",
            )
        )
    fig.add_trace(go.Scatter(x=fc.times[tf], y=r.mean[tf], name=f"forecast ({r.model})"))
    if s.capacity:
        fig.add_hline(
            y=need.target * s.capacity,
            line_dash="dash",
            annotation_text=f"{need.target:.0%} of today's capacity",
        )
    fig.update_layout(
        title=f"{s.name} ({s.unit}), {format_duration(fc.horizon_s)} ahead",
        xaxis_title="time (UTC)",
        yaxis_title=s.unit,
        margin={"t": 50, "b": 40},
    )
    return fig


def write_forecast_html(
    forecasts: list[Forecast], needs: list[CapacityNeed], path: str | Path, *, title: str
) -> Path:
    """Write the table and one plot per series (history, forecast, intervals, target)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = forecast_table(forecasts, needs)
    parts = [
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        table.to_html(index=False, float_format=lambda v: f"{v:.4g}"),
        "<p>Model chosen per series by a rolling-origin backtest on its own history; "
        "intervals from that backtest's errors. Nodes needed keep the p95 utilisation "
        f"over the horizon at or below the target "
        f"({needs[0].target:.0%}) with nodes of the scope's median size.</p>"
        if needs
        else "",
    ]
    for i, (fc, need) in enumerate(zip(forecasts, needs, strict=True)):
        parts.append(
            _figure(fc, need).to_html(
                full_html=False, include_plotlyjs=(i == 0), default_height=420
            )
        )
    parts.append("</body></html>")
    out.write_text("\n".join(parts))
    return out
