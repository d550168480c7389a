"""Business: what the ML scheduler is worth, with numbers that can be defended.

The top rows show ``hydatis report business``'s figures (two schedulers replayed on the same
workload; savings and ROI from the measured differences and the explicit cost inputs, with
the break-even values); the rows below follow the replay over time per scheduler
(``hydatis_sim_`` series of ``hydatis simulate --metrics-out``), so a manager sees where the
headline comes from.
"""

from __future__ import annotations

from monitoring.dashboards._panels import Dash, Panel, Row, Target

__all__ = ["dashboard"]

_S = 'scheduler=~"$scheduler"'
_CPU = "hydatis_sim_node_cpu_utilization_ratio"

HEADLINE = Row(
    "Business report (measured on a replay)",
    (
        Panel(
            "Net savings per year",
            (
                Target(
                    'hydatis_business_savings_per_year{item="net"}', "{{candidate}} vs {{baseline}}"
                ),
            ),
            "business",
            kind="stat",
            unit="short",
            width=6,
            height=5,
            description="Node savings + unavailability savings − the platform's own cost, per "
            "year, in the currency of the cost model (label currency).",
        ),
        Panel(
            "ROI over the period",
            (Target("hydatis_business_roi_ratio", "{{candidate}} vs {{baseline}}"),),
            "business",
            kind="stat",
            unit="percentunit",
            width=6,
            height=5,
            description="Net savings over the period / (platform cost over the period + "
            "one-off cost).",
        ),
        Panel(
            "Nodes saved at the target p95",
            (Target("hydatis_business_nodes_saved", "{{candidate}} vs {{baseline}}"),),
            "business",
            kind="stat",
            width=6,
            height=5,
        ),
        Panel(
            "Unavailable time avoided per year",
            (
                Target(
                    "hydatis_business_unavailable_seconds_saved_per_year",
                    "{{candidate}} vs {{baseline}}",
                ),
            ),
            "business",
            kind="stat",
            unit="s",
            width=6,
            height=5,
        ),
        Panel(
            "Savings per year by item",
            (Target("hydatis_business_savings_per_year", "{{item}}"),),
            "business",
            kind="bargauge",
            unit="short",
            description="Platform cost is negative: it is what the savings pay for.",
        ),
        Panel(
            "Nodes needed to keep p95 node CPU at the target",
            (
                Target(f"hydatis_business_nodes_needed{{{_S}}}", "{{scheduler}}"),
                Target(f"hydatis_business_nodes{{{_S}}}", "simulated {{scheduler}}"),
            ),
            "business",
            kind="bargauge",
        ),
        Panel(
            "Availability by scheduler",
            (Target(f"hydatis_business_availability_ratio{{{_S}}}", "{{scheduler}}"),),
            "business",
            kind="bargauge",
            unit="percentunit",
            decimals=3,
        ),
        Panel(
            "Hot node-time and p95 node CPU by scheduler",
            (
                Target(f"hydatis_business_hot_node_time_ratio{{{_S}}}", "hot {{scheduler}}"),
                Target(f"hydatis_business_node_cpu_p95_ratio{{{_S}}}", "p95 {{scheduler}}"),
            ),
            "business",
            kind="bargauge",
            unit="percentunit",
        ),
        Panel(
            "Pending and evicted pods by scheduler",
            (
                Target(f"hydatis_business_pending_pods{{{_S}}}", "pending (mean) {{scheduler}}"),
                Target(f"hydatis_business_evicted_pods{{{_S}}}", "evicted {{scheduler}}"),
            ),
            "business",
            kind="bargauge",
        ),
        Panel(
            "Cost inputs and their break-even values",
            (
                Target("hydatis_business_cost_input", "{{input}}"),
                Target("hydatis_business_break_even", "break-even {{input}}"),
            ),
            "business",
            kind="table",
            description="The inputs the savings were computed with, and the value each would "
            "have to reach for the net savings to be 0 (the others unchanged).",
        ),
        Panel(
            "Sensitivity: net over the period with one input scaled",
            (Target("hydatis_business_sensitivity_net_savings", "{{input}} ×{{factor}}"),),
            "business",
            kind="table",
            width=24,
        ),
    ),
)

REPLAY = Row(
    "The replay over time, per scheduler",
    (
        Panel(
            "Share of hot nodes (CPU > 0.85)",
            (
                Target(
                    f"hydatis_sim_hot_nodes{{{_S}}} / hydatis_sim_nodes{{{_S}}}",
                    "{{scheduler}}",
                ),
            ),
            "replay",
            unit="percentunit",
        ),
        Panel(
            "p95 node CPU",
            (
                Target(
                    f"histogram_quantile(0.95, sum by (le, scheduler) "
                    f"(rate({_CPU}_bucket{{{_S}}}[$__rate_interval])))",
                    "{{scheduler}}",
                ),
            ),
            "replay",
            unit="percentunit",
            description="Interpolated within 0.05-wide buckets (0.65 and 0.85 are edges).",
        ),
        Panel(
            "Availability (share of alive pods not impacted)",
            (
                Target(
                    f"1 - sum by (scheduler) (hydatis_sim_pods_impacted{{{_S}}}) / "
                    f'sum by (scheduler) (hydatis_sim_pods{{state="alive",{_S}}})',
                    "{{scheduler}}",
                ),
            ),
            "replay",
            unit="percentunit",
            decimals=3,
        ),
        Panel(
            "Pending pods",
            (Target(f'hydatis_sim_pods{{state="pending",{_S}}}', "{{scheduler}}"),),
            "replay",
        ),
        Panel(
            "Over the time range: hot node-time and mean node CPU",
            (
                Target(
                    f'1 - sum by (scheduler) (increase({_CPU}_bucket{{le="0.85",{_S}}}'
                    f"[$__range])) / sum by (scheduler) (increase({_CPU}_count{{{_S}}}"
                    "[$__range]))",
                    "hot {{scheduler}}",
                ),
                Target(
                    f"sum by (scheduler) (increase({_CPU}_sum{{{_S}}}[$__range])) / "
                    f"sum by (scheduler) (increase({_CPU}_count{{{_S}}}[$__range]))",
                    "mean {{scheduler}}",
                ),
            ),
            "replay",
            kind="bargauge",
            unit="percentunit",
        ),
        Panel(
            "Over the time range: pods evicted for memory",
            (
                Target(
                    f"sum by (scheduler) (increase(hydatis_sim_evictions_total{{{_S}}}[$__range]))",
                    "{{scheduler}}",
                ),
            ),
            "replay",
            kind="bargauge",
        ),
    ),
)


def dashboard() -> Dash:
    """The business dashboard."""
    return Dash(
        uid="hydatis-business",
        title="HYDATIS / Business",
        description="Savings and ROI of the ML scheduler against the default, from measured "
        "replays and an explicit cost model.",
        rows=(HEADLINE, REPLAY),
        tags=("hydatis", "business"),
        time_from="now-24h",
        variables={"scheduler": ("Scheduler", "label_values(hydatis_sim_pods, scheduler)")},
    )
