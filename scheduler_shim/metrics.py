"""The extender's Prometheus metrics (``hydatis_extender_`` prefix, base units).

One registry per service instance, so two extenders in one process (tests) never share
counters. The labelled counters' known label values are created at 0 by
:meth:`ExtenderMetrics.init_labels`, so a healthy run shows 0 rather than no series.
The per-node gauges follow the node-state snapshot (:class:`NodeSeries`)
and the load predictor's live accuracy is set at refresh
(:meth:`ExtenderMetrics.publish_live`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scheduler_shim.live import LiveFigures

__all__ = [
    "DECISION_PATHS",
    "FALLBACK_REASONS",
    "FILTER_REASONS",
    "VERBS",
    "ExtenderMetrics",
    "NodeSeries",
]

#: The label values the extender's code uses (created at 0 at start).
VERBS = ("filter", "prioritize")
DECISION_PATHS = ("active", "shadow", "rollout_skip")
FILTER_REASONS = ("hot", "anomalous")
FALLBACK_REASONS = (
    "no_state",
    "stale_state",
    "refresh_load_failed",
    "refresh_anomaly_failed",
    "agent_failed",
    "deadline",
    "unknown_node",
    "filter_would_empty",
    "filter_relaxed_anomalous",
    "internal_error",
    "redis_unavailable",
)
_CACHE_RESULTS = ("hit", "miss")
_PREFETCH_RESULTS = ("used", "stale")
_REFRESH_RESULTS = ("ok", "degraded", "failed")

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


class NodeSeries(Collector):
    """The per-node gauges, read at scrape time from the latest installed snapshot.

    ``hydatis_extender_node_predicted_cpu_ratio{node}``, ``..._memory_ratio{node}`` and
    ``hydatis_extender_node_anomalous{node}``. An install swaps one reference to the
    snapshot's arrays, so a scrape sees one snapshot's whole set — never half of one —
    and a node that left the state has no series without anything being removed. A node
    with no forecast (NaN) has no forecast sample; a node the anomaly model did not score
    has no ``anomalous`` sample. The work is per scrape (a few ms for 1,500 nodes), not
    per refresh, so a refresh never holds requests up for it.
    """

    def __init__(self) -> None:
        self._current: tuple[list[str], np.ndarray, np.ndarray, np.ndarray] | None = None

    def install(
        self,
        names: Sequence[str],
        pred_cpu: np.ndarray,
        pred_mem: np.ndarray,
        anomaly_score: np.ndarray,
        anomaly_flag: np.ndarray,
    ) -> None:
        """Make these the series' values (the arrays are read, never written)."""
        score = np.asarray(anomaly_score, dtype=np.float64)
        flag = np.where(np.isfinite(score), np.asarray(anomaly_flag, dtype=np.float64), np.nan)
        cpu = np.asarray(pred_cpu, dtype=np.float64)
        mem = np.asarray(pred_mem, dtype=np.float64)
        self._current = (list(names), cpu, mem, flag)

    def describe(self) -> list[GaugeMetricFamily]:
        """The families (no samples), for the registry's name check."""
        return self._families()

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "hydatis_extender_node_predicted_cpu_ratio",
                "Each node's CPU utilisation forecast by the load predictor at the latest "
                "refresh (for refresh time + its horizon); no sample where it gave none.",
                labels=["node"],
            ),
            GaugeMetricFamily(
                "hydatis_extender_node_predicted_memory_ratio",
                "Each node's memory utilisation forecast by the load predictor at the "
                "latest refresh; no sample where it gave none.",
                labels=["node"],
            ),
            GaugeMetricFamily(
                "hydatis_extender_node_anomalous",
                "1 if the anomaly detector flagged the node at the latest refresh, else 0; "
                "no sample where it gave no score.",
                labels=["node"],
            ),
        ]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """The current snapshot's samples."""
        families = self._families()
        current = self._current
        if current is not None:
            names, *columns = current
            for family, values in zip(families, columns, strict=True):
                ok = np.flatnonzero(np.isfinite(values))
                for i, v in zip(ok.tolist(), values[ok].tolist(), strict=True):
                    family.add_metric([names[i]], v)
        return families


