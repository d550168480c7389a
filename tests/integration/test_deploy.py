"""The deploy step: InferenceServices applied through the official ``kubernetes`` client
to an API server stand-in on loopback that records every request (checked exactly), and
the local deployment's model servers restarted as real processes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from components.deploy import (
    DeployError,
    apply_inference_services,
    deploy,
    restart_local,
    stop_local,
)
from serving._registry import ModelRef
from serving.manifests import render

pytestmark = pytest.mark.integration

BASE = "/apis/serving.kserve.io/v1beta1/namespaces/hydatis-system/inferenceservices"


class FakeApiServer:
    """Answers the InferenceService calls as the API server does; records each request
    as ``(method, path, body)``."""

    def __init__(self, existing: dict[str, dict[str, Any]] | None = None, deny: str = "") -> None:
        self.objects = dict(existing or {})
        self.deny = deny  # a method answered 403
        self.requests: list[tuple[str, str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str) -> None:
                self._answer(
                    code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": reason,
                        "code": code,
                    },
                )

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                server.requests.append((self.command, self.path, body))
                if self.command == server.deny:
                    return self._status(403, "Forbidden")
                name = self.path.rsplit("/", 1)[-1]
                if self.command == "GET":
                    if name in server.objects:
                        return self._answer(200, server.objects[name])
                    return self._status(404, "NotFound")
                if self.command == "POST":
                    created = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
                    server.objects[body["metadata"]["name"]] = created
                    return self._answer(201, created)
                if self.command == "PUT":
                    server.objects[name] = body
                    return self._answer(200, body)
                return self._status(405, "MethodNotAllowed")

            do_GET = do_POST = do_PUT = _handle  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def api_client(self) -> client.ApiClient:
        config = client.Configuration()
        config.host = self.url
        return client.ApiClient(config)


def _refs() -> dict[str, ModelRef]:
    return {
        "load": ModelRef("hydatis-load-predictor", "4", "run-l", "champion", ""),
        "anomaly": ModelRef("hydatis-anomaly-detector", "2", "run-a", "champion", ""),
    }


def test_absent_inference_services_are_created() -> None:
    docs = render(_refs())
    with FakeApiServer() as api:
        done = apply_inference_services(docs, api.api_client())
    assert [(m, p) for m, p, _ in api.requests] == [
        ("GET", f"{BASE}/hydatis-load-predictor"),
        ("POST", BASE),
        ("GET", f"{BASE}/hydatis-anomaly-detector"),
        ("POST", BASE),
    ]
    assert api.requests[1][2] == docs[0] and api.requests[3][2] == docs[1]
    assert [d["action"] for d in done] == ["created", "created"]


def test_present_inference_services_are_replaced_at_their_resource_version() -> None:
    docs = render(_refs())
    existing = {
        d["metadata"]["name"]: {**d, "metadata": {**d["metadata"], "resourceVersion": "41"}}
        for d in docs
    }
    with FakeApiServer(existing) as api:
        done = apply_inference_services(docs, api.api_client())
    assert [(m, p) for m, p, _ in api.requests] == [
        ("GET", f"{BASE}/hydatis-load-predictor"),
        ("PUT", f"{BASE}/hydatis-load-predictor"),
        ("GET", f"{BASE}/hydatis-anomaly-detector"),
        ("PUT", f"{BASE}/hydatis-anomaly-detector"),
    ]
    put = api.requests[1][2]
    assert put["metadata"]["resourceVersion"] == "41"
    assert put["spec"] == docs[0]["spec"]
    assert put["metadata"]["labels"] == docs[0]["metadata"]["labels"]
    assert "resourceVersion" not in docs[0]["metadata"]  # the rendered docs stay untouched
    assert [d["action"] for d in done] == ["replaced", "replaced"]


def test_a_refusal_names_the_object_and_the_status() -> None:
    with FakeApiServer(deny="POST") as api, pytest.raises(DeployError, match="403") as err:
        apply_inference_services(render(_refs()), api.api_client())
    assert "hydatis-system/hydatis-load-predictor" in str(err.value)
    assert [m for m, _, _ in api.requests] == ["GET", "POST"]


def test_deploy_to_a_cluster_renders_and_applies_the_champions(tmp_path, monkeypatch) -> None:
    from components.deploy import core

    missing = {"placement": "no champion"}
    monkeypatch.setattr(core, "champion_refs_available", lambda *a, **k: (_refs(), missing))
    with FakeApiServer() as api:
        result = deploy("cluster", out_dir=tmp_path, api_client=api.api_client())
    written = list(yaml.safe_load_all(Path(result["manifests"]).read_text()))
    assert [d["metadata"]["name"] for d in written] == [
        "hydatis-load-predictor",
        "hydatis-anomaly-detector",
    ]
    assert written[0]["metadata"]["annotations"]["hydatis.io/storage-uri"].endswith(
        "hydatis-load-predictor/4"
    )
    assert result["deployed"] == {
        "load": "models:/hydatis-load-predictor/4",
        "anomaly": "models:/hydatis-anomaly-detector/2",
    }
    assert result["missing"] == missing
    assert [a["action"] for a in result["applied"]] == ["created", "created"]
    assert sum(m == "POST" for m, _, _ in api.requests) == 2


def test_nothing_is_applied_without_a_champion(tmp_path, monkeypatch) -> None:
    from components.deploy import core

    monkeypatch.setattr(core, "champion_refs_available", lambda *a, **k: ({}, {"load": "none"}))
    with FakeApiServer() as api:
        result = deploy("cluster", out_dir=tmp_path, api_client=api.api_client())
    assert api.requests == [] and result["deployed"] == {} and "applied" not in result
    assert Path(result["manifests"]).is_file()


@pytest.fixture()
def tiny_models(tmp_path: Path) -> Iterator[dict[str, str]]:
    from tests.model_fixtures import fit_tiny_models

    tiny = fit_tiny_models(tmp_path / "models")
    yield {"load": str(tiny["load"]), "anomaly": str(tiny["anomaly"])}


def test_the_local_deployment_restarts_its_servers(tmp_path, tiny_models) -> None:
    from serving.launch import free_port

    state = tmp_path / "serving" / "local-deployment.json"
    ports = {"load": free_port(), "anomaly": free_port()}
    first = restart_local(tiny_models, ports=ports, state_file=state, timeout_s=90)
    try:
        pids = {k: s["pid"] for k, s in first["servers"].items()}
        assert json.loads(state.read_text())["servers"]["load"]["pid"] == pids["load"]
        for server in first["servers"].values():
            assert httpx.get(server["ready"], timeout=5).status_code == 200
        second = restart_local(tiny_models, ports=ports, state_file=state, timeout_s=90)
        new = {k: s["pid"] for k, s in second["servers"].items()}
        assert set(new.values()).isdisjoint(pids.values())  # the old servers were stopped
        for server in second["servers"].values():
            assert httpx.get(server["ready"], timeout=5).status_code == 200
    finally:
        stopped = stop_local(state)
    assert sorted(stopped) == sorted(new.values())
    assert not state.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(second["servers"]["load"]["ready"], timeout=2)


def test_stop_local_without_a_deployment_does_nothing(tmp_path) -> None:
    assert stop_local(tmp_path / "absent.json") == []
