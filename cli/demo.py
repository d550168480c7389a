"""``hydatis demo --out DIR``: the main job, end to end on this machine.

1. The training pipeline runs locally (``kfp.local``) on the default trace — the real
   composite trace when the data directory exists, else the embedded synthetic default —
   with small search and training budgets: the trace's first ``--history`` seconds are
   the cluster's history; the models train on its first ``1 − valid_share`` and are
   validated and gated on the rest.
2. The three model servers start on the versions this run registered, and the extender
   in front of them (``cli.ml_stack``).
3. The rest of the trace — the *held-out* part, which no training, tuning or validation
   read — is replayed by the simulator with the ML scheduler (kube-scheduler's default
   plugins + the extender over HTTP) and every baseline, with one seed. The hour before
   it is replayed too, only to fill the cluster; it is not measured.
4. The operations reports on the run's own outputs: the business report on the
   comparison (``DIR/business``, as ``hydatis report business``), the capacity forecast
   on the history dataset (``DIR/forecast``; a horizon the history is too short for is
   named, with the history it needs) and the drift verdicts on the history dataset with
   the run's load predictor (``DIR/drift``, as ``hydatis drift check``, never
   retraining). A step that fails is reported with its reason; the others go on.
5. ``DIR`` gets ``results.json`` (the figures per scheduler, ``ml`` included),
   ``run.json`` (the context, the split, the models, the operations steps) and
   ``report.html`` (plots, tables, the models' evaluation tables, the operations reports,
   what each number means); the summary is printed.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import math
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydatis.errors import HydatisError

__all__ = [
    "DEMO_DEFAULTS",
    "WARMUP_S",
    "StepOutcome",
    "add_parser",
    "business_step",
    "drift_history_short",
    "drift_step",
    "forecast_step",
    "history_dataset",
    "run",
]

log = logging.getLogger(__name__)

#: The demo's trace, split and budgets: a 200-node sample of the composite trace at the
#: load where hot nodes exist, 24 h of which 16 h are history (12 h train, 4 h
#: validation) and 8 h held out; three search trials per model, quick trainings.
DEMO_DEFAULTS: dict[str, Any] = {
    "nodes": 200,
    "load_factor": 1.3,
    "usage_scale": 1.5,
    "horizon_s": 86400.0,
    "history_s": 57600.0,
    "valid_share": 0.25,
    "tune_trials": 3,
    "tune_budget": "tiny",
    "train_budget": "quick",
}
#: The replay of the held-out part starts this long before it, to fill the cluster.
WARMUP_S = 3600.0
BASELINES = ("default", "tlp", "lvrb", "koordinator", "crane", "random")

#: What each column of the comparison means (the report's glossary).
GLOSSARY: dict[str, str] = {
    "mean_cpu": "mean node CPU utilisation over node-time; the workload fixes it, a "
    "scheduler does not change it much",
    "p95_cpu": "95th percentile of node CPU utilisation over node-time",
    "hot_share": "share of node-time with CPU above 0.85 (hot spots); lower is better",
    "target_band_share": "share of node-time with CPU within 0.65 ± 0.05 (well packed, not hot)",
    "spread": "standard deviation of CPU across nodes, averaged over time (balance)",
    "objective": "placement objective: mean over node-time of max(0, CPU − 0.65), the CPU "
    "above the target; lower is better. Improvement of A over B = 1 − objective(A) / "
    "objective(B)",
    "availability": "1 − impacted / alive pod-time; a pod is impacted while pending past "
    "60 s, on a node whose CPU demand exceeds capacity, or evicted for memory",
    "impacted_pending": "share of pod-time pending longer than 60 s",
    "impacted_cpu": "share of pod-time on a node whose CPU demand exceeds its capacity",
    "impacted_oom": "share of pod-time lost to out-of-memory evictions (until placed again)",
    "pending_p95_s": "95th percentile of the time pods waited to be placed (s)",
    "evictions": "pods evicted because their node ran out of memory",
    "never_placed": "pods that never found a node within the replay",
    "latency_p50_ms": "median time of one scheduling decision (ms); for ml it includes "
    "the extender's two HTTP calls",
    "latency_p99_ms": "99th percentile of the decision time (ms)",
}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis demo``; the caller sets ``func`` to :func:`run`."""
    from cli.pipeline import add_trace_arguments

    p = sub.add_parser(
        "demo",
        help="the main job: training pipeline, model servers, held-out replay, report",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory")
    p.add_argument(
        "--schedulers",
        default=",".join(BASELINES),
        help="baselines replayed beside the ML scheduler (comma-separated)",
    )
    add_trace_arguments(p, defaults=DEMO_DEFAULTS)
    return p


# --------------------------------------------------------------------------- report


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return html.escape(str(value))


def _frame_html(frame: Any) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _markdown_html(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)


def _validation_section(report: str) -> str:
    """The ``## Validation`` section of a registered version's report."""
    start = report.find("## Validation")
    return report[start:] if start >= 0 else report


def _model_reports(outcomes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each registered version's report and evaluation table, read back from MLflow."""
    import tempfile

    import mlflow.artifacts
    import pandas as pd

    from components.register import tracking_uri

    uri = tracking_uri()
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="hydatis-demo-") as tmp:
        for o in outcomes:
            got: dict[str, Any] = {}
            for name in ("report.md", "evaluation.csv"):
                try:
                    path = mlflow.artifacts.download_artifacts(
                        run_id=o["run_id"], artifact_path=name, dst_path=tmp, tracking_uri=uri
                    )
                except Exception as exc:  # MLflow raises many kinds; the report says so
                    got[name] = f"(not available: {exc})"
                    continue
                got[name] = pd.read_csv(path) if name.endswith(".csv") else Path(path).read_text()
            out[o["kind"]] = got
    return out


def _split_rows(info: dict[str, Any]) -> list[tuple[str, str, str]]:
    h = info["horizon_s"] / 3600
    hist = info["history_s"] / 3600
    cut = hist * (1.0 - info["valid_share"])
    warm = WARMUP_S / 3600
    return [
        (
            "training",
            f"[0 h, {cut:g} h)",
            "the models train here (each trainer splits it "
            "again inside: early stopping, its own held-out tail)",
        ),
        (
            "validation",
            f"[{cut:g} h, {hist:g} h)",
            "scored beside the baselines; the gate reads these figures",
        ),
        (
            "warm-up",
            f"[{hist - warm:g} h, {hist:g} h)",
            "replayed only to fill the cluster before the held-out part; not measured",
        ),
        (
            "held-out",
            f"[{hist:g} h, {h:g} h)",
            "this comparison: never read by training, tuning or validation",
        ),
    ]


def _summary_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """What the ML scheduler did against the baselines, in a few sentences."""
    if "ml" not in results:
        return []
    ml = results["ml"]
    others = {k: v for k, v in results.items() if k != "ml"}
    lines = []
    for key, label, lower in (
        ("objective", "placement objective", True),
        ("hot_share", "hot node-time", True),
        ("availability", "availability", False),
    ):
        best_name = (min if lower else max)(others, key=lambda n: others[n][key])
        best = others[best_name][key]
        better = ml[key] < best if lower else ml[key] > best
        lines.append(
            f"{label}: ml {ml[key]:.4g} vs best baseline {best_name} {best:.4g} "
            f"({'better' if better else 'not better'})"
        )
    rnd = others.get("random")
    if rnd and rnd["objective"] > 0:
        lines.append(
            f"improvement over random on the objective: "
            f"{100 * (1 - ml['objective'] / rnd['objective']):+.1f} %"
        )
    return lines


def _augment_html(
    path: Path,
    *,
    info: dict[str, Any],
    outcomes: list[dict[str, Any]],
    reports: dict[str, dict[str, Any]],
    results: dict[str, dict[str, Any]],
    stack: dict[str, Any],
    operations: list[StepOutcome] | None = None,
) -> None:
    """Add the demo's sections to the simulator's ``report.html``: how the run was made
    (the split), the models served and their gate, the summary, the models' evaluation
    tables and the glossary."""
    from simulator.metrics import METRIC_LABELS

    split = "".join(
        f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td><td style='text-align:left'>"
        f"{html.escape(c)}</td></tr>"
        for a, b, c in _split_rows(info)
    )
    models = "".join(
        f"<tr><th>{html.escape(o['name'])}</th><td>{html.escape(str(o['version']))}</td>"
        f"<td>{html.escape(o['alias'])}</td><td style='text-align:left'>"
        f"{html.escape(o['reason'])}</td><td>{html.escape(stack['sources'].get(o['kind'], ''))}"
        "</td></tr>"
        for o in outcomes
    )
    evaluation = []
    for o in outcomes:
        rep = reports.get(o["kind"], {})
        text = rep.get("report.md", "")
        title = f"{o['name']} version {o['version']}"
        evaluation.append(f"<h3>{html.escape(title)}</h3>")
        if isinstance(text, str) and text.startswith("("):
            evaluation.append(f"<p>{html.escape(text)}</p>")
        elif text:
            evaluation.append(_markdown_html(_validation_section(text)))
    glossary = "".join(
        f"<tr><th>{html.escape(METRIC_LABELS[k][0])}</th><td style='text-align:left'>"
        f"{html.escape(GLOSSARY.get(k, ''))}</td></tr>"
        for k in METRIC_LABELS
    )
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in _summary_lines(results))
    tuning = "".join(
        f"<li>{html.escape(line)}</li>"
        for line in (
            "load predictor: the search reads the public Alibaba v2018 and Bitbrains node "
            "series (not this trace), the first 80 % of each; the composite trace draws its "
            "pods' usage shapes from those Bitbrains VMs, rescaled, so raw VM samples the "
            "search read can reappear, summed into node totals, in the held-out part",
            "anomaly detector: the search reads the SMD and ASD labelled server metrics",
            "placement agent: the search replays its own small samples of the trace source "
            "over their first hours only — before the held-out part's time of day",
            "without a data directory the load and anomaly searches are skipped (defaults)",
        )
    )
    extra = f"""
<h2>How this run was made</h2>
<p>{html.escape(info["description"])}. The training pipeline
(<code>hydatis-training</code>, run locally with <code>kfp.local</code>) took the trace's
first {info["history_s"] / 3600:g} h as the cluster's history; the models below were trained,
validated and registered by it; the model servers and the extender then served them, and
the simulator replayed the rest of the trace with the ML scheduler and every baseline
(seed {info["seed"]}).</p>
<table><tr><th>part</th><th>trace time</th><th>used for</th></tr>{split}</table>
<p>Tuning searches on its own data (<code>katib/objectives.py</code>), never on this
trace's held-out part:</p><ul>{tuning}</ul>
<h2>The ML scheduler</h2>
<p>kube-scheduler's default plugins plus the HYDATIS extender over HTTP (weight 5,
node-cache-capable, ignorable), the extender calling the three model servers. The models it
served are this run's registered versions, whatever the gate decided:</p>
<table><tr><th>model</th><th>version</th><th>alias</th><th>gate</th><th>served</th></tr>{models}</table>
<h2>Summary</h2><ul>{summary}</ul>
<h2>The models' evaluation (validation part of the history)</h2>
{"".join(evaluation)}
{_operations_html(operations or [])}
<h2>What each number means</h2>
<table>{glossary}</table>
<p>Figures are measured over the held-out part only (after the warm-up). A fixed workload
on a fixed cluster has a fixed mean utilisation: what a scheduler changes is where the load
lands.</p>
"""
    page = path.read_text()
    path.write_text(page.replace("</body>", extra + "</body>", 1))


