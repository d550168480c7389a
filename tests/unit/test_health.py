"""``hydatis health`` against loopback servers that fail in known ways: a closed port, a
server answering 503, one that never answers in time; the settings' layers and errors;
the command's table, JSON and exit status."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cli.health import EXIT_DOWN
from cli.main import main
from hydatis.errors import ConfigError
from operations._health_checks import feast_redis_url
from operations.health import (
    HealthSettings,
    load_health_settings,
    local_defaults,
    run_health,
    with_local_defaults,
)
from tests.servers import free_port


class Loopback:
    """A loopback HTTP server answering every GET with ``answer(path)`` (status, body,
    delay in seconds)."""

    def __init__(self, answer: Callable[[str], tuple[int, Any, float]]) -> None:
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.paths.append(self.path)
                code, body, delay = answer(self.path)
                time.sleep(delay)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout test)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[Callable[..., Loopback]]:
    started: list[Loopback] = []

    def start(answer: Callable[[str], tuple[int, Any, float]]) -> Loopback:
        srv = Loopback(answer)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.close()


def check(settings: HealthSettings, name: str):
    report = asyncio.run(run_health(settings))
    (result,) = [r for r in report.results if r.component == name]
    return report, result


def test_nothing_configured_is_all_skipped_and_healthy(monkeypatch):
    for var in ("PROMETHEUS_URL", "MLFLOW_TRACKING_URI", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    report = asyncio.run(run_health(HealthSettings()))
    assert report.healthy
    assert {r.status for r in report.results} == {"skipped"}
    assert [r.component for r in report.results] == [
        "prometheus",
        "feature-store",
        "mlflow",
        "redis",
        "model-server:load",
        "model-server:anomaly",
        "model-server:agent",
        "extender",
        "remediation",
    ]


@pytest.mark.parametrize(
    ("field", "component"),
    [
        ("prometheus_url", "prometheus"),
        ("load_url", "model-server:load"),
        ("extender_url", "extender"),
        ("remediation_url", "remediation"),
        ("mlflow_tracking_uri", "mlflow"),
    ],
    ids=["prometheus", "model-server", "extender", "remediation", "mlflow-http"],
)
def test_closed_port_is_down_with_connection_refused(field, component):
    url = f"http://127.0.0.1:{free_port()}"
    report, result = check(HealthSettings(**{field: url}, timeout_s=2), component)
    assert not report.healthy
    assert result.status == "down"
    assert result.reason == f"connection refused at {url}"
    assert result.latency_s is not None and result.latency_s < 2


def test_redis_closed_port_is_down_with_connection_refused():
    url = f"redis://127.0.0.1:{free_port()}/0"
    _, result = check(HealthSettings(redis_url=url, timeout_s=2), "redis")
    assert (result.status, result.reason) == ("down", f"connection refused at {url}")


@pytest.mark.parametrize(
    ("field", "component", "path"),
    [
        ("prometheus_url", "prometheus", "/-/ready"),
        ("agent_url", "model-server:agent", "/v2/health/ready"),
        ("extender_url", "extender", "/healthz"),
        ("remediation_url", "remediation", "/healthz"),
    ],
    ids=["prometheus", "model-server", "extender", "remediation"],
)
def test_server_answering_503_is_down_with_the_status(loopback, field, component, path):
    srv = loopback(lambda p: (503, "overloaded", 0.0))
    _, result = check(HealthSettings(**{field: srv.url}), component)
    assert result.status == "down"
    assert result.reason == f"HTTP 503 from {srv.url}{path}: overloaded"
    assert srv.paths == [path]


def test_model_server_ready_but_model_not_is_down_naming_the_model(loopback):
    srv = loopback(lambda p: (200, {}, 0.0) if p == "/v2/health/ready" else (503, "", 0.0))
    _, result = check(HealthSettings(load_url=srv.url, load_model="m1"), "model-server:load")
    assert result.reason == f"HTTP 503 from {srv.url}/v2/models/m1/ready"
    assert srv.paths == ["/v2/health/ready", "/v2/models/m1/ready"]


def test_slow_server_is_down_with_a_timeout(loopback):
    srv = loopback(lambda p: (200, "", 2.0))
    t0 = time.perf_counter()
    _, result = check(HealthSettings(extender_url=srv.url, timeout_s=0.3), "extender")
    assert result.status == "down"
    assert result.reason == f"timeout after 0.3 s at {srv.url}"
    assert time.perf_counter() - t0 < 1.5


def test_checks_run_concurrently(loopback):
    """Four slow parts take about as long as one, not four times as long."""
    srv = loopback(lambda p: (200, "", 0.6))
    settings = HealthSettings(
        load_url=srv.url, anomaly_url=srv.url, agent_url=srv.url, remediation_url=srv.url
    )
    t0 = time.perf_counter()
    asyncio.run(run_health(settings))
    assert time.perf_counter() - t0 < 2 * 0.6 * 2  # serial would be 8 requests × 0.6 s


def test_prometheus_query_error_is_down_with_prometheus_message(loopback):
    def answer(path: str) -> tuple[int, Any, float]:
        if path == "/-/ready":
            return 200, "Prometheus Server is Ready.", 0.0
        return 400, {"status": "error", "error": "parse error at char 3"}, 0.0

    srv = loopback(answer)
    _, result = check(HealthSettings(prometheus_url=srv.url, prometheus_query="up{"), "prometheus")
    assert result.status == "down"
    assert "parse error at char 3" in result.reason and "'up{'" in result.reason


@pytest.mark.parametrize(
    ("metrics", "status", "reason"),
    [
        ("hydatis_extender_node_state_age_seconds 12.5\n", "ok", ""),
        ("hydatis_extender_node_state_age_seconds 900.0\n", "down", "node state is 900 s old"),
        ("other_metric 1\n", "down", "exports no hydatis_extender_node_state_age_seconds"),
    ],
    ids=["fresh", "stale", "no-metric"],
)
def test_extender_state_age_from_metrics(loopback, metrics, status, reason):
    def answer(path: str) -> tuple[int, Any, float]:
        return (200, metrics if path == "/metrics" else {"status": "ok"}, 0.0)

    srv = loopback(answer)
    _, result = check(
        HealthSettings(extender_url=srv.url, extender_max_state_age_s=120), "extender"
    )
    assert result.status == status and reason in result.reason
    if status == "ok":
        assert result.details == {"state_age_s": 12.5}


def test_extender_not_ready_reports_its_reason(loopback):
    def answer(path: str) -> tuple[int, Any, float]:
        if path == "/readyz":
            return 503, {"status": "not ready", "reason": "no node state yet"}, 0.0
        return 200, {"status": "ok"}, 0.0

    srv = loopback(answer)
    _, result = check(HealthSettings(extender_url=srv.url), "extender")
    assert result.reason == f"HTTP 503 from {srv.url}/readyz: no node state yet"


def test_mlflow_http_missing_champion_names_the_models(loopback):
    def answer(path: str) -> tuple[int, Any, float]:
        if path == "/health":
            return 200, "OK", 0.0
        if "hydatis-load-predictor" in path:
            return 200, {"model_version": {"version": "4"}}, 0.0
        return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST"}, 0.0

    srv = loopback(answer)
    _, result = check(HealthSettings(mlflow_tracking_uri=srv.url), "mlflow")
    assert result.status == "down"
    assert result.reason == (
        f"no champion in the registry at {srv.url} for hydatis-anomaly-detector, "
        "hydatis-placement-agent"
    )


def test_missing_local_mlflow_store_is_down(tmp_path):
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    _, result = check(HealthSettings(mlflow_tracking_uri=uri), "mlflow")
    assert result.reason == f"no MLflow store at {tmp_path / 'none.db'}"


def test_feature_repo_without_registry_says_apply(tmp_path):
    (tmp_path / "feature_store.yaml").write_text(
        "project: p\nregistry: data/registry.db\nonline_store: {type: sqlite}\n"
    )
    _, result = check(HealthSettings(feature_repo=str(tmp_path)), "feature-store")
    assert result.status == "down" and "run feast apply" in result.reason


def test_feature_repo_sqlite_store_with_tables_is_ok(tmp_path):
    import sqlite3

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "registry.db").write_bytes(b"x")
    sqlite3.connect(tmp_path / "data" / "online_store.db").execute("CREATE TABLE t (x)").close()
    (tmp_path / "feature_store.yaml").write_text(
        "project: p\nregistry: data/registry.db\n"
        "online_store: {type: sqlite, path: data/online_store.db}\n"
    )
    _, result = check(HealthSettings(feature_repo=str(tmp_path)), "feature-store")
    assert result.status == "ok", result.reason
    assert result.details == {"project": "p", "online_store": "sqlite", "tables": 1}


@pytest.mark.parametrize(
    ("conn", "url"),
    [
        ("redis:6379", "redis://redis:6379/0"),
        ("r.svc:6380,db=2", "redis://r.svc:6380/2"),
        ("r:6379,password=p@ss,ssl=true", "rediss://:p%40ss@r:6379/0"),
    ],
    ids=["plain", "db", "password-tls"],
)
def test_feast_connection_string_as_url(conn, url):
    assert feast_redis_url(conn) == url


def test_feature_repo_with_a_redis_store_pings_it(tmp_path):
    port = free_port()
    (tmp_path / "feature_store.yaml").write_text(
        "project: p\nregistry: gs://bucket/registry.db\n"
        f"online_store: {{type: redis, connection_string: '127.0.0.1:{port}'}}\n"
    )
    _, result = check(HealthSettings(feature_repo=str(tmp_path), timeout_s=2), "feature-store")
    assert result.reason == f"connection refused at redis://127.0.0.1:{port}/0"


def test_missing_local_file_store_is_down_and_not_created(tmp_path):
    store = tmp_path / "mlruns"
    _, result = check(HealthSettings(mlflow_tracking_uri=f"file://{store}"), "mlflow")
    assert result.reason == f"no MLflow store at {store}"
    assert not store.exists()


def test_redis_password_is_masked_in_target_and_reason():
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    _, result = check(HealthSettings(redis_url=url, timeout_s=2), "redis")
    assert "s3cret" not in result.target + result.reason
    assert result.target.startswith("redis://:***@127.0.0.1:")


# --------------------------------------------------------------------------- settings


def test_settings_layers_file_env_and_shared_variables(tmp_path, monkeypatch):
    cfg = tmp_path / "health.yaml"
    cfg.write_text("extender_url: http://shim:8888/\ntimeout_s: 3\n")
    monkeypatch.setenv("HYDATIS_HEALTH_TIMEOUT_S", "7")
    monkeypatch.setenv("PROMETHEUS_URL", "http://prom:9090")
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    s = load_health_settings(cfg)
    assert s.extender_url == "http://shim:8888"  # trailing slash dropped
    assert s.timeout_s == 7  # the environment beats the file
    assert s.prometheus_url == "http://prom:9090" and s.redis_url == "redis://redis:6379/0"
    assert load_health_settings(cfg, timeout_s=1.5).timeout_s == 1.5  # a flag beats both


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("extender_url: shim:8888\n", "extender_url"),
        ("redis_url: http://x\n", "redis_url"),
        ("timeout_s: 0\n", "timeout_s"),
        ("prometheus: http://x\n", "prometheus"),
    ],
    ids=["url-without-scheme", "redis-scheme", "zero-timeout", "unknown-key"],
)
def test_bad_settings_name_the_key_and_file(tmp_path, text, key):
    cfg = tmp_path / "health.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_health_settings(cfg)
    assert str(cfg) in str(err.value) and key in str(err.value)


# --------------------------------------------------------------------------- the command


def test_command_exit_status_json_and_table(loopback, tmp_path, capsys, monkeypatch):
    for var in ("PROMETHEUS_URL", "MLFLOW_TRACKING_URI", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    good = loopback(lambda p: (200, {"status": "ready", "dry_run": True}, 0.0))
    cfg = tmp_path / "health.yaml"
    cfg.write_text(f"remediation_url: {good.url}\n")
    assert main(["health", "--config", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by = {c["component"]: c for c in out["checks"]}
    assert out["healthy"] is True and by["remediation"]["status"] == "ok"
    assert by["remediation"]["details"] == {"dry_run": True}

    closed = f"http://127.0.0.1:{free_port()}"
    cfg.write_text(f"remediation_url: {good.url}\nload_url: {closed}\n")
    assert main(["health", "--config", str(cfg)]) == EXIT_DOWN
    table = capsys.readouterr().out
    assert "model-server:load" in table and "down" in table
    assert f"connection refused at {closed}" in table


def test_command_bad_config_is_exit_2(tmp_path, capsys):
    cfg = tmp_path / "health.yaml"
    cfg.write_text("load_url: nope\n")
    assert main(["health", "--config", str(cfg)]) == 2
    assert "load_url" in capsys.readouterr().out


def test_local_defaults_fill_only_what_is_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("HYDATIS_WORK_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    s = with_local_defaults(HealthSettings(extender_url="http://shim:1"))
    assert s.extender_url == "http://shim:1"  # what was set is kept
    assert s.load_url == "http://127.0.0.1:8091" and s.agent_url == "http://127.0.0.1:8093"
    assert s.remediation_url == "http://127.0.0.1:9095"
    assert s.mlflow_tracking_uri == f"sqlite:///{(tmp_path / 'mlflow' / 'mlflow.db').resolve()}"
    assert not s.redis_url  # Redis is not part of the local setup
    assert set(local_defaults()) <= set(HealthSettings.model_fields)


def test_command_says_when_nothing_is_configured(capsys, monkeypatch):
    for var in ("PROMETHEUS_URL", "MLFLOW_TRACKING_URI", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    assert main(["health"]) == 0
    assert "nothing is configured" in capsys.readouterr().out
