"""The extender's settings: one typed class, defaults in one place, a YAML file plus
environment overrides.

Precedence (highest first): explicit keyword arguments (command-line flags), environment
variables ``HYDATIS_SHIM_<KEY>`` (and the shared ``REDIS_URL``), the YAML file, the
defaults below. An unknown or badly typed key raises :class:`~hydatis.errors.ConfigError`
naming the key and the file, so a typo in a ConfigMap never silently falls back to a
default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from hydatis.settings import LayeredSettings, load_settings

__all__ = [
    "DEFAULT_ACCURACY_GATES",
    "DEFAULT_LOAD_HORIZON_S",
    "DEFAULT_PORT",
    "ENV_PREFIX",
    "ShimConfig",
    "Weights",
    "load_config",
]

ENV_PREFIX = "HYDATIS_SHIM_"
DEFAULT_PORT = 8888
#: The load predictor's horizon (s): the models' default label horizon.
DEFAULT_LOAD_HORIZON_S = 300.0
#: The registry gate's accuracy targets for the load predictor (1 − WAPE), by resource.
DEFAULT_ACCURACY_GATES = {"cpu": 0.89, "memory": 0.86}


class Weights(BaseModel):
    """How much each model's part counts in a node's score (they need not sum to 1: the
    score is normalised by their sum)."""

    model_config = ConfigDict(extra="forbid")

    # measured on development replays (benchmarks/placement.py's ablation, seeds 0-4):
    # the load part carries the decision; more weight on the quick agent or the anomaly
    # part made the placement objective worse
    load: float = Field(0.8, ge=0)
    agent: float = Field(0.1, ge=0)
    anomaly: float = Field(0.1, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> Weights:
        if self.load + self.agent + self.anomaly <= 0:
            raise ValueError("at least one weight must be positive")
        return self


class ShimConfig(LayeredSettings):
    """Every setting of the extender service.

    Attributes:
        host, port: where the HTTP server listens (loopback by default).
        source: where node state comes from: ``push`` (snapshots PUT to /v1/node-state,
            e.g. by the simulator), ``feast`` (the online store) or ``prometheus``
            (history + the feature function).
        refresh_interval_s: seconds between background refreshes (pulled sources).
        stale_after_s: state older than this gives neutral answers (counted fallback).
        deadline_s: the longest a filter or prioritize answer may take, whatever happens
            behind it; kube-scheduler's ``httpTimeout`` should be larger.
        model_timeout_s: timeout of the batched load / anomaly calls at refresh.
        agent_timeout_s: timeout of the per-pod placement-agent call.
        load_url, anomaly_url, agent_url: base URLs of the three model servers; an
            empty URL means the model is not used (its part is neutral).
        load_model, anomaly_model, agent_model: the model names on those servers.
        weights: the combination weights (load / agent / anomaly).
        target, hot_threshold: CPU utilisation the load part peaks at, and where it
            reaches 0 (nodes predicted past it after the pod are filtered).
        mem_hot_threshold: memory utilisation past which a node is filtered.
        filter_hot, filter_anomalous: whether predicted-hot / anomalous nodes are
            filtered out (otherwise they are only scored down). Anomalous nodes are only
            scored down by default: on development replays the filter took candidates
            away and left more node-time hot; a node that stays flagged is cordoned by
            remediation through its alert instead.
        load_curve: ``headroom`` (the default: the lower a node's predicted CPU after the
            pod, the better, falling to 0 at ``hot``) or ``target`` (the earlier curve that
            peaks at ``target``, packing nodes up to it); see ``scoring.py``.
        normalise_load: stretch the load part over the candidates (min–max) so the
            integer 0..10 score separates nodes whose forecasts differ by a few points.
        filter_above_target: also filter nodes predicted past ``target`` after the pod,
            as long as one candidate stays at or below it (``filter_hot`` must be on).
        lag_compensation: add the pods this extender placed since a node's last sample
            to its forecast (the ledger); off only to measure what it is worth.
        mode: ``active`` answers with the models' decision; ``shadow`` decides, logs and
            answers neutrally.
        rollout_percent: share of pods (by a hash of the pod UID) the models decide for;
            the rest get neutral answers (10 → 50 → 100).
        ab_percent: share of the models' pods (by a salted hash of the pod UID,
            :mod:`scheduler_shim.ab`) the challenger's model servers decide for; 0 = no
            A/B test.
        ab_salt: the arm hash's salt (a new salt re-draws the arms for a new test).
        challenger_agent_url, challenger_load_url, challenger_anomaly_url: the
            challenger's model servers (same model names); empty = the champion's.
        redis_url: share the node-state snapshot between replicas through Redis.
        reporting_interval_s: pods placed this long before a node's latest sample are
            taken to be visible in it (metric-lag compensation).
        feature_repo: the Feast repo folder (``feast`` source).
        prometheus_url: the Prometheus server (``prometheus`` source).
        nodes: node names to refresh before any request has named them (pulled sources).
        max_pods: pod limit assumed for a node whose limit is unknown.
        tls_cert_file, tls_key_file: a PEM certificate (chain) and its private key;
            both set, the extender serves HTTPS (kube-scheduler's extender
            ``tlsConfig``); neither, plain HTTP.
        load_horizon_s: the load predictor's horizon: its forecast at refresh ``t`` is
            scored against the rows of the first refresh at or after ``t +`` this
            (live accuracy, :mod:`scheduler_shim.live`).
        live_accuracy_window_s: the live accuracy's rolling window (rows' clock).
        accuracy_gate_cpu, accuracy_gate_memory: the live accuracy's targets, exported
            beside it for the alert; the registry gate's (``load_cpu_accuracy >= 0.89``,
            ``load_mem_accuracy >= 0.86``) by default.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    source: Literal["push", "feast", "prometheus"] = "push"
    refresh_interval_s: float = Field(30.0, gt=0)
    stale_after_s: float = Field(120.0, gt=0)
    deadline_s: float = Field(0.25, gt=0)
    model_timeout_s: float = Field(1.0, gt=0)
    agent_timeout_s: float = Field(0.05, gt=0)
    load_url: str = ""
    anomaly_url: str = ""
    agent_url: str = ""
    load_model: str = "hydatis-load-predictor"
    anomaly_model: str = "hydatis-anomaly-detector"
    agent_model: str = "hydatis-placement-agent"
    weights: Weights = Field(default_factory=Weights)
    target: float = Field(0.65, gt=0, lt=1)
    hot_threshold: float = Field(0.85, gt=0, le=1)
    mem_hot_threshold: float = Field(0.95, gt=0, le=1)
    filter_hot: bool = True
    filter_anomalous: bool = False
    load_curve: Literal["headroom", "target"] = "headroom"
    normalise_load: bool = True
    lag_compensation: bool = True
    filter_above_target: bool = False
    mode: Literal["active", "shadow"] = "active"
    rollout_percent: float = Field(100.0, ge=0, le=100)
    ab_percent: float = Field(0.0, ge=0, le=100)
    ab_salt: str = Field("hydatis-ab", min_length=1)
    challenger_agent_url: str = ""
    challenger_load_url: str = ""
    challenger_anomaly_url: str = ""
    redis_url: str | None = None
    reporting_interval_s: float = Field(60.0, ge=0)
    feature_repo: str = "feature_repo"
    prometheus_url: str = "http://127.0.0.1:9090"
    nodes: list[str] = Field(default_factory=list)
    max_pods: int = Field(110, gt=0)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    load_horizon_s: float = Field(DEFAULT_LOAD_HORIZON_S, gt=0)
    live_accuracy_window_s: float = Field(3600.0, gt=0)
    accuracy_gate_cpu: float = Field(DEFAULT_ACCURACY_GATES["cpu"], ge=0, le=1)
    accuracy_gate_memory: float = Field(DEFAULT_ACCURACY_GATES["memory"], ge=0, le=1)

    @model_validator(mode="after")
    def _thresholds(self) -> ShimConfig:
        if self.target >= self.hot_threshold:
            raise ValueError(
                f"target ({self.target}) must be below hot_threshold ({self.hot_threshold})"
            )
        return self


def load_config(path: str | Path | None = None, **overrides: Any) -> ShimConfig:
    """The configuration from ``path`` (optional), the environment and ``overrides``
    (layers in :func:`hydatis.settings.load_settings`); ``REDIS_URL`` sets ``redis_url``
    when nothing else does.

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown or invalid
            (the message names the key and where it came from).
    """
    return load_settings(ShimConfig, path, env_fallbacks={"redis_url": "REDIS_URL"}, **overrides)
