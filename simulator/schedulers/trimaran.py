"""Trimaran's load-aware score plugins: TargetLoadPacking and LoadVariationRiskBalancing.

Checked against kubernetes-sigs/scheduler-plugins (master, 2026; unchanged in substance
since v0.28), pkg/trimaran/targetloadpacking/targetloadpacking.go,
pkg/trimaran/loadvariationriskbalancing/{loadvariationriskbalancing,analysis}.go,
pkg/trimaran/resourcestats.go and apis/config/v1/defaults.go.
"""

from __future__ import annotations

import numpy as np

from simulator.schedulers._common import (
    MAX_NODE_SCORE,
    MIN_NODE_SCORE,
    go_round,
    nan_to_zero,
)
from simulator.types import (
    UNSET,
    ClusterView,
    FrameworkScheduler,
    PodSpec,
    RecentBindings,
    WindowSum,
)

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_REQUESTS_MILLI_CORES",
    "DEFAULT_REQUESTS_MULTIPLIER",
    "DEFAULT_SENSITIVITY",
    "DEFAULT_TARGET_UTILIZATION",
    "METRICS_AGENT_REPORTING_INTERVAL_S",
    "UPSTREAM_TARGET_UTILIZATION",
    "LoadVariationRiskBalancingScheduler",
    "TargetLoadPackingScheduler",
    "lvrb_resource_score",
    "lvrb_score",
    "predict_cpu",
    "tlp_score",
]

# This project runs TargetLoadPacking at the seeds' target of 65 %; upstream's default
# (DefaultTargetUtilizationPercent) is 40 %.
DEFAULT_TARGET_UTILIZATION = 65
UPSTREAM_TARGET_UTILIZATION = 40
DEFAULT_REQUESTS_MILLI_CORES = 1000  # prediction for a container with no CPU request/limit
DEFAULT_REQUESTS_MULTIPLIER = 1.5  # prediction = request × 1.5 when no limit
METRICS_AGENT_REPORTING_INTERVAL_S = 60  # pods bound this long before the window end count
DEFAULT_MARGIN = 1.0  # SafeVarianceMargin
DEFAULT_SENSITIVITY = 1.0  # SafeVarianceSensitivity


def predict_cpu(
    cpu_request: np.ndarray,
    cpu_limit: np.ndarray,
    multiplier: float = DEFAULT_REQUESTS_MULTIPLIER,
    default_milli: int = DEFAULT_REQUESTS_MILLI_CORES,
) -> np.ndarray:
    """TargetLoadPacking's PredictUtilisation for one-container pods.

    ``limit`` if a CPU limit is set, else ``go_round(request × multiplier)`` if a request
    is set, else ``default_milli``; ``UNSET`` (-1) marks an unset value.

    Args:
        cpu_request, cpu_limit: millicores, ``UNSET`` where not set.
        multiplier: DefaultRequestsMultiplier.
        default_milli: DefaultRequests CPU.

    Returns:
        Predicted CPU (millicores, float).
    """
    cpu_request, cpu_limit = np.asarray(cpu_request), np.asarray(cpu_limit)
    from_request = go_round(cpu_request.astype(np.float64) * multiplier)
    return np.where(
        cpu_limit != UNSET,
        cpu_limit,
        np.where(cpu_request != UNSET, from_request, float(default_milli)),
    ).astype(np.float64)


def _pod_predicted_cpu(pod: PodSpec, multiplier: float, default_milli: int) -> float:
    """:func:`predict_cpu` of one pod."""
    if pod.cpu_limit is not None:
        return float(pod.cpu_limit)
    if pod.cpu_request is not None:
        return float(go_round(float(pod.cpu_request) * multiplier))
    return float(default_milli)


