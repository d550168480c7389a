"""Koordinator v1.8's LoadAwareScheduling plugin (filter and score).

Checked against koordinator-sh/koordinator v1.8.0,
pkg/scheduler/plugins/loadaware/{load_aware,helper,pod_assign_cache}.go,
pkg/scheduler/plugins/loadaware/estimator/default_estimator.go and
pkg/scheduler/apis/config/v1/defaults.go.
"""

from __future__ import annotations

import numpy as np

from simulator.schedulers._common import (
    free_share_score,
    go_round,
    nan_to_zero,
    per_node_sum,
    unset_to_zero,
)
from simulator.types import ClusterView, FrameworkScheduler, PodSpec, RecentBindings, WindowSum

__all__ = [
    "DEFAULT_CPU_SCALING_FACTOR",
    "DEFAULT_CPU_THRESHOLD",
    "DEFAULT_CPU_WEIGHT",
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MEM_SCALING_FACTOR",
    "DEFAULT_MEM_THRESHOLD",
    "DEFAULT_MEM_WEIGHT",
    "DEFAULT_MILLI_CPU_REQUEST",
    "DEFAULT_NODE_METRIC_EXPIRATION_S",
    "DEFAULT_NODE_METRIC_REPORT_INTERVAL_S",
    "KoordinatorScheduler",
    "estimate_usage",
    "load_aware_filter",
    "load_aware_score",
]

DEFAULT_MILLI_CPU_REQUEST = 250  # estimate of a pod without CPU request/limit (unscaled)
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024  # ... without memory request/limit
DEFAULT_CPU_SCALING_FACTOR = 85  # EstimatedScalingFactors, percent
DEFAULT_MEM_SCALING_FACTOR = 70
DEFAULT_CPU_THRESHOLD = 65  # UsageThresholds, percent of allocatable
DEFAULT_MEM_THRESHOLD = 95
DEFAULT_CPU_WEIGHT = 1  # ResourceWeights
DEFAULT_MEM_WEIGHT = 1
DEFAULT_NODE_METRIC_EXPIRATION_S = 180  # NodeMetricExpirationSeconds
DEFAULT_NODE_METRIC_REPORT_INTERVAL_S = 60  # koordlet's report interval (DefaultNodeMetric…)


def estimate_usage(request: np.ndarray, limit: np.ndarray, factor: int, default: int) -> np.ndarray:
    """The default estimator's guess of one resource's usage of a pod.

    ``q = max(request, limit)`` (unset = 0); ``default`` (unscaled) when ``q == 0``; else
    ``go_round(q · factor / 100)``, capped at ``limit`` when a limit is set.

    Args:
        request, limit: per pod, ``UNSET`` (-1) where not set (millicores or bytes).
        factor: scaling factor in percent.
        default: DefaultMilliCPURequest or DefaultMemoryRequest.

    Returns:
        Integer estimates.
    """
    req = unset_to_zero(np.asarray(request, np.int64))
    lim = unset_to_zero(np.asarray(limit, np.int64))
    q = np.maximum(req, lim)
    scaled = go_round(q.astype(np.float64) * factor / 100).astype(np.int64)
    scaled = np.where((lim > 0) & (scaled > lim), lim, scaled)
    return np.where(q == 0, default, scaled)


def _estimate_one(request: int | None, limit: int | None, factor: int, default: int) -> int:
    """:func:`estimate_usage` of one pod's resource (``None`` = not set)."""
    req, lim = request or 0, limit or 0
    q = max(req, lim)
    if q == 0:
        return default
    est = int(go_round(float(q) * factor / 100))
    return lim if 0 < lim < est else est


def load_aware_filter(
    used_cpu: np.ndarray,
    used_mem: np.ndarray,
    alloc_cpu: np.ndarray,
    alloc_mem: np.ndarray,
    has_metric: np.ndarray,
    expired: np.ndarray,
    cpu_threshold: int = DEFAULT_CPU_THRESHOLD,
    mem_threshold: int = DEFAULT_MEM_THRESHOLD,
) -> np.ndarray:
    """LoadAwareScheduling's filter: which nodes accept the pod.

    A node without a NodeMetric passes; an expired one fails; otherwise, per resource
    with a non-zero threshold and allocatable, ``go_round(used / alloc · 100) >
    threshold`` fails. ``used`` is the estimated node usage *including the incoming pod*.

    Args:
        used_cpu, used_mem: estimated usage (reported + recent pods + incoming pod).
        alloc_cpu, alloc_mem: allocatable.
        has_metric: the node has a NodeMetric.
        expired: the metric is older than the expiration.
        cpu_threshold, mem_threshold: usage thresholds in percent (0 disables one).

    Returns:
        Boolean mask, True where the node passes.
    """
    ok = np.ones(np.shape(has_metric), dtype=bool)
    for used, alloc, threshold in (
        (used_cpu, alloc_cpu, cpu_threshold),
        (used_mem, alloc_mem, mem_threshold),
    ):
        if threshold == 0:
            continue
        # go_round(p) > T  <=>  p >= T + 0.5 for an integer T > 0: same test, fewer steps.
        with np.errstate(divide="ignore", invalid="ignore"):
            over = np.asarray(used, np.float64) / alloc * 100 >= threshold + 0.5
        ok &= ~over if np.all(alloc) else (np.asarray(alloc) == 0) | ~over
    return np.where(has_metric, ok & ~expired, True)


