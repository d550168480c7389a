"""The extender's HTTP layer in-process: statuses, reasons, health and metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hydatis.features import feature_names
from scheduler_shim.app import build_app
from scheduler_shim.config import load_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

COLS = feature_names()
POD = {
    "metadata": {"name": "p", "uid": "u"},
    "spec": {"containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
}


def payload(n=3):
    values = np.full((n, len(COLS)), 0.4)
    values[:, COLS.index("cpu_capacity_cores")] = 16
    values[:, COLS.index("mem_capacity_gib")] = 64
    values[0, 5] = np.nan
    rows = values.tolist()
    rows[0][5] = None
    return {
        "time": 50.0,
        "columns": COLS,
        "nodes": [f"n{i}" for i in range(n)],
        "values": rows,
        "sample_time": [40.0] * n,
    }


@pytest.fixture
def client():
    with TestClient(build_app(load_config(None))) as c:
        yield c


def test_ready_only_after_state_arrives(client):
    r = client.get("/readyz")
    assert r.status_code == 503 and "no node state" in r.json()["reason"]
    assert client.get("/healthz").status_code == 200
    r = client.put("/v1/node-state", json=payload())
    assert r.status_code == 200 and r.json()["nodes"] == 3
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/state").json()["nodes"] == 3


@pytest.mark.parametrize(
    ("path", "content", "needle"),
    [
        ("/filter", b"", "empty request body"),
        ("/filter", b"{not json", "not valid JSON"),
        ("/prioritize", b"[]", "body: expected an object"),
        ("/prioritize", b'{"NodeNames": ["a"]}', "Pod: is missing"),
        (
            "/filter",
            b'{"Pod": {"spec": {"containers": [{"resources": {"requests": '
            b'{"memory": "12 GB"}}}]}}, "NodeNames": ["a"]}',
            "memory",
        ),
        ("/filter", b'{"Pod": {}, "NodeNames": [1]}', "NodeNames[0]"),
    ],
    ids=["empty", "not-json", "array", "no-pod", "bad-quantity", "bad-name"],
)
def test_malformed_requests_get_400_with_the_reason(client, path, content, needle):
    r = client.post(path, content=content)
    assert r.status_code == 400
    assert needle in r.json()["error"]
    assert client.get("/healthz").status_code == 200  # and the service goes on


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda p: p.pop("time"), "time: is missing"),
        (lambda p: p.update(values=p["values"][:2]), "expected 3 rows"),
        (lambda p: p["values"][1].pop(), "values[1]"),
        (lambda p: p.update(nodes=["a", "a", "b"]), "repeat"),
        (lambda p: p.update(sample_time=[1.0]), "sample_time"),
        (lambda p: p["values"][2].__setitem__(0, "x"), "values"),
    ],
    ids=["no-time", "row-count", "short-row", "duplicate-node", "sample-length", "text-value"],
)
def test_bad_pushes_are_named(client, mutate, needle):
    body = payload()
    mutate(body)
    r = client.put("/v1/node-state", json=body)
    assert r.status_code == 400
    assert needle in r.json()["error"]


def test_push_refused_when_the_source_is_pulled():
    with TestClient(build_app(load_config(None, source="feast"))) as c:
        r = c.put("/v1/node-state", json=payload())
    assert r.status_code == 409 and "feast" in r.json()["error"]


def test_answers_and_metrics(client):
    client.put("/v1/node-state", json=payload())
    names = ["n0", "n1", "n2"]
    f = client.post("/filter", json={"Pod": POD, "NodeNames": names})
    assert f.status_code == 200 and f.json()["NodeNames"] == names
    p = client.post("/prioritize", json={"pod": POD, "nodenames": names})
    assert p.status_code == 200
    assert [h["Host"] for h in p.json()] == names
    client.post("/filter", content=b"nope")
    text = client.get("/metrics").text
    for name in (
        "hydatis_extender_decision_seconds_bucket",
        "hydatis_extender_requests_total",
        "hydatis_extender_node_state_age_seconds",
        "hydatis_extender_cache_lookups_total",
    ):
        assert name in text
    assert 'hydatis_extender_requests_total{code="400",verb="filter"} 1.0' in text
    assert 'hydatis_extender_cache_lookups_total{result="hit"} 6.0' in text


def test_metrics_text_before_and_after_a_push(client):
    """No model configured: the configuration gauges and the zeroed counters are there
    from the start; no forecast means no per-node forecast sample (never a NaN one)."""
    before = client.get("/metrics").text
    for line in (
        "hydatis_extender_rollout_ratio 1.0",
        'hydatis_extender_mode_info{mode="active"} 1.0',
        'hydatis_extender_mode_info{mode="shadow"} 0.0',
        'hydatis_load_predictor_accuracy_gate{resource="cpu"} 0.89',
        'hydatis_load_predictor_accuracy_gate{resource="memory"} 0.86',
        'hydatis_load_predictor_live_matched_pairs{resource="cpu"} 0.0',
        'hydatis_extender_fallbacks_total{reason="stale_state"} 0.0',
        'hydatis_extender_filtered_nodes_total{reason="anomalous"} 0.0',
        'hydatis_extender_decisions_total{path="rollout_skip",verb="prioritize"} 0.0',
        'hydatis_extender_cache_lookups_total{result="miss"} 0.0',
    ):
        assert line in before.splitlines(), line
    assert "hydatis_load_predictor_live_accuracy{" not in before
    client.put("/v1/node-state", json=payload())
    after = client.get("/metrics").text
    assert "hydatis_extender_node_state_nodes 3.0" in after.splitlines()
    assert "hydatis_extender_node_predicted_cpu_ratio{" not in after
    assert "hydatis_extender_node_anomalous{" not in after
    assert "NaN" not in after


def test_shadow_rollout_is_exported_as_configured():
    with TestClient(build_app(load_config(None, mode="shadow", rollout_percent=50))) as c:
        lines = c.get("/metrics").text.splitlines()
    assert "hydatis_extender_rollout_ratio 0.5" in lines
    assert 'hydatis_extender_mode_info{mode="shadow"} 1.0' in lines
