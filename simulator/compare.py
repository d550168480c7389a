"""Run several schedulers on one workload with one seed, and collect the figures.

Every scheduler replays the same compiled workload with the same seed, so the comparison is
paired: the only difference between two rows is the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from hydatis.dataset import ClusterDataset
from simulator.engine import SimConfig, simulate
from simulator.metrics import summarize
from simulator.report import series_for_report
from simulator.schedulers import make_scheduler
from simulator.workload import compile_workload

if TYPE_CHECKING:
    from simulator.metrics_export import ReplayRecorder

__all__ = ["run_comparison"]


def run_comparison(
    ds: ClusterDataset,
    schedulers: Sequence[str],
    *,
    seed: int = 0,
    config: SimConfig | None = None,
    description: str = "",
    on_progress: Callable[[str, float], None] | None = None,
    scheduler_params: Mapping[str, Mapping[str, Any]] | None = None,
    recorder: ReplayRecorder | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, Any]]:
    """Simulate each scheduler on ``ds``.

    Args:
        scheduler_params: keyword parameters per scheduler name (e.g. the ML scheduler's
            extender ``url``).
        recorder: records each run for the metrics export (``--metrics-out``): it wraps
            each scheduler before its run and takes the run after.

    Returns:
        ``(results, series, run)``: the figures per scheduler name, the plotted series per
        scheduler name, and the run's context (dataset, settings, seed).
    """
    cfg = config or SimConfig()
    params = scheduler_params or {}
    # fail fast on bad names
    instances = {name: make_scheduler(name, **params.get(name, {})) for name in schedulers}
    extra: dict[str, dict[str, Any]] = {}
    workload = compile_workload(ds, horizon_s=cfg.horizon_s)
    results: dict[str, dict[str, Any]] = {}
    series: dict[str, dict[str, Any]] = {}
    for name, sched in instances.items():

        def tick(frac: float, name: str = name) -> None:
            if on_progress is not None:
                on_progress(name, frac)

        if recorder is not None:
            sched = recorder.wrap(name, sched)
        result = simulate(workload, sched, seed=seed, config=cfg, progress=tick)
        if recorder is not None:
            owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
            recorder.add(name, workload, result, owners=owners)
        results[name] = summarize(result)
        series[name] = series_for_report(result)
        if callable(getattr(sched, "stats", None)):
            extra[name] = sched.stats()
    meta = {k: v for k, v in ds.meta.items() if k not in ("calibration",)}
    run = {
        "seed": seed,
        "config": asdict(cfg),
        "dataset": {
            "description": description,
            "nodes": workload.n_nodes,
            "pods": workload.n_pods,
            "horizon_s": workload.horizon,
            "warmup_s": cfg.warmup_s if cfg.warmup_s is not None else workload.warmup,
            "meta": meta,
        },
        "series": series,
        "scheduler_stats": extra,
    }
    return results, series, run
