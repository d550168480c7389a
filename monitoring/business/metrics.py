"""The business report's figures as Prometheus metrics, for the business dashboard.

Two forms of the same gauges:

- :func:`write_prometheus_text`: the text exposition format without timestamps, for
  node_exporter's textfile collector or a Pushgateway (a live Prometheus scrapes it);
- :func:`write_openmetrics`: OpenMetrics with a sample every ``step_s`` over a span, to
  backfill with ``promtool tsdb create-blocks-from openmetrics`` beside a replay's export
  (``simulator.metrics_export``), so the dashboard shows both on one time range.

Names (all gauges; money in the ``currency`` label's unit):

- per scheduler (``scheduler``), averaged over the comparisons:
  ``hydatis_business_node_cpu_mean_ratio``, ``..._node_cpu_p95_ratio``,
  ``..._hot_node_time_ratio``, ``..._availability_ratio``,
  ``..._pending_pod_time_ratio``, ``..._pending_p95_seconds``, ``..._pending_pods``,
  ``..._evicted_pods``, ``..._nodes``, ``..._nodes_needed``;
- for the pair (``candidate``, ``baseline``): ``hydatis_business_savings_per_year{item=
  "nodes"|"unavailability"|"platform_cost"|"net"}`` (platform cost negative),
  ``..._net_savings_period``, ``..._roi_ratio``, ``..._nodes_saved``,
  ``..._unavailable_seconds_saved_per_year``;
- the inputs and what they would have to be: ``hydatis_business_cost_input{input}``,
  ``hydatis_business_break_even{input}`` (NaN where no value >= 0 makes the net savings
  0), and the sensitivity table as
  ``hydatis_business_sensitivity_net_savings{input,factor}`` and
  ``hydatis_business_sensitivity_roi_ratio{input,factor}``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from hydatis.errors import ConfigError
from monitoring.business.report import BusinessReport

__all__ = ["Sample", "business_samples", "write_openmetrics", "write_prometheus_text"]

Sample = tuple[str, str, dict[str, str], float]  # (name, help, labels, value)

_PER_SCHEDULER = (
    ("hydatis_business_node_cpu_mean_ratio", "mean_cpu", "Mean node CPU utilisation."),
    ("hydatis_business_node_cpu_p95_ratio", "p95_cpu", "p95 node CPU utilisation."),
    ("hydatis_business_hot_node_time_ratio", "hot_share", "Share of node-time above 0.85 CPU."),
    ("hydatis_business_availability_ratio", "availability", "1 - impacted / alive pod-time."),
    ("hydatis_business_pending_pod_time_ratio", "pending_share", "Pod-time pending past 60 s."),
    ("hydatis_business_pending_p95_seconds", "pending_p95_s", "p95 of the time pods wait."),
    ("hydatis_business_pending_pods", "pending_mean", "Mean number of pending pods."),
    ("hydatis_business_evicted_pods", "evictions", "Pods evicted for memory in the replay."),
    ("hydatis_business_nodes", "nodes", "Nodes of the (scaled) cluster."),
    ("hydatis_business_nodes_needed", "nodes_needed", "Nodes that keep p95 CPU at the target."),
)


def business_samples(report: BusinessReport) -> list[Sample]:
    """Every gauge of the report (NaN values left out)."""
    out: list[Sample] = []
    cur = report.costs.currency
    schedulers = list(dict.fromkeys(n for c in report.comparisons for n in c.figures))
    for name, key, help_ in _PER_SCHEDULER:
        for sched in schedulers:
            if all(sched in c.figures for c in report.comparisons):
                out.append((name, help_, {"scheduler": sched}, report.figure(sched, key)))
    pair = {"candidate": report.candidate, "baseline": report.baseline}
    m = report.mean_savings()
    for item, key, sign in (
        ("nodes", "node_savings", 1.0),
        ("unavailability", "unavailability_savings", 1.0),
        ("platform_cost", "platform_cost", -1.0),
        ("net", "net_per_year", 1.0),
    ):
        out.append(
            (
                "hydatis_business_savings_per_year",
                "Savings per year of the candidate over the baseline, by item.",
                {**pair, "currency": cur, "item": item},
                sign * m[key],
            )
        )
    out += [
        (
            "hydatis_business_net_savings_period",
            "Net savings over the period, after the one-off cost.",
            {**pair, "currency": cur},
            m["net_period"],
        ),
        ("hydatis_business_roi_ratio", "Net savings / spend over the period.", pair, m["roi"]),
        (
            "hydatis_business_nodes_saved",
            "Nodes needed: baseline - candidate.",
            pair,
            m["nodes_saved"],
        ),
        (
            "hydatis_business_unavailable_seconds_saved_per_year",
            "Unavailable time per year avoided (pod-time share x a year).",
            pair,
            60.0 * m["unavailable_minutes_saved"],
        ),
    ]
    for name, value in report.costs.inputs().items():
        out.append(
            (
                "hydatis_business_cost_input",
                "The cost model's inputs.",
                {"input": name, "currency": cur},
                value,
            )
        )
    break_even = [
        (
            "hydatis_business_break_even",
            "Value of the input at which the net savings are 0 (NaN: none >= 0).",
            {"input": name, "currency": cur},
            math.nan if value is None else value,
        )
        for name, value in report.break_even.items()
    ]
    for row in report.sensitivity:
        labels = {"input": str(row["input"]), "factor": f"{float(row['factor']):g}"}
        out.append(
            (
                "hydatis_business_sensitivity_net_savings",
                "Net savings over the period with one input scaled by the factor.",
                {**labels, "currency": cur},
                float(row["net_period"]),
            )
        )
        out.append(
            (
                "hydatis_business_sensitivity_roi_ratio",
                "ROI with one input scaled by the factor.",
                labels,
                float(row["roi"]),
            )
        )
    # a break-even that does not exist stays as NaN, so the series (and the panel) exist
    return [s for s in out if math.isfinite(s[3])] + break_even


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.10g}"


def _grouped(samples: list[Sample]) -> dict[str, tuple[str, list[tuple[dict[str, str], float]]]]:
    families: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}
    for name, help_, labels, value in samples:
        families.setdefault(name, (help_, []))[1].append((labels, value))
    return families


def write_prometheus_text(report: BusinessReport, path: str | Path) -> Path:
    """Write the gauges in the text exposition format (no timestamps)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for name, (help_, series) in _grouped(business_samples(report)).items():
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
        lines += [f"{name}{_labels(labels)} {_num(value)}" for labels, value in series]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def write_openmetrics(
    report: BusinessReport,
    path: str | Path,
    *,
    start: float | None = None,
    end: float | None = None,
    step_s: float = 60.0,
    end_before: float = 4 * 3600.0,
    span_s: float = 6 * 3600.0,
) -> Path:
    """Write the gauges as OpenMetrics, one sample every ``step_s`` from ``start`` to
    ``end`` (unix seconds; default: a ``span_s`` span ending ``end_before`` seconds ago,
    clear of Prometheus's head block).

    Raises:
        ConfigError: an empty or reversed span, or a step that is not positive.
    """
    if not step_s > 0:
        raise ConfigError(f"step_s must be > 0, got {step_s}")
    if end is None:
        end = math.floor((time.time() - end_before) / step_s) * step_s
    if start is None:
        start = end - span_s
    if not end >= start:
        raise ConfigError(f"the metrics span ends ({end}) before it starts ({start})")
    n = int((end - start) // step_s) + 1
    stamps = [start + i * step_s for i in range(n)]
    whole = all(float(t).is_integer() for t in stamps)
    fmt = (lambda t: str(int(t))) if whole else (lambda t: f"{t:.3f}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        for name, (help_, series) in _grouped(business_samples(report)).items():
            fh.write(f"# HELP {name} {help_}\n# TYPE {name} gauge\n")
            for labels, value in series:
                prefix = f"{name}{_labels(labels)} {_num(value)} "
                fh.write("".join(f"{prefix}{fmt(t)}\n" for t in stamps))
        fh.write("# EOF\n")
    return out
