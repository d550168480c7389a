"""``hydatis health``: is every part the configuration names up, and if not, why?

One probe per part — Prometheus, the Feast online store, the MLflow registry (and its
champions), Redis, the three KServe model servers, the extender (ready, and its node
state fresh), the remediation webhook — all at once, each bounded by ``timeout_s``. A part
the configuration leaves empty is ``skipped``, never ``down``: a local setup without
Redis is not broken. A part that is down comes with the reason an operator acts on:
``connection refused at URL``, ``HTTP 503 from URL: …``, ``timeout after 5 s at URL``,
``no champion in the registry at … for …``.

Settings (``HYDATIS_HEALTH_<KEY>``, a YAML file, the shared ``PROMETHEUS_URL``,
``MLFLOW_TRACKING_URI`` and ``REDIS_URL``) follow :func:`hydatis.settings.load_settings`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from hydatis.settings import LayeredSettings, load_settings
from operations import _health_checks as checks

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENV_PREFIX",
    "CheckResult",
    "HealthReport",
    "HealthSettings",
    "load_health_settings",
    "local_defaults",
    "run_health",
    "with_local_defaults",
]

ENV_PREFIX = "HYDATIS_HEALTH_"
DEFAULT_TIMEOUT_S = 5.0
#: The registered model names (``components/register``, ``serving/_registry``).
MODEL_NAMES = {
    "load": "hydatis-load-predictor",
    "anomaly": "hydatis-anomaly-detector",
    "agent": "hydatis-placement-agent",
}

Status = Literal["ok", "down", "skipped"]


class HealthSettings(LayeredSettings):
    """Where each part lives; an empty URL means "not part of this deployment".

    Attributes:
        timeout_s: the longest one part's check may take (all run at once).
        prometheus_url: Prometheus' base URL (``PROMETHEUS_URL``).
        prometheus_query: an instant query that must evaluate.
        feature_repo: the Feast repo folder (``feature_store.yaml``): its registry file
            and, without ``feature_store_redis_url``, its SQLite online store.
        feature_store_redis_url: the Redis online store (as ``hydatis features
            materialize --redis-url`` uses); it must hold keys.
        mlflow_tracking_uri: the tracking server (``http(s)://``) or a local store
            (``sqlite:///…``) (``MLFLOW_TRACKING_URI``).
        registry_models, champion_alias: every one of these registered models must
            carry the alias.
        redis_url: the Redis the extender replicas share state through (``REDIS_URL``).
        load_url, anomaly_url, agent_url: the three model servers' base URLs.
        load_model, anomaly_model, agent_model: the model names served there.
        extender_url: the extender's base URL.
        extender_max_state_age_s: older node state is reported down.
        remediation_url: the remediation webhook's base URL.
        ca_file: a CA bundle for HTTPS endpoints (default: the system's).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    prometheus_url: str = ""
    prometheus_query: str = Field("up", min_length=1)
    feature_repo: str = ""
    feature_store_redis_url: str = ""
    mlflow_tracking_uri: str = ""
    registry_models: list[str] = Field(default_factory=lambda: list(MODEL_NAMES.values()))
    champion_alias: str = Field("champion", min_length=1)
    redis_url: str = ""
    load_url: str = ""
    anomaly_url: str = ""
    agent_url: str = ""
    load_model: str = MODEL_NAMES["load"]
    anomaly_model: str = MODEL_NAMES["anomaly"]
    agent_model: str = MODEL_NAMES["agent"]
    extender_url: str = ""
    extender_max_state_age_s: float = Field(120.0, gt=0)
    remediation_url: str = ""
    ca_file: str | None = None

    @field_validator(
        "prometheus_url", "load_url", "anomaly_url", "agent_url", "extender_url", "remediation_url"
    )
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s):// URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("redis_url", "feature_store_redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {value!r}")
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        if value and not Path(value).is_file():
            raise ValueError(f"no CA bundle at {value}")
        return value or None


def load_health_settings(path: str | Path | None = None, **overrides: Any) -> HealthSettings:
    """The settings from ``path`` (optional YAML), the environment and ``overrides``.

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown or invalid.
    """
    return load_settings(
        HealthSettings,
        path,
        label="health settings",
        env_fallbacks={
            "prometheus_url": "PROMETHEUS_URL",
            "mlflow_tracking_uri": "MLFLOW_TRACKING_URI",
            "redis_url": "REDIS_URL",
        },
        **overrides,
    )


def local_defaults() -> dict[str, str]:
    """Where the parts listen when everything runs on this machine (``hydatis serve``'s
    model server ports, the extender's and remediation's default ports, the local
    MLflow store in the work directory, the repository's Feast repo, Prometheus on 9090).
    """
    from monitoring.remediation.config import DEFAULT_PORT as REMEDIATION_PORT
    from scheduler_shim.config import DEFAULT_PORT as SHIM_PORT
    from serving._registry import default_tracking_uri
    from serving.launch import DEFAULT_PORTS

    local = "http://127.0.0.1"
    return {
        "prometheus_url": f"{local}:9090",
        "feature_repo": "feature_repo",
        "mlflow_tracking_uri": default_tracking_uri(None),
        "load_url": f"{local}:{DEFAULT_PORTS['load']}",
        "anomaly_url": f"{local}:{DEFAULT_PORTS['anomaly']}",
        "agent_url": f"{local}:{DEFAULT_PORTS['placement']}",
        "extender_url": f"{local}:{SHIM_PORT}",
        "remediation_url": f"{local}:{REMEDIATION_PORT}",
    }


def with_local_defaults(settings: HealthSettings) -> HealthSettings:
    """``settings`` with every part it leaves empty pointed at its local default (what
    the file, the environment or a flag set is kept)."""
    update = {k: v for k, v in local_defaults().items() if not getattr(settings, k)}
    return settings.model_copy(update=update)


@dataclass
class CheckResult:
    """One part's verdict.

    Attributes:
        component: the part (``prometheus``, ``model-server:load``, …).
        target: what was probed (a URL, a path; passwords masked).
        status: ``ok``, ``down`` or ``skipped`` (not configured).
        latency_s: how long the check took (None when skipped).
        reason: why it is down or skipped ('' when ok).
        details: what the check learnt (series count, champion versions, state age, …).
    """

    component: str
    target: str
    status: Status
    latency_s: float | None = None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class HealthReport:
    """Every part's result, in a fixed order."""

    results: list[CheckResult]

    @property
    def healthy(self) -> bool:
        """No configured part is down."""
        return all(r.status != "down" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``hydatis health --json``)."""
        return {"healthy": self.healthy, "checks": [asdict(r) for r in self.results]}


Probe = Callable[[], Awaitable[dict[str, Any]]]


def _plan(s: HealthSettings, client: httpx.AsyncClient) -> list[tuple[str, str, Probe | None]]:
    """(component, target, probe or None when not configured), in report order."""
    t = s.timeout_s
    plan: list[tuple[str, str, Probe | None]] = []

    def add(name: str, target: str, configured: Any, probe: Probe) -> None:
        plan.append((name, target, probe if configured else None))

    add(
        "prometheus",
        s.prometheus_url,
        s.prometheus_url,
        lambda: checks.check_prometheus(client, s.prometheus_url, s.prometheus_query),
    )
    add(
        "feature-store",
        checks.redact(s.feature_store_redis_url) if s.feature_store_redis_url else s.feature_repo,
        s.feature_repo or s.feature_store_redis_url,
        lambda: checks.check_feature_store(s.feature_repo, s.feature_store_redis_url, t),
    )
    add(
        "mlflow",
        s.mlflow_tracking_uri,
        s.mlflow_tracking_uri,
        lambda: checks.check_mlflow(
            client, s.mlflow_tracking_uri, s.registry_models, s.champion_alias
        ),
    )
    add(
        "redis", checks.redact(s.redis_url), s.redis_url, lambda: checks.check_redis(s.redis_url, t)
    )
    for kind, url, model in (
        ("load", s.load_url, s.load_model),
        ("anomaly", s.anomaly_url, s.anomaly_model),
        ("agent", s.agent_url, s.agent_model),
    ):
        add(
            f"model-server:{kind}",
            url,
            url,
            lambda url=url, model=model: checks.check_model_server(client, url, model),
        )
    add(
        "extender",
        s.extender_url,
        s.extender_url,
        lambda: checks.check_extender(client, s.extender_url, s.extender_max_state_age_s),
    )
    add(
        "remediation",
        s.remediation_url,
        s.remediation_url,
        lambda: checks.check_remediation(client, s.remediation_url),
    )
    return plan


async def _run_one(name: str, target: str, probe: Probe | None, timeout_s: float) -> CheckResult:
    if probe is None:
        return CheckResult(name, target, "skipped", reason="not configured")
    t0 = time.perf_counter()
    try:
        details = await asyncio.wait_for(probe(), timeout_s)
    except Exception as exc:  # every failure is a reason, never a crash of the report
        return CheckResult(
            name,
            target,
            "down",
            round(time.perf_counter() - t0, 4),
            checks.describe_error(exc, target, timeout_s),
        )
    return CheckResult(name, target, "ok", round(time.perf_counter() - t0, 4), "", details)


async def run_health(
    settings: HealthSettings, *, client: httpx.AsyncClient | None = None
) -> HealthReport:
    """Check every configured part concurrently.

    Args:
        settings: where the parts are.
        client: the HTTP client to use (one with ``settings.timeout_s`` and ``ca_file``
            is made, and closed, when None).

    Returns:
        One result per part, in a fixed order, skipped ones included.
    """
    own = client is None
    if client is None:
        client = httpx.AsyncClient(
            timeout=settings.timeout_s,
            verify=settings.ca_file or True,
            follow_redirects=False,
        )
    try:
        plan = _plan(settings, client)
        results = await asyncio.gather(*(_run_one(n, t, p, settings.timeout_s) for n, t, p in plan))
    finally:
        if own:
            await client.aclose()
    return HealthReport(list(results))
