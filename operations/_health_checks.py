"""One probe per part of the platform, each answering ok or down with the reason.

A probe is a coroutine that raises :class:`PartDownError` (with a reason an operator can act on)
or returns details; :func:`operations.health.run_health` times it, bounds it by the
timeout and turns transport errors into reasons in one place (:func:`describe_error`).
Blocking clients (Redis, MLflow's local stores, SQLite) run in a worker thread with their
own socket timeouts, so a hung part never holds the others up.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import yaml

__all__ = [
    "PartDownError",
    "check_extender",
    "check_feature_store",
    "check_mlflow",
    "check_model_server",
    "check_prometheus",
    "check_redis",
    "check_remediation",
    "describe_error",
    "feast_redis_url",
    "redact",
]

_STATE_AGE = "hydatis_extender_node_state_age_seconds"
_SAMPLE = re.compile(rf"^{_STATE_AGE}(?:\{{[^}}]*\}})?\s+(\S+)", re.MULTILINE)


class PartDownError(Exception):
    """The part answered, but not as a healthy one would; the message says how."""


def describe_error(exc: BaseException, target: str, timeout_s: float) -> str:
    """A transport failure as one line naming what was tried (the one place where
    third-party errors become reasons)."""
    if isinstance(exc, PartDownError):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError | TimeoutError):
        return f"timeout after {timeout_s:g} s at {target}"
    text = str(exc) or type(exc).__name__
    if _refused(exc):
        return f"connection refused at {target}"
    if isinstance(exc, httpx.ConnectError | ConnectionError | OSError):
        return f"cannot connect to {target}: {text}"
    if isinstance(exc, httpx.HTTPError):
        return f"HTTP error at {target}: {text}"
    return f"{type(exc).__name__} at {target}: {text}"


def _refused(exc: BaseException | None) -> bool:
    """Whether a connection was refused somewhere down the exception chain (httpx over
    anyio reports "All connection attempts failed" and keeps the OS error as a cause)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path


async def _get(client: httpx.AsyncClient, url: str, *, want: int = 200) -> httpx.Response:
    resp = await client.get(url)
    if resp.status_code != want:
        detail = resp.text.strip().replace("\n", " ")[:160]
        raise PartDownError(
            f"HTTP {resp.status_code} from {url}" + (f": {detail}" if detail else "")
        )
    return resp


async def check_prometheus(client: httpx.AsyncClient, url: str, query: str) -> dict[str, Any]:
    """``/-/ready`` answers 200 and ``query`` evaluates (``status: success``)."""
    await _get(client, _join(url, "/-/ready"))
    api = _join(url, "/api/v1/query")
    resp = await client.get(api, params={"query": query})
    try:
        body = resp.json()
    except ValueError as exc:
        raise PartDownError(f"HTTP {resp.status_code} from {api}: not JSON") from exc
    if resp.status_code != 200 or body.get("status") != "success":
        raise PartDownError(
            f"query {query!r} failed at {api}: {body.get('error', resp.status_code)}"
        )
    result = body.get("data", {}).get("result", [])
    return {"query": query, "series": len(result) if isinstance(result, list) else 1}


async def check_model_server(client: httpx.AsyncClient, url: str, model: str) -> dict[str, Any]:
    """KServe v2: the server is ready and so is ``model``."""
    await _get(client, _join(url, "/v2/health/ready"))
    await _get(client, _join(url, f"/v2/models/{quote(model, safe='')}/ready"))
    return {"model": model}


def _state_age(metrics: str) -> float | None:
    match = _SAMPLE.search(metrics)
    return float(match.group(1)) if match else None


async def check_extender(
    client: httpx.AsyncClient, url: str, max_state_age_s: float
) -> dict[str, Any]:
    """``/healthz`` and ``/readyz`` answer 200, and the node state exported on
    ``/metrics`` is younger than ``max_state_age_s``."""
    await _get(client, _join(url, "/healthz"))
    ready = await client.get(_join(url, "/readyz"))
    if ready.status_code != 200:
        try:
            why = ready.json().get("reason", "")
        except ValueError:
            why = ready.text[:120]
        raise PartDownError(
            f"HTTP {ready.status_code} from {_join(url, '/readyz')}: {why or 'not ready'}"
        )
    metrics = await _get(client, _join(url, "/metrics"))
    age = _state_age(metrics.text)
    if age is None:
        raise PartDownError(f"{_join(url, '/metrics')} exports no {_STATE_AGE}")
    if age > max_state_age_s:
        raise PartDownError(f"node state is {age:.0f} s old (limit {max_state_age_s:g} s)")
    return {"state_age_s": round(age, 3)}


