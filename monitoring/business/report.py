"""The business figures: two schedulers measured on the same workload, and what the
difference is worth under an explicit cost model.

Inputs are what ``hydatis simulate`` writes (``results.json``: figures per scheduler;
``run.json``: the cluster size and series). Every run in a comparison replays the same
workload with the same seed, so a difference between two rows is the schedulers'.

Figures per scheduler (measured, after the warm-up): mean and p95 node CPU, the share of
node-time above 0.85 (hot), availability, the share of pod-time pending past 60 s, pending
p95, pods evicted for memory, pods never placed, mean pending pods, and **nodes needed**:

    nodes_needed = ceil(N · p95_cpu / target_p95)

the node count that brings the measured p95 node CPU to the target, for the same total
demand (N nodes simulated, or ``fleet_nodes``): with the demand fixed, the load per node
scales as N / N', and a scheduler that keeps its distribution's shape has p95' = p95 · N /
N'. A first-order model: it assumes the shape holds when the cluster is resized. A p95 of
1.0 is capped (nodes ran out of CPU): its nodes needed is then a lower bound, flagged.

Per year, for the candidate against the baseline:

    node savings           = (needed_b − needed_c) · node_hourly_cost · 8760
    unavailability savings = ((1 − A_b) − (1 − A_c)) · 525,600 · unavailability_cost_per_minute
    platform cost          = platform_hourly_cost · 8760
    net                    = node + unavailability savings − platform cost

over ``period_years``, less the one-off ``implementation_cost``; ROI = net / (platform cost
+ implementation cost) over the period. The sensitivity table recomputes net and ROI with
each input alone at each factor, and gives each input's break-even value (net = 0).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydatis.errors import ConfigError
from monitoring.business.costs import HOURS_PER_YEAR, MINUTES_PER_YEAR, CostModel

__all__ = [
    "FIGURES",
    "BusinessReport",
    "Comparison",
    "SchedulerFigures",
    "business_report",
    "load_comparison",
]

#: figure -> (label, format) in the order tables show them.
FIGURES: dict[str, tuple[str, str]] = {
    "mean_cpu": ("mean node CPU", "{:.3f}"),
    "p95_cpu": ("p95 node CPU", "{:.3f}"),
    "hot_share": ("hot node-time (>0.85)", "{:.2%}"),
    "availability": ("availability", "{:.4%}"),
    "pending_share": ("pod-time pending >60 s", "{:.3%}"),
    "pending_p95_s": ("pending p95 (s)", "{:.0f}"),
    "pending_mean": ("pending pods (mean)", "{:.1f}"),
    "evictions": ("pods evicted", "{:.0f}"),
    "never_placed": ("never placed", "{:.0f}"),
    "nodes": ("nodes (simulated)", "{:.0f}"),
    "nodes_needed": ("nodes needed at target p95", "{:.0f}"),
}
_REQUIRED = ("mean_cpu", "p95_cpu", "hot_share", "availability")


@dataclass(frozen=True)
class SchedulerFigures:
    """One scheduler's measured figures (``FIGURES``) in one comparison."""

    name: str
    values: dict[str, float]
    capped: bool  # p95 CPU at 1.0: nodes needed is a lower bound

    def __getitem__(self, key: str) -> float:
        return self.values[key]


@dataclass(frozen=True)
class Comparison:
    """One ``hydatis simulate`` output directory: figures per scheduler."""

    source: Path
    nodes: int
    horizon_s: float
    description: str
    figures: dict[str, SchedulerFigures]
    target_p95: float  # the target its nodes needed were computed for


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no {path.name} in {path.parent}: run `hydatis simulate --out {path.parent}`"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read as JSON: {exc}") from exc


def _mean_pending(series: Mapping[str, Any] | None) -> float:
    """Mean pending pods after the warm-up from the report series (NaN if absent)."""
    if not series or "pending_t" not in series or "time_h" not in series:
        return math.nan
    warm = float(series.get("warmup_h", 0.0))
    values = [p for t, p in zip(series["time_h"], series["pending_t"], strict=False) if t >= warm]
    values = values or list(series["pending_t"])
    return float(sum(values) / len(values)) if values else math.nan


