"""What a drift check leaves behind: the JSON verdict per kind, Evidently's HTML report of
the latest window, and a summary page with the scores over time.

- ``verdict.json`` (:func:`verdict`): per kind, whether it is in drift, the latest
  window's score and decision, the run of drifted windows, the columns that moved most,
  and what retraining did;
- ``report.html`` (:func:`write_evidently_report`): Evidently's per-column drift report of
  the latest window against its like-with-like reference, every column with its
  *calibrated* threshold (so Evidently's "detected" is this project's decision);
- ``summary.html`` (:func:`write_summary_html`): each kind's score per window against its
  threshold, the columns' scores as a heat map, and the calibration's no-change scores
  (plotly, self-contained).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitoring.drift.calibrate import Calibration
from monitoring.drift.data import DriftData
from monitoring.drift.detector import DriftDetector, DriftState, WindowResult
from monitoring.drift.settings import KINDS, DriftSettings
from monitoring.drift.stats import to_evidently_threshold
from monitoring.drift.trigger import TriggerResult

__all__ = ["verdict", "write_evidently_report", "write_summary_html", "write_verdict"]

_DIST_KINDS = ("data", "prediction", "target")


def _num(x: float) -> float | None:
    return round(float(x), 6) if x is not None and math.isfinite(x) else None


def verdict(
    windows: list[WindowResult],
    state: DriftState,
    calibration: Calibration,
    settings: DriftSettings,
    *,
    retraining: TriggerResult | None = None,
    retraining_reason: str | None = None,
    checked_at: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """The JSON verdict per kind after a check.

    Args:
        windows: the windows this check scored (may be empty).
        state: the state after them (alarms carry over from earlier checks).
        calibration: the rules used.
        settings: the settings used.
        retraining: what the retraining trigger did, if it was due.
        retraining_reason: why it was not, otherwise.
        checked_at: wall-clock time of the check (default now).
    """
    last = windows[-1] if windows else None
    notes = list(calibration.notes)
    kinds: dict[str, Any] = {}
    for kind in KINDS:
        rule = calibration.kinds.get(kind)
        res = last.kinds.get(kind) if last is not None else None
        entry: dict[str, Any] = {
            "drift": bool(state.alarm.get(kind, False)),
            "persistence_windows": settings.persistence_windows,
            "consecutive_windows": int(state.consecutive.get(kind, 0)),
            "alarm_since": state.alarm_since.get(kind),
        }
        if rule is None or kind not in settings.kinds:
            entry["status"] = "not_monitored"
            entry["reason"] = "; ".join(n for n in notes if n.startswith(f"{kind}:")) or (
                "not in the monitored kinds" if kind not in settings.kinds else "not calibrated"
            )
            kinds[kind] = entry
            continue
        entry["reference_false_alarm_rate"] = _num(rule.reference_rate)
        entry["calibration_windows"] = rule.windows
        entry["columns"] = rule.columns
        scored = [w.kinds[kind] for w in windows if w.kinds[kind].status in ("ok", "drifted")]
        entry["windows_scored"] = len(scored)
        entry["windows_drifted"] = sum(1 for r in scored if r.drifted)
        if res is None:
            entry["status"] = "drift" if entry["drift"] else "no_new_window"
        else:
            entry["status"] = "drift" if entry["drift"] else res.status
            entry["window_drifted"] = res.drifted
            entry["score"] = _num(res.score)
            entry["threshold"] = 1.0
            entry["top_columns"] = [
                {
                    "column": col,
                    "score": _num(cs.score),
                    "threshold": _num(cs.threshold),
                    "ratio": _num(cs.ratio),
                }
                for col, cs in res.top(5)
            ]
        kinds[kind] = entry
    if retraining is not None:
        retrain: dict[str, Any] = retraining.to_dict()
    else:
        retrain = {"started": False, "reason": retraining_reason or "not due"}
    return {
        "checked_at": (checked_at or pd.Timestamp.now(tz="UTC")).isoformat(),
        "drift": any(v["drift"] for v in kinds.values()),
        "window_s": settings.window_s,
        "method": settings.method,
        "reference_mode": settings.reference_mode,
        "windows_checked": len(windows),
        "first_window_start": windows[0].start.isoformat() if windows else None,
        "last_window_end": state.last_window_end,
        "kinds": kinds,
        "retraining": retrain,
        "reference": calibration.reference,
        "notes": notes,
    }


def write_verdict(data: dict[str, Any], path: str | Path) -> Path:
    """Write the verdict as JSON."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return out


