"""The decision core: one Alertmanager notification in, one audited decision per alert out.

For each alert, in order:

1. a delivery already handled (same fingerprint, ``startsAt`` and status) is recorded as a
   ``duplicate`` and nothing else happens (Alertmanager repeats firing alerts);
2. a resolved alert is recorded; an alert that is not HYDATIS's is ``ignored``;
3. ``notify`` alerts are recorded for people (no automatic action);
4. when a Prometheus is configured, the alert must still be firing there (``ALERTS``),
   else it is ``stale``; Prometheus unreachable → :class:`PrometheusUnavailableError`
   after the client's retries (the webhook answers 503 and Alertmanager delivers again);
5. the rate limit (actions in a sliding window): over it → ``rate_limited``, tried again
   at the next delivery;
6. the action (:mod:`monitoring.remediation.actions`), in dry-run or for real.

Every decision is appended to the audit log before the next alert is looked at; only
final results (not ``rate_limited`` or errors) mark a delivery as handled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hydatis.prometheus import PrometheusClient, PrometheusError
from monitoring.alerts.spec import ALERT_BY_NAME, PENDING_BOUND_S
from monitoring.remediation.actions import (
    CordonDrain,
    ExtenderSettings,
    ModelRollback,
    Outcome,
    Retrain,
    extender_blocked_nodes,
)
from monitoring.remediation.audit import FINAL_RESULTS, AuditLog, AuditRecord
from monitoring.remediation.config import RemediationConfig
from monitoring.remediation.errors import BadPayloadError, KubeApiError, RegistryError
from monitoring.remediation.guards import RateLimiter
from monitoring.remediation.kube import KubeCluster
from monitoring.remediation.metrics import RemediationMetrics
from monitoring.remediation.payload import Alert, Notification, parse_time

__all__ = ["Decision", "Remediator"]

log = logging.getLogger(__name__)

#: Cluster-wide actions and what they act on (decided once per notification).
_SCOPES = {
    "extender_fallback": "extender",
    "rollout_lower": "extender",
    "retrain": "retrain",
    "model_rollback": "model",
}


@dataclass(frozen=True)
class Decision:
    """One alert's decision, as the webhook answers it."""

    alert: str
    key: str
    action: str
    target: str
    result: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return dict(self.__dict__)


