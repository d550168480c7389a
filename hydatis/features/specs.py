"""The node feature catalogue: one :class:`FeatureSpec` per feature, in a fixed order.

Everything else keys off this tuple: :func:`hydatis.features.node_features` emits its
columns in this order, the Feast feature views are generated from :func:`feature_names`,
``hydatis features list`` prints it and ``FEATURES.md`` is rendered from it (a test keeps
the file in sync), so a feature is added or renamed in exactly one place.

Conventions used in the descriptions:

- ``t`` is the feature's ``event_timestamp``; the grid is the node's metric series
  resampled every ``step`` seconds (default: the median sample gap), with a sample carried
  forward for at most ``MAX_CARRY_STEPS`` steps; grid points are multiples of ``step``
  since the Unix epoch, so every path sees the same grid.
- A window ``w`` covers the grid points in ``(g - w, g]`` where ``g`` is the latest grid
  point ``<= t``. A window statistic is NaN when fewer than ``MIN_COVERAGE`` of the
  window's grid points have a value (start of the series, long outages).
- Utilisation is a fraction in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FEATURES",
    "MAX_CARRY_STEPS",
    "MIN_COVERAGE",
    "OPTIONAL_SOURCES",
    "WINDOWS",
    "FeatureSpec",
    "feature_names",
    "features_markdown",
]

#: Rolling windows: name -> length in seconds.
WINDOWS: dict[str, int] = {"5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400}
#: A sample stands for at most this many grid steps after it (last value carried forward).
MAX_CARRY_STEPS = 2
#: A window statistic needs at least this share of its grid points to have a value.
MIN_COVERAGE = 0.5
#: Optional node_metrics columns (present in some sources) -> their feature prefix.
OPTIONAL_SOURCES: dict[str, str] = {"net_in": "net_in", "net_out": "net_out", "disk_io": "disk_io"}

EWMA_SPAN_S = 600
EWMA_WINDOW_S = 3600
SLOPE_WINDOWS: dict[str, int] = {"15m": 900, "1h": 3600}
LAGS: dict[str, int] = {"1d": 86400, "7d": 7 * 86400}


@dataclass(frozen=True)
class FeatureSpec:
    """One node feature.

    Attributes:
        name: column name (snake_case), stable: models and feature views key off it.
        description: what it is and how it is computed (the formula).
        window: the history it reads, e.g. ``"1h"``, ``"point"`` or ``"none"``.
        optional: True when the feature exists only if the data has its source column
            (network and disk series).
    """

    name: str
    description: str
    window: str
    optional: bool = False


_METRICS = {"cpu": "CPU", "mem": "memory"}
_STATS = {
    "mean": "mean of {m} utilisation over the window's grid points",
    "max": "maximum of {m} utilisation over the window's grid points",
    "min": "minimum of {m} utilisation over the window's grid points",
    "std": "sample standard deviation (ddof=1) of {m} utilisation over the window",
    "p95": "95th percentile of {m} utilisation over the window (linear interpolation)",
}


def _build() -> tuple[FeatureSpec, ...]:
    specs: list[FeatureSpec] = []
    add = specs.append
    for m, label in _METRICS.items():
        add(
            FeatureSpec(
                f"{m}_util",
                f"latest {label} utilisation sample at or before t (carried forward at most "
                f"{MAX_CARRY_STEPS} steps, else NaN)",
                "point",
            )
        )
    add(
        FeatureSpec(
            "metric_age_s",
            "seconds between t and the latest metric sample used for cpu_util "
            "(metric lag); NaN when there is none",
            "point",
        )
    )
    for m, label in _METRICS.items():
        for win in WINDOWS:
            for stat, text in _STATS.items():
                add(FeatureSpec(f"{m}_{stat}_{win}", text.format(m=label), win))
    for m, label in _METRICS.items():
        add(
            FeatureSpec(
                f"{m}_ewma_10m",
                f"exponentially weighted mean of {label} utilisation, span 10 min "
                f"(alpha = 2 / (span_steps + 1)), truncated to the last 1 h: "
                f"sum_i (1 - alpha)^i x[g - i] / sum_i (1 - alpha)^i over present points "
                f"(finite window so offline and online agree exactly)",
                "1h",
            )
        )
    for m, label in _METRICS.items():
        for win in SLOPE_WINDOWS:
            add(
                FeatureSpec(
                    f"{m}_slope_{win}",
                    f"least-squares slope of {label} utilisation against time over the "
                    f"window, in utilisation per hour",
                    win,
                )
            )
    for m, label in _METRICS.items():
        for lag in LAGS:
            add(
                FeatureSpec(
                    f"{m}_lag_{lag}",
                    f"{label} utilisation on the grid {lag} earlier (g - {lag}, same time "
                    f"{'yesterday' if lag == '1d' else 'last week'}); NaN when absent",
                    f"point at -{lag}",
                )
            )
    add(FeatureSpec("hour_sin", "sin(2 pi h / 24), h = UTC hour of t with fraction", "none"))
    add(FeatureSpec("hour_cos", "cos(2 pi h / 24), h = UTC hour of t with fraction", "none"))
    add(
        FeatureSpec(
            "dow_sin",
            "sin(2 pi d / 7), d = UTC day of week of t (Monday = 0) plus fraction of day",
            "none",
        )
    )
    add(
        FeatureSpec(
            "dow_cos",
            "cos(2 pi d / 7), d = UTC day of week of t (Monday = 0) plus fraction of day",
            "none",
        )
    )
    add(FeatureSpec("cpu_capacity_cores", "node CPU capacity in cores (nodes.cpu_cores)", "none"))
    add(FeatureSpec("mem_capacity_gib", "node memory capacity in GiB (nodes.mem_gib)", "none"))
    for m, cap in (("cpu", "cpu_cores"), ("mem", "mem_gib")):
        add(
            FeatureSpec(
                f"{m}_requested_ratio",
                f"sum of {m}_request of the pods running on the node at t "
                f"(start_ts <= t < end_ts or end_ts null; unset request = 0) / {cap}",
                "point",
            )
        )
    for m, cap in (("cpu", "cpu_cores"), ("mem", "mem_gib")):
        add(
            FeatureSpec(
                f"{m}_limit_ratio",
                f"sum of {m}_limit of the pods running on the node at t (unset limit = 0, "
                f"as kubectl describe node) / {cap}; NaN when pods has no {m}_limit column",
                "point",
            )
        )
    add(FeatureSpec("pod_count", "number of pods running on the node at t", "point"))
    add(
        FeatureSpec(
            "pods_bound_since_sample",
            "pods whose start_ts is in (time of the latest metric sample, t] on the node: "
            "placements the metrics do not show yet (metric-lag compensation); 0 on a grid "
            "aligned with the samples, NaN when there is no sample",
            "point",
        )
    )
    for col, prefix in OPTIONAL_SOURCES.items():
        add(
            FeatureSpec(
                f"{prefix}_mean_5m",
                f"mean of node_metrics.{col} over the window (only when the data has it)",
                "5m",
                optional=True,
            )
        )
        add(
            FeatureSpec(
                f"{prefix}_mean_1h",
                f"mean of node_metrics.{col} over the window (only when the data has it)",
                "1h",
                optional=True,
            )
        )
        add(
            FeatureSpec(
                f"{prefix}_max_1h",
                f"maximum of node_metrics.{col} over the window (only when the data has it)",
                "1h",
                optional=True,
            )
        )
    return tuple(specs)


#: Every feature, in the column order of :func:`hydatis.features.node_features`.
FEATURES: tuple[FeatureSpec, ...] = _build()


def feature_names(*, include_optional: bool = False) -> list[str]:
    """Feature names in :data:`FEATURES` order.

    Args:
        include_optional: also list the network/disk features, which exist only when the
            dataset's ``node_metrics`` has those columns.
    """
    return [f.name for f in FEATURES if include_optional or not f.optional]


def features_markdown() -> str:
    """The feature table as Markdown, the exact content of ``FEATURES.md``."""
    required = sum(not f.optional for f in FEATURES)
    lines = [
        "# Node features",
        "",
        "Generated from `hydatis/features/specs.py` by `features_markdown()`; do not edit",
        "by hand (a unit test compares this file with the generated text).",
        "",
        f"{required} required features and {len(FEATURES) - required} optional ones "
        "(network/disk: only when `node_metrics` has the column).",
        "",
        "Grid: each node's metrics are resampled every `step` seconds (default: the median "
        "sample gap) onto",
        "grid points that are multiples of `step` since the Unix epoch; a sample is carried "
        f"forward for at most {MAX_CARRY_STEPS} steps.",
        "A window `w` covers the grid points in `(g - w, g]`, `g` the latest grid point at or "
        "before `t`;",
        f"a window statistic is NaN when fewer than {MIN_COVERAGE:.0%} of its grid points "
        "have a value",
        "(start of the series, outages). Point features read the latest sample at or before "
        "`t` itself.",
        "No feature at `t` reads data after `t`.",
        "",
        "| name | formula | window |",
        "|---|---|---|",
    ]
    for f in FEATURES:
        opt = " (optional)" if f.optional else ""
        lines.append(f"| `{f.name}` | {f.description}{opt} | {f.window} |")
    return "\n".join(lines) + "\n"