def write_evidently_report(
    detector: DriftDetector, window: WindowResult, current: DriftData, path: str | Path
) -> Path | None:
    """Evidently's drift report of ``window`` against its reference, each column with its
    calibrated threshold, as HTML at ``path`` and Evidently's JSON beside it (same name,
    ``.json``); None when no distribution kind is calibrated."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    method = detector.settings.method
    cols: list[str] = []
    thresholds: dict[str, float] = {}
    for kind in _DIST_KINDS:
        rule = detector.calibration.kinds.get(kind)
        if rule is None or kind not in detector.settings.kinds:
            continue
        for c in rule.columns:
            if c not in thresholds:
                cols.append(c)
                thresholds[c] = to_evidently_threshold(method, rule.threshold(c))
    if not cols:
        return None
    cur = current.between(window.start, window.end).frame[cols]
    ref = detector.reference_frame(window.start)[cols]
    # Evidently needs at least one value per side; empty columns are left out.
    cols = [c for c in cols if cur[c].notna().any() and ref[c].notna().any()]
    if not cols:
        return None
    definition = DataDefinition(numerical_columns=cols)
    report = Report(
        [ValueDrift(column=c, method=method, threshold=thresholds[c]) for c in cols],
        include_tests=True,
        metadata={
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "reference_mode": detector.settings.reference_mode,
        },
    )
    snapshot = report.run(
        Dataset.from_pandas(cur[cols].reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(ref[cols].reset_index(drop=True), data_definition=definition),
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out))
    out.with_suffix(".json").write_text(snapshot.json())
    return out


def _history(windows: list[WindowResult]) -> pd.DataFrame:
    rows = []
    for w in windows:
        for kind, res in w.kinds.items():
            rows.append(
                {
                    "start": w.start,
                    "kind": kind,
                    "score": res.score,
                    "drifted": res.drifted,
                    "alarm": res.alarm,
                    "status": res.status,
                }
            )
    return pd.DataFrame(rows)


def write_summary_html(
    windows: list[WindowResult],
    calibration: Calibration,
    data: dict[str, Any],
    path: str | Path,
    *,
    evidently_report: str | None = None,
) -> Path:
    """A self-contained page: the verdict table, each kind's score per window against
    its threshold (drifted windows and alarms marked), the columns' ratios as a heat map,
    and the distribution of the calibration's no-change scores."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    monitored = [k for k in KINDS if k in calibration.kinds]
    figs: list[str] = []
    hist = _history(windows)
    if monitored and len(hist):
        fig = make_subplots(
            rows=len(monitored), cols=1, shared_xaxes=True, subplot_titles=monitored
        )
        for i, kind in enumerate(monitored, start=1):
            h = hist[hist["kind"] == kind]
            fig.add_trace(
                go.Scatter(x=h["start"], y=h["score"], mode="lines+markers", name=kind),
                row=i,
                col=1,
            )
            alarm = h[h["alarm"]]
            fig.add_trace(
                go.Scatter(
                    x=alarm["start"],
                    y=alarm["score"],
                    mode="markers",
                    marker={"color": "red", "size": 10, "symbol": "x"},
                    name=f"{kind}: in drift",
                ),
                row=i,
                col=1,
            )
            fig.add_hline(y=1.0, line_dash="dash", line_color="grey", row=i, col=1)
        fig.update_layout(
            height=220 * len(monitored) + 80,
            title="Kind score per window (drifted above 1; x: in drift after K windows)",
        )
        figs.append(fig.to_html(full_html=False, include_plotlyjs=True))
    for kind in monitored:
        cols = calibration.kinds[kind].columns
        if not windows or len(cols) < 2:
            continue
        z = np.array(
            [
                [
                    w.kinds[kind].columns[c].ratio if c in w.kinds[kind].columns else np.nan
                    for w in windows
                ]
                for c in cols
            ]
        )
        heat = go.Figure(
            go.Heatmap(
                z=z,
                x=[w.start for w in windows],
                y=cols,
                colorscale="RdBu_r",
                zmid=1.0,
                colorbar={"title": "score / threshold"},
            )
        )
        heat.update_layout(
            title=f"{kind}: each column's score / its threshold",
            height=max(300, 22 * len(cols) + 120),
        )
        figs.append(heat.to_html(full_html=False, include_plotlyjs=not figs))
    null = go.Figure()
    for kind in monitored:
        null.add_trace(go.Histogram(x=calibration.kinds[kind].null_scores, name=kind, opacity=0.6))
    null.add_vline(x=1.0, line_dash="dash", line_color="grey")
    null.update_layout(
        barmode="overlay",
        title="Calibration: kind scores on no-change reference windows (threshold at 1)",
        height=320,
    )
    figs.append(null.to_html(full_html=False, include_plotlyjs=not figs))
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                kind,
                e["status"],
                e["drift"],
                e.get("score"),
                f"{e['consecutive_windows']} (K={e['persistence_windows']})",
                e.get("windows_drifted", ""),
                e.get("reference_false_alarm_rate", ""),
                ", ".join(c["column"] for c in e.get("top_columns", [])[:3]) or e.get("reason", ""),
            )
        )
        + "</tr>"
        for kind, e in data["kinds"].items()
    )
    link = (
        f"<p>Per-column report of the latest window (Evidently): "
        f'<a href="{html.escape(evidently_report)}">{html.escape(evidently_report)}</a></p>'
        if evidently_report
        else ""
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.get("notes", []))
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>HYDATIS drift check</title>
<style>body{{font-family:sans-serif;margin:2em}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}</style></head><body>
<h1>Drift check: {"DRIFT" if data["drift"] else "no drift"}</h1>
<p>{data["windows_checked"]} window(s) of {data["window_s"]:g} s checked, up to
{html.escape(str(data["last_window_end"]))}; method {html.escape(data["method"])},
reference {html.escape(data["reference_mode"])}. Retraining:
{html.escape(json.dumps(data["retraining"]))}</p>
<table><tr><th>kind</th><th>status</th><th>in drift</th><th>score</th><th>drifted in a row</th>
<th>windows drifted</th><th>reference false-alarm rate</th><th>top columns / reason</th></tr>
{rows}</table>{link}
{"".join(figs)}
<h2>Notes</h2><ul>{notes}</ul>
</body></html>"""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