def tlp_score(
    node_cpu_used: np.ndarray,
    missing_cpu: np.ndarray,
    pod_cpu: float,
    cap_cpu: np.ndarray,
    target: float = DEFAULT_TARGET_UTILIZATION,
) -> np.ndarray:
    """TargetLoadPacking's score around the target utilisation ``X`` (percent).

    ``U = 100 · (used + pod + missing) / capacity`` (0 when capacity is 0), then
    ``go_round((100 − X) · U / X + X)`` if ``U ≤ X``,
    ``go_round(X · (100 − U) / (100 − X))`` if ``X < U ≤ 100``, and 0 above 100.
    A node without a CPU metric (NaN ``used``) scores 0 (MinNodeScore).

    Args:
        node_cpu_used: the node's CPU use as load-watcher reports it, the mean over its
            window (``avg_over_time``), in millicores; NaN = no metric.
        missing_cpu: predicted CPU of pods bound too recently to show in the metric.
        pod_cpu: the incoming pod's predicted CPU.
        cap_cpu: node CPU *capacity* (not allocatable).
        target: ``X``, TargetUtilization in percent.

    Returns:
        Integer scores in [0, 100].
    """
    cap = np.asarray(cap_cpu, np.float64)
    used = np.asarray(node_cpu_used, np.float64)
    total = used + pod_cpu + np.asarray(missing_cpu, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(cap != 0, 100 * total / cap, 0.0)
    below = go_round((100 - target) * util / target + target)
    above = go_round(target * (100 - util) / (100 - target)) if target < 100 else below
    score = np.where(util > target, np.where(util > 100, MIN_NODE_SCORE, above), below)
    score = np.where(np.isnan(used), MIN_NODE_SCORE, score)
    return score.astype(np.int64)


def lvrb_resource_score(
    avg: np.ndarray,
    std: np.ndarray,
    request: float,
    alloc: np.ndarray,
    margin: float = DEFAULT_MARGIN,
    sensitivity: float = DEFAULT_SENSITIVITY,
) -> tuple[np.ndarray, np.ndarray]:
    """LoadVariationRiskBalancing's score for one resource (a float, not yet rounded).

    ``mu = clip(clip(avg, 0, 1) + request / alloc, 0, 1)``,
    ``sigma = clip(margin · clip(std, 0, 1) ^ (1 / sensitivity), 0, 1)`` (the power only
    when ``sensitivity ≥ 0``), ``risk = (mu + sigma) / 2``, ``score = (1 − risk) · 100``;
    0 when ``alloc ≤ 0``. A resource has a metric when its mean or its std is not NaN
    (a missing one counts as 0).

    Args:
        avg, std: mean and standard deviation of the utilisation fraction.
        request: the pod's raw request (no defaults), same unit as ``alloc``.
        alloc: node allocatable.
        margin: SafeVarianceMargin.
        sensitivity: SafeVarianceSensitivity.

    Returns:
        ``(score, valid)``: float scores and whether the node has this metric.
    """
    avg, std = np.asarray(avg, np.float64), np.asarray(std, np.float64)
    alloc = np.asarray(alloc, np.float64)
    valid = ~(np.isnan(avg) & np.isnan(std))
    used_avg = np.clip(nan_to_zero(avg), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.clip(used_avg + max(request, 0) / alloc, 0.0, 1.0)
        sigma = np.clip(nan_to_zero(std), 0.0, 1.0)
        if sensitivity >= 0:
            sigma = sigma ** (np.float64(1.0) / np.float64(sensitivity))
    sigma = np.clip(sigma * margin, 0.0, 1.0)
    risk = (mu + sigma) / 2
    score = np.where(alloc > 0, (1.0 - risk) * MAX_NODE_SCORE, 0.0)
    return score, valid


def lvrb_score(
    cpu: tuple[np.ndarray, np.ndarray], mem: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Combine LoadVariationRiskBalancing's CPU and memory scores.

    ``go_round(min(s_cpu, s_mem))`` when the node has both metrics, else
    ``go_round(max(s_cpu, s_mem))`` with a missing resource's score taken as 0 (so a node
    with no metrics scores 0).

    Args:
        cpu, mem: ``(score, valid)`` pairs from :func:`lvrb_resource_score`.

    Returns:
        Integer scores in [0, 100].
    """
    s_cpu = np.where(cpu[1], cpu[0], 0.0)
    s_mem = np.where(mem[1], mem[0], 0.0)
    both = cpu[1] & mem[1]
    total = np.where(both, np.minimum(s_cpu, s_mem), np.maximum(s_cpu, s_mem))
    return go_round(total).astype(np.int64)


class TargetLoadPackingScheduler(FrameworkScheduler):
    """Trimaran TargetLoadPacking: pack nodes up to a target CPU utilisation.

    Filter: NodeResourcesFit only. Score: :func:`tlp_score` (the only score plugin, as in
    upstream's sample profile). Pods this scheduler bound after ``window_end −
    reporting_interval_s`` are added with their predicted CPU, as upstream's
    ScheduledPodsCache does.

    Args:
        target_utilization: ``X`` in percent (upstream default 40; this project 65).
        requests_multiplier: DefaultRequestsMultiplier.
        default_requests_milli: DefaultRequests CPU (millicores).
        reporting_interval_s: metricsAgentReportingIntervalSeconds.
        percentage_of_nodes_to_score: kube-scheduler's percentageOfNodesToScore.
    """

    name = "tlp"

    def __init__(
        self,
        *,
        target_utilization: float = DEFAULT_TARGET_UTILIZATION,
        requests_multiplier: float = DEFAULT_REQUESTS_MULTIPLIER,
        default_requests_milli: int = DEFAULT_REQUESTS_MILLI_CORES,
        reporting_interval_s: float = METRICS_AGENT_REPORTING_INTERVAL_S,
        percentage_of_nodes_to_score: int = 0,
    ) -> None:
        self.target_utilization = target_utilization
        self.requests_multiplier = requests_multiplier
        self.default_requests_milli = default_requests_milli
        self.reporting_interval_s = reporting_interval_s
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self._missing = WindowSum(self._predicted_cpu)

    def _predicted_cpu(self, bindings: RecentBindings) -> np.ndarray:
        """Predicted CPU of each of the given bindings."""
        return predict_cpu(
            bindings.cpu_request,
            bindings.cpu_limit,
            self.requests_multiplier,
            self.default_requests_milli,
        ).astype(np.float64)

    def score(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        """:func:`tlp_score` of the candidate nodes."""
        metrics = view.metrics
        if np.isnan(metrics.window_end):
            return np.full(nodes.size, MIN_NODE_SCORE, dtype=np.int64)
        t0 = metrics.window_end - self.reporting_interval_s
        missing = self._missing.get(view.bindings, t0, view.n_nodes)[nodes]
        pod_cpu = _pod_predicted_cpu(pod, self.requests_multiplier, self.default_requests_milli)
        return tlp_score(
            metrics.cpu_avg[nodes] * view.cap_cpu[nodes],
            missing,
            pod_cpu,
            view.cap_cpu[nodes],
            self.target_utilization,
        )


class LoadVariationRiskBalancingScheduler(FrameworkScheduler):
    """Trimaran LoadVariationRiskBalancing: balance mean + deviation of the load.

    Filter: NodeResourcesFit only. Score: :func:`lvrb_score` of the CPU and memory
    :func:`lvrb_resource_score` (raw requests, fractions of allocatable). It does not add
    recently bound pods (upstream does not either).

    Args:
        safe_variance_margin: SafeVarianceMargin.
        safe_variance_sensitivity: SafeVarianceSensitivity.
        percentage_of_nodes_to_score: kube-scheduler's percentageOfNodesToScore.
    """

    name = "lvrb"

    def __init__(
        self,
        *,
        safe_variance_margin: float = DEFAULT_MARGIN,
        safe_variance_sensitivity: float = DEFAULT_SENSITIVITY,
        percentage_of_nodes_to_score: int = 0,
    ) -> None:
        self.safe_variance_margin = safe_variance_margin
        self.safe_variance_sensitivity = safe_variance_sensitivity
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score

    def score(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        """:func:`lvrb_score` of the candidate nodes."""
        m = view.metrics
        margin, sens = self.safe_variance_margin, self.safe_variance_sensitivity
        cpu = lvrb_resource_score(
            m.cpu_avg[nodes], m.cpu_std[nodes], pod.cpu_req, view.alloc_cpu[nodes], margin, sens
        )
        mem = lvrb_resource_score(
            m.mem_avg[nodes], m.mem_std[nodes], pod.mem_req, view.alloc_mem[nodes], margin, sens
        )
        return lvrb_score(cpu, mem)
