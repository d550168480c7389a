"""Train and evaluate the three models on the real data, beside their baselines.

One command gives the three evaluation tables (each model against the baselines computed
in the same run, on held-out data), the targets met or missed, and the BENCH lines:

``load_cpu_accuracy``, ``load_mem_accuracy``, ``load_cpu_mae_ratio_vs_best_baseline``,
``anomaly_alarm_precision``, ``anomaly_fpr``, ``anomaly_event_recall``,
``anomaly_auc_pr_ratio_vs_pca`` (SMD and ASD; a figure spanning datasets is the worst of
them), ``placement_improvement_vs_random_pct``, ``placement_hot_share_ratio_vs_default``,
``load_infer_5000_nodes_ms``, ``placement_infer_500_nodes_ms``.

Run: ``.venv/bin/python benchmarks/models.py [--seed 0] [--only load,anomaly,placement]``
(the data directory must be there; the budgets are the trainers' defaults, stated in each
report).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from hydatis.config import require_data_dir

BENCH = {
    "load": [
        ("load_cpu_accuracy", "fraction"),
        ("load_mem_accuracy", "fraction"),
        ("load_cpu_mae_ratio_vs_best_baseline", "ratio"),
        ("load_infer_5000_nodes_ms", "ms"),
    ],
    "anomaly": [
        ("anomaly_alarm_precision", "fraction"),
        ("anomaly_fpr", "fraction"),
        ("anomaly_event_recall", "fraction"),
        ("anomaly_auc_pr_ratio_vs_pca", "ratio"),
    ],
    "placement": [
        ("placement_improvement_vs_random_pct", "%"),
        ("placement_hot_share_ratio_vs_default", "ratio"),
        ("placement_infer_500_nodes_ms", "ms"),
    ],
}


def load_infer_ms(model, n_features: int, n_nodes: int = 5000, repeats: int = 50) -> float:
    """Median time of one batched prediction for ``n_nodes`` nodes (the serving call)."""
    x = np.random.default_rng(0).uniform(0, 1, (n_nodes, n_features)).astype(np.float32)
    model.predict_array(x)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_array(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def frame_table(frame, title: str) -> Table:
    """A DataFrame as a rich table."""
    table = Table(title=title or None)
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "fiu" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(
            *(("–" if v != v else f"{v:.4g}") if isinstance(v, float) else str(v) for v in row)
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="load,anomaly,placement")
    args = parser.parse_args(argv)
    require_data_dir()
    console = Console(width=240)
    kinds = [k.strip() for k in args.only.split(",") if k.strip()]
    headline: list[tuple[str, float, str]] = []
    summary = Table(title="Targets")
    for col in ("model", "target", "value", "met"):
        summary.add_column(col)
    for kind in kinds:
        t0 = time.perf_counter()
        if kind == "load":
            from components.train_load import train_load

            result = train_load(seed=args.seed)
            result.metrics["load_infer_5000_nodes_ms"] = load_infer_ms(
                result.model, len(result.features)
            )
        elif kind == "anomaly":
            from components.train_anomaly import train_anomaly

            result = train_anomaly(seed=args.seed)
        elif kind == "placement":
            from components.train_placement import train_placement

            result = train_placement(seed=args.seed)
        else:
            raise SystemExit(f"unknown model {kind!r}: use load, anomaly, placement")
        wall = time.perf_counter() - t0
        shown = result.table
        if "entity" in shown.columns:  # per-entity rows are in the report; show the means
            shown = shown[shown["entity"] == "macro"]
        shown = shown.dropna(axis=1, how="all")
        console.print(f"[bold]{kind}: model vs baselines, held-out data ({wall:.0f} s)[/]")
        console.print(frame_table(shown, ""))
        for target in result.targets:
            value = result.metrics.get(target.metric, float("nan"))
            summary.add_row(
                kind, str(target), f"{value:.4g}", "yes" if target.met(result.metrics) else "NO"
            )
        for name, unit in BENCH[kind]:
            headline.append((name, result.metrics.get(name, float("nan")), unit))
    console.print(summary)
    for name, value, unit in headline:
        print(f"BENCH {name} {value:.4f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
