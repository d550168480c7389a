"""Where a window's evidence comes from: the extender's own counters, Prometheus on a
cluster, the replay's records in a simulation.

- :class:`ShimCounters` reads the extender's ``/metrics`` (``hydatis_extender_decision_
  seconds``, ``hydatis_extender_fallbacks_total``, ``hydatis_extender_decisions_total``)
  and turns two readings into the window's decision p99 and fallback rate, as
  ``histogram_quantile(rate(...))`` and ``increase(...)`` would (a counter that went down
  was reset: a restarted extender).
- :class:`PrometheusEvidence` asks Prometheus (kube-state-metrics' ``kube_pod_info``,
  ``kube_pod_created``, ``kube_pod_status_scheduled_time``; the recording rule
  ``hydatis:node_cpu_utilisation:ratio_rate5m``; the extender's series) and splits the
  pods into cohorts by the hash of their UID, as the extender does.
- :class:`ReplayEvidence` is a replay observer that keeps the same figures from the
  replay's own state each step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from operations._rollout_gates import CohortStats, Evidence, GateConfig
from scheduler_shim.service import rollout_bucket

__all__ = [
    "PodSample",
    "PrometheusEvidence",
    "ReplayEvidence",
    "ShimCounters",
    "cohort_stats",
    "histogram_quantile",
]

_DECISION = "hydatis_extender_decision_seconds"
_FALLBACKS = "hydatis_extender_fallbacks_total"
_DECISIONS = "hydatis_extender_decisions_total"


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float:
    """Prometheus's ``histogram_quantile``: cumulative counts by upper bound (``+Inf``
    included) -> the ``q`` quantile, linear within a bucket; NaN without observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return math.nan
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for b in bounds:
        count = buckets[b]
        if count >= rank:
            if math.isinf(b):
                return lower  # beyond the last finite bound: Prometheus answers that bound
            width = count - below
            return lower + (b - lower) * ((rank - below) / width if width > 0 else 1.0)
        lower, below = b, count
    return lower


@dataclass
class ShimCounters:
    """One reading of the extender's counters."""

    buckets: dict[float, float] = field(default_factory=dict)
    fallbacks: float = 0.0
    decided: float = 0.0

    @classmethod
    def parse(cls, text: str) -> ShimCounters:
        """From the Prometheus text format of the extender's ``/metrics``."""
        from prometheus_client.parser import text_string_to_metric_families

        out = cls()
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == f"{_DECISION}_bucket":
                    le = float(s.labels["le"])
                    out.buckets[le] = out.buckets.get(le, 0.0) + s.value
                elif s.name == _FALLBACKS:
                    out.fallbacks += s.value
                elif s.name == _DECISIONS and s.labels.get("path") == "active":
                    out.decided += s.value
        return out

    def since(self, before: ShimCounters | None) -> tuple[float, float]:
        """(decision p99 s, fallback rate) between ``before`` and this reading."""

        def inc(now: float, then: float) -> float:
            return now if now < then else now - then  # a reset restarts from 0

        if before is None:
            before = ShimCounters()
        reset = any(v < before.buckets.get(le, 0.0) for le, v in self.buckets.items())
        buckets = {
            le: v if reset else v - before.buckets.get(le, 0.0) for le, v in self.buckets.items()
        }
        decided = inc(self.decided, before.decided)
        fallbacks = inc(self.fallbacks, before.fallbacks)
        rate = fallbacks / decided if decided > 0 else math.nan
        return histogram_quantile(0.99, buckets), rate


@dataclass
class PodSample:
    """One pod in a window, as Prometheus shows it."""

    uid: str
    pending_s: float | None  # None: still pending
    age_s: float
    hot: bool = False


