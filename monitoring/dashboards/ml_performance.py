"""ML performance: are the three models up, fast, accurate and trusted with decisions.

Model servers (KServe's own ``request_predict_seconds``), the models as the extender calls
them (latency, errors, node-state refreshes), the load predictor's forecasts against the
load observed once the horizon has passed, the anomaly detector's flags, drift decisions,
and how much of the scheduling the models decide (rollout, shadow).
"""

from __future__ import annotations

from monitoring.dashboards._panels import Dash, Panel, Row, Target
from monitoring.dashboards.scheduler_operations import NODE_CPU, zero_if_none

__all__ = ["HORIZON", "dashboard"]

#: The load predictor's horizon: its forecast made this long ago is compared with the
#: load observed now (the models' default label horizon, ``hydatis features build``).
HORIZON = "5m"
_EXT = "hydatis_extender"
_RI = "[$__rate_interval]"
_CALLS = f"sum by (model) (rate({_EXT}_model_call_seconds_count{_RI}))"
_PREDICTED = f"avg by (node) ({_EXT}_node_predicted_cpu_ratio offset {HORIZON})"

SERVERS = Row(
    "Model servers",
    (
        Panel(
            "Model servers up",
            (Target('up{job="hydatis-model-servers"}', "{{instance}}"),),
            "services",
            kind="stat",
            width=8,
        ),
        Panel(
            "Predict latency (p50, p99) by model",
            (
                Target(
                    "histogram_quantile(0.5, sum by (le, model_name) "
                    f"(rate(request_predict_seconds_bucket{_RI})))",
                    "p50 {{model_name}}",
                ),
                Target(
                    "histogram_quantile(0.99, sum by (le, model_name) "
                    f"(rate(request_predict_seconds_bucket{_RI})))",
                    "p99 {{model_name}}",
                ),
            ),
            "services",
            unit="s",
            width=8,
            description="KServe's own histogram: time in the model's predict().",
        ),
        Panel(
            "Predict requests by model",
            (
                Target(
                    f"sum by (model_name) (rate(request_predict_seconds_count{_RI}))",
                    "{{model_name}}",
                ),
            ),
            "services",
            unit="reqps",
            width=8,
        ),
    ),
)

CALLS = Row(
    "The models as the extender calls them",
    (
        Panel(
            "Model call latency p99 (recording rule) and p50",
            (
                Target("hydatis:extender_model_call_seconds:p99_rate5m", "p99 {{model}}"),
                Target(
                    "histogram_quantile(0.5, sum by (le, model) "
                    f"(rate({_EXT}_model_call_seconds_bucket{_RI})))",
                    "p50 {{model}}",
                ),
            ),
            "services",
            unit="s",
            description="Round trip from the extender, batching and HTTP included; the "
            "agent's call is per pod and deadline-bound.",
        ),
        Panel(
            "Model call error share",
            (
                Target(
                    zero_if_none(
                        f"sum by (model) (rate({_EXT}_model_call_errors_total{_RI}))", _CALLS
                    )
                    + f" / {_CALLS}",
                    "{{model}}",
                ),
            ),
            "services",
            unit="percentunit",
        ),
        Panel(
            "Node-state refresh time p99",
            (
                Target(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate({_EXT}_refresh_seconds_bucket{_RI})))",
                    "p99",
                ),
            ),
            "services",
            unit="s",
            description="Features in, load and anomaly outputs for every node out.",
        ),
        Panel(
            "Decisions the models make (share by path)",
            (
                Target(
                    f"sum by (path) (rate({_EXT}_decisions_total{_RI})) / ignoring (path) "
                    f"group_left sum(rate({_EXT}_decisions_total{_RI}))",
                    "{{path}}",
                ),
            ),
            "services",
            unit="percentunit",
            description="active: the models decide; shadow: they decide and log, the answer "
            "is neutral; rollout_skip: outside the rollout share.",
        ),
    ),
)

LOAD = Row(
    "Load predictor: forecast against what happened",
    (
        Panel(
            f"Mean node CPU: forecast made {HORIZON} ago and observed",
            (
                Target(f"avg({_PREDICTED})", "forecast"),
                Target(f"avg({NODE_CPU})", "observed"),
            ),
            "services",
            unit="percentunit",
        ),
        Panel(
            "Live forecast error (mean absolute, CPU points)",
            (Target(f"avg(abs({_PREDICTED} - on (node) {NODE_CPU}))", "MAE"),),
            "services",
            unit="percentunit",
            description="Mean over nodes of |forecast − observed| once the horizon has "
            "passed: what the performance (concept) drift test watches.",
        ),
        Panel(
            "Live accuracy against its gate",
            (
                Target("hydatis_load_predictor_live_accuracy", "live {{resource}}"),
                Target("hydatis_load_predictor_accuracy_gate", "gate {{resource}}"),
            ),
            "services",
            unit="percentunit",
        ),
    ),
)

ANOMALY_DRIFT = Row(
    "Anomaly detector, drift and rollout",
    (
        Panel(
            "Nodes flagged anomalous",
            (Target(f"sum({_EXT}_node_anomalous)", "flagged"),),
            "services",
        ),
        Panel(
            "Nodes filtered out by reason",
            (
                Target(
                    zero_if_none(
                        f"sum by (reason) (rate({_EXT}_filtered_nodes_total{_RI}))",
                        f"sum(rate({_EXT}_decisions_total{_RI}))",
                    ),
                    "{{reason}}",
                ),
            ),
            "services",
            unit="ops",
            description="hot: predicted past 0.85 after the pod; anomalous: flagged by the "
            "anomaly detector.",
        ),
        Panel(
            "Drift score by kind (drifted above 1) and decisions",
            (
                Target("max by (kind) (hydatis_drift_kind_score)", "score {{kind}}"),
                Target("max by (kind) (hydatis_drift_detected)", "decided {{kind}}"),
            ),
            "services",
            description="From the drift check (hydatis drift check): each kind's score "
            "against its threshold calibrated on the reference, and 1 while the drift has "
            "persisted for K windows (which triggers retraining).",
        ),
        Panel(
            "Most drifted features (score / calibrated threshold)",
            (
                Target(
                    "topk(10, max by (kind, feature) (hydatis_drift_score / "
                    "hydatis_drift_threshold))",
                    "{{kind}} {{feature}}",
                ),
            ),
            "services",
            kind="bargauge",
        ),
        Panel(
            "Rollout: share of pods the models decide for",
            (Target(f"max({_EXT}_rollout_ratio)", "rollout"),),
            "services",
            unit="percentunit",
        ),
    ),
)


def dashboard() -> Dash:
    """The ML performance dashboard."""
    return Dash(
        uid="hydatis-ml-performance",
        title="HYDATIS / ML performance",
        description="Model servers, model calls from the extender, forecast accuracy, "
        "anomaly flags, drift and rollout.",
        rows=(SERVERS, CALLS, LOAD, ANOMALY_DRIFT),
        tags=("hydatis", "ml"),
        time_from="now-6h",
    )
