"""The remediation service's HTTP face (Starlette + uvicorn): Alertmanager's webhook,
health, metrics and the recent audit records.

Errors map to statuses here and nowhere else:

- a body that is not an Alertmanager v4 notification → 400 with the field and the reason;
- Prometheus, the Kubernetes API or the registry unavailable → 503 naming the error
  (``PrometheusUnavailable: ...``): nothing was marked handled, so Alertmanager's next
  delivery is acted on; the service itself keeps serving;
- anything unexpected → 500 with the error's name, logged; the server stays up;
- with a webhook token configured, ``/v1/alerts`` and ``/v1/audit`` without
  ``Authorization: Bearer <token>`` → 401 (compared in constant time); health, readiness
  and ``/metrics`` stay open for the kubelet and Prometheus. A token file that cannot be
  read → 503 (a Secret not mounted yet: Alertmanager delivers again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hydatis.errors import ConfigError
from hydatis.prometheus import PrometheusClient, PrometheusError
from monitoring.remediation.config import RemediationConfig
from monitoring.remediation.errors import BadPayloadError, KubeApiError, RegistryError
from monitoring.remediation.kube import KubeCluster, connect
from monitoring.remediation.metrics import RemediationMetrics
from monitoring.remediation.payload import parse_notification
from monitoring.remediation.service import Remediator

__all__ = ["AUTH_SCHEME", "build_app", "build_remediator", "expected_token"]

log = logging.getLogger(__name__)
_RETRY_AFTER_S = "30"
#: The ``Authorization`` scheme Alertmanager's ``http_config.authorization`` sends.
AUTH_SCHEME = "Bearer"

Handler = Callable[[Request], Awaitable[Response]]


def expected_token(config: RemediationConfig) -> bytes | None:
    """The token requests must carry, or None when the webhook is open.

    Read from ``webhook_token_file`` at each call (a rotated Secret takes effect without a
    restart; surrounding whitespace, such as a trailing newline, is dropped).

    Raises:
        ConfigError: the token file cannot be read or is empty.
    """
    if config.webhook_token is not None:
        return config.webhook_token.get_secret_value().strip().encode()
    if config.webhook_token_file is None:
        return None
    path = config.webhook_token_file
    try:
        token = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"webhook_token_file: {path} cannot be read: {exc.strerror}") from exc
    if not token:
        raise ConfigError(f"webhook_token_file: {path} is empty")
    return token


def _presented_token(request: Request) -> bytes | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != AUTH_SCHEME.lower() or not value.strip():
        return None
    return value.strip().encode()


def _authenticated(config: RemediationConfig, handler: Handler) -> Handler:
    """``handler`` behind the bearer token (unchanged when no token is configured)."""
    if config.webhook_token is None and config.webhook_token_file is None:
        return handler

    async def guarded(request: Request) -> Response:
        try:
            expected = await asyncio.to_thread(expected_token, config)
        except ConfigError as exc:
            log.error("webhook refused: %s", exc)
            return _error(503, "the webhook token is not available")
        presented = _presented_token(request)
        # compare_digest: the time taken says nothing about how much of a guess matched.
        if presented is None or expected is None or not hmac.compare_digest(presented, expected):
            log.warning("webhook %s refused: missing or wrong bearer token", request.url.path)
            remediator = request.app.state.remediator
            if request.url.path == "/v1/alerts":
                remediator.metrics.webhooks.labels("401").inc()
            return JSONResponse(
                {"error": "a valid bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": f'{AUTH_SCHEME} realm="hydatis-remediation"'},
            )
        return await handler(request)

    return guarded


def build_remediator(
    config: RemediationConfig,
    *,
    metrics: RemediationMetrics | None = None,
    clock: Callable[[], float] = time.time,
) -> Remediator:
    """A :class:`Remediator` with the Kubernetes API and Prometheus clients the settings
    name (opens no connection yet)."""
    cluster = None
    if config.kube_api:
        cluster = KubeCluster(connect(config.kube_api), timeout_s=config.kube_timeout_s)
    prometheus = None
    if config.prometheus_url:
        prometheus = PrometheusClient(
            config.prometheus_url,
            timeout_s=config.prometheus_timeout_s,
            max_retries=config.prometheus_retries,
        )
    return Remediator(config, cluster=cluster, prometheus=prometheus, metrics=metrics, clock=clock)


def _error(status: int, reason: str) -> JSONResponse:
    headers = {"Retry-After": _RETRY_AFTER_S} if status == 503 else None
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


def build_app(
    config: RemediationConfig,
    *,
    remediator: Remediator | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The ASGI application.

    Args:
        config: the settings.
        remediator: the decision core (built from ``config`` at start-up if None).
        clock: the time the service decides by (a replay passes its own).
    """
    state: dict[str, Remediator] = {}
    if remediator is not None:
        state["r"] = remediator

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # A configured token file that cannot be read stops the start, with its name.
        await asyncio.to_thread(expected_token, config)
        if "r" not in state:
            state["r"] = await asyncio.to_thread(build_remediator, config, clock=clock)
        await asyncio.to_thread(state["r"].load)
        app.state.remediator = state["r"]
        log.info(
            "remediation ready: dry_run=%s kube=%s prometheus=%s audit=%s auth=%s",
            config.dry_run,
            config.kube_api or "none",
            config.prometheus_url or "none",
            config.audit_log,
            "bearer" if expected_token(config) is not None else "none",
        )
        try:
            yield
        finally:
            r = state["r"]
            if r.cluster is not None:
                r.cluster.close()
            if r.prometheus is not None:
                r.prometheus.close()

    async def alerts(request: Request) -> Response:
        r = state["r"]
        start = time.perf_counter()
        status, response = 200, None
        try:
            body = await request.body()
            if not body:
                raise BadPayloadError("body", "empty request body")
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise BadPayloadError("body", f"not valid JSON: {exc}") from exc
            notification = parse_notification(data)
            decisions = await asyncio.to_thread(r.handle, notification)
            response = JSONResponse({"decisions": [d.as_dict() for d in decisions]})
        except BadPayloadError as exc:
            status, response = 400, _error(400, str(exc))
        except (PrometheusError, KubeApiError, RegistryError) as exc:
            name = type(exc).__name__.removesuffix("Error")
            log.warning("webhook deferred (%s): %s", name, exc)
            status, response = 503, _error(503, f"{name}: {exc}")
        except Exception as exc:  # a bug must not take the service down
            log.exception("webhook failed")
            status, response = 500, _error(500, f"{type(exc).__name__}: {exc}")
        r.metrics.webhooks.labels(str(status)).inc()
        r.metrics.webhook_seconds.observe(time.perf_counter() - start)
        return response

    async def audit(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            return _error(400, "limit: not an integer")
        records = await asyncio.to_thread(lambda: list(state["r"].audit.records()))
        return JSONResponse({"records": records[-max(limit, 0) :] if limit else []})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if "r" in state:
            return JSONResponse({"status": "ready", "dry_run": config.dry_run})
        return JSONResponse({"status": "not ready"}, status_code=503)

    async def metrics(request: Request) -> Response:
        return Response(
            generate_latest(state["r"].metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    return Starlette(
        routes=[
            Route("/v1/alerts", _authenticated(config, alerts), methods=["POST"]),
            Route("/v1/audit", _authenticated(config, audit), methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
