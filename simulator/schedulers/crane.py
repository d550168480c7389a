"""Crane's Dynamic scheduler plugin (load-aware filter and score with a "hot value").

Checked against gocrane/crane-scheduler (master, c2c0533, 2023-10),
pkg/plugins/dynamic/{plugins,stats}.go, pkg/controller/annotator/{node,binding}.go,
pkg/utils/utils.go and deploy/manifests/dynamic/policy.yaml.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simulator.schedulers._common import MAX_NODE_SCORE, MIN_NODE_SCORE, per_node_sum
from simulator.types import ClusterView, FrameworkScheduler, PodSpec, RecentBindings, WindowSum

__all__ = [
    "DEFAULT_CPU_AVG_5M_LIMIT",
    "DEFAULT_CPU_AVG_5M_WEIGHT",
    "DEFAULT_CPU_MAX_1D_WEIGHT",
    "DEFAULT_CPU_MAX_1H_LIMIT",
    "DEFAULT_CPU_MAX_1H_WEIGHT",
    "DEFAULT_HOT_VALUE_POLICY",
    "DEFAULT_SYNC_PERIODS_S",
    "EXTRA_ACTIVE_PERIOD_S",
    "CraneScheduler",
    "crane_filter",
    "crane_load_score",
    "crane_score",
    "hot_value",
    "usage_valid",
]

# deploy/manifests/dynamic/policy.yaml (CPU entries; the simulator has no memory ones).
DEFAULT_CPU_AVG_5M_LIMIT = 0.65  # predicate cpu_usage_avg_5m maxLimitPecent
DEFAULT_CPU_MAX_1H_LIMIT = 0.75  # predicate cpu_usage_max_avg_1h
DEFAULT_CPU_AVG_5M_WEIGHT = 0.2  # priority weights
DEFAULT_CPU_MAX_1H_WEIGHT = 0.3
DEFAULT_CPU_MAX_1D_WEIGHT = 0.5
# hotValue: (timeRange seconds, count): hot = Σ bindings_in_range // count.
DEFAULT_HOT_VALUE_POLICY: tuple[tuple[float, int], ...] = ((300.0, 5), (60.0, 2))
# syncPolicy periods; a value is active for period + ExtraActivePeriod after it was taken.
DEFAULT_SYNC_PERIODS_S = {"cpu_avg_5m": 180.0, "cpu_max_1h": 900.0, "cpu_max_1d": 10800.0}
EXTRA_ACTIVE_PERIOD_S = 300.0
_METRICS = ("cpu_avg_5m", "cpu_max_1h", "cpu_max_1d")


def usage_valid(
    usage: np.ndarray, taken_at: np.ndarray | None, now: float, period_s: float
) -> np.ndarray:
    """Whether a usage annotation counts: present, not negative, and still active.

    ``valid = ¬isnan(u) ∧ u ≥ 0 ∧ now < taken_at + period + 300 s`` (the time test only
    when the annotation's time is known).

    Args:
        usage: the usage fractions (NaN = missing).
        taken_at: when each value was computed (s), or None when unknown.
        now: the current time (s).
        period_s: the metric's sync period.

    Returns:
        Boolean mask.
    """
    usage = np.asarray(usage, np.float64)
    with np.errstate(invalid="ignore"):
        ok = ~np.isnan(usage) & (usage >= 0)
        if taken_at is not None:
            ok &= now < np.asarray(taken_at, np.float64) + period_s + EXTRA_ACTIVE_PERIOD_S
    return ok


def crane_filter(
    usages: Sequence[np.ndarray], valid: Sequence[np.ndarray], limits: Sequence[float]
) -> np.ndarray:
    """Dynamic's filter: a node fails when any valid usage is strictly above its limit.

    ``fail = ∃ i: valid_i ∧ limit_i ≠ 0 ∧ u_i > limit_i``; a missing or expired value is
    skipped, a limit of 0 disables its predicate.

    Args:
        usages: one array of usage fractions per predicate.
        valid: matching masks from :func:`usage_valid`.
        limits: maxLimitPecent per predicate.

    Returns:
        Boolean mask, True where the node passes.
    """
    ok = np.ones(np.shape(usages[0]), dtype=bool) if usages else np.ones(0, dtype=bool)
    for u, v, limit in zip(usages, valid, limits, strict=True):
        if limit == 0:
            continue
        with np.errstate(invalid="ignore"):
            ok &= ~(v & (np.asarray(u, np.float64) > limit))
    return ok


def crane_load_score(
    usages: Sequence[np.ndarray], valid: Sequence[np.ndarray], weights: Sequence[float]
) -> np.ndarray:
    """Dynamic's load score, before the hot value: ``int(Σ_i [valid_i] (1 − u_i) · w_i ·
    100 / Σ_i w_i)``.

    A missing or expired value adds 0 to the sum but keeps its weight in the divisor;
    ``int`` truncates toward zero as Go's conversion does. No priorities: 0.

    Args:
        usages: one array of usage fractions per priority.
        valid: matching masks from :func:`usage_valid`.
        weights: priority weights.

    Returns:
        Integer scores (not clamped).
    """
    shape = np.shape(usages[0]) if usages else (0,)
    total = np.zeros(shape)
    weight = 0.0
    for u, v, w in zip(usages, valid, weights, strict=True):
        total = total + np.where(v, (1.0 - np.asarray(u, np.float64)) * w * MAX_NODE_SCORE, 0.0)
        weight += w
    if not weights:
        return total.astype(np.int64)
    return np.trunc(total / weight).astype(np.int64)


def crane_score(
    usages: Sequence[np.ndarray],
    valid: Sequence[np.ndarray],
    weights: Sequence[float],
    hot: np.ndarray,
) -> np.ndarray:
    """Dynamic's score: ``clamp(load − int(hot · 10), 0, 100)``.

    ``load`` is :func:`crane_load_score`: ``int(Σ_i [valid_i] (1 − u_i) · w_i · 100 /
    Σ_i w_i)``, where a missing or expired value counts 0 but keeps its weight.

    Args:
        usages: one array of usage fractions per priority.
        valid: matching masks from :func:`usage_valid`.
        weights: priority weights.
        hot: each node's hot value.

    Returns:
        Integer scores in [0, 100].
    """
    hot = np.asarray(hot, np.float64)
    load = crane_load_score(usages, valid, weights) if weights else np.zeros(hot.shape)
    score = load - np.trunc(hot * 10)
    return np.clip(score, MIN_NODE_SCORE, MAX_NODE_SCORE).astype(np.int64)


def hot_value(
    bindings: RecentBindings,
    now: float,
    n_nodes: int,
    policy: Sequence[tuple[float, int]] = DEFAULT_HOT_VALUE_POLICY,
) -> np.ndarray:
    """The annotator's node hot value: ``Σ_(range, count) n_bound(now − range, now] // count``.

    With the default policy: ``bindings in the last 5 min // 5 + in the last 1 min // 2``
    (a binding counts when its time is strictly after ``now − range``).

    Args:
        bindings: recent bindings (at least the longest range).
        now: the current time (s).
        n_nodes: number of nodes.
        policy: (time range in seconds, count) pairs.

    Returns:
        Integer hot values per node.
    """
    hot = np.zeros(n_nodes, dtype=np.int64)
    if len(bindings) == 0:
        return hot
    ones = np.ones(len(bindings))
    for time_range, count in policy:
        n_bound = per_node_sum(bindings, ones, n_nodes, bindings.time > now - time_range)
        hot += n_bound.astype(np.int64) // count
    return hot


def _ones(bindings: RecentBindings) -> np.ndarray:
    return np.ones(len(bindings))


class CraneScheduler(FrameworkScheduler):
    """Crane Dynamic: filter overloaded nodes, prefer low real usage and few recent pods.

    Filter: NodeResourcesFit, then :func:`crane_filter` on ``cpu_avg_5m`` and
    ``cpu_max_1h``. Score: :func:`crane_score` over ``cpu_avg_5m``, ``cpu_max_1h``,
    ``cpu_max_1d`` minus ten times the :func:`hot_value` of this scheduler's bindings.
    A NaN value is missing; if the metrics carry ``<name>_at`` arrays, a value older than
    its sync period + 5 min is missing too.

    Args:
        cpu_avg_5m_limit, cpu_max_1h_limit: predicate limits (fractions; 0 disables).
        cpu_avg_5m_weight, cpu_max_1h_weight, cpu_max_1d_weight: priority weights.
        hot_value_policy: (time range s, count) pairs.
        percentage_of_nodes_to_score: kube-scheduler's percentageOfNodesToScore.
    """

    name = "crane"

    def __init__(
        self,
        *,
        cpu_avg_5m_limit: float = DEFAULT_CPU_AVG_5M_LIMIT,
        cpu_max_1h_limit: float = DEFAULT_CPU_MAX_1H_LIMIT,
        cpu_avg_5m_weight: float = DEFAULT_CPU_AVG_5M_WEIGHT,
        cpu_max_1h_weight: float = DEFAULT_CPU_MAX_1H_WEIGHT,
        cpu_max_1d_weight: float = DEFAULT_CPU_MAX_1D_WEIGHT,
        hot_value_policy: Sequence[tuple[float, int]] = DEFAULT_HOT_VALUE_POLICY,
        percentage_of_nodes_to_score: int = 0,
    ) -> None:
        self.cpu_avg_5m_limit = cpu_avg_5m_limit
        self.cpu_max_1h_limit = cpu_max_1h_limit
        self.cpu_avg_5m_weight = cpu_avg_5m_weight
        self.cpu_max_1h_weight = cpu_max_1h_weight
        self.cpu_max_1d_weight = cpu_max_1d_weight
        self.hot_value_policy = hot_value_policy
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self._metric_cache = None
        self._counts = [WindowSum(_ones) for _ in self.hot_value_policy]

    def _metric_parts(self, view: ClusterView) -> tuple[np.ndarray, np.ndarray]:
        """(filter mask, score before the hot value) of every node.

        Both depend on the metrics and the time only, not on the pod, so they are cached
        until either changes (the engine calls :meth:`filter` and :meth:`score` for every
        pod; the metrics refresh once a minute).
        """
        m = view.metrics
        arrays = []
        for name in _METRICS:
            arrays.append(getattr(m, name))
            taken_at = getattr(m, f"{name}_at", None)
            if taken_at is not None:
                arrays.append(taken_at)
        key = (view.now, *(np.asarray(a).tobytes() for a in arrays))
        cached = getattr(self, "_metric_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        usages, valid = [], []
        for name in _METRICS:
            values = getattr(m, name)
            usages.append(values)
            taken_at = getattr(m, f"{name}_at", None)
            valid.append(usage_valid(values, taken_at, view.now, DEFAULT_SYNC_PERIODS_S[name]))
        mask = crane_filter(usages[:2], valid[:2], (self.cpu_avg_5m_limit, self.cpu_max_1h_limit))
        weights = (self.cpu_avg_5m_weight, self.cpu_max_1h_weight, self.cpu_max_1d_weight)
        base = crane_load_score(usages, valid, weights)
        parts = (mask, base)
        self._metric_cache = (key, parts)
        return parts

    def filter(self, pod: PodSpec, view: ClusterView) -> np.ndarray:
        """:func:`crane_filter` over all nodes."""
        return self._metric_parts(view)[0].copy()

    def score(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        """:func:`crane_score` of the candidates: the load score minus 10 × hot value."""
        base = self._metric_parts(view)[1][nodes]
        hot = np.zeros(nodes.size, dtype=np.int64)
        for (time_range, count), window in zip(self.hot_value_policy, self._counts, strict=True):
            bound = window.get(view.bindings, view.now - time_range, view.n_nodes)[nodes]
            hot += bound.astype(np.int64) // count
        return np.clip(base - 10 * hot, MIN_NODE_SCORE, MAX_NODE_SCORE)  # hot is an int