def load_aware_score(
    used_cpu: np.ndarray,
    used_mem: np.ndarray,
    alloc_cpu: np.ndarray,
    alloc_mem: np.ndarray,
    w_cpu: int = DEFAULT_CPU_WEIGHT,
    w_mem: int = DEFAULT_MEM_WEIGHT,
) -> np.ndarray:
    """LoadAwareScheduling's score (integer arithmetic as upstream, no dominant weight).

    ``s_r = (alloc_r − used_r) * 100 // alloc_r`` (0 when ``used_r > alloc_r`` or
    ``alloc_r == 0``), ``score = (s_cpu · w_cpu + s_mem · w_mem) // (w_cpu + w_mem)``.

    Args:
        used_cpu, used_mem: estimated usage including the incoming pod (ints).
        alloc_cpu, alloc_mem: allocatable (ints).
        w_cpu, w_mem: ResourceWeights.

    Returns:
        Integer scores in [0, 100].
    """
    s_cpu = free_share_score(np.asarray(used_cpu, np.int64), np.asarray(alloc_cpu, np.int64))
    s_mem = free_share_score(np.asarray(used_mem, np.int64), np.asarray(alloc_mem, np.int64))
    den = w_cpu + w_mem
    if den <= 0:
        return np.zeros(np.shape(s_cpu), dtype=np.int64)
    return (s_cpu * w_cpu + s_mem * w_mem) // den


