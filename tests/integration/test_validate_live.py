"""``hydatis validate`` end to end at the HTTP boundary: a loopback server plays the
Kubernetes API (and records every request the ``kubernetes`` client sends), the real
extender answers — started as a process with the three model servers on tiny models and
node state pushed for the cluster's nodes, one of them running hot."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from hydatis.features import feature_names
from operations.manifests import render
from operations.validate import connect, validate_deployment
from serving.launch import dir_sources, serve_models
from tests.model_fixtures import feature_rows, fit_tiny_models
from tests.servers import free_port, running_process
from tests.unit.test_validate import Recorder, node_list, node_obj

pytestmark = pytest.mark.integration

COLS = feature_names()
NODES = [f"n{i}" for i in range(6)]
HOT = "n0"


def _state() -> dict[str, Any]:
    x = feature_rows(len(NODES), 7)
    for c in ("cpu_util", "cpu_ewma_10m", "cpu_mean_5m", "cpu_mean_15m", "cpu_mean_1h"):
        x[NODES.index(HOT), COLS.index(c)] = 0.97
    return {
        "time": 1000.0,
        "columns": COLS,
        "nodes": NODES,
        "values": x.tolist(),
        "sample_time": [990.0] * len(NODES),
    }


@pytest.fixture(scope="module")
def extender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("validate")
    models = fit_tiny_models(tmp / "models")
    with serve_models(
        dir_sources(models["load"], models["anomaly"], models["agent"]), log_dir=tmp, timeout_s=120
    ) as servers:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cfg = tmp / "shim.yaml"
        cfg.write_text("stale_after_s: 3600\nmodel_timeout_s: 5.0\nagent_timeout_s: 0.2\n")
        argv = [sys.executable, "-m", "scheduler_shim", "--config", str(cfg), "--port", str(port)]
        argv += ["--load-url", servers.urls["load"], "--anomaly-url", servers.urls["anomaly"]]
        argv += ["--agent-url", servers.urls["placement"], "--log-level", "warning"]
        with running_process(
            argv, ready_url=f"{url}/healthz", url=url, port=port, log=tmp / "shim.log", timeout=60
        ):
            resp = httpx.put(f"{url}/v1/node-state", json=_state(), timeout=30)
            assert resp.status_code == 200, resp.text
            yield url


@pytest.fixture
def api() -> Iterator[Recorder]:
    items = [node_obj(n) for n in NODES]
    items += [node_obj("n6", cordoned=True), node_obj("n7", ready=False)]
    rec = Recorder({("GET", "/api/v1/nodes"): node_list(items)})
    yield rec
    rec.close()


def _render_node_objects(overlay: str, **kw: Any) -> list[dict[str, Any]]:
    """The overlay with ``nodeCacheCapable: false`` (kube-scheduler sends whole nodes)."""
    docs = render(overlay, **kw)
    for d in docs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "ml-scheduler-config":
            ksc = yaml.safe_load(d["data"]["config.yaml"])
            ksc["extenders"][0]["nodeCacheCapable"] = False
            d["data"]["config.yaml"] = yaml.safe_dump(ksc)
    return docs


@pytest.mark.parametrize(
    "render_fn", [render, _render_node_objects], ids=["node-names", "node-objects"]
)
def test_real_extender_answers_for_every_live_node(extender, api, render_fn):
    client = connect(kube_api=api.url)
    try:
        report = validate_deployment(
            "dev", api_client=client, extender_url=extender, timeout_s=10, render_fn=render_fn
        )
    finally:
        client.close()
    steps = {s.name: s for s in report.steps}
    assert report.ok, [(s.name, s.problems) for s in report.steps]
    assert list(steps) == ["render", "manifests", "nodes", "filter", "prioritize"]
    # exactly one API request: the node list, paged
    assert [(s.method, s.path, s.query) for s in api.seen] == [
        ("GET", "/api/v1/nodes", {"limit": ["500"]})
    ]
    assert (
        "8 nodes, 6 schedulable; left out: n6 (cordoned), n7 (not Ready)" in steps["nodes"].detail
    )
    # the hot node is filtered with the extender's reason, the rest scored 0..10
    assert report.failed_nodes.get(HOT)
    assert set(report.scores) == set(NODES) - set(report.failed_nodes)
    assert all(0 <= s <= 10 for s in report.scores.values())


def test_command_against_the_real_extender(extender, api, tmp_path, capsys):
    from cli.main import main

    code = main(
        [
            "validate",
            "--overlay",
            "dev",
            "--kube-api",
            api.url,
            "--extender-url",
            extender,
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["ok"] and [s["name"] for s in out["steps"]][-1] == "prioritize"
    assert set(out["scores"]) | set(out["failed_nodes"]) == set(NODES)


def test_unreachable_extender_fails_the_filter_step(api):
    closed = f"http://127.0.0.1:{free_port()}"
    report = validate_deployment("dev", api_client=connect(kube_api=api.url), extender_url=closed)
    step = next(s for s in report.steps if s.name == "filter")
    assert step.ok is False and step.problems[0].startswith(f"cannot reach {closed}/filter")
    assert not report.ok
