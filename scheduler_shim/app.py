"""The extender's HTTP face (Starlette + uvicorn): kube-scheduler's verbs, the node-state
push, health and metrics.

Errors map to statuses here and nowhere else: malformed JSON or ``ExtenderArgs`` → 400
with the reason; a push to an extender with a pulled source → 409; anything unexpected
inside a decision → a neutral answer (counted as ``internal_error``), never a 5xx that
would make kube-scheduler fail the pod's scheduling cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler_shim.config import ShimConfig
from scheduler_shim.protocol import BadRequestError, filter_result, parse_args, priority_list
from scheduler_shim.service import NEUTRAL_SCORE, Extender
from scheduler_shim.shared import RedisShare
from scheduler_shim.sources import FrameSource, refresh_loop, rows_from_payload

__all__ = ["build_app"]

log = logging.getLogger(__name__)


class _ORJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _bad(reason: str, status: int = 400) -> Response:
    return _ORJSON({"error": reason}, status_code=status)


async def _json(request: Request) -> Any:
    body = await request.body()
    if not body:
        raise BadRequestError("body", "empty request body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError("body", f"not valid JSON: {exc}") from exc


def build_app(
    config: ShimConfig,
    *,
    extender: Extender | None = None,
    source: FrameSource | None = None,
    share: RedisShare | None = None,
) -> Starlette:
    """The ASGI application.

    Args:
        config: the settings.
        extender: the decision core (built from ``config`` if None).
        source: a pulled source refreshed in the background (None for ``push``).
        share: Redis sharing between replicas (built from ``config.redis_url`` if None).
    """
    ext = extender or Extender(config)
    if share is None and config.redis_url:
        share = RedisShare(config.redis_url)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    tasks: list[asyncio.Task] = []

    def publish() -> None:
        if share is not None and ext.snapshot is not None:
            try:
                share.publish(ext.snapshot)
            except Exception as exc:  # Redis down: this replica keeps its own state
                ext.metrics.fallbacks.labels("redis_unavailable").inc()
                log.warning("publishing the node state to Redis failed: %s", exc)

    async def poll_share() -> None:
        while True:
            try:
                snap = await asyncio.to_thread(share.fetch, ext._version)
                if snap is not None:
                    ext.install(snap)
            except Exception as exc:
                ext.metrics.fallbacks.labels("redis_unavailable").inc()
                log.debug("reading the shared node state failed: %s", exc)
            await asyncio.sleep(min(1.0, config.refresh_interval_s))

    class _Publishing:
        """Wraps the extender's refresh so each refresh is shared."""

        def __init__(self) -> None:
            self.metrics = ext.metrics

        async def refresh(self, rows):
            if share is not None and not await asyncio.to_thread(
                share.try_lock, owner, config.refresh_interval_s
            ):
                return None
            snap = await ext.refresh(rows)
            await asyncio.to_thread(publish)
            return snap

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await ext.start()
        if source is not None:
            source.nodes = list(dict.fromkeys([*source.nodes, *config.nodes]))
            tasks.append(
                asyncio.create_task(refresh_loop(_Publishing(), source, config.refresh_interval_s))
            )
        if share is not None:
            tasks.append(asyncio.create_task(poll_share()))
        log.info(
            "extender ready: source=%s mode=%s rollout=%.0f%%",
            config.source,
            config.mode,
            config.rollout_percent,
        )
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ext.close()
            if share is not None:
                share.close()

    async def verb(request: Request, name: str) -> Response:
        try:
            body = await _json(request)
            if source is not None:
                with contextlib.suppress(BadRequestError):
                    source.remember(parse_args(body).node_names)
            answer = await (ext.filter(body) if name == "filter" else ext.prioritize(body))
        except BadRequestError as exc:
            ext.metrics.requests.labels(name, "400").inc()
            return _bad(str(exc))
        except Exception as exc:  # a bug must not fail the pod's scheduling cycle
            log.exception("%s failed; answering neutrally", name)
            ext.metrics.fallbacks.labels("internal_error").inc()
            ext.metrics.requests.labels(name, "200").inc()
            args = parse_args(body)
            n = len(args.node_names)
            neutral = (
                filter_result(args, [True] * n, {}, "")
                if name == "filter"
                else priority_list(args.node_names, [NEUTRAL_SCORE] * n)
            )
            log.debug("neutral answer after %s", exc)
            return _ORJSON(neutral)
        ext.metrics.requests.labels(name, "200").inc()
        return _ORJSON(answer)

    async def filter_(request: Request) -> Response:
        return await verb(request, "filter")

    async def prioritize(request: Request) -> Response:
        return await verb(request, "prioritize")

    async def push(request: Request) -> Response:
        if config.source != "push":
            return _bad(
                f"this extender pulls its state from {config.source}; pushes are "
                "accepted only with source 'push'",
                409,
            )
        try:
            rows = rows_from_payload(await _json(request))
        except BadRequestError as exc:
            return _bad(str(exc))
        snap = await ext.refresh(rows)
        await asyncio.to_thread(publish)
        return _ORJSON(
            {
                "nodes": len(snap.names),
                "time": snap.time,
                "version": snap.version,
                "degraded": list(snap.degraded),
                "fallback": bool(snap.degraded),
            }
        )

    async def state(request: Request) -> Response:
        snap = ext.snapshot
        if snap is None:
            return _ORJSON({"nodes": 0, "ready": False})
        return _ORJSON(
            {
                "nodes": len(snap.names),
                "time": snap.time,
                "version": snap.version,
                "age_s": ext.state_age(),
                "ready": ext.ready(),
                "degraded": list(snap.degraded),
                "pending_placements": len(ext.ledger),
                "mode": config.mode,
                "rollout_percent": config.rollout_percent,
            }
        )

    async def healthz(request: Request) -> Response:
        return _ORJSON({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if ext.ready():
            return _ORJSON({"status": "ready", "age_s": ext.state_age()})
        age = ext.state_age()
        why = "no node state yet" if age == float("inf") else f"node state is {age:.0f}s old"
        return _ORJSON({"status": "not ready", "reason": why}, status_code=503)

    async def metrics(request: Request) -> Response:
        ext.metrics.state_age.set(min(ext.state_age(), 1e9))
        # rendering 1,500 nodes' series takes ~0.1 s: off the event loop, so no filter or
        # prioritize request waits behind a scrape
        body = await asyncio.to_thread(generate_latest, ext.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/filter", filter_, methods=["POST"]),
            Route("/prioritize", prioritize, methods=["POST"]),
            Route("/v1/node-state", push, methods=["PUT", "POST"]),
            Route("/v1/state", state, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.extender = ext
    return app
