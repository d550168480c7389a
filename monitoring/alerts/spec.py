"""The Prometheus recording and alerting rules, defined once.

Why Python and not hand-written YAML: the same thresholds are read by the rule file a
cluster loads (``monitoring/alerts/rules/hydatis-rules.yaml`` and its ConfigMap in
``infra/prometheus/``, rendered from here and checked against this module by a test), by
the integration test (which renders the rules with a short ``for:``), by the remediation
service (which maps each alert to an action) and by the remediation benchmark (which
evaluates the same conditions on a replay). One definition, no copies that drift apart.

Raw series keep the names a cluster gives them (node_exporter, kube-state-metrics, the
services' own ``hydatis_*`` metrics); recording rules derive ``hydatis:``-prefixed series
from them (``level:metric:operations``, as the Prometheus naming guide recommends), and
every alert reads those.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ACTIONS",
    "ALERTS",
    "ALERT_BY_NAME",
    "CONSUMED_METRICS",
    "DRIFT_FOR",
    "EXTENDER_FALLBACK_SHARE",
    "EXTENDER_JOB",
    "HOT_NODE_CPU",
    "HOT_NODE_FOR",
    "MODEL_ERROR_SHARE",
    "MODEL_LATENCY_BUDGET_S",
    "MODEL_SERVER_JOB",
    "NODE_ANOMALOUS_FOR",
    "PENDING_BOUND_S",
    "PENDING_FOR",
    "RECORDING_RULES",
    "AlertRule",
    "RecordingRule",
    "duration_s",
    "runbook_path",
]

# ---------------------------------------------------------------- thresholds (defaults)
#: Node CPU utilisation (5-minute rate) that makes a node hot, and for how long.
HOT_NODE_CPU = 0.75
HOT_NODE_FOR = "30m"
#: A pod Pending longer than this (since its creation) is pending too long; its alert
#: fires once that has lasted ``PENDING_FOR``. kube-scheduler retries an unschedulable
#: pod at least every 5 minutes, so two retries have failed by then. One alert per pod:
#: a pod that gets stuck while others already are still makes a new notification.
PENDING_BOUND_S = 600
PENDING_FOR = "5m"
#: Share of the extender's answers (or parts of answers) made neutral.
EXTENDER_FALLBACK_SHARE = 0.2
EXTENDER_FALLBACK_FOR = "10m"
EXTENDER_DOWN_FOR = "2m"
#: The Prometheus jobs that scrape the extender and the model servers.
EXTENDER_JOB = "hydatis-shim"
MODEL_SERVER_JOB = "hydatis-model-servers"
#: Share of the extender's calls to a model server that fail or time out.
MODEL_ERROR_SHARE = 0.5
MODEL_DOWN_FOR = "5m"
#: p99 latency budgets of the extender's model calls: 80 % of the extender's own
#: timeouts (``agent_timeout_s`` 0.05 s per pod, ``model_timeout_s`` 1.0 s per refresh),
#: so the alert fires before calls start timing out into neutral answers.
MODEL_LATENCY_BUDGET_S = {"hydatis-placement-agent": 0.04, "other": 0.8}
MODEL_LATENCY_FOR = "10m"
ACCURACY_FOR = "30m"
#: A drift decision already persisted for K windows before it is exported as 1
#: (``hydatis_drift_detected``, monitoring/drift/metrics.py).
DRIFT_FOR = "1m"
NODE_ANOMALOUS_FOR = "10m"


def duration_s(text: str) -> float:
    """A Prometheus duration (``90s``, ``5m``, ``1h30m``, ``2d``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total, number, i = 0.0, "", 0
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        if unit not in units or not number:
            raise ValueError(f"not a Prometheus duration: {text!r}")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise ValueError(f"not a Prometheus duration (no unit after {number!r}): {text!r}")
    return total


@dataclass(frozen=True)
class RecordingRule:
    """A ``record:`` rule: a derived series under a ``hydatis:`` name."""

    record: str
    expr: str
    help: str


@dataclass(frozen=True)
class AlertRule:
    """An ``alert:`` rule and what the remediation service does when it fires.

    Attributes:
        name: the alert's name (``alertname`` label), CamelCase as Prometheus names them.
        expr: PromQL; a series in its result is a firing candidate.
        for_: how long the expression must hold before the alert fires.
        severity: ``warning`` or ``critical`` (routing).
        summary, description: the annotations (Go templates over ``$labels``/``$value``).
        action: the remediation action kind (see :data:`ACTIONS`).
        labels: extra static labels (e.g. which model the alert is about).
    """

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    action: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """``HydatisNodeCPUHot`` → ``hydatis-node-cpu-hot`` (the runbook's file name)."""
        out, prev_lower = [], False
        for i, ch in enumerate(self.name):
            nxt_lower = i + 1 < len(self.name) and self.name[i + 1].islower()
            if ch.isupper() and i and (prev_lower or nxt_lower):
                out.append("-")
            out.append(ch.lower())
            prev_lower = ch.islower() or ch.isdigit()
        return "".join(out)


def runbook_path(alert: AlertRule) -> str:
    """The repository path of the alert's runbook page."""
    return f"docs/runbooks/{alert.slug}.md"


#: What each action kind does (the remediation service implements each).
ACTIONS: dict[str, str] = {
    "cordon_drain": "cordon the node and evict its evictable pods (Eviction API, PDBs "
    "honoured), within the blast-radius cap",
    "extender_fallback": "switch the extender to shadow mode (neutral answers: kube-"
    "scheduler's own plugins decide), when the extender is what keeps pods pending",
    "rollout_lower": "halve the extender's rollout percentage",
    "model_rollback": "move the model's champion alias back to the previous champion",
    "retrain": "start the retraining pipeline",
    "notify": "no automatic action; the runbook says what a person checks",
}

_CPU = 'node_cpu_seconds_total{mode="idle"}'

RECORDING_RULES: tuple[RecordingRule, ...] = (
    RecordingRule(
        "hydatis:node_cpu_utilisation:ratio_rate5m",
        f"1 - avg by (node) (rate({_CPU}[5m]))",
        "Share of each node's CPU time not idle over 5 minutes (node_exporter).",
    ),
    RecordingRule(
        "hydatis:node_memory_utilisation:ratio",
        "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
        "Share of each node's memory in use (node_exporter).",
    ),
    RecordingRule(
        "hydatis:pods_pending:count",
        'sum(kube_pod_status_phase{phase="Pending"}) or vector(0)',
        "Pods in phase Pending (kube-state-metrics).",
    ),
    RecordingRule(
        "hydatis:pods_pending_too_long:count",
        f"count((time() - kube_pod_created) > {PENDING_BOUND_S}"
        ' and on (namespace, pod) (kube_pod_status_phase{phase="Pending"} == 1))'
        " or vector(0)",
        f"Pods Pending for more than {PENDING_BOUND_S} s since their creation.",
    ),
    RecordingRule(
        "hydatis:extender_fallback:ratio_rate5m",
        "clamp_max(sum(rate(hydatis_extender_fallbacks_total[5m]))"
        ' / sum(rate(hydatis_extender_requests_total{verb=~"filter|prioritize"}[5m])), 1)',
        "Fallbacks (neutral answers or parts of answers) per extender request.",
    ),
    RecordingRule(
        "hydatis:extender_model_call_errors:ratio_rate5m",
        "sum by (model) (rate(hydatis_extender_model_call_errors_total[5m]))"
        " / sum by (model) (rate(hydatis_extender_model_call_seconds_count[5m]))",
        "Share of the extender's calls to each model server that failed or timed out.",
    ),
    RecordingRule(
        "hydatis:extender_model_call_seconds:p99_rate5m",
        "histogram_quantile(0.99, sum by (model, le)"
        " (rate(hydatis_extender_model_call_seconds_bucket[5m])))",
        "p99 latency of the extender's calls to each model server.",
    ),
)

_AGENT = "hydatis-placement-agent"
_P99 = "hydatis:extender_model_call_seconds:p99_rate5m"

ALERTS: tuple[AlertRule, ...] = (
    AlertRule(
        name="HydatisNodeCPUHot",
        expr=f"hydatis:node_cpu_utilisation:ratio_rate5m > {HOT_NODE_CPU}",
        for_=HOT_NODE_FOR,
        severity="warning",
        summary=f"Node {{{{ $labels.node }}}} CPU above {HOT_NODE_CPU * 100:.0f} % for "
        f"{HOT_NODE_FOR}",
        description="Node {{ $labels.node }} has used {{ $value | humanizePercentage }} "
        f"of its CPU (5-minute rate) for more than {HOT_NODE_FOR}.",
        action="cordon_drain",
    ),
    AlertRule(
        name="HydatisPodPendingTooLong",
        expr=f"((time() - kube_pod_created) > {PENDING_BOUND_S})"
        ' and on (namespace, pod) (kube_pod_status_phase{phase="Pending"} == 1)',
        for_=PENDING_FOR,
        severity="warning",
        summary="Pod {{ $labels.namespace }}/{{ $labels.pod }} Pending for "
        "{{ $value | humanizeDuration }}",
        description="Pod {{ $labels.namespace }}/{{ $labels.pod }} has been Pending for "
        f"more than {PENDING_BOUND_S} s since creation. The remediation service switches "
        "the extender to shadow mode only when the extender is what keeps pending pods "
        "off nodes they fit.",
        action="extender_fallback",
    ),
    AlertRule(
        name="HydatisExtenderDown",
        expr=f'up{{job="{EXTENDER_JOB}"}} == 0',
        for_=EXTENDER_DOWN_FOR,
        severity="critical",
        summary="Extender {{ $labels.instance }} is down",
        description="Prometheus cannot scrape the extender {{ $labels.instance }}. "
        "kube-scheduler ignores an ignorable extender that does not answer, so pods are "
        "still placed, by the default plugins alone.",
        action="notify",
    ),
    AlertRule(
        name="HydatisExtenderFallbackHigh",
        expr=f"hydatis:extender_fallback:ratio_rate5m > {EXTENDER_FALLBACK_SHARE}",
        for_=EXTENDER_FALLBACK_FOR,
        severity="warning",
        summary="Extender falls back on {{ $value | humanizePercentage }} of requests",
        description=f"More than {EXTENDER_FALLBACK_SHARE * 100:.0f} % of the extender's "
        "answers (or parts of them) were neutral fallbacks over 5 "
        "minutes: stale node state, model servers failing or late.",
        action="rollout_lower",
    ),
    AlertRule(
        name="HydatisModelServerDown",
        expr=f'(up{{job="{MODEL_SERVER_JOB}"}} == 0)'
        f" or (hydatis:extender_model_call_errors:ratio_rate5m > {MODEL_ERROR_SHARE})",
        for_=MODEL_DOWN_FOR,
        severity="critical",
        summary="Model server {{ $labels.model }}{{ $labels.instance }} is down or failing",
        description="A model server does not answer Prometheus, or more than "
        f"{MODEL_ERROR_SHARE * 100:.0f} % of the extender's calls to it fail.",
        action="extender_fallback",
    ),
    AlertRule(
        name="HydatisModelLatencyHigh",
        expr=f'({_P99}{{model="{_AGENT}"}} > {MODEL_LATENCY_BUDGET_S[_AGENT]})'
        f' or ({_P99}{{model!="{_AGENT}"}} > {MODEL_LATENCY_BUDGET_S["other"]})',
        for_=MODEL_LATENCY_FOR,
        severity="warning",
        summary="Model {{ $labels.model }} p99 latency {{ $value | humanizeDuration }} "
        "is past its budget",
        description="The extender's calls to {{ $labels.model }} take longer than their "
        f"budget at p99 ({MODEL_LATENCY_BUDGET_S[_AGENT]} s for the agent, "
        f"{MODEL_LATENCY_BUDGET_S['other']} s for the batched models).",
        action="rollout_lower",
    ),
    AlertRule(
        name="HydatisLoadPredictorAccuracyLow",
        expr="hydatis_load_predictor_live_accuracy"
        " < on (resource) group_left hydatis_load_predictor_accuracy_gate",
        for_=ACCURACY_FOR,
        severity="warning",
        summary="Load predictor {{ $labels.resource }} accuracy "
        "{{ $value | humanizePercentage }} is below its gate",
        description="The load predictor's live accuracy (1 - WAPE against the load "
        "observed once the horizon passed) is below the registry gate's target.",
        action="model_rollback",
        labels={"model": "hydatis-load-predictor"},
    ),
    AlertRule(
        name="HydatisDriftDetected",
        expr="hydatis_drift_detected == 1",
        for_=DRIFT_FOR,
        severity="warning",
        summary="{{ $labels.kind }} drift decided",
        description="The drift monitor decided {{ $labels.kind }} drift (persisting for "
        "its K windows). Retraining starts once (by the drift monitor or, if it has not, "
        "by remediation); a new model reaches serving only through the registry's gate.",
        action="retrain",
    ),
    AlertRule(
        name="HydatisNodeAnomalous",
        expr="hydatis_extender_node_anomalous == 1",
        for_=NODE_ANOMALOUS_FOR,
        severity="warning",
        summary="Node {{ $labels.node }} flagged anomalous",
        description="The anomaly detector has flagged node {{ $labels.node }} for more "
        f"than {NODE_ANOMALOUS_FOR}.",
        action="cordon_drain",
    ),
)

ALERT_BY_NAME: dict[str, AlertRule] = {a.name: a for a in ALERTS}

#: The raw series the rules read, and who exports each (for the dashboards and docs).
CONSUMED_METRICS: dict[str, str] = {
    "node_cpu_seconds_total": "node_exporter (the simulator's OpenMetrics export)",
    "node_memory_MemAvailable_bytes": "node_exporter (the simulator's OpenMetrics export)",
    "node_memory_MemTotal_bytes": "node_exporter (the simulator's OpenMetrics export)",
    "kube_pod_status_phase": "kube-state-metrics",
    "kube_pod_created": "kube-state-metrics",
    "up": "Prometheus (jobs hydatis-shim, hydatis-model-servers)",
    "hydatis_extender_requests_total": "the extender (scheduler_shim/metrics.py)",
    "hydatis_extender_fallbacks_total": "the extender (scheduler_shim/metrics.py)",
    "hydatis_extender_model_call_seconds": "the extender (scheduler_shim/metrics.py)",
    "hydatis_extender_model_call_errors_total": "the extender (scheduler_shim/metrics.py)",
    "hydatis_extender_node_anomalous": "the extender (scheduler_shim/metrics.py): 1 per node "
    "flagged by the anomaly model at the latest refresh, 0 per node it scored normal",
    "hydatis_load_predictor_live_accuracy": "the extender (scheduler_shim/live.py): 1 - WAPE "
    "of the load predictor's forecasts against the load one horizon later, by resource",
    "hydatis_load_predictor_accuracy_gate": "the extender (scheduler_shim/config.py): the "
    "registry gate's target, by resource",
    "hydatis_drift_detected": "the drift monitor (monitoring/drift/metrics.py): 1 while a "
    "kind is in drift (K drifted windows in a row)",
    "hydatis_drift_retraining_triggers_total": "the drift monitor: retraining it started",
}
