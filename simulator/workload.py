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
    #: Non-pod load per step of ``bg_step`` seconds and node (millicores, bytes), or None.
    bg_cpu: np.ndarray | None = None
    bg_mem: np.ndarray | None = None
    bg_step: float = 0.0

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
    firsts = [pods["start_ts"].min(), ds.node_metrics["ts"].min()]
    firsts = [t for t in firsts if not pd.isna(t)]
    t0 = min(firsts) if firsts else pd.Timestamp(0, tz="UTC")
    start = (pods["start_ts"] - t0).dt.total_seconds().to_numpy()
    end = (pods["end_ts"] - t0).dt.total_seconds().to_numpy(dtype=float, na_value=np.inf)
    duration = end - start
    if horizon_s is None:
        horizon_s = ds.meta.get("horizon_s")
    if horizon_s is None:
        finite = end[np.isfinite(end)]
        horizon_s = float(max(finite.max() if finite.size else 0.0, start.max(initial=0.0)))
        if len(ds.node_metrics):
            last = (ds.node_metrics["ts"].max() - t0).total_seconds()
            horizon_s = max(horizon_s, float(last))

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
    cap_cpu = np.round(nodes["cpu_cores"].to_numpy(dtype=float) * 1000).astype(np.int64)
    cap_mem = np.round(nodes["mem_gib"].to_numpy(dtype=float) * GIB).astype(np.int64)
    background = _background(ds, nodes, pods, t0, cap_cpu, cap_mem)
    bg_step, bg_cpu, bg_mem = background if background is not None else (0.0, None, None)
    return Workload(
        node_names=nodes["node"].tolist(),
        cap_cpu=cap_cpu,
        cap_mem=cap_mem,
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
        bg_cpu=bg_cpu,
        bg_mem=bg_mem,
        bg_step=bg_step,
    )


def _background(
    ds: ClusterDataset,
    nodes: pd.DataFrame,
    pods: pd.DataFrame,
    t0: pd.Timestamp,
    cap_cpu: np.ndarray,
    cap_mem: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Each node's non-pod load: what its recorded series shows beyond its recorded pods.

    ``node_metrics`` gives a node's whole use; the pods recorded on that node (``pods.node``)
    account for part of it, and the rest (system daemons, pods outside the dataset) stays
    with the node whatever the scheduler does. Returned on a dense grid of the series'
    step (per node, the last sample holds until the next; before the first, 0), as
    (step seconds, CPU millicores [steps, nodes], memory bytes [steps, nodes]); None when
    the dataset has no node series.
    """
    nm = ds.node_metrics
    if not len(nm):
        return None
    node_idx = pd.Index(nodes["node"]).get_indexer(nm["node"])
    secs = (nm["ts"] - t0).dt.total_seconds().to_numpy()
    order = np.lexsort((secs, node_idx))
    gaps = np.diff(secs[order])[np.diff(node_idx[order]) == 0]
    step = float(np.median(gaps)) if gaps.size else 30.0
    step = step if step > 0 else 30.0
    bucket = np.floor(secs / step).astype(np.int64)
    n_steps, n = int(bucket.max()) + 1, len(nodes)
    cpu = np.full((n_steps, n), np.nan, dtype=np.float64)
    mem = np.full((n_steps, n), np.nan, dtype=np.float64)
    cpu[bucket, node_idx] = nm["cpu_util"].to_numpy(dtype=float) * cap_cpu[node_idx]
    mem[bucket, node_idx] = nm["mem_util"].to_numpy(dtype=float) * cap_mem[node_idx]
    recorded = pods.loc[pods["node"].notna(), ["pod", "node"]]
    if len(recorded) and len(ds.pod_usage):
        use = ds.pod_usage.merge(recorded, on="pod", how="inner")
        if len(use):
            where = pd.Index(nodes["node"]).get_indexer(use["node"])
            u_secs = (use["ts"] - t0).dt.total_seconds().to_numpy()
            # A usage sample holds until the pod's next one: spread it over the grid steps
            # it covers (one usage step, the median gap between a pod's samples).
            pod_codes = pd.factorize(use["pod"])[0]
            u_order = np.lexsort((u_secs, pod_codes))
            same = np.diff(pod_codes[u_order]) == 0
            u_gaps = np.diff(u_secs[u_order])[same]
            u_step = float(np.median(u_gaps)) if u_gaps.size else step
            reps = max(round(u_step / step), 1)
            first = np.floor(u_secs / step).astype(np.int64)
            rows = (first[:, None] + np.arange(reps)[None, :]).ravel()
            cols = np.repeat(where, reps)
            keep = (rows >= 0) & (rows < n_steps)
            pod_cpu = np.zeros((n_steps, n))
            pod_mem = np.zeros((n_steps, n))
            np.add.at(
                pod_cpu,
                (rows[keep], cols[keep]),
                np.repeat(use["cpu_used"].to_numpy(float) * 1000.0, reps)[keep],
            )
            np.add.at(
                pod_mem,
                (rows[keep], cols[keep]),
                np.repeat(use["mem_used"].to_numpy(float) * GIB, reps)[keep],
            )
            cpu -= pod_cpu
            mem -= pod_mem
    cpu = pd.DataFrame(cpu).ffill().fillna(0.0).to_numpy()
    mem = pd.DataFrame(mem).ffill().fillna(0.0).to_numpy()
    return step, np.maximum(cpu, 0.0).astype(np.float32), np.maximum(mem, 0.0).astype(np.float32)
