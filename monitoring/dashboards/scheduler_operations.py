"""Scheduler operations: is the cluster healthy, are pods scheduled, is the extender well.

For whoever is on call: node load and hot spots, pending and evicted pods, kube-scheduler's
attempts and latency per profile, and the extender's decisions, latency, fallbacks and
node-state freshness. Cluster panels read the raw names (node_exporter,
kube-state-metrics, kube-scheduler), so they work on a cluster and on a replay alike.
"""

from __future__ import annotations

from monitoring.dashboards._panels import Dash, Panel, Row, Target

__all__ = ["NODE_CPU", "dashboard", "zero_if_none"]

#: Each node's CPU and memory utilisation (0..1): the recording rules' series
#: (monitoring/alerts/rules, from node_exporter's idle CPU seconds and memory fields).
NODE_CPU = "hydatis:node_cpu_utilisation:ratio_rate5m"
NODE_MEM = "hydatis:node_memory_utilisation:ratio"
HOT = "0.85"
_EXT = "hydatis_extender"


def zero_if_none(expr: str, base: str) -> str:
    """``expr``, or 0 while ``base`` has data and ``expr`` has none (a counter with labels
    appears only once incremented: no fallbacks yet is 0, not "no data")."""
    return f"(({expr}) or on() (0 * ({base})))"


_DECISIONS = f"sum(rate({_EXT}_decisions_total[$__rate_interval]))"

CLUSTER = Row(
    "Cluster",
    (
        Panel(
            "Node CPU utilisation: mean and p95 across nodes",
            (
                Target(f"avg({NODE_CPU})", "mean"),
                Target(f"quantile(0.95, {NODE_CPU})", "p95"),
                Target(f"max({NODE_CPU})", "max"),
            ),
            "cluster",
            unit="percentunit",
            description="5-minute rate of node_exporter's idle CPU seconds (recording rule "
            "hydatis:node_cpu_utilisation:ratio_rate5m). Hot means above 0.85; the scheduler "
            "aims to keep nodes near 0.65.",
        ),
        Panel(
            "Hot nodes (CPU > 0.85)",
            (Target(f"sum({NODE_CPU} > bool {HOT})", "hot nodes"),),
            "cluster",
            description="Nodes whose CPU utilisation is above the hot threshold.",
        ),
        Panel(
            "Node memory utilisation: mean and max",
            (Target(f"avg({NODE_MEM})", "mean"), Target(f"max({NODE_MEM})", "max")),
            "cluster",
            unit="percentunit",
        ),
        Panel(
            "Requested share of allocatable",
            (
                Target(
                    'sum(kube_pod_container_resource_requests{resource="cpu"}) / '
                    'sum(kube_node_status_allocatable{resource="cpu"})',
                    "CPU",
                ),
                Target(
                    'sum(kube_pod_container_resource_requests{resource="memory"}) / '
                    'sum(kube_node_status_allocatable{resource="memory"})',
                    "memory",
                ),
            ),
            "cluster",
            unit="percentunit",
            description="What pods request against what nodes offer (kube-state-metrics): "
            "the room the scheduler has to place the next pod.",
        ),
        Panel(
            "Busiest nodes now",
            (Target(f"topk(10, {NODE_CPU})", "{{node}}"),),
            "cluster",
            kind="bargauge",
            unit="percentunit",
            width=24,
        ),
    ),
)

SCHEDULING = Row(
    "Scheduling",
    (
        Panel(
            "Pending pods",
            (
                Target("hydatis:pods_pending:count", "pending (kube-state-metrics)"),
                Target("hydatis:pods_pending_too_long:count", "pending > 10 min"),
                Target("sum(scheduler_pending_pods)", "scheduler queues"),
            ),
            "cluster",
        ),
        Panel(
            "Scheduling attempts by profile and result",
            (
                Target(
                    "sum by (profile, result) "
                    "(rate(scheduler_schedule_attempts_total[$__rate_interval]))",
                    "{{profile}} {{result}}",
                ),
            ),
            "cluster",
            unit="ops",
        ),
        Panel(
            "Scheduling attempt latency (p50, p99) by profile",
            (
                Target(
                    "histogram_quantile(0.5, sum by (le, profile) "
                    "(rate(scheduler_scheduling_attempt_duration_seconds_bucket"
                    "[$__rate_interval])))",
                    "p50 {{profile}}",
                ),
                Target(
                    "histogram_quantile(0.99, sum by (le, profile) "
                    "(rate(scheduler_scheduling_attempt_duration_seconds_bucket"
                    "[$__rate_interval])))",
                    "p99 {{profile}}",
                ),
            ),
            "cluster",
            unit="s",
        ),
        Panel(
            "Evicted pods (still listed)",
            (Target('count(kube_pod_status_reason{reason="Evicted"} == 1)', "evicted"),),
            "cluster",
            description="Pods whose status reason is Evicted (memory pressure) while their "
            "objects remain.",
        ),
    ),
)

