"""A simulator run as a cluster dataset: the replay "as it happened".

A real cluster's Prometheus records where each pod actually ran and what every node
measured; :func:`history_dataset` writes the same from a :class:`~simulator.engine.SimResult`,
so the replay can be exported as metrics (:mod:`simulator.openmetrics`), backfilled into a
real Prometheus and extracted again, or fed to feature building like any other source.

- ``nodes``: the cluster (cores, GiB);
- ``node_metrics``: every step, every node: ``cpu_util``/``mem_util`` as the engine
  measured them;
- ``pods``: one row per stay of a pod on a node (``result.segments``); a pod placed again
  after an eviction gets ``-e1``, ``-e2``, ... for its later stays (Kubernetes creates a
  new pod then, under a new name); a pod never placed has no row;
- ``pod_usage``: the workload's usage samples by age within each stay (the engine restarts
  a re-placed pod's profile at age 0), one every ``workload.usage_step`` seconds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset
from simulator.engine import SimResult
from simulator.workload import GIB, Workload

__all__ = ["history_dataset"]


def _ts(epoch: pd.Timestamp, seconds: np.ndarray) -> pd.DatetimeIndex:
    """``epoch + seconds`` as UTC timestamps (whole milliseconds); inf → NaT."""
    sec = np.asarray(seconds, dtype="float64")
    finite = np.isfinite(sec)
    ms = np.where(finite, np.round(sec * 1000.0), 0).astype("int64")
    out = epoch + pd.to_timedelta(ms, unit="ms")
    return out.where(finite, pd.NaT)


def _opt(values: list[int | None], scale: float) -> np.ndarray:
    return np.array([np.nan if v is None else v / scale for v in values], dtype="float64")


def history_dataset(
    workload: Workload,
    result: SimResult,
    *,
    epoch: pd.Timestamp | str | None = None,
    owners: Mapping[str, str] | None = None,
) -> ClusterDataset:
    """The run ``result`` of ``workload`` as a :class:`~hydatis.dataset.ClusterDataset`.

    Args:
        workload: the compiled workload the run replayed.
        result: the run (its ``segments``, node series and times).
        epoch: the wall-clock time of simulated second 0 (default: ``workload.t0``).
        owners: pod name -> workload name (e.g. from the source dataset's ``pods``
            table); a pod not in it is its own workload.

    Returns:
        The dataset, with ``meta`` naming the scheduler, seed, step and horizon.
    """
    t0 = pd.Timestamp(epoch if epoch is not None else workload.t0)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    names = np.asarray(workload.node_names, dtype=object)
    n = names.size
    nodes = pd.DataFrame(
        {
            "node": names,
            "cpu_cores": workload.cap_cpu.astype("float64") / 1000.0,
            "mem_gib": workload.cap_mem.astype("float64") / GIB,
        }
    )

    times = np.asarray(result.times, dtype="float64")
    steps = times.size
    node_metrics = pd.DataFrame(
        {
            "ts": _ts(t0, np.repeat(times, n)),
            "node": np.tile(names, steps),
            "cpu_util": np.clip(result.node_cpu.astype("float64").ravel(), 0.0, 1.0),
            "mem_util": np.clip(result.node_mem.astype("float64").ravel(), 0.0, 1.0),
        }
    )

    seg = np.asarray(result.segments, dtype="float64").reshape(-1, 4)
    pod_i = seg[:, 0].astype(np.int64)
    order = np.lexsort((seg[:, 2], pod_i))
    seg, pod_i = seg[order], pod_i[order]
    node_i = seg[:, 1].astype(np.int64)
    start_s, end_s = seg[:, 2], seg[:, 3]
    # The stay number of each segment within its pod: 0 for the first, 1, 2, ... after.
    first_of_pod = np.r_[True, pod_i[1:] != pod_i[:-1]] if pod_i.size else np.zeros(0, bool)
    group_start = np.maximum.accumulate(np.where(first_of_pod, np.arange(pod_i.size), 0))
    stay = np.arange(pod_i.size) - group_start

    specs = workload.pods
    base = np.array([p.name for p in specs], dtype=object)[pod_i]
    suffix = np.where(stay > 0, np.char.add("-e", stay.astype(str)), "")
    pod_names = (base.astype(str) + suffix.astype(str)).astype(object) if base.size else base
    owner_of = dict(owners or {})
    workloads = np.array([owner_of.get(b, b) for b in base.tolist()], dtype=object)
    pods = pd.DataFrame(
        {
            "pod": pod_names,
            "workload": workloads,
            "start_ts": _ts(t0, start_s),
            "end_ts": _ts(t0, end_s),
            "node": names[node_i] if node_i.size else np.zeros(0, dtype=object),
            "cpu_request": _opt([specs[i].cpu_request for i in range(len(specs))], 1000.0)[pod_i],
            "mem_request": _opt([specs[i].mem_request for i in range(len(specs))], GIB)[pod_i],
            "priority": np.asarray(workload.priority, dtype="int64")[pod_i],
            "cpu_limit": _opt([s.cpu_limit for s in specs], 1000.0)[pod_i],
            "mem_limit": _opt([s.mem_limit for s in specs], GIB)[pod_i],
            "qos": np.array([s.qos for s in specs], dtype=object)[pod_i],
        }
    )

    # Usage rows: within each stay, ages 0, step, 2·step, ... while the pod is on the node
    # (up to the last simulated time for a stay still open at the end).
    step = float(workload.usage_step)
    last_t = float(times[-1]) if steps else 0.0
    upto_last = np.floor((last_t - start_s) / step + 1e-9).astype(np.int64) + 1
    with np.errstate(invalid="ignore"):
        upto_end = np.ceil((end_s - start_s) / step - 1e-9)
    upto_end = np.where(np.isfinite(end_s), upto_end, np.inf)
    k_count = np.clip(np.minimum(upto_last, upto_end), 0, None).astype(np.int64)
    row_seg = np.repeat(np.arange(seg.shape[0]), k_count)
    k = np.arange(row_seg.size) - np.repeat(np.cumsum(k_count) - k_count, k_count)
    p_of_row = pod_i[row_seg]
    idx = workload.offset[p_of_row] + np.minimum(k, workload.count[p_of_row] - 1)
    pod_usage = pd.DataFrame(
        {
            "ts": _ts(t0, start_s[row_seg] + k * step),
            "pod": pod_names[row_seg] if row_seg.size else np.zeros(0, dtype=object),
            "cpu_used": np.asarray(workload.usage_cpu, dtype="float64")[idx] / 1000.0,
            "mem_used": np.asarray(workload.usage_mem, dtype="float64")[idx] / GIB,
        }
    )
    meta = {
        "source": f"simulator history ({result.scheduler}, seed {result.seed})",
        "scheduler": result.scheduler,
        "seed": result.seed,
        "step_s": float(result.step_s),
        "usage_step_s": step,
        "horizon_s": last_t,
        "epoch": str(t0),
    }
    return ClusterDataset(nodes, node_metrics, pods, pod_usage, meta)