def cohort_stats(pods: Iterable[PodSample], grace_s: float) -> CohortStats:
    """A cohort's figures from its placed pods (a pod still pending was placed by no
    one): hot share over pods; availability over their pod-time since creation, pending
    past the grace counted as impacted; p95 of their pending time."""
    placed = [p for p in pods if p.pending_s is not None]
    if not placed:
        return CohortStats()
    lived = sum(max(p.age_s, p.pending_s) for p in placed)
    impacted = sum(max(p.pending_s - grace_s, 0.0) for p in placed)
    return CohortStats(
        pods=len(placed),
        hot_share=sum(p.hot for p in placed) / len(placed),
        availability=1.0 - impacted / lived if lived > 0 else math.nan,
        pending_p95_s=float(np.percentile([p.pending_s for p in placed], 95)),
    )


class PrometheusEvidence:
    """A window's evidence from Prometheus (a cluster).

    Args:
        query: an instant-query function (``hydatis.prometheus.PrometheusClient.query``):
            (PromQL, unix time) -> Prometheus's ``data`` object.
        config: the gates (window, hot threshold, grace).
    """

    def __init__(self, query: Callable[[str, float], dict[str, Any]], config: GateConfig):
        self.query, self.config = query, config

    def queries(self, end: float) -> dict[str, str]:
        """The PromQL this reads at ``end`` (exposed for the tests and the runbook)."""
        w = int(self.config.window_s)
        start = end - w
        return {
            "pods": f"kube_pod_info * on (namespace, pod) group_left () "
            f"(kube_pod_created >= {start:.0f})",
            "scheduled": "kube_pod_status_scheduled_time - on (namespace, pod) kube_pod_created",
            "node_cpu": f"avg_over_time(hydatis:node_cpu_utilisation:ratio_rate5m[{w}s])",
            "p99": f"histogram_quantile(0.99, sum by (le) (rate({_DECISION}_bucket[{w}s])))",
            "fallback_rate": f"sum(increase({_FALLBACKS}[{w}s])) / "
            f'sum(increase({_DECISIONS}{{path="active"}}[{w}s]))',
        }

    def _vector(self, promql: str, at: float) -> list[dict[str, Any]]:
        data = self.query(promql, at)
        return list(data.get("result") or [])

    def _scalar(self, promql: str, at: float) -> float:
        res = self._vector(promql, at)
        return float(res[0]["value"][1]) if res else math.nan

    def collect(self, end: float, percent: float) -> Evidence:
        """The evidence of the window ending at ``end`` with share ``percent``."""
        cfg = self.config
        q = self.queries(end)
        node_cpu = {
            r["metric"].get("node"): float(r["value"][1]) for r in self._vector(q["node_cpu"], end)
        }
        scheduled = {
            (r["metric"].get("namespace"), r["metric"].get("pod")): float(r["value"][1])
            for r in self._vector(q["scheduled"], end)
        }
        cohorts: dict[bool, list[PodSample]] = {True: [], False: []}
        for r in self._vector(q["pods"], end):
            m = r["metric"]
            uid = m.get("uid")
            if not uid:
                continue
            created = float(r["value"][1])
            pending = scheduled.get((m.get("namespace"), m.get("pod")))
            node = m.get("node") or None
            hot = node is not None and node_cpu.get(node, 0.0) > cfg.hot_threshold
            sample = PodSample(uid, pending, end - created, hot)
            cohorts[rollout_bucket(uid) < percent].append(sample)
        p99, rate = self._scalar(q["p99"], end), self._scalar(q["fallback_rate"], end)
        return Evidence(
            start=end - cfg.window_s,
            end=end,
            percent=percent,
            ml=cohort_stats(cohorts[True], cfg.pending_grace_s),
            default=cohort_stats(cohorts[False], cfg.pending_grace_s),
            decision_p99_s=p99,
            fallback_rate=rate,
        )