# --------------------------------------------------------------------------- operations


@dataclass
class StepOutcome:
    """What one operations step of the demo gave.

    Attributes:
        name: ``business``, ``forecast`` or ``drift``.
        status: ``ok``; ``partial`` (the forecast: some horizons lacked history);
            ``too short`` (the history is too short for any of it: the reason says what
            it needs); ``failed`` (the reason says why).
        seconds: the step's wall time.
        lines: its summary, a few sentences.
        link: its report page, relative to the demo's folder (None when it wrote none).
        reason: why it failed or was limited.
    """

    name: str
    status: str
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)
    link: str | None = None
    reason: str = ""


def _num(value: Any, spec: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return format(v, spec) if math.isfinite(v) else "–"


def _timed(name: str, step: Callable[[], StepOutcome]) -> StepOutcome:
    """Run one step; an error becomes a ``failed`` outcome with its reason, so the rest of
    the demo goes on."""
    t0 = time.perf_counter()
    try:
        outcome = step()
    except Exception as exc:  # any failure of one report must not lose the demo
        log.warning("demo step %s failed: %s", name, exc)
        outcome = StepOutcome(name, "failed", reason=f"{type(exc).__name__}: {exc}")
    outcome.seconds = time.perf_counter() - t0
    return outcome


def business_step(
    results_dir: Path, out: Path, *, candidate: str = "ml", baseline: str = "default"
) -> StepOutcome:
    """``hydatis report business`` on the demo's comparison: ``out/business.html``,
    ``business.json`` and ``business.prom`` with the default cost model."""
    from monitoring.business import (
        business_report,
        load_costs,
        write_html,
        write_json,
        write_prometheus_text,
    )

    costs = load_costs()
    report = business_report([results_dir], costs, candidate=candidate, baseline=baseline)
    out.mkdir(parents=True, exist_ok=True)
    page = write_html(
        report, out / "business.html", costs_source="monitoring/business/costs.yaml (defaults)"
    )
    write_json(report, out / "business.json")
    write_prometheus_text(report, out / "business.prom")
    m = report.mean_savings()
    cur = costs.currency
    fig = report.figure
    lines = [
        f"{candidate} against {baseline}: nodes needed "
        f"{_num(fig(candidate, 'nodes_needed'), '.4g')} vs "
        f"{_num(fig(baseline, 'nodes_needed'), '.4g')} (saved {_num(m['nodes_saved'], '.3g')}), "
        f"availability {_num(fig(candidate, 'availability'), '.4%')} vs "
        f"{_num(fig(baseline, 'availability'), '.4%')}",
        f"net {_num(m['net_per_year'], ',.0f')} {cur} per year after the platform's cost; "
        f"ROI over {costs.period_years:g} y {_num(m['roi'], '.1%')} (default cost inputs; "
        "the page varies each one)",
    ]
    return StepOutcome("business", "ok", lines=lines, link=f"{out.name}/{page.name}")


def forecast_step(
    history: Path,
    out: Path,
    *,
    horizons: tuple[str, ...] = ("24h", "7d", "30d"),
    step_s: float = 300.0,
) -> StepOutcome:
    """The capacity forecast (``hydatis forecast --dataset``, the cluster's CPU and
    memory) on the history dataset, for each horizon its history is long enough for; the
    others are named with the history they need."""
    from hydatis.dataset import load_dataset
    from monitoring.forecast import (
        HORIZONS,
        capacity_need,
        dataset_demand,
        forecast_series,
        forecast_table,
        write_forecast_html,
    )
    from monitoring.forecast.errors import HistoryTooShortError, format_duration

    ds = load_dataset(history)
    series = dataset_demand(ds, step_s=step_s, pools=False, source=str(history))
    forecasts, needs, lines, short = [], [], [], []
    for label in horizons:
        try:
            done = [forecast_series(s, HORIZONS[label]) for s in series]
        except HistoryTooShortError as exc:
            short.append(
                f"{label}: needs {format_duration(exc.minimum_s)} of history, this one has "
                f"{format_duration(exc.got_s)}"
            )
            continue
        for fc in done:
            need = capacity_need(fc)
            forecasts.append(fc)
            needs.append(need)
            lines.append(
                f"{label} {fc.series.name}: p{need.quantile * 100:g} demand "
                f"{_num(need.demand['point'], '.4g')} {fc.series.unit} ({fc.result.model}), "
                f"nodes needed at {need.target:.0%}: {need.nodes.get('point')} "
                f"(now {need.nodes_now})"
            )
    link = None
    if forecasts:
        out.mkdir(parents=True, exist_ok=True)
        page = write_forecast_html(
            forecasts, needs, out / "forecast.html", title=f"Demand ahead — {history.name}"
        )
        forecast_table(forecasts, needs).to_csv(out / "forecast_table.csv", index=False)
        link = f"{out.name}/{page.name}"
    status = "ok" if not short else ("partial" if forecasts else "too short")
    reason = "history too short for " + "; ".join(short) if short else ""
    return StepOutcome("forecast", status, lines=lines, link=link, reason=reason)


def load_model_dir(outcomes: list[dict[str, Any]], out: Path) -> tuple[Path | None, str]:
    """The run's load predictor as a directory ``hydatis drift check --model`` reads (a
    registered version is read from the registry and saved under ``out``), and what it
    is; (None, why) when there is none."""
    uri = next((o.get("uri") for o in outcomes if o.get("kind") == "load"), None)
    if not uri:
        return None, "no load predictor in this run's outcomes"
    if Path(str(uri)).is_dir():
        return Path(str(uri)), str(uri)
    import mlflow

    from components.register import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    model = mlflow.pyfunc.load_model(str(uri)).unwrap_python_model().model
    return model.save(out / "load-model"), str(uri)


def drift_history_short(history: Path) -> str | None:
    """Why the drift check cannot calibrate on ``history`` (its reference — the first
    75 % — spans fewer calendar days than leave-one-day-out calibration needs), or None.

    A conservative early answer (the reference's rows lie within those days), so a short
    history costs a read of one column instead of the features and the model.
    """
    import pandas as pd

    from cli.drift import DEFAULT_REFERENCE_SHARE
    from monitoring.drift import load_settings

    ts = pd.read_parquet(history / "node_metrics.parquet", columns=["ts"])["ts"]
    if ts.empty:
        return "the history has no node samples"
    first, last = ts.min(), ts.max()
    end = first + (last - first) * DEFAULT_REFERENCE_SHARE
    days = pd.to_datetime(ts[ts < end], utc=True).dt.normalize().nunique()
    need = load_settings(None).min_reference_days
    if days >= need:
        return None
    return (
        f"history too short: the drift check's reference (the first "
        f"{DEFAULT_REFERENCE_SHARE:.0%} of the history) spans {days} calendar day(s); its "
        f"calibration leaves one day out at a time and needs at least {need}"
    )


def drift_step(history: Path, out: Path, *, model_dir: Path | None, model_note: str) -> StepOutcome:
    """``hydatis drift check`` on the history dataset (reference: its first 75 %; the
    rest monitored) with the run's load predictor, never starting a retraining."""
    from cli import drift as drift_cli

    short = drift_history_short(history)
    if short is not None:
        return StepOutcome("drift", "too short", reason=short)
    parser = argparse.ArgumentParser(prog="hydatis")
    drift_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["drift", "check", "--dataset", str(history), "--out", str(out), "--no-retrain"]
    if model_dir is not None:
        argv += ["--model", str(model_dir)]
    try:
        drift_cli.run(parser.parse_args(argv))
    except HydatisError as exc:
        if "calendar day" in str(exc):
            return StepOutcome("drift", "too short", reason=f"history too short: {exc}")
        raise
    verdict = json.loads((out / "verdict.json").read_text())
    lines = [
        f"{kind}: {e['status']}{' — in drift' if e['drift'] else ''}"
        + (f", score {_num(e.get('score'), '.2f')}" if e.get("score") is not None else "")
        + (f" ({e['reason']})" if e.get("reason") else "")
        for kind, e in verdict["kinds"].items()
    ]
    lines.append(f"{verdict['windows_checked']} window(s) checked; load predictor: {model_note}")
    page = next((p for p in ("report.html", "summary.html") if (out / p).exists()), None)
    return StepOutcome("drift", "ok", lines=lines, link=f"{out.name}/{page}" if page else None)


def history_dataset(run_dir: Path | None, root: Path, arguments: dict[str, Any]) -> Path:
    """The history dataset the training pipeline's first task wrote for this run: in
    the run's folder, or — when that task came from the cache — the newest earlier one
    with the same trace and cut.

    Raises:
        HydatisError: none under ``root`` matches.
    """
    wanted = {
        k: arguments[k]
        for k in ("nodes", "load_factor", "usage_scale", "horizon_s", "seed", "synthetic")
        if k in arguments
    }
    found = [run_dir / "import-history-op" / "dataset"] if run_dir is not None else []
    found += sorted(
        root.glob("*/import-history-op/dataset"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for path in found:
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        knobs = meta.get("trace_knobs") or {}
        if meta.get("history_s") == arguments.get("history_s") and all(
            knobs.get(k) == v for k, v in wanted.items()
        ):
            return path
    raise HydatisError(
        f"the training pipeline's history dataset (import-history-op/dataset with "
        f"history_s={arguments.get('history_s')}, {wanted}) is not under {root}"
    )


def operations_steps(
    out: Path,
    *,
    run_dir: Path | None,
    root: Path,
    arguments: dict[str, Any],
    outcomes: list[dict[str, Any]],
    baseline: str,
) -> list[StepOutcome]:
    """The business report, the capacity forecast and the drift check, each timed; one
    failing leaves the others."""
    steps = [_timed("business", lambda: business_step(out, out / "business", baseline=baseline))]
    located: dict[str, Path] = {}

    def history() -> Path:
        if "path" not in located:
            located["path"] = history_dataset(run_dir, root, arguments)
        return located["path"]

    steps.append(_timed("forecast", lambda: forecast_step(history(), out / "forecast")))

    def drift() -> StepOutcome:
        path = history()
        short = drift_history_short(path)
        if short is not None:  # before reading the model from the registry
            return StepOutcome("drift", "too short", reason=short)
        try:
            model_dir, note = load_model_dir(outcomes, out / "drift")
        except Exception as exc:  # the registry's own errors: check without the model
            model_dir, note = None, f"not available ({type(exc).__name__}: {exc})"
        return drift_step(path, out / "drift", model_dir=model_dir, model_note=note)

    steps.append(_timed("drift", drift))
    return steps


def _operations_html(steps: list[StepOutcome]) -> str:
    """The report's operations section: the summary table, then each step's lines."""
    if not steps:
        return ""
    rows = "".join(
        f"<tr><th>{html.escape(s.name)}</th><td>{html.escape(s.status)}</td>"
        f"<td>{s.seconds:.1f}</td><td style='text-align:left'>"
        f"{html.escape(s.reason or (s.lines[0] if s.lines else ''))}</td><td>"
        + (f"<a href='{html.escape(s.link)}'>{html.escape(s.link)}</a>" if s.link else "–")
        + "</td></tr>"
        for s in steps
    )
    parts = [
        "<h2>Operations reports</h2>",
        "<p>The business report on this comparison, the capacity forecast and the drift "
        "verdicts on the cluster history the models trained on (the drift check's "
        "reference is its first 75 %), as <code>hydatis report business</code>, "
        "<code>hydatis forecast</code> and <code>hydatis drift check</code> make them.</p>",
        "<table><tr><th>step</th><th>status</th><th>seconds</th><th>summary or reason</th>"
        f"<th>report</th></tr>{rows}</table>",
    ]
    titles = {
        "business": "Business report",
        "forecast": "Capacity forecast",
        "drift": "Drift verdicts",
    }
    for s in steps:
        parts.append(f"<h3>{html.escape(titles.get(s.name, s.name))}</h3>")
        if s.reason:
            parts.append(f"<p><b>{html.escape(s.status)}:</b> {html.escape(s.reason)}</p>")
        if s.lines:
            parts.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in s.lines) + "</ul>")
        if s.link:
            parts.append(f"<p><a href='{html.escape(s.link)}'>the full report</a></p>")
    return "\n".join(parts)


def _operations_table(steps: list[StepOutcome]) -> Any:
    """The printed summary of the operations steps."""
    from rich.table import Table

    table = Table(title="Operations reports", header_style="bold")
    for col in ("step", "status", "seconds", "summary or reason", "report"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for s in steps:
        table.add_row(
            s.name,
            s.status,
            f"{s.seconds:.1f}",
            s.reason or (s.lines[0] if s.lines else ""),
            s.link or "–",
        )
    return table


# --------------------------------------------------------------------------- the job


def _baselines(text: str) -> list[str]:
    from simulator.schedulers import BASELINES as KNOWN

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(KNOWN))
    if unknown:
        raise HydatisError(f"--schedulers: unknown {unknown}; baselines: {', '.join(KNOWN)}")
    return names


def run(args: argparse.Namespace) -> int:
    """Run the demo (module docstring); the exit code."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cli.ml_stack import ml_stack
    from cli.pipeline import (
        _console,
        outcome_table,
        prepare_registry,
        read_outcomes,
        run_with_progress,
        training_arguments,
    )
    from components.import_trace import future_part, trace
    from components.register import tracking_uri
    from hydatis.config import work_dir
    from simulator.compare import run_comparison
    from simulator.engine import SimConfig
    from simulator.node_state import scheduler_context
    from simulator.report import render_table, write_html, write_results

    console = _console()
    t_start = time.perf_counter()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our own bars
    baselines = _baselines(args.schedulers)
    if not 0 < args.history < args.horizon or args.history < WARMUP_S:
        raise HydatisError(
            f"--history must lie inside the trace and leave the warm-up: {WARMUP_S:g} <= "
            f"{args.history:g} < --horizon {args.horizon:g}"
        )
    arguments = training_arguments(args, deploy="render")
    what = (
        f"the real composite trace from {arguments['data_dir']}"
        if arguments["data_dir"]
        else "the embedded synthetic default"
        + (" (--synthetic)" if args.synthetic else " (no data directory)")
    )
    console.print(f"[bold]Data:[/] {what}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. the training pipeline
    prepare_registry()
    root = Path(args.root) if args.root else work_dir() / "pipeline"
    t0 = time.perf_counter()
    pipe = run_with_progress(
        "training",
        arguments,
        root=root,
        caching=not args.no_cache,
        console=console,
        models=arguments["models"],
    )
    pipeline_s = time.perf_counter() - t0
    outcomes = read_outcomes(pipe)
    console.print(outcome_table(outcomes))
    sources = {o["kind"]: o["uri"] for o in outcomes}

    # 2. the held-out part of the same trace
    with console.status("building the held-out part of the trace…"):
        ds, description = trace(
            nodes=args.nodes,
            load_factor=args.load_factor,
            usage_scale=args.usage_scale,
            horizon_s=args.horizon,
            seed=args.seed,
            synthetic=arguments["synthetic"],
        )
        window = future_part(ds, args.history - WARMUP_S, args.horizon)
    config = SimConfig(warmup_s=WARMUP_S)
    names = ["ml", *baselines]
    info = {
        "description": description,
        "horizon_s": float(args.horizon),
        "history_s": float(args.history),
        "valid_share": float(args.valid_share),
        "seed": int(args.seed),
    }

    # 3. the model servers, the extender and the replay
    t1 = time.perf_counter()
    # The servers resolve models:/ URIs against this registry; MLflow's artifact download
    # reads the registry from the environment, so name it there for the children.
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    with ExitStack() as running:
        with console.status("starting the model servers and the extender…") as status:
            stack = running.enter_context(
                ml_stack(
                    seed=args.seed,
                    models=sources,
                    use_registry=False,
                    out_dir=out / "ml-stack",
                    progress=status.update,
                )
            )
        console.print(f"[bold]ML scheduler:[/] extender {stack.url}; models {stack.sources}")
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bars = {n: progress.add_task(n, total=1.0) for n in names}
            results, series, run_info = run_comparison(
                window,
                names,
                seed=args.seed,
                config=config,
                description=f"{description}: held-out part [{args.history / 3600:g} h, "
                f"{args.horizon / 3600:g} h)",
                on_progress=lambda n, f: progress.update(bars[n], completed=f),
                scheduler_params={"ml": {"url": stack.url, **scheduler_context(window)}},
            )
        stack_info = {
            "url": stack.url,
            "sources": dict(stack.sources),
            "origin": dict(stack.origin),
        }
    replay_s = time.perf_counter() - t1

    # 4. the results (the business report reads them)
    with console.status("writing the results…"):
        reports = _model_reports(outcomes)
        run_info.update(
            {
                "split": [{"part": a, "trace_time": b, "use": c} for a, b, c in _split_rows(info)],
                "pipeline": {
                    "run_dir": str(pipe.run_dir),
                    "log": str(pipe.log_path),
                    "arguments": arguments,
                    "seconds": pipeline_s,
                    "cached_tasks": pipe.cached,
                },
                "models": outcomes,
                "ml_stack": stack_info,
                "replay_seconds": replay_s,
            }
        )
        res_path, run_path = write_results(out, results, run_info)
    # 5. the operations reports on the run's own outputs (the drift check prints its own
    # progress, so no status spinner around them)
    console.print("[bold]Operations reports:[/] business, capacity forecast, drift")
    operations = operations_steps(
        out,
        run_dir=pipe.run_dir,
        root=root,
        arguments=arguments,
        outcomes=outcomes,
        baseline="default" if "default" in baselines else (baselines or ["default"])[0],
    )
    run_info["operations"] = [asdict(o) for o in operations]

    # 6. the report
    with console.status("writing the report…"):
        res_path, run_path = write_results(out, results, run_info)
        html_path = write_html(out, results, series, run_info)
        _augment_html(
            html_path,
            info=info,
            outcomes=outcomes,
            reports=reports,
            results=results,
            stack=stack_info,
            operations=operations,
        )
        (out / "models.json").write_text(json.dumps(outcomes, indent=2, default=str))
    first = next(iter(results.values()))
    console.print(
        render_table(
            results,
            title=f"Held-out part [{args.history / 3600:g} h, {args.horizon / 3600:g} h) — "
            f"seed {args.seed}, {run_info['dataset']['nodes']} nodes, "
            f"{run_info['dataset']['pods']} pods",
        )
    )
    for line in _summary_lines(results):
        console.print(f"  {line}")
    console.print(_operations_table(operations))
    console.print(
        f"Cluster: requested CPU {first['requested_cpu_share']:.1%}, used CPU "
        f"{first['used_cpu_share']:.1%} (mean node CPU {first['mean_cpu']:.3f}): a scheduler "
        "moves where load lands, not how much there is."
    )
    ops_s = ", ".join(f"{o.name} {o.seconds:.1f} s" for o in operations)
    console.print(
        f"Pipeline {pipeline_s:.0f} s, servers + replay {replay_s:.0f} s, operations reports "
        f"({ops_s}), total "
        f"{time.perf_counter() - t_start:.0f} s. Wrote {res_path}, {run_path} and {html_path}"
    )
    return 0
