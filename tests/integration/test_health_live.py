"""``hydatis health`` against the real parts, each started on loopback: Prometheus,
redis-server (also as the Feast online store, materialised by Feast itself), a local
MLflow store with champions, the three KServe model servers on tiny models, the extender
and the remediation webhook. Every part is ok; then parts that fail in known ways — an
extender without node state, a registry without champions, an empty online store, a
stopped model server — are down with their reasons."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.main import main
from operations.health import HealthSettings, run_health
from serving.launch import dir_sources, serve_models
from tests.model_fixtures import MODEL_NAMES, feature_rows, fit_tiny_models
from tests.redis_server import redis_server_path, start_redis
from tests.servers import free_port, prometheus_server, running_process, stop_process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not on PATH"),
    pytest.mark.skipif(redis_server_path() is None, reason="redis-server is not on PATH"),
]

ROOT = Path(__file__).resolve().parents[2]


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def _champions(uri: str, models_dir: Path) -> None:
    """Register one version of each model and give it the champion alias (what the
    registry gate does on promotion)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, uri)
    for kind, name in MODEL_NAMES.items():
        client.create_registered_model(name)
        version = client.create_model_version(name, source=str(models_dir / kind))
        client.set_registered_model_alias(name, "champion", version.version)


def _push_state(url: str, n: int = 4) -> None:
    from hydatis.features import feature_names

    body = {
        "time": 1000.0,
        "columns": feature_names(),
        "nodes": [f"node-{i}" for i in range(n)],
        "values": feature_rows(n, 3).tolist(),
        "sample_time": [990.0] * n,
    }
    resp = httpx.put(f"{url}/v1/node-state", json=body, timeout=30)
    assert resp.status_code == 200, resp.text


def _shim(tmp: Path, urls: dict[str, str]) -> Any:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = tmp / "shim.yaml"
    cfg.write_text("stale_after_s: 600\nmodel_timeout_s: 5.0\n")
    argv = [sys.executable, "-m", "scheduler_shim", "--config", str(cfg), "--port", str(port)]
    for flag, kind in (
        ("--load-url", "load"),
        ("--anomaly-url", "anomaly"),
        ("--agent-url", "placement"),
    ):
        argv += [flag, urls[kind]]
    return running_process(
        [*argv, "--log-level", "warning"],
        ready_url=f"{url}/healthz",
        url=url,
        port=port,
        log=tmp / "shim.log",
        timeout=60,
    )


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("health")
    models = fit_tiny_models(tmp / "models")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    _champions(uri, tmp / "models")
    repo = tmp / "feature_repo"
    shutil.copytree(
        ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    with (
        prometheus_server(tmp / "prom") as prom,
        start_redis() as redis_url,
        start_redis() as empty_redis,
        serve_models(
            dir_sources(models["load"], models["anomaly"], models["agent"]),
            log_dir=tmp / "serving",
            timeout_s=120,
        ) as servers,
        _shim(tmp, servers.urls) as shim,
    ):
        import numpy as np
        import pandas as pd

        from components.materialize import core
        from hydatis.features import feature_names

        names = feature_names()
        table = pd.DataFrame(feature_rows(6, 1), columns=names)
        table.insert(
            0,
            "event_timestamp",
            pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(6) * 30, unit="s"),
        )
        table.insert(0, "node_id", [f"node-{i % 3}" for i in range(6)])
        core.materialize(table, repo, redis_url=redis_url)
        core.clear_cache()
        _push_state(shim.url)
        rport = free_port()
        remediation = f"http://127.0.0.1:{rport}"
        with running_process(
            [
                sys.executable,
                "-m",
                "monitoring.remediation",
                "--port",
                str(rport),
                "--audit-log",
                str(tmp / "audit.jsonl"),
                "--log-level",
                "warning",
            ],
            ready_url=f"{remediation}/readyz",
            url=remediation,
            port=rport,
            log=tmp / "remediation.log",
        ):
            settings = HealthSettings(
                timeout_s=10,
                prometheus_url=prom.url,
                feature_repo=str(repo),
                feature_store_redis_url=redis_url,
                mlflow_tracking_uri=uri,
                redis_url=redis_url,
                load_url=servers.urls["load"],
                anomaly_url=servers.urls["anomaly"],
                agent_url=servers.urls["placement"],
                extender_url=shim.url,
                remediation_url=remediation,
            )
            yield {
                "settings": settings,
                "tmp": tmp,
                "servers": servers,
                "shim": shim,
                "empty_redis": empty_redis,
                "models": models,
            }


def test_every_real_part_is_ok(parts):
    report = _run(run_health(parts["settings"]))
    statuses = {r.component: (r.status, r.reason) for r in report.results}
    assert all(s == "ok" for s, _ in statuses.values()), statuses
    assert report.healthy
    by = {r.component: r for r in report.results}
    assert by["mlflow"].details == {"champion": {name: "1" for name in MODEL_NAMES.values()}}
    assert by["feature-store"].details["online_store"] == "redis"
    assert by["feature-store"].details["keys"] > 0
    assert 0 <= by["extender"].details["state_age_s"] < 600
    assert by["model-server:agent"].details == {"model": MODEL_NAMES["agent"]}
    assert by["prometheus"].details["query"] == "up"
    for r in report.results:
        assert r.latency_s is not None and 0 < r.latency_s < 10


def test_command_json_on_the_real_parts(parts, tmp_path, capsys):
    s = parts["settings"]
    cfg = tmp_path / "health.yaml"
    cfg.write_text(json.dumps(s.model_dump(exclude={"ca_file"})))  # JSON is YAML
    assert main(["health", "--config", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["healthy"] and {c["status"] for c in out["checks"]} == {"ok"}


def test_extender_without_state_registry_without_champions_and_empty_store(parts, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri, uri).search_experiments()  # an empty, valid store
    with _shim(tmp_path, parts["servers"].urls) as fresh:  # no state pushed
        settings = parts["settings"].model_copy(
            update={
                "extender_url": fresh.url,
                "mlflow_tracking_uri": uri,
                "feature_store_redis_url": parts["empty_redis"],
            }
        )
        report = _run(run_health(settings))
    by = {r.component: r for r in report.results}
    assert not report.healthy
    assert by["extender"].status == "down"
    assert by["extender"].reason == f"HTTP 503 from {fresh.url}/readyz: no node state yet"
    assert by["mlflow"].reason == (
        f"no champion in the registry at {uri} for " + ", ".join(MODEL_NAMES.values())
    )
    assert by["feature-store"].reason.endswith("is empty: nothing materialised")
    assert by["model-server:load"].status == "ok" and by["redis"].status == "ok"


def test_stopped_model_server_is_down_connection_refused(parts):
    server = parts["servers"]["anomaly"]
    stop_process(server.process)
    report = _run(run_health(parts["settings"]))
    by = {r.component: r for r in report.results}
    assert by["model-server:anomaly"].status == "down"
    assert by["model-server:anomaly"].reason == f"connection refused at {server.url}"
    assert by["model-server:load"].status == "ok"
    assert not report.healthy