def load_comparison(results_dir: str | Path, costs: CostModel) -> Comparison:
    """Read one simulator comparison and compute each scheduler's figures.

    Raises:
        ConfigError: a file is missing or malformed (named, with the key).
    """
    folder = Path(results_dir)
    if not folder.is_dir():
        raise ConfigError(f"--results {folder}: not a directory")
    results = _read_json(folder / "results.json")
    run = _read_json(folder / "run.json")
    if not isinstance(results, dict) or not results:
        raise ConfigError(f"{folder / 'results.json'}: expected figures keyed by scheduler")
    try:
        nodes = int(run["dataset"]["nodes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{folder / 'run.json'}: no dataset.nodes (the cluster size)") from exc
    fleet = costs.fleet_nodes or nodes
    series = run.get("series", {}) if isinstance(run, dict) else {}
    figures: dict[str, SchedulerFigures] = {}
    for name, row in results.items():
        missing = [k for k in _REQUIRED if k not in row or row[k] is None]
        if missing:
            raise ConfigError(
                f"{folder / 'results.json'}: scheduler '{name}' lacks {', '.join(missing)}"
            )
        p95 = float(row["p95_cpu"])
        values = {
            "mean_cpu": float(row["mean_cpu"]),
            "p95_cpu": p95,
            "hot_share": float(row["hot_share"]),
            "availability": float(row["availability"]),
            "pending_share": float(row.get("impacted_pending", math.nan)),
            "pending_p95_s": float(row.get("pending_p95_s", math.nan)),
            "pending_mean": _mean_pending(series.get(name)),
            "evictions": float(row.get("evictions", math.nan)),
            "never_placed": float(row.get("never_placed", math.nan)),
            "nodes": float(fleet),
            "nodes_needed": float(_nodes_needed(fleet, p95, costs.target_p95_utilization)),
        }
        figures[name] = SchedulerFigures(name, values, capped=p95 >= 1.0 - 1e-9)
    ds = run.get("dataset", {})
    return Comparison(
        source=folder,
        nodes=nodes,
        horizon_s=float(ds.get("horizon_s") or math.nan),
        description=str(ds.get("description", "")),
        figures=figures,
        target_p95=costs.target_p95_utilization,
    )


def _nodes_needed(nodes: int, p95: float, target: float) -> int:
    """``ceil(nodes · p95 / target)`` (at least 1); the tiny tolerance keeps an exact
    multiple from rounding up on float noise."""
    if not math.isfinite(p95):
        raise ConfigError(f"p95 node CPU is {p95}: cannot size the cluster")
    return max(1, math.ceil(nodes * p95 / target - 1e-9))


@dataclass(frozen=True)
class Savings:
    """Savings per year and over the period, for one comparison."""

    nodes_saved: float
    node_savings: float
    unavailable_minutes_saved: float
    unavailability_savings: float
    platform_cost: float
    implementation_cost: float
    net_per_year: float
    net_period: float
    roi: float


def _savings(cand: SchedulerFigures, base: SchedulerFigures, c: CostModel) -> Savings:
    nodes_saved = base["nodes_needed"] - cand["nodes_needed"]
    node = nodes_saved * c.node_hourly_cost * HOURS_PER_YEAR
    minutes = ((1 - base["availability"]) - (1 - cand["availability"])) * MINUTES_PER_YEAR
    unavail = minutes * c.unavailability_cost_per_minute
    platform = c.platform_hourly_cost * HOURS_PER_YEAR
    net_year = node + unavail - platform
    net_period = net_year * c.period_years - c.implementation_cost
    spend = platform * c.period_years + c.implementation_cost
    roi = net_period / spend if spend > 0 else math.nan
    return Savings(
        nodes_saved,
        node,
        minutes,
        unavail,
        platform,
        c.implementation_cost,
        net_year,
        net_period,
        roi,
    )


def _with(costs: CostModel, name: str, value: float) -> CostModel:
    return costs.model_copy(update={name: value})


@dataclass
class BusinessReport:
    """The report: figures per comparison and scheduler, savings, sensitivity.

    Attributes:
        candidate, baseline: the schedulers compared (e.g. ``ml`` against ``default``).
        costs: the cost model used.
        comparisons: one per results directory.
        savings: one per comparison (same order).
        sensitivity: rows ``{input, factor, value, net_period, roi}`` on the mean of the
            comparisons' measured differences.
        break_even: input -> the value at which the mean net over the period is 0 (None
            where the net does not depend on it or cannot cross 0).
    """

    candidate: str
    baseline: str
    costs: CostModel
    comparisons: list[Comparison]
    savings: list[Savings]
    sensitivity: list[dict[str, float | str]] = field(default_factory=list)
    break_even: dict[str, float | None] = field(default_factory=dict)

    def mean_savings(self) -> dict[str, float]:
        """Each savings field averaged over the comparisons, with its min and max."""
        out: dict[str, float] = {}
        for key in Savings.__dataclass_fields__:
            vals = [getattr(s, key) for s in self.savings]
            finite = [v for v in vals if math.isfinite(v)]
            out[key] = sum(finite) / len(finite) if finite else math.nan
            out[f"{key}_min"] = min(finite) if finite else math.nan
            out[f"{key}_max"] = max(finite) if finite else math.nan
        return out

    def figure(self, scheduler: str, key: str) -> float:
        """A figure averaged over the comparisons."""
        vals = [c.figures[scheduler][key] for c in self.comparisons]
        finite = [v for v in vals if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return {
            "candidate": self.candidate,
            "baseline": self.baseline,
            "costs": self.costs.model_dump(mode="json"),
            "comparisons": [
                {
                    "source": str(c.source),
                    "nodes": c.nodes,
                    "horizon_s": c.horizon_s,
                    "description": c.description,
                    "figures": {n: f.values | {"capped": f.capped} for n, f in c.figures.items()},
                    "savings": s.__dict__,
                }
                for c, s in zip(self.comparisons, self.savings, strict=True)
            ],
            "mean_savings": self.mean_savings(),
            "sensitivity": self.sensitivity,
            "break_even": self.break_even,
        }


def _net_mean(
    comparisons: Sequence[Comparison], cand: str, base: str, costs: CostModel
) -> tuple[float, float]:
    """Mean net over the period and mean ROI over the comparisons, recomputing nodes
    needed when the target changes."""
    nets, rois = [], []
    for comp in comparisons:
        figs = comp.figures
        if costs.target_p95_utilization != comp.target_p95:
            figs = _resized(comp, costs.target_p95_utilization)
        s = _savings(figs[cand], figs[base], costs)
        nets.append(s.net_period)
        rois.append(s.roi)
    finite = [r for r in rois if math.isfinite(r)]
    return sum(nets) / len(nets), (sum(finite) / len(finite) if finite else math.nan)


def _resized(comp: Comparison, target: float) -> dict[str, SchedulerFigures]:
    out = {}
    for name, f in comp.figures.items():
        needed = float(_nodes_needed(int(f["nodes"]), f["p95_cpu"], target))
        out[name] = SchedulerFigures(name, f.values | {"nodes_needed": needed}, f.capped)
    return out


def _break_even(
    comparisons: Sequence[Comparison], cand: str, base: str, costs: CostModel
) -> dict[str, float | None]:
    """The value of each money input at which the mean net over the period is 0 (net is
    linear in each); None where it does not depend on the input or the value would be
    negative."""
    out: dict[str, float | None] = {}
    net0, _ = _net_mean(comparisons, cand, base, costs)
    for name in ("node_hourly_cost", "unavailability_cost_per_minute", "platform_hourly_cost"):
        current = getattr(costs, name)
        probe = current + 1.0
        net1, _ = _net_mean(comparisons, cand, base, _with(costs, name, probe))
        slope = net1 - net0
        if abs(slope) < 1e-12:
            out[name] = None
            continue
        value = current - net0 / slope
        out[name] = max(value, 0.0) if value >= -1e-9 * max(1.0, abs(current)) else None
    return out


def business_report(
    results_dirs: Sequence[str | Path],
    costs: CostModel,
    *,
    candidate: str = "ml",
    baseline: str = "default",
) -> BusinessReport:
    """Compute the report over one or more comparisons (e.g. several seeds or slices).

    Raises:
        ConfigError: no directory, or a scheduler missing from a comparison.
    """
    if not results_dirs:
        raise ConfigError("no --results directory given")
    if candidate == baseline:
        raise ConfigError(f"candidate and baseline are both '{candidate}': compare two schedulers")
    comparisons = [load_comparison(d, costs) for d in results_dirs]
    for comp in comparisons:
        for who, name in (("candidate", candidate), ("baseline", baseline)):
            if name not in comp.figures:
                raise ConfigError(
                    f"{comp.source / 'results.json'} has no {who} scheduler '{name}' "
                    f"(it has: {', '.join(comp.figures)}); run `hydatis simulate "
                    f"--schedulers {baseline},{candidate}`"
                )
    savings = [_savings(c.figures[candidate], c.figures[baseline], costs) for c in comparisons]
    report = BusinessReport(candidate, baseline, costs, comparisons, savings)
    for name, value in costs.inputs().items():
        for factor in costs.sensitivity_factors:
            varied = value * factor
            if name == "target_p95_utilization" and not 0 < varied <= 1:
                continue
            net, roi = _net_mean(comparisons, candidate, baseline, _with(costs, name, varied))
            report.sensitivity.append(
                {"input": name, "factor": factor, "value": varied, "net_period": net, "roi": roi}
            )
    report.break_even = _break_even(comparisons, candidate, baseline, costs)
    return report
