"""Feast definitions for the node features: the entity, the feature views, the services.

Definitions only: ``feast apply`` imports every ``.py`` file in this folder, so nothing
here may do work beyond building Feast objects. The schema comes from
:func:`hydatis.features.feature_names` (the one feature catalogue), so the views never
drift from the feature function: a feature added to the catalogue lands in a view here,
or importing this module fails and says which view to add it to.

Each view reads its own offline table, ``data/<view>.parquet`` (relative to this repo),
which :func:`components.materialize.write_offline_table` writes from the output of
:func:`hydatis.features.node_features`: ``node_id``, ``event_timestamp`` (UTC) and the
view's features (float64). ``node_30s_vector`` holds the whole vector packed in one list
per row, in catalogue order, for fast online reads of many nodes. (One file per view keeps
each point-in-time join to the columns it needs.)
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Float64

from hydatis.features import FEATURES, feature_names

#: The offline tables' folder (relative to the repo folder).
DATA_DIR = "data"
#: The packed column of :data:`node_30s_vector`.
VECTOR_FIELD = "feature_vector"
#: A feature row older than this (before the entity row's time) is not joined.
FEATURE_TTL = timedelta(hours=1)

_DESCRIPTIONS = {f.name: f.description for f in FEATURES}
_NAMES = feature_names()

# Which view describes which feature: explicit sets first, then the cpu_/mem_ prefixes.
_EXPLICIT = {
    "node_30s_capacity": ("cpu_capacity_cores", "mem_capacity_gib"),
    "node_30s_requests": (
        "cpu_requested_ratio",
        "mem_requested_ratio",
        "cpu_limit_ratio",
        "mem_limit_ratio",
        "pod_count",
    ),
    "node_30s_freshness": ("metric_age_s", "pods_bound_since_sample"),
    "node_30s_calendar": ("hour_sin", "hour_cos", "dow_sin", "dow_cos"),
}
_PREFIXES = {"node_30s_cpu": "cpu_", "node_30s_memory": "mem_"}


def _view_of(name: str) -> str:
    for view, names in _EXPLICIT.items():
        if name in names:
            return view
    for view, prefix in _PREFIXES.items():
        if name.startswith(prefix):
            return view
    raise ValueError(
        f"feature {name!r} (hydatis/features/specs.py) belongs to no feature view: add it "
        f"to a view in feature_repo/node_features.py"
    )


def _fields(view: str) -> list[Field]:
    return [
        Field(name=n, dtype=Float64, description=_DESCRIPTIONS[n])
        for n in _NAMES
        if _view_of(n) == view
    ]


node = Entity(
    name="node",
    join_keys=["node_id"],
    value_type=ValueType.STRING,
    description="A Kubernetes node (its name).",
)


def _source(view: str) -> FileSource:
    return FileSource(
        name=f"{view}_source",
        path=f"{DATA_DIR}/{view}.parquet",
        timestamp_field="event_timestamp",
        description=f"Offline rows of {view} (from hydatis.features.node_features).",
    )


def _feature_view(name: str, description: str) -> FeatureView:
    return FeatureView(
        name=name,
        entities=[node],
        ttl=FEATURE_TTL,
        schema=_fields(name),
        online=True,
        source=_source(name),
        description=description,
        tags={"grain": "30s"},
    )


node_30s_cpu = _feature_view(
    "node_30s_cpu", "CPU utilisation: latest sample, window statistics, EWMA, slopes, lags."
)
node_30s_memory = _feature_view(
    "node_30s_memory", "Memory utilisation: latest sample, window statistics, EWMA, slopes, lags."
)
node_30s_capacity = _feature_view("node_30s_capacity", "Node capacity (cores, GiB).")
node_30s_requests = _feature_view(
    "node_30s_requests", "What the pods on the node request and limit, and how many run there."
)
node_30s_freshness = _feature_view(
    "node_30s_freshness", "Metric lag: the sample's age and the placements it does not show yet."
)
node_30s_calendar = _feature_view("node_30s_calendar", "Time of day and day of week (UTC).")

node_30s_vector = FeatureView(
    name="node_30s_vector",
    entities=[node],
    ttl=FEATURE_TTL,
    schema=[
        Field(
            name=VECTOR_FIELD,
            dtype=Array(Float64),
            description="every feature in hydatis.features.feature_names() order",
        )
    ],
    online=True,
    source=_source("node_30s_vector"),
    description=(
        "The whole feature vector as one value per node: one online value per key instead "
        "of one per feature, for the scheduler's batched node-state refresh."
    ),
    tags={"grain": "30s", "columns": ",".join(_NAMES)},
)

_DOMAIN_VIEWS = (
    node_30s_cpu,
    node_30s_memory,
    node_30s_capacity,
    node_30s_requests,
    node_30s_freshness,
    node_30s_calendar,
)

_TREND = ("util", "mean_5m", "mean_1h", "max_1h", "p95_1h", "ewma_10m", "slope_15m")

load_predictor_v1 = FeatureService(
    name="load_predictor_v1",
    features=list(_DOMAIN_VIEWS),
    description="Load predictor (XGBoost) v1: every node feature, the full catalogue.",
    tags={"model": "load_predictor", "version": "1"},
)

anomaly_detector_v1 = FeatureService(
    name="anomaly_detector_v1",
    features=[node_30s_cpu, node_30s_memory, node_30s_requests, node_30s_freshness],
    description=(
        "Anomaly detector (Isolation Forest) v1: utilisation history, what is requested, "
        "and metric lag; no calendar or capacity."
    ),
    tags={"model": "anomaly_detector", "version": "1"},
)

placement_agent_v1 = FeatureService(
    name="placement_agent_v1",
    features=[
        node_30s_cpu[[f"cpu_{s}" for s in _TREND]],
        node_30s_memory[[f"mem_{s}" for s in _TREND]],
        node_30s_capacity,
        node_30s_requests,
        node_30s_freshness[["pods_bound_since_sample"]],
    ],
    description=(
        "Placement agent (DQN) v1: the node state part of its input — current and recent "
        "utilisation, capacity, requests, and placements the metrics do not show yet."
    ),
    tags={"model": "placement_agent", "version": "1"},
)

node_vector_v1 = FeatureService(
    name="node_vector_v1",
    features=[node_30s_vector],
    description=(
        "The full feature vector packed in one value per node (catalogue order), for "
        "batched online reads of many nodes; unpack with the view's 'columns' tag."
    ),
    tags={"consumer": "scheduler_shim", "version": "1"},
)