async def check_remediation(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The remediation webhook's ``/healthz`` and ``/readyz``."""
    await _get(client, _join(url, "/healthz"))
    body = (await _get(client, _join(url, "/readyz"))).json()
    return {"dry_run": body.get("dry_run")}


def _redis_ping(url: str, timeout_s: float) -> dict[str, Any]:
    import redis

    conn = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        conn.ping()
        info = conn.info("server")
        return {"version": info.get("redis_version"), "keys": int(conn.dbsize())}
    finally:
        conn.close()


def _redis_reason(exc: BaseException, url: str, timeout_s: float) -> BaseException:
    import redis

    if isinstance(exc, redis.TimeoutError):
        return TimeoutError()
    if isinstance(exc, redis.ConnectionError) and "refused" in str(exc).lower():
        return ConnectionRefusedError("refused")
    if isinstance(exc, redis.AuthenticationError | redis.ResponseError):
        return PartDownError(f"{redact(url)} refused the command: {exc}")
    return exc


def redact(url: str) -> str:
    """A Redis URL without its password (reasons and reports are printed)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


async def check_redis(url: str, timeout_s: float) -> dict[str, Any]:
    """PING answers; the server's version and key count are the details."""
    try:
        return await asyncio.to_thread(_redis_ping, url, timeout_s)
    except Exception as exc:
        raise _redis_reason(exc, url, timeout_s) from exc


def _sqlite_online_store(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PartDownError(f"SQLite online store {path} does not exist: nothing materialised")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        con.close()
    if not tables:
        raise PartDownError(f"SQLite online store {path} holds no table: nothing materialised")
    return {"online_store": "sqlite", "tables": len(tables)}


def feast_redis_url(connection_string: str) -> str:
    """Feast's Redis ``connection_string`` (``host:port,db=0,password=…,ssl=true``) as a
    Redis URL."""
    first, *options = [p.strip() for p in connection_string.split(",") if p.strip()]
    opts = dict(o.partition("=")[::2] for o in options)
    scheme = "rediss" if opts.get("ssl", "").lower() == "true" else "redis"
    auth = f":{quote(opts['password'], safe='')}@" if opts.get("password") else ""
    return f"{scheme}://{auth}{first}/{opts.get('db', '0')}"


async def check_feature_store(repo: str, redis_url: str, timeout_s: float) -> dict[str, Any]:
    """The Feast repo's registry exists and its online store answers with data: Redis
    (``redis_url``, which wins over the YAML's store, as in ``components.materialize``)
    holds keys, or the SQLite file holds tables."""
    details: dict[str, Any] = {}
    online: dict[str, Any] = {}
    if repo:
        root = Path(repo)
        yaml_path = root / "feature_store.yaml"
        try:
            config = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise PartDownError(f"{yaml_path}: cannot be read ({exc.strerror or exc})") from exc
        registry = config.get("registry")
        registry_path = registry.get("path") if isinstance(registry, dict) else registry
        local = isinstance(registry_path, str) and "://" not in registry_path
        if local and not (root / registry_path).is_file():
            raise PartDownError(
                f"Feast registry {root / registry_path} is missing: run feast apply"
            )
        online = config.get("online_store") or {}
        details["project"] = config.get("project")
    if not redis_url and isinstance(online, dict) and online.get("type") == "redis":
        conn = str(online.get("connection_string") or "")
        if not conn:
            raise PartDownError(
                f"{repo}/feature_store.yaml: a redis online store without a connection_string"
            )
        redis_url = feast_redis_url(conn)
    if redis_url:
        try:
            info = await check_redis(redis_url, timeout_s)
        except Exception as exc:  # name the store, not the repo, in the reason
            raise PartDownError(describe_error(exc, redact(redis_url), timeout_s)) from exc
        if not info["keys"]:
            raise PartDownError(
                f"Redis online store {redact(redis_url)} is empty: nothing materialised"
            )
        return {**details, "online_store": "redis", "keys": info["keys"]}
    if isinstance(online, dict) and online.get("type", "sqlite") == "sqlite":
        path = Path(repo) / online.get("path", "data/online_store.db")
        return {**details, **await asyncio.to_thread(_sqlite_online_store, path)}
    raise PartDownError(
        f"online store type {online.get('type')!r} in {repo}/feature_store.yaml: set "
        "feature_store_redis_url to check a Redis store"
    )


async def _mlflow_http(
    client: httpx.AsyncClient, uri: str, models: list[str], alias: str
) -> dict[str, Any]:
    await _get(client, _join(uri, "/health"))
    versions: dict[str, str] = {}
    missing: list[str] = []
    for name in models:
        resp = await client.get(
            _join(uri, "/api/2.0/mlflow/registered-models/alias"),
            params={"name": name, "alias": alias},
        )
        if resp.status_code == 200:
            versions[name] = str(resp.json()["model_version"]["version"])
        elif resp.status_code in (400, 404):
            missing.append(name)
        else:
            raise PartDownError(f"HTTP {resp.status_code} from the registry at {uri} for {name}")
    if missing:
        raise PartDownError(f"no {alias} in the registry at {uri} for {', '.join(missing)}")
    return {alias: versions}


def _mlflow_store(uri: str, models: list[str], alias: str) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    # MlflowClient creates a store it does not find: a health check must not.
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.is_file():
            raise PartDownError(f"no MLflow store at {path}")
    elif "://" not in uri or uri.startswith("file:"):
        path = Path(urlsplit(uri).path if uri.startswith("file:") else uri)
        if not path.is_dir():
            raise PartDownError(f"no MLflow store at {path}")
    client = MlflowClient(uri, uri)
    versions: dict[str, str] = {}
    missing: list[str] = []
    for name in models:
        try:
            versions[name] = str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            missing.append(name)
    if missing:
        raise PartDownError(f"no {alias} in the registry at {uri} for {', '.join(missing)}")
    return {alias: versions}


async def check_mlflow(
    client: httpx.AsyncClient, uri: str, models: list[str], alias: str
) -> dict[str, Any]:
    """The tracking server (or local store) answers and every model has ``alias``."""
    if uri.startswith(("http://", "https://")):
        return await _mlflow_http(client, uri, models, alias)
    return await asyncio.to_thread(_mlflow_store, uri, models, alias)
