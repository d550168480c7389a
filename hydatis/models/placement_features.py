"""The placement agent's input: one feature row per candidate node for one pod.

Pure array arithmetic, so that the simulator (from its cluster view) and the extender
(from its node-state cache) build exactly the same rows for the agent they share. The
caller supplies per-candidate node arrays and two cluster-wide scalars; nothing here knows
where they came from.

Conventions: CPU in millicores, memory in bytes, utilisations as fractions of capacity; a
NaN metric means the node has not reported it (the row carries 0 there and
``has_metrics`` says whether any load metric exists).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FEATURES", "HOT", "TARGET", "NodeArrays", "cluster_scalars", "placement_features"]

TARGET = 0.65
HOT = 0.85

#: Feature names, in column order (every column normalised; NaN → 0).
FEATURES: tuple[str, ...] = (
    "cap_cpu_rel",  # node CPU capacity / the cluster's largest
    "cap_mem_rel",
    "req_cpu_share",  # requested CPU / allocatable, before the pod
    "req_cpu_after",  # ... including the pod
    "req_mem_after",
    "pods_share",  # pods bound / max pods
    "cpu_avg",  # load-watcher mean CPU utilisation (lagged)
    "cpu_used",  # latest visible CPU sample / capacity (lagged)
    "cpu_std",
    "mem_avg",
    "cpu_max_1h",
    "recent_cpu",  # requests bound since the metric window, / capacity
    "recent_count",  # bindings since the metric window / 10
    "pod_cpu",  # the pod's CPU request / capacity
    "pod_mem",
    "proj_cpu",  # projected CPU after placing the pod
    "peak_cpu",  # projected peak (1 h max) after placing the pod
    "over_target",  # max(0, proj − 0.65)
    "over_hot",  # max(0, peak − 0.85)
    "headroom_target",  # max(0, 0.65 − proj)
    "headroom_hot",  # max(0, 0.85 − peak)
    "proj_vs_cluster",  # proj − the cluster's mean latest CPU
    "proj_mem",  # mem_avg + pod memory request / capacity
    "cluster_cpu",  # the cluster's mean latest CPU
    "cluster_req_cpu",  # the cluster's requested CPU share
    "has_metrics",
)


@dataclass
class NodeArrays:
    """Per-node inputs, all the same length (candidates or the whole cluster).

    Attributes:
        cap_cpu, cap_mem: capacity (millicores, bytes).
        alloc_cpu, alloc_mem: allocatable (millicores, bytes).
        req_cpu, req_mem: requests of the pods bound to the node.
        pod_count, max_pods: pods bound, and the node's pod limit.
        cpu_avg, cpu_std, mem_avg: mean / std of the utilisation fraction over the recent
            window (15 min), NaN = unknown.
        cpu_used: the latest visible CPU sample as a fraction of capacity, NaN = unknown.
        cpu_max_1h: the 1-hour maximum utilisation, NaN = unknown.
        recent_cpu, recent_count: CPU requests (millicores) and number of the pods bound
            since the node's latest sample (not yet visible in its metrics).
    """

    cap_cpu: np.ndarray
    cap_mem: np.ndarray
    alloc_cpu: np.ndarray
    alloc_mem: np.ndarray
    req_cpu: np.ndarray
    req_mem: np.ndarray
    pod_count: np.ndarray
    max_pods: np.ndarray
    cpu_avg: np.ndarray
    cpu_used: np.ndarray
    cpu_std: np.ndarray
    mem_avg: np.ndarray
    cpu_max_1h: np.ndarray
    recent_cpu: np.ndarray
    recent_count: np.ndarray

    def take(self, idx: np.ndarray) -> NodeArrays:
        """The same arrays for the nodes at ``idx``."""
        return NodeArrays(**{k: np.asarray(v)[idx] for k, v in vars(self).items()})


def _nz(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), 0.0, x)


def cluster_scalars(nodes: NodeArrays) -> tuple[float, float, float, float]:
    """The cluster-wide inputs, from *every* node: mean latest CPU (the sample, else the
    window mean), requested CPU share, and the largest CPU and memory capacity."""
    with np.errstate(invalid="ignore"):
        base = np.where(np.isnan(nodes.cpu_used), nodes.cpu_avg, nodes.cpu_used)
    cluster_cpu = float(np.nanmean(base)) if np.isfinite(base).any() else 0.0
    cluster_req = float(np.sum(nodes.req_cpu) / max(float(np.sum(nodes.alloc_cpu)), 1.0))
    ref_c = max(float(np.max(nodes.cap_cpu, initial=1)), 1.0)
    ref_m = max(float(np.max(nodes.cap_mem, initial=1)), 1.0)
    return cluster_cpu, cluster_req, ref_c, ref_m


def placement_features(
    pod_cpu: float,
    pod_mem: float,
    nodes: NodeArrays,
    cluster: tuple[float, float, float, float],
) -> np.ndarray:
    """One row of :data:`FEATURES` per node of ``nodes`` (the candidates).

    Args:
        pod_cpu, pod_mem: the pod's requests (millicores, bytes).
        nodes: the candidates' arrays.
        cluster: :func:`cluster_scalars` of the whole cluster.

    Returns:
        float32 ``[len(nodes), len(FEATURES)]``, every NaN replaced by 0.
    """
    cluster_cpu, cluster_req, ref_c, ref_m = cluster
    cap_c = np.maximum(np.asarray(nodes.cap_cpu, dtype=np.float64), 1.0)
    cap_m = np.maximum(np.asarray(nodes.cap_mem, dtype=np.float64), 1.0)
    alloc_c = np.maximum(np.asarray(nodes.alloc_cpu, dtype=np.float64), 1.0)
    alloc_m = np.maximum(np.asarray(nodes.alloc_mem, dtype=np.float64), 1.0)
    cpu_avg = np.asarray(nodes.cpu_avg, dtype=np.float64)
    cpu_used = np.asarray(nodes.cpu_used, dtype=np.float64)
    has = ~np.isnan(cpu_avg) | ~np.isnan(cpu_used)
    base = np.where(np.isnan(cpu_used), _nz(cpu_avg), cpu_used)
    max1h = _nz(np.asarray(nodes.cpu_max_1h, dtype=np.float64))
    recent = nodes.recent_cpu / cap_c
    pod_c = pod_cpu / cap_c
    pod_m = pod_mem / cap_m
    proj = base + recent + pod_c
    peak = np.maximum(base, max1h) + recent + pod_c
    req_c = nodes.req_cpu / alloc_c
    mem_avg = _nz(np.asarray(nodes.mem_avg, dtype=np.float64))
    n = cap_c.size
    cols = [
        cap_c / ref_c,
        cap_m / ref_m,
        req_c,
        req_c + pod_cpu / alloc_c,
        (nodes.req_mem + pod_mem) / alloc_m,
        nodes.pod_count / np.maximum(nodes.max_pods, 1),
        _nz(cpu_avg),
        _nz(cpu_used),
        _nz(np.asarray(nodes.cpu_std, dtype=np.float64)),
        mem_avg,
        max1h,
        recent,
        nodes.recent_count / 10.0,
        pod_c,
        pod_m,
        proj,
        peak,
        np.maximum(proj - TARGET, 0.0),
        np.maximum(peak - HOT, 0.0),
        np.maximum(TARGET - proj, 0.0),
        np.maximum(HOT - peak, 0.0),
        proj - cluster_cpu,
        mem_avg + pod_m,
        np.full(n, cluster_cpu),
        np.full(n, cluster_req),
        has.astype(np.float64),
    ]
    X = np.stack(cols, axis=1).astype(np.float32)
    return np.where(np.isfinite(X), X, 0.0).astype(np.float32, copy=False)