EXTENDER = Row(
    "Extender",
    (
        Panel(
            "Extender up",
            (Target('up{job="hydatis-shim"}', "{{instance}}"),),
            "services",
            kind="stat",
            width=6,
            height=5,
        ),
        Panel(
            "Node-state age",
            (Target(f"max({_EXT}_node_state_age_seconds)", "age"),),
            "services",
            kind="stat",
            unit="s",
            width=6,
            height=5,
            description="Time since the node state last refreshed; past the stale limit the "
            "extender answers neutrally.",
        ),
        Panel(
            "Nodes in the node state",
            (Target(f"max({_EXT}_node_state_nodes)", "nodes"),),
            "services",
            kind="stat",
            width=6,
            height=5,
        ),
        Panel(
            "Fallback share",
            (
                Target(
                    zero_if_none(f"sum(rate({_EXT}_fallbacks_total[$__rate_interval]))", _DECISIONS)
                    + f" / {_DECISIONS}",
                    "fallbacks / decisions",
                ),
            ),
            "services",
            kind="stat",
            unit="percentunit",
            width=6,
            height=5,
            description="Answers made neutral (stale state, a model not answering, errors) "
            "per decision.",
        ),
        Panel(
            "Pods decided by path",
            (
                Target(
                    f'sum by (path) (rate({_EXT}_decisions_total{{verb="prioritize"}}'
                    "[$__rate_interval]))",
                    "{{path}}",
                ),
            ),
            "services",
            unit="ops",
        ),
        Panel(
            "Extender latency (p50, p99) by verb",
            (
                Target(
                    "histogram_quantile(0.5, sum by (le, verb) "
                    f"(rate({_EXT}_decision_seconds_bucket[$__rate_interval])))",
                    "p50 {{verb}}",
                ),
                Target(
                    "histogram_quantile(0.99, sum by (le, verb) "
                    f"(rate({_EXT}_decision_seconds_bucket[$__rate_interval])))",
                    "p99 {{verb}}",
                ),
            ),
            "services",
            unit="s",
        ),
        Panel(
            "Extender requests by verb and code",
            (
                Target(
                    f"sum by (verb, code) (rate({_EXT}_requests_total[$__rate_interval]))",
                    "{{verb}} {{code}}",
                ),
            ),
            "services",
            unit="reqps",
        ),
        Panel(
            "Fallbacks by reason",
            (
                Target(
                    zero_if_none(
                        f"sum by (reason) (rate({_EXT}_fallbacks_total[$__rate_interval]))",
                        _DECISIONS,
                    ),
                    "{{reason}}",
                ),
            ),
            "services",
            unit="ops",
        ),
        Panel(
            "Node-state cache hit ratio",
            (
                Target(
                    f'sum(rate({_EXT}_cache_lookups_total{{result="hit"}}[$__rate_interval]))'
                    f" / sum(rate({_EXT}_cache_lookups_total[$__rate_interval]))",
                    "hit ratio",
                ),
            ),
            "services",
            unit="percentunit",
        ),
        Panel(
            "Node-state refreshes by result",
            (
                Target(
                    f"sum by (result) (rate({_EXT}_refreshes_total[$__rate_interval]))",
                    "{{result}}",
                ),
            ),
            "services",
            unit="ops",
        ),
    ),
)


REMEDIATION = Row(
    "Automated remediation",
    (
        Panel(
            "Remediation decisions by action and result",
            (
                Target(
                    "sum by (action, result) "
                    "(increase(hydatis_remediation_actions_total[$__rate_interval]))",
                    "{{action}} {{result}}",
                ),
            ),
            "services",
            description="What the Alertmanager webhook decided for each alert (dry_run "
            "while it only audits).",
        ),
        Panel(
            "Evictions requested by remediation",
            (
                Target(
                    "sum by (result) "
                    "(increase(hydatis_remediation_evictions_total[$__rate_interval]))",
                    "{{result}}",
                ),
            ),
            "services",
        ),
    ),
)


def dashboard() -> Dash:
    """The scheduler operations dashboard."""
    return Dash(
        uid="hydatis-scheduler-ops",
        title="HYDATIS / Scheduler operations",
        description="Cluster load, pending and evicted pods, kube-scheduler and the "
        "HYDATIS extender.",
        rows=(CLUSTER, SCHEDULING, EXTENDER, REMEDIATION),
        tags=("hydatis", "scheduler", "operations"),
        time_from="now-6h",
    )