class KoordinatorScheduler(FrameworkScheduler):
    """Koordinator LoadAwareScheduling: avoid nodes whose estimated usage is high.

    Node usage = the NodeMetric's usage (NaN counts as 0) + the estimates of the pods
    bound after ``updated_at − report_interval_s`` on that node (upstream's assign cache
    estimates a pod bound within the report interval before the metric, or after it, and
    subtracts what the metric reports for the pod; the simulator has no per-pod usage, so
    the full estimate is added) + the incoming pod's estimate. The filter uses that usage
    including the incoming pod, as v1.8 does. A node with no NodeMetric (NaN
    ``updated_at``) passes the filter and scores 0; one whose metric is at least
    ``node_metric_expiration_s`` old (``now − updated_at ≥ expiration``, upstream's
    ``time.Since(updateTime) >= expiration``) fails the filter and scores 0.

    Args:
        cpu_threshold, mem_threshold: UsageThresholds (percent; 0 disables).
        cpu_scaling_factor, mem_scaling_factor: EstimatedScalingFactors (percent).
        cpu_weight, mem_weight: ResourceWeights.
        node_metric_expiration_s: NodeMetricExpirationSeconds (<= 0: never expires).
        report_interval_s: the NodeMetric report interval.
        percentage_of_nodes_to_score: kube-scheduler's percentageOfNodesToScore.
    """

    name = "koordinator"

    def __init__(
        self,
        *,
        cpu_threshold: int = DEFAULT_CPU_THRESHOLD,
        mem_threshold: int = DEFAULT_MEM_THRESHOLD,
        cpu_scaling_factor: int = DEFAULT_CPU_SCALING_FACTOR,
        mem_scaling_factor: int = DEFAULT_MEM_SCALING_FACTOR,
        cpu_weight: int = DEFAULT_CPU_WEIGHT,
        mem_weight: int = DEFAULT_MEM_WEIGHT,
        node_metric_expiration_s: float = DEFAULT_NODE_METRIC_EXPIRATION_S,
        report_interval_s: float = DEFAULT_NODE_METRIC_REPORT_INTERVAL_S,
        percentage_of_nodes_to_score: int = 0,
    ) -> None:
        self.cpu_threshold = cpu_threshold
        self.mem_threshold = mem_threshold
        self.cpu_scaling_factor = cpu_scaling_factor
        self.mem_scaling_factor = mem_scaling_factor
        self.cpu_weight = cpu_weight
        self.mem_weight = mem_weight
        self.node_metric_expiration_s = node_metric_expiration_s
        self.report_interval_s = report_interval_s
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self._base_cache = None
        self._est_cpu = WindowSum(self._estimate_cpu)
        self._est_mem = WindowSum(self._estimate_mem)

    def _estimate_cpu(self, b: RecentBindings) -> np.ndarray:
        return estimate_usage(
            b.cpu_request, b.cpu_limit, self.cpu_scaling_factor, DEFAULT_MILLI_CPU_REQUEST
        ).astype(np.float64)

    def _estimate_mem(self, b: RecentBindings) -> np.ndarray:
        return estimate_usage(
            b.mem_request, b.mem_limit, self.mem_scaling_factor, DEFAULT_MEMORY_REQUEST
        ).astype(np.float64)

    def _base_usage(self, view: ClusterView) -> tuple[np.ndarray, np.ndarray]:
        """Per node: reported usage + estimates of the recent pods (ints), no incoming pod.

        Cached while the metrics and the binding log are unchanged: the engine calls
        :meth:`filter` and :meth:`score` for every pod, and metrics refresh once a minute.
        """
        m, log = view.metrics, view.bindings
        key = (
            id(log),
            log.version,
            m.updated_at.tobytes(),
            m.cpu_used.tobytes(),
            m.mem_used.tobytes(),
        )
        cached = getattr(self, "_base_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        upd = m.updated_at
        cpu, mem = nan_to_zero(m.cpu_used), nan_to_zero(m.mem_used)
        reported = upd[~np.isnan(upd)]
        if reported.size and reported.min() == reported.max():
            # Every node reported at the same time (as in the simulator): one window.
            t0 = float(reported[0]) - self.report_interval_s
            cpu = cpu + self._est_cpu.get(log, t0, view.n_nodes)
            mem = mem + self._est_mem.get(log, t0, view.n_nodes)
        elif reported.size:
            t0 = float(np.nanmin(upd))
            if self.node_metric_expiration_s > 0:  # older nodes are expired: never used
                t0 = max(t0, view.now - self.node_metric_expiration_s)
            recent = view.bindings.since(t0 - self.report_interval_s)
            if len(recent):
                counted = recent.time > upd[recent.node] - self.report_interval_s
                est_cpu = estimate_usage(
                    recent.cpu_request,
                    recent.cpu_limit,
                    self.cpu_scaling_factor,
                    DEFAULT_MILLI_CPU_REQUEST,
                )
                est_mem = estimate_usage(
                    recent.mem_request,
                    recent.mem_limit,
                    self.mem_scaling_factor,
                    DEFAULT_MEMORY_REQUEST,
                )
                cpu = cpu + per_node_sum(recent, est_cpu, view.n_nodes, counted)
                mem = mem + per_node_sum(recent, est_mem, view.n_nodes, counted)
        base = (go_round(cpu).astype(np.int64), go_round(mem).astype(np.int64))
        self._base_cache = (key, base)
        return base

    def _state(self, view: ClusterView) -> tuple[np.ndarray, np.ndarray]:
        """Per node: has a NodeMetric, and that metric has expired."""
        upd = view.metrics.updated_at
        has = ~np.isnan(upd)
        exp_s = self.node_metric_expiration_s
        if exp_s <= 0:
            return has, np.zeros_like(has)
        with np.errstate(invalid="ignore"):
            return has, has & (view.now - upd >= exp_s)

    def node_usage(self, pod: PodSpec, view: ClusterView) -> tuple[np.ndarray, np.ndarray]:
        """Estimated (CPU, memory) usage of every node with the incoming pod (ints)."""
        cpu, mem = self._base_usage(view)
        pod_cpu = _estimate_one(
            pod.cpu_request, pod.cpu_limit, self.cpu_scaling_factor, DEFAULT_MILLI_CPU_REQUEST
        )
        pod_mem = _estimate_one(
            pod.mem_request, pod.mem_limit, self.mem_scaling_factor, DEFAULT_MEMORY_REQUEST
        )
        return cpu + pod_cpu, mem + pod_mem

    def filter(self, pod: PodSpec, view: ClusterView) -> np.ndarray:
        """:func:`load_aware_filter` over all nodes."""
        used_cpu, used_mem = self.node_usage(pod, view)
        has, expired = self._state(view)
        return load_aware_filter(
            used_cpu,
            used_mem,
            view.alloc_cpu,
            view.alloc_mem,
            has,
            expired,
            self.cpu_threshold,
            self.mem_threshold,
        )

    def score(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        """:func:`load_aware_score` of the candidates; 0 without a fresh NodeMetric."""
        used_cpu, used_mem = self.node_usage(pod, view)
        has, expired = self._state(view)
        score = load_aware_score(
            used_cpu[nodes],
            used_mem[nodes],
            view.alloc_cpu[nodes],
            view.alloc_mem[nodes],
            self.cpu_weight,
            self.mem_weight,
        )
        return np.where(has[nodes] & ~expired[nodes], score, 0)
