"""The first step of the training pipeline: the cluster's history, as one dataset.

Three sources give the same :class:`~hydatis.dataset.ClusterDataset` (``DESIGN.md``):

- ``trace`` — the default trace (:func:`simulator.datasets.default_dataset`: the real
  composite trace when the data directory exists, else the embedded synthetic default),
  cut at ``history_s`` and replayed by the simulator with the default scheduler: what a
  cluster's Prometheus would hold at time ``history_s``. Nothing at or after
  ``history_s`` — no pod that starts then, no usage sample — reaches the dataset, so the
  rest of the trace stays a *future* no training, tuning or validation has seen (the
  demo replays it);
- ``dataset`` — a dataset directory already written (``hydatis dataset build``, an
  earlier extraction); one without node series is replayed with the default scheduler;
- ``prometheus`` — ``days`` of history from a cluster's Prometheus
  (:func:`components.extract.extract`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from hydatis.dataset import ClusterDataset, load_dataset, save_dataset
from hydatis.errors import ConfigError

__all__ = [
    "DEFAULT_HISTORY_S",
    "DEFAULT_HORIZON_S",
    "DEFAULT_LOAD_FACTOR",
    "DEFAULT_METRICS_STEP_S",
    "DEFAULT_NODES",
    "DEFAULT_USAGE_SCALE",
    "SOURCES",
    "future_part",
    "import_history",
    "replay_history",
    "trace",
]

SOURCES = ("trace", "dataset", "prometheus")
#: The default trace: a 200-node sample at the load where hot nodes exist (the
#: placement trainer's level), one day, of which the first 16 h are history.
DEFAULT_NODES = 200
DEFAULT_LOAD_FACTOR = 1.3
DEFAULT_USAGE_SCALE = 1.5
DEFAULT_HORIZON_S = 86_400.0
DEFAULT_HISTORY_S = 57_600.0
#: The node series' step in a replayed history: the simulator's metrics interval, which is
#: also the grid of the features the extender is pushed (``simulator.node_state``), so the
#: models learn on the grid they are served on.
DEFAULT_METRICS_STEP_S = 60.0

#: ``progress(fraction, what)``.
ProgressFn = Callable[[float, str], None]


def trace(
    *,
    nodes: int = DEFAULT_NODES,
    load_factor: float = DEFAULT_LOAD_FACTOR,
    usage_scale: float = DEFAULT_USAGE_SCALE,
    horizon_s: float = DEFAULT_HORIZON_S,
    seed: int = 0,
    synthetic: bool = False,
) -> tuple[ClusterDataset, str]:
    """The default trace with these knobs (the same knobs give the same trace), and its
    description; :func:`import_history` and the demo's replay of the future both call
    this, so they cut one and the same trace."""
    from simulator.datasets import default_dataset

    return default_dataset(
        nodes=nodes,
        load_factor=load_factor,
        usage_scale=usage_scale,
        horizon_s=horizon_s,
        seed=seed,
        synthetic=synthetic,
    )


def replay_history(
    ds: ClusterDataset, *, seed: int = 0, metrics_step_s: float = DEFAULT_METRICS_STEP_S
) -> ClusterDataset:
    """Replay ``ds`` with the default scheduler and return what happened (node series
    every ``metrics_step_s``, pods on their nodes): the history a cluster's monitoring
    would have recorded."""
    from simulator.engine import simulate
    from simulator.history import history_dataset
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    workload = compile_workload(ds)
    result = simulate(workload, make_scheduler("default"), seed=seed)
    owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
    hist = history_dataset(workload, result, owners=owners)
    nm = hist.node_metrics
    if len(nm) and metrics_step_s > 0:
        age_ms = (nm["ts"] - nm["ts"].min()).dt.total_seconds().mul(1000).round()
        keep = (age_ms % round(metrics_step_s * 1000)) == 0
        hist.node_metrics = nm.loc[keep.to_numpy()].reset_index(drop=True)
        hist.meta["metrics_step_s"] = float(metrics_step_s)
    return hist


def future_part(ds: ClusterDataset, start_s: float, end_s: float | None = None) -> ClusterDataset:
    """The part of trace ``ds`` in ``[start_s, end_s)`` seconds of its timeline, as a trace
    of its own (pods running at ``start_s`` arrive then with their remaining usage;
    nothing before ``start_s`` is kept). See
    :func:`components.train_placement.core.time_window`."""
    from components.train_placement.core import time_window

    horizon = float(
        ds.meta.get("horizon_s") or (ds.meta.get("knobs") or {}).get("horizon_s") or 0.0
    )
    if end_s is None:
        if not horizon:
            raise ConfigError("future_part: the trace has no horizon_s; give end_s")
        end_s = horizon
    return time_window(ds, start_s, end_s)


def import_history(
    out_dir: str | Path,
    *,
    source: str = "trace",
    dataset_uri: str = "",
    prometheus_url: str = "",
    nodes: int = DEFAULT_NODES,
    load_factor: float = DEFAULT_LOAD_FACTOR,
    usage_scale: float = DEFAULT_USAGE_SCALE,
    horizon_s: float = DEFAULT_HORIZON_S,
    history_s: float = DEFAULT_HISTORY_S,
    seed: int = 0,
    synthetic: bool = False,
    days: float = 30.0,
    step_s: float = DEFAULT_METRICS_STEP_S,
    end: str = "",
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Write the cluster's history as a dataset into ``out_dir``.

    Args:
        out_dir: the dataset directory to write.
        source: ``trace``, ``dataset`` or ``prometheus`` (module docstring).
        dataset_uri: the dataset directory to import (``source="dataset"``).
        prometheus_url: the Prometheus root URL (``source="prometheus"``).
        nodes, load_factor, usage_scale, horizon_s, seed, synthetic: the trace's knobs
            (``source="trace"``; see :func:`simulator.datasets.default_dataset`).
        history_s: seconds of the trace that are history (``source="trace"``); the rest,
            up to ``horizon_s``, is the future.
        days, step_s, end: the range and step to extract (``source="prometheus"``;
            ``end`` ISO 8601 UTC, empty = now).
        progress: called with the fraction done and what is being done.

    Returns:
        A summary: ``description``, ``nodes``, ``pods``, ``node_samples``, ``first_sample``,
        ``last_sample``, ``seconds``, and for a trace ``history_s`` and ``horizon_s``.

    Raises:
        ConfigError: an unknown source, a missing URI, or ``history_s`` outside the trace.
    """
    say = progress or (lambda frac, what: None)
    t0 = time.perf_counter()
    info: dict[str, Any] = {"source": source}
    if source == "trace":
        if not 0 < history_s < horizon_s:
            raise ConfigError(
                f"history_s must lie inside the trace (0 < {history_s} < horizon {horizon_s})"
            )
        say(0.0, "building the trace")
        ds, description = trace(
            nodes=nodes,
            load_factor=load_factor,
            usage_scale=usage_scale,
            horizon_s=horizon_s,
            seed=seed,
            synthetic=synthetic,
        )
        say(0.5, "replaying its history")
        past = future_part(ds, 0.0, history_s)
        hist = replay_history(past, seed=seed)
        hist.meta.update(
            {
                "trace": description,
                "trace_knobs": {
                    "nodes": nodes,
                    "load_factor": load_factor,
                    "usage_scale": usage_scale,
                    "horizon_s": horizon_s,
                    "seed": seed,
                    "synthetic": synthetic,
                },
                "history_s": history_s,
            }
        )
        info.update(
            description=f"{description}: its first {history_s / 3600:g} h of "
            f"{horizon_s / 3600:g} h, replayed with the default scheduler",
            history_s=history_s,
            horizon_s=horizon_s,
        )
    elif source == "dataset":
        if not dataset_uri:
            raise ConfigError("source 'dataset' needs dataset_uri (a dataset directory)")
        say(0.0, f"reading {dataset_uri}")
        hist = load_dataset(dataset_uri)
        description = str(hist.meta.get("source") or dataset_uri)
        if not len(hist.node_metrics):
            say(0.5, "replaying it (no node series)")
            hist = replay_history(hist, seed=seed)
            description += ", replayed with the default scheduler"
        info["description"] = description
    elif source == "prometheus":
        if not prometheus_url:
            raise ConfigError("source 'prometheus' needs prometheus_url")
        from components.extract import extract

        stop = pd.Timestamp(end) if end else pd.Timestamp.now(tz="UTC").floor("min")
        stop = stop.tz_localize("UTC") if stop.tzinfo is None else stop
        say(0.0, f"extracting {days:g} days from {prometheus_url}")
        hist = extract(
            prometheus_url,
            start=stop - pd.Timedelta(days=days),
            end=stop,
            step_s=step_s,
            out_dir=out_dir,
        )
        info["description"] = f"{days:g} days of {prometheus_url} up to {stop}"
    else:
        raise ConfigError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")
    if source != "prometheus":  # extract saved it already (with its quality report)
        save_dataset(hist, out_dir)
    nm = hist.node_metrics
    info.update(
        nodes=len(hist.nodes),
        pods=len(hist.pods),
        node_samples=len(nm),
        first_sample=str(nm["ts"].min()) if len(nm) else "",
        last_sample=str(nm["ts"].max()) if len(nm) else "",
        seconds=time.perf_counter() - t0,
    )
    say(1.0, "saved")
    return info