@dataclass
class ExtenderMetrics:
    """Every metric the extender exports."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.decision_seconds = Histogram(
            "hydatis_extender_decision_seconds",
            "Time to answer one filter or prioritize request.",
            ["verb"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "hydatis_extender_requests_total",
            "Requests answered, by verb and HTTP status code.",
            ["verb", "code"],
            registry=r,
        )
        self.fallbacks = Counter(
            "hydatis_extender_fallbacks_total",
            "Answers (or parts of answers) made neutral, by reason.",
            ["reason"],
            registry=r,
        )
        self.decisions = Counter(
            "hydatis_extender_decisions_total",
            "Calls decided, by verb (filter, prioritize; one pod makes one of each) and path"
            " (active, shadow, rollout_skip).",
            ["verb", "path"],
            registry=r,
        )
        self.filtered = Counter(
            "hydatis_extender_filtered_nodes_total",
            "Nodes filtered out, by reason.",
            ["reason"],
            registry=r,
        )
        self.prefetch = Counter(
            "hydatis_extender_agent_prefetch_total",
            "Agent calls started at filter, by what prioritize did with them (used, stale).",
            ["result"],
            registry=r,
        )
        self.cache_lookups = Counter(
            "hydatis_extender_cache_lookups_total",
            "Candidate nodes looked up in the node-state cache, by result (hit, miss).",
            ["result"],
            registry=r,
        )
        self.state_age = Gauge(
            "hydatis_extender_node_state_age_seconds",
            "Age of the node-state snapshot (since its refresh finished).",
            registry=r,
        )
        self.state_nodes = Gauge(
            "hydatis_extender_node_state_nodes",
            "Nodes in the node-state snapshot.",
            registry=r,
        )
        self.refresh_seconds = Histogram(
            "hydatis_extender_refresh_seconds",
            "Time to refresh the node state (features in, model outputs out).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.refreshes = Counter(
            "hydatis_extender_refreshes_total",
            "Node-state refreshes, by result (ok, degraded, failed).",
            ["result"],
            registry=r,
        )
        self.model_seconds = Histogram(
            "hydatis_extender_model_call_seconds",
            "Latency of calls to the model servers.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_errors = Counter(
            "hydatis_extender_model_call_errors_total",
            "Model calls that failed or timed out.",
            ["model"],
            registry=r,
        )

        self.nodes = NodeSeries()
        r.register(self.nodes)
        self.rollout_ratio = Gauge(
            "hydatis_extender_rollout_ratio",
            "The configured share of pods the models decide for (rollout_percent / 100; "
            "in shadow mode they decide but the answer is neutral, see mode_info).",
            registry=r,
        )
        self.mode_info = Gauge(
            "hydatis_extender_mode_info",
            "1 for the extender's configured mode (active, shadow).",
            ["mode"],
            registry=r,
        )
        self.live_accuracy = Gauge(
            "hydatis_load_predictor_live_accuracy",
            "The load predictor's 1 - WAPE of its forecasts against the utilisation "
            "observed once the horizon passed, over the rolling window; no sample before "
            "the first matched pair.",
            ["resource"],
            registry=r,
        )
        self.live_pairs = Gauge(
            "hydatis_load_predictor_live_matched_pairs",
            "(forecast, observed) node pairs in the live accuracy's rolling window.",
            ["resource"],
            registry=r,
        )
        self.accuracy_gate = Gauge(
            "hydatis_load_predictor_accuracy_gate",
            "The registry gate's accuracy target the live accuracy is held to.",
            ["resource"],
            registry=r,
        )

    def init_labels(
        self,
        *,
        mode: str,
        rollout_percent: float,
        gates: Mapping[str, float],
        models: Iterable[str] = (),
    ) -> None:
        """Create every known label value at 0 and set the configuration gauges.

        Args:
            mode: the configured mode (``active`` or ``shadow``).
            rollout_percent: the configured rollout share (0..100).
            gates: the accuracy gate per resource (``cpu``, ``memory``).
            models: the model names the extender calls (their error counters and
                latency histograms).
        """
        for verb in VERBS:
            self.decision_seconds.labels(verb)
            for path in DECISION_PATHS:
                self.decisions.labels(verb, path)
        for reason in FALLBACK_REASONS:
            self.fallbacks.labels(reason)
        for reason in FILTER_REASONS:
            self.filtered.labels(reason)
        for result in _CACHE_RESULTS:
            self.cache_lookups.labels(result)
        for result in _PREFETCH_RESULTS:
            self.prefetch.labels(result)
        for result in _REFRESH_RESULTS:
            self.refreshes.labels(result)
        self.init_models(models)
        self.rollout_ratio.set(rollout_percent / 100.0)
        for m in ("active", "shadow"):
            self.mode_info.labels(m).set(1.0 if m == mode else 0.0)
        for resource, gate in gates.items():
            self.accuracy_gate.labels(resource).set(gate)
            self.live_pairs.labels(resource).set(0)

    def init_models(self, models: Iterable[str]) -> None:
        """Create the per-model error counter and latency histogram at 0."""
        for model in models:
            self.model_errors.labels(model)
            self.model_seconds.labels(model)

    def observe_model(self, model: str, seconds: float, ok: bool) -> None:
        """Record one model call."""
        self.model_seconds.labels(model).observe(seconds)
        if not ok:
            self.model_errors.labels(model).inc()

    def publish_nodes(
        self,
        names: Sequence[str],
        pred_cpu: np.ndarray,
        pred_mem: np.ndarray,
        anomaly_score: np.ndarray,
        anomaly_flag: np.ndarray,
    ) -> None:
        """The per-node series from a newly installed snapshot (see :class:`NodeSeries`)."""
        self.state_nodes.set(len(names))
        self.nodes.install(names, pred_cpu, pred_mem, anomaly_score, anomaly_flag)

    def publish_live(self, figures: Mapping[str, LiveFigures]) -> None:
        """The live accuracy per resource; a resource with no figure (no matched pair
        yet) has no accuracy sample rather than a NaN one."""
        for resource, fig in figures.items():
            self.live_pairs.labels(resource).set(fig.pairs)
            if math.isfinite(fig.accuracy):
                self.live_accuracy.labels(resource).set(fig.accuracy)
            else:
                self.live_accuracy.remove(resource)  # a no-op when it has none
