"""The extender's Prometheus metrics (``hydatis_extender_`` prefix, base units).

One registry per service instance, so two extenders in one process (tests) never share
counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ExtenderMetrics"]

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

    def observe_model(self, model: str, seconds: float, ok: bool) -> None:
        """Record one model call."""
        self.model_seconds.labels(model).observe(seconds)
        if not ok:
            self.model_errors.labels(model).inc()