class Remediator:
    """Maps alerts to safe actions (see the module docstring).

    Args:
        config: the settings.
        cluster: the Kubernetes API (None: cluster actions are refused).
        prometheus: confirms alerts are still firing (None: not checked).
        metrics: the service's metrics.
        clock: the time (wall clock; a replay passes its own).
    """

    def __init__(
        self,
        config: RemediationConfig,
        *,
        cluster: KubeCluster | None = None,
        prometheus: PrometheusClient | None = None,
        metrics: RemediationMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.cluster = cluster
        self.prometheus = prometheus
        self.metrics = metrics or RemediationMetrics()
        self.clock = clock
        self.audit = AuditLog(config.audit_log)
        self.limiter = RateLimiter(config.rate_limit_actions, config.rate_limit_window_s, clock)
        self.drain = CordonDrain(cluster, config, self.metrics, clock)
        self.extender = ExtenderSettings(cluster, config, clock)
        self.rollback = ModelRollback(config, clock)
        self.retrain = Retrain(config, clock)
        self._handled: set[str] = set()
        self._batch: dict[str, tuple[str, Outcome]] = {}
        self._lock = threading.Lock()
        self.metrics.dry_run.set(1 if config.dry_run else 0)

    def load(self) -> None:
        """Read back which deliveries were handled, and when retraining last started,
        from the audit log (so a restart neither repeats an action nor retrains early)."""
        for rec in self.audit.records():
            if rec.get("result") in FINAL_RESULTS:
                self._handled.add(rec["key"])
            if rec.get("action") == "retrain" and rec.get("result") == "done":
                self.retrain.last_start = float(rec.get("time", 0.0))

    # ------------------------------------------------------------------ entry point
    def handle(self, notification: Notification) -> list[Decision]:
        """Decide (and act, unless dry-run) for every alert of a notification.

        Raises:
            PrometheusError, KubeApiError, RegistryError: a dependency failed
                for one alert; its decision is audited as ``error`` and the alerts after
                it are left for the next delivery.
        """
        decisions = []
        with self._lock:
            self._batch: dict[str, tuple[str, Outcome]] = {}
            for alert in notification.alerts:
                self.metrics.alerts.labels(alert.name, alert.status).inc()
                decisions.append(self._one(alert))
        return decisions

    def _one(self, alert: Alert) -> Decision:
        if alert.key in self._handled:
            self.metrics.duplicates.inc()
            outcome = Outcome(
                "none", "", "duplicate", "already handled (same fingerprint and start)"
            )
            return self._record(alert, outcome)
        try:
            outcome = self._decide(alert)
        except (PrometheusError, KubeApiError, RegistryError) as exc:
            name = type(exc).__name__.removesuffix("Error")
            self.metrics.errors.labels(name).inc()
            rule = ALERT_BY_NAME.get(alert.name)
            action = rule.action if rule else "none"
            self._record(alert, Outcome(action, "", "error", f"{name}: {exc}"))
            raise
        return self._record(alert, outcome)

    def _record(self, alert: Alert, outcome: Outcome) -> Decision:
        self.audit.append(
            AuditRecord(
                time=self.clock(),
                alert=alert.name,
                status=alert.status,
                key=alert.key,
                action=outcome.action,
                target=outcome.target,
                reason=outcome.reason,
                dry_run=self.config.dry_run,
                result=outcome.result,
                labels=alert.labels,
                details=outcome.details,
            )
        )
        if outcome.result in FINAL_RESULTS:
            self._handled.add(alert.key)
        if outcome.result != "duplicate":
            self.metrics.actions.labels(outcome.action, outcome.result).inc()
        log.info(
            "alert=%s labels=%s action=%s target=%s result=%s: %s",
            alert.name,
            alert.labels,
            outcome.action,
            outcome.target,
            outcome.result,
            outcome.reason,
        )
        return Decision(
            alert.name, alert.key, outcome.action, outcome.target, outcome.result, outcome.reason
        )

    # ------------------------------------------------------------------ deciding
    def _decide(self, alert: Alert) -> Outcome:
        rule = ALERT_BY_NAME.get(alert.name)
        if alert.status == "resolved":
            action = rule.action if rule else "none"
            return Outcome(
                action, "", "resolved", "the alert resolved; nothing to undo automatically"
            )
        if rule is None:
            return Outcome("none", "", "ignored", f"{alert.name} is not a HYDATIS alert")
        if rule.action == "notify":
            return Outcome("notify", "", "noop", "no automatic action: see the runbook")
        missing = self._missing_label(rule.action, alert)
        if missing:
            return Outcome(rule.action, "", "refused", f"the alert has no '{missing}' label")
        if self.prometheus is not None and not self._still_firing(alert):
            return Outcome(rule.action, "", "stale", "no longer firing in Prometheus")
        if not self.limiter.allow():
            wait = self.limiter.retry_after_s()
            return Outcome(
                rule.action,
                "",
                "rate_limited",
                f"{self.config.rate_limit_actions} actions in the last "
                f"{self.config.rate_limit_window_s:.0f} s; next in {wait:.0f} s",
            )
        outcome = self._act(rule.action, alert)
        if outcome.changed:
            self.limiter.take()
        return outcome

    def _still_firing(self, alert: Alert) -> bool:
        """Whether Prometheus still has the alert firing (its ``ALERTS`` series)."""
        matchers = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(alert.labels.items()))
        data = self.prometheus.query(f'ALERTS{{{matchers},alertstate="firing"}}')
        return bool(data.get("result"))

    def _drift_monitor_retrained(self) -> str:
        """Why not to start retraining because the drift monitor (which starts it on
        its own decision) already did within the minimum interval; empty otherwise.
        Without Prometheus this cannot be known, and the interval guard alone applies."""
        if self.prometheus is None:
            return ""
        window = max(int(self.config.retrain_min_interval_s), 60)
        data = self.prometheus.query(
            f'sum(increase(hydatis_drift_retraining_triggers_total{{result="started"}}[{window}s]))'
        )
        for item in data.get("result") or []:
            value = float(item.get("value", [0, "0"])[1])
            if value > 0:
                return f"the drift monitor started retraining within the last {window} s"
        return ""

    @staticmethod
    def _missing_label(action: str, alert: Alert) -> str | None:
        need = {"cordon_drain": "node", "model_rollback": "model"}.get(action)
        return need if need and not alert.labels.get(need) else None

    def _act(self, action: str, alert: Alert) -> Outcome:
        # Cluster-wide actions are decided once per notification: a group of many
        # alerts (e.g. one per stuck pod) gets one decision, the rest point to it.
        scope = _SCOPES.get(action)
        if scope == "model":
            scope = f"model:{alert.labels['model']}"
        if scope is not None and scope in self._batch:
            first, earlier = self._batch[scope]
            return Outcome(
                action,
                earlier.target,
                "noop",
                f"decided with {first} earlier in this notification ({earlier.result})",
            )
        outcome = self._act_now(action, alert)
        if scope is not None:
            self._batch[scope] = (f"{alert.name} {alert.fingerprint}", outcome)
        return outcome

    def _act_now(self, action: str, alert: Alert) -> Outcome:
        dry = self.config.dry_run
        why = f"{alert.name} {alert.labels.get('node') or alert.labels.get('model') or ''}".strip()
        if action == "cordon_drain":
            return self.drain.run(alert.labels["node"], why, dry_run=dry)
        if action == "model_rollback":
            return self.rollback.run(alert.labels["model"], why, dry_run=dry)
        if action == "retrain":
            kind = alert.labels.get("kind", "")
            started = self._drift_monitor_retrained()
            if started:
                return Outcome("retrain", "", "noop", started)
            return self.retrain.run(f"{alert.name} {kind}".strip(), dry_run=dry)
        if action == "extender_fallback" and alert.name == "HydatisPodPendingTooLong":
            blocked = self._extender_blocks_pending()
            if isinstance(blocked, Outcome):
                return blocked
        return self.extender.change(action, dry_run=dry)

    def _extender_blocks_pending(self) -> Outcome | None:
        """None when the extender keeps pending pods off nodes they fit (act), else the
        outcome explaining why not."""
        if self.cluster is None:
            return Outcome("extender_fallback", "", "refused", "no Kubernetes API configured")
        now = self.clock()
        blocked, late = [], 0
        for pod in self.cluster.pending_pods():
            created = _created(pod)
            if created is None or now - created <= PENDING_BOUND_S:
                continue
            late += 1
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                    n_blocked, _ = extender_blocked_nodes(str(cond.get("message") or ""))
                    if n_blocked:
                        meta = pod.get("metadata") or {}
                        blocked.append(f"{meta.get('namespace')}/{meta.get('name')}")
        if not blocked:
            return Outcome(
                "extender_fallback",
                "",
                "noop",
                f"{late} pod(s) pending past {PENDING_BOUND_S} s; kube-scheduler reports no "
                "node they fit that the extender filtered: capacity, not the extender "
                "(see the runbook)",
                {"pending_too_long": late},
            )
        log.info("extender keeps %d of %d late pending pods off fitting nodes", len(blocked), late)
        return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _created(pod: dict[str, Any]) -> float | None:
    text = (pod.get("metadata") or {}).get("creationTimestamp")
    if not text:
        return None
    try:
        return parse_time(text, "creationTimestamp")
    except BadPayloadError:
        return None
