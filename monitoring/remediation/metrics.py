"""The remediation service's Prometheus metrics (``hydatis_remediation_`` prefix).

One registry per service instance, so two services in one process (tests, the benchmark)
never share counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["RemediationMetrics"]


@dataclass
class RemediationMetrics:
    """Every metric the service exports."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.actions = Counter(
            "hydatis_remediation_actions_total",
            "Decisions by action kind and result (done, partial, dry_run, refused, noop, "
            "rate_limited, stale, failed, error, ...).",
            ["action", "result"],
            registry=r,
        )
        self.alerts = Counter(
            "hydatis_remediation_alerts_received_total",
            "Alerts received, by alert name and status.",
            ["alertname", "status"],
            registry=r,
        )
        self.duplicates = Counter(
            "hydatis_remediation_duplicate_deliveries_total",
            "Deliveries of an alert already handled (not acted on again).",
            registry=r,
        )
        self.webhooks = Counter(
            "hydatis_remediation_webhook_requests_total",
            "Webhook requests by HTTP status code.",
            ["code"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "hydatis_remediation_webhook_seconds",
            "Time to handle one webhook request (decisions and actions included).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.errors = Counter(
            "hydatis_remediation_errors_total",
            "Errors by kind (PrometheusUnavailable, KubeApiError, RegistryError).",
            ["error"],
            registry=r,
        )
        self.evictions = Counter(
            "hydatis_remediation_evictions_total",
            "Pod evictions requested, by result (evicted, blocked_by_pdb, gone, failed, dry_run).",
            ["result"],
            registry=r,
        )
        self.dry_run = Gauge(
            "hydatis_remediation_dry_run",
            "1 while the service only decides and audits (dry-run), 0 when it acts.",
            registry=r,
        )
