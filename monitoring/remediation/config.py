"""The remediation service's settings: one typed class, defaults in one place, a YAML file
plus environment overrides (``HYDATIS_REMEDIATION_<KEY>``).

Precedence (highest first): keyword arguments (command-line flags), the environment, the
YAML file, the defaults below. An unknown or badly typed key raises
:class:`~hydatis.errors.ConfigError` naming the key and where it came from.

Safe by default: ``dry_run`` is on, so a fresh deployment decides and audits but changes
nothing until someone turns it off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from hydatis.config import work_dir
from hydatis.settings import LayeredSettings, load_settings

__all__ = ["DEFAULT_PORT", "ENV_PREFIX", "RemediationConfig", "load_config"]

ENV_PREFIX = "HYDATIS_REMEDIATION_"
DEFAULT_PORT = 9095


class RemediationConfig(LayeredSettings):
    """Every setting of the remediation service.

    Attributes:
        host, port: where the webhook listens (loopback by default).
        dry_run: decide and audit every action, change nothing.
        audit_log: the JSONL audit file (one line per decision); also the memory of which
            deliveries were handled (idempotency survives restarts).
        prometheus_url: Prometheus to confirm an alert is still firing before acting
            (``ALERTS{...}``); empty: act on the notification alone.
        prometheus_timeout_s, prometheus_retries: per query; after the retries a
            ``PrometheusUnavailable`` error answers 503 and Alertmanager delivers again.
        kube_api: how to reach the Kubernetes API: ``incluster``, ``kubeconfig``, an
            ``http(s)://`` URL (the simulator's loopback API, a ``kubectl proxy``), or
            empty for none (cluster actions are then refused, with the reason).
        kube_timeout_s: timeout of each Kubernetes API request.
        pool_label: the node label naming a node's pool (nodes without it: pool ``default``).
        max_cordoned_share: never leave more than this share of a pool cordoned.
        max_evictions_per_action: pods evicted by one cordon-and-drain at most.
        protected_namespaces: pods there are never evicted.
        rate_limit_actions, rate_limit_window_s: at most this many actions (changes or,
            in dry-run, would-be changes) in any window; the rest wait for a later
            delivery.
        extender_target: where the extender's settings live: ``configmap`` (patched
            through the Kubernetes API, and the Deployment rolled) or ``file`` (a local
            settings file).
        extender_namespace, extender_configmap, extender_config_key, extender_deployment:
            the ConfigMap key holding the extender's YAML settings and its Deployment.
        extender_config_file: the local settings file (``extender_target: file``).
        rollout_factor: ``rollout_lower`` multiplies the rollout percentage by this.
        mlflow_tracking_uri: the model registry (default: ``MLFLOW_TRACKING_URI``, else the
            local store in the work directory, as training uses).
        retrain_command: the command that starts retraining (the pipeline's CLI).
        retrain_min_interval_s: do not start retraining again within this time.
        retrain_log: where the retraining command's output goes.
        webhook_token: the bearer token Alertmanager must send on ``/v1/alerts`` and
            ``/v1/audit`` (``HYDATIS_REMEDIATION_WEBHOOK_TOKEN``); never logged or echoed.
        webhook_token_file: a file holding that token instead (a mounted Secret, the
            same file Alertmanager's ``http_config.authorization.credentials_file``
            reads); read on each request, so a rotated Secret takes effect without a
            restart. At most one of the two; with neither, the webhook is open (local
            runs and the simulator).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    dry_run: bool = True
    audit_log: Path = Field(default_factory=lambda: work_dir() / "remediation" / "audit.jsonl")
    prometheus_url: str = ""
    prometheus_timeout_s: float = Field(5.0, gt=0)
    prometheus_retries: int = Field(3, ge=0)
    kube_api: str = ""
    kube_timeout_s: float = Field(10.0, gt=0)
    pool_label: str = "hydatis.io/node-pool"
    max_cordoned_share: float = Field(0.1, ge=0, le=1)
    max_evictions_per_action: int = Field(100, ge=0)
    protected_namespaces: list[str] = Field(default_factory=lambda: ["kube-system"])
    rate_limit_actions: int = Field(10, ge=0)
    rate_limit_window_s: float = Field(600.0, gt=0)
    extender_target: Literal["configmap", "file"] = "configmap"
    extender_namespace: str = "hydatis-system"
    extender_configmap: str = "hydatis-shim-config"
    extender_config_key: str = "shim.yaml"
    extender_deployment: str = "hydatis-shim"
    extender_config_file: Path | None = None
    rollout_factor: float = Field(0.5, gt=0, lt=1)
    mlflow_tracking_uri: str = ""
    retrain_command: list[str] = Field(
        default_factory=lambda: ["hydatis", "pipeline", "run", "training"]
    )
    retrain_min_interval_s: float = Field(6 * 3600.0, ge=0)
    retrain_log: Path = Field(default_factory=lambda: work_dir() / "remediation" / "retrain.log")
    webhook_token: SecretStr | None = None
    webhook_token_file: Path | None = None

    @model_validator(mode="after")
    def _one_token_source(self) -> RemediationConfig:
        if self.webhook_token is not None and self.webhook_token_file is not None:
            raise ValueError("set webhook_token or webhook_token_file, not both")
        if self.webhook_token is not None and not self.webhook_token.get_secret_value().strip():
            raise ValueError("webhook_token is empty")
        return self

    @field_validator("kube_api")
    @classmethod
    def _kube_api(cls, value: str) -> str:
        ok = value in ("", "incluster", "kubeconfig") or value.startswith(("http://", "https://"))
        if not ok:
            raise ValueError(
                f"must be 'incluster', 'kubeconfig', an http(s):// URL or empty, got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("retrain_command")
    @classmethod
    def _command(cls, value: list[str]) -> list[str]:
        if not value or not all(isinstance(v, str) and v for v in value):
            raise ValueError("must be a non-empty list of non-empty strings")
        return value

    def tracking_uri(self) -> str:
        """The MLflow registry URI (the setting, ``MLFLOW_TRACKING_URI``, or the local
        store training writes: ``sqlite:///<work dir>/mlflow/mlflow.db``)."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{(work_dir() / 'mlflow' / 'mlflow.db').resolve()}"


def load_config(path: str | Path | None = None, **overrides: Any) -> RemediationConfig:
    """The configuration from ``path`` (optional), the environment and ``overrides``
    (layers in :func:`hydatis.settings.load_settings`).

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown or invalid.
    """
    return load_settings(RemediationConfig, path, **overrides)
