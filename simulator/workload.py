"""The cluster dataset turned into the flat arrays the engine steps through.

Times become seconds from the first pod's start; requests become millicores and bytes;
each pod's usage rows become a slice of two flat arrays, read by the pod's *age* (time
since it started running), so a pod that waits before it runs still follows its own
profile from its first sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset
from simulator.types import PodSpec

__all__ = ["GIB", "Workload", "compile_workload"]

GIB = 1024**3
QOS_DEFAULT = "Burstable"


@dataclass
class Workload:
    """A dataset compiled for the engine (all arrays pod- or node-indexed).

    Pods are sorted by arrival. ``usage_*`` hold every pod's samples back to back; pod
    ``i``'s samples are ``usage_*[offset[i] : offset[i] + count[i]]``, one every
    ``usage_step`` seconds of age.
    """

    node_names: list[str]
    cap_cpu: np.ndarray  # millicores
    cap_mem: np.ndarray  # bytes
    pods: list[PodSpec]
    arrival: np.ndarray  # s from t0
    duration: np.ndarray  # s; inf = runs to the end
    priority: np.ndarray
    req_cpu: np.ndarray  # raw request, millicores (0 if unset)
    req_mem: np.ndarray  # bytes
    usage_cpu: np.ndarray  # millicores
    usage_mem: np.ndarray  # bytes
    offset: np.ndarray
    count: np.ndarray
    usage_step: float
    t0: pd.Timestamp
    horizon: float
    warmup: float = 0.0

    @property
    def n_pods(self) -> int:
        """Number of pods."""
        return len(self.pods)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.cap_cpu.size)


def _opt_int(value: float, scale: float) -> int | None:
    if np.isnan(value):
        return None
    return round(float(value) * scale)


def _qos_of(
    cpu_req: int | None, mem_req: int | None, cpu_lim: int | None, mem_lim: int | None
) -> str:
    if cpu_req is None and mem_req is None and cpu_lim is None and mem_lim is None:
        return "BestEffort"
    if cpu_lim is not None and mem_lim is not None and cpu_lim == cpu_req and mem_lim == mem_req:
        return "Guaranteed"
    return QOS_DEFAULT


def compile_workload(ds: ClusterDataset, horizon_s: float | None = None) -> Workload:
    """Compile a validated dataset into a :class:`Workload`.

    A pod with no usage rows uses its requests (the best guess a scheduler could make);
    a pod without an end runs until the horizon.

    Args:
        ds: the dataset (validated by the caller).
        horizon_s: simulated span in seconds; default: ``meta["horizon_s"]`` or the
            last pod end (or last start when nothing ends).
    """
    nodes = ds.nodes.reset_index(drop=True)
    pods = ds.pods.sort_values(["start_ts", "pod"], kind="stable").reset_index(drop=True)
    t0 = pods["start_ts"].min() if len(pods) else pd.Timestamp(0, tz="UTC")
    start = (pods["start_ts"] - t0).dt.total_seconds().to_numpy()
    end = (pods["end_ts"] - t0).dt.total_seconds().to_numpy(dtype=float, na_value=np.inf)
    duration = end - start
    if horizon_s is None:
        horizon_s = ds.meta.get("horizon_s")
    if horizon_s is None:
        finite = end[np.isfinite(end)]
        horizon_s = float(max(finite.max() if finite.size else 0.0, start.max(initial=0.0)))

    def col(name: str) -> np.ndarray:
        if name in pods.columns:
            return pods[name].to_numpy(dtype=float, na_value=np.nan)
        return np.full(len(pods), np.nan)

    cpu_r, mem_r = col("cpu_request"), col("mem_request")
    cpu_l, mem_l = col("cpu_limit"), col("mem_limit")
    qos_col = pods["qos"] if "qos" in pods.columns else pd.Series([None] * len(pods))
    prio = pods["priority"].to_numpy(dtype=np.int64)
    specs: list[PodSpec] = []
    for i, name in enumerate(pods["pod"].tolist()):
        cr, mr = _opt_int(cpu_r[i], 1000), _opt_int(mem_r[i], GIB)
        cl, ml = _opt_int(cpu_l[i], 1000), _opt_int(mem_l[i], GIB)
        qos = qos_col.iloc[i]
        if not isinstance(qos, str) or qos not in ("Guaranteed", "Burstable", "BestEffort"):
            qos = _qos_of(cr, mr, cl, ml)
        specs.append(PodSpec(name, cr, mr, cl, ml, int(prio[i]), qos))

    usage = ds.pod_usage
    pod_idx = pd.Index(pods["pod"]).get_indexer(usage["pod"])
    ts = (usage["ts"] - t0).dt.total_seconds().to_numpy()
    order = np.lexsort((ts, pod_idx))
    pod_idx, ts = pod_idx[order], ts[order]
    ucpu = usage["cpu_used"].to_numpy(dtype=float)[order] * 1000.0
    umem = usage["mem_used"].to_numpy(dtype=float)[order] * GIB
    n = len(pods)
    count = np.bincount(pod_idx, minlength=n).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    same = np.flatnonzero(np.diff(pod_idx) == 0)
    gaps = np.diff(ts)[same]
    usage_step = float(np.median(gaps)) if gaps.size else 300.0
    # Pods without samples use their requests, as one sample.
    missing = np.flatnonzero(count == 0)
    if missing.size:
        extra_cpu = np.array([specs[i].cpu_req for i in missing], dtype=float)
        extra_mem = np.array([specs[i].mem_req for i in missing], dtype=float)
        offset[missing] = ucpu.size + np.arange(missing.size)
        count[missing] = 1
        ucpu = np.concatenate([ucpu, extra_cpu])
        umem = np.concatenate([umem, extra_mem])
    return Workload(
        node_names=nodes["node"].tolist(),
        cap_cpu=np.round(nodes["cpu_cores"].to_numpy(dtype=float) * 1000).astype(np.int64),
        cap_mem=np.round(nodes["mem_gib"].to_numpy(dtype=float) * GIB).astype(np.int64),
        pods=specs,
        arrival=start,
        duration=duration,
        priority=prio,
        req_cpu=np.array([p.cpu_req for p in specs], dtype=np.int64),
        req_mem=np.array([p.mem_req for p in specs], dtype=np.int64),
        usage_cpu=ucpu,
        usage_mem=umem,
        offset=offset,
        count=count,
        usage_step=usage_step,
        t0=t0,
        horizon=float(horizon_s),
        warmup=float(ds.meta.get("ramp_s", 0.0) or 0.0),
    )