class ReplayEvidence:
    """A replay observer keeping each window's figures from the replay's state.

    Per step: a pod placed since the last step is counted in its cohort (its UID's bucket
    under the share then in force) with its pending time (from its creation), of which
    the part past the grace is impacted pod-time; while it runs, in this window, each
    step adds pod-time, hot pod-time (its node's CPU as the metrics pipeline shows it,
    above the hot threshold) and impacted pod-time (that CPU at capacity). Pods still
    pending were placed by no one: the pending gate, not availability, watches them.

    Args:
        uids: each pod's UID (as the extender sees it).
        percent: the share in force now (the extender's setting).
        config: the gates.
        read_shim: returns the extender's ``/metrics`` text (or None when unreachable).
    """

    def __init__(
        self,
        uids: list[str],
        percent: Callable[[], float],
        config: GateConfig,
        read_shim: Callable[[], str | None] | None = None,
    ) -> None:
        self.bucket = np.array([rollout_bucket(u) for u in uids])
        self.percent, self.config, self.read_shim = percent, config, read_shim
        n = len(uids)
        self.cohort = np.full(n, -1, dtype=np.int8)  # 1 ML, 0 default; placed this window
        self._running = np.zeros(n, dtype=bool)
        self.placed_ml_total = 0
        self.placed_total = 0
        self._counters: ShimCounters | None = None
        self._start = 0.0
        self._last_t: float | None = None
        self._reset()

    def _reset(self) -> None:
        self.pending_s: dict[int, list[float]] = {0: [], 1: []}
        self.steps = np.zeros(2)
        self.hot = np.zeros(2)
        self.impacted = np.zeros(2)
        self.cohort[:] = -1

    def start(self, t: float) -> None:
        """Open a window at ``t`` (and take the extender's counters as its baseline)."""
        self._reset()
        self._start = t
        if self.read_shim is not None:
            text = self.read_shim()
            self._counters = ShimCounters.parse(text) if text else None

    def __call__(self, cluster: Any, t: float) -> None:
        from simulator.engine import RUNNING

        state, node = cluster.state, cluster.pod_node
        running = state == RUNNING
        new = np.flatnonzero(running & ~self._running)
        self._running = running
        pct = float(self.percent())
        # a pod running now was placed by the scheduling pass of the previous step (the
        # engine schedules after this hook)
        placed_at = t if self._last_t is None else self._last_t
        self._last_t = t
        if new.size:
            ml = self.bucket[new] < pct
            self.cohort[new] = ml.astype(np.int8)
            step = max(t - placed_at, 1e-9)
            for i, is_ml in zip(new.tolist(), ml.tolist(), strict=True):
                created = float(np.nan_to_num(cluster.created[i]))
                waited = max(placed_at - created, 0.0)
                self.pending_s[int(is_ml)].append(waited)
                self.steps[int(is_ml)] += waited / step
                self.impacted[int(is_ml)] += max(waited - self.config.pending_grace_s, 0.0) / step
            self.placed_ml_total += int(ml.sum())
            self.placed_total += int(new.size)
        cpu = np.nan_to_num(cluster.node_cpu(), nan=0.0)
        tracked = np.flatnonzero(running & (self.cohort >= 0))
        if tracked.size:
            c = self.cohort[tracked]
            on = cpu[node[tracked]]
            for k in (0, 1):
                sel = c == k
                self.steps[k] += sel.sum()
                self.hot[k] += (on[sel] > self.config.hot_threshold).sum()
                self.impacted[k] += (on[sel] >= 0.999).sum()

    def take(self, t: float) -> Evidence:
        """Close the window at ``t``: its evidence; a new window opens."""
        stats = []
        for k in (1, 0):
            waits = self.pending_s[k]
            steps = self.steps[k]
            stats.append(
                CohortStats(
                    pods=len(waits),
                    hot_share=float(self.hot[k] / steps) if steps else math.nan,
                    availability=float(1 - self.impacted[k] / steps) if steps else math.nan,
                    pending_p95_s=float(np.percentile(waits, 95)) if waits else math.nan,
                )
            )
        p99 = rate = math.nan
        if self.read_shim is not None:
            text = self.read_shim()
            if text:
                now = ShimCounters.parse(text)
                p99, rate = now.since(self._counters)
        ev = Evidence(
            start=self._start,
            end=t,
            percent=float(self.percent()),
            ml=stats[0],
            default=stats[1],
            decision_p99_s=p99,
            fallback_rate=rate,
        )
        self.start(t)
        return ev
