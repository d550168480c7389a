"""Two extender replicas share one node-state snapshot through a real Redis."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from hydatis.features import feature_names
from scheduler_shim.app import build_app
from scheduler_shim.config import load_config
from scheduler_shim.shared import decode_snapshot, encode_snapshot
from tests.redis_server import redis_server_path, start_redis

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(redis_server_path() is None, reason="redis-server is not installed"),
]

COLS = feature_names()


def payload(n=5):
    values = np.full((n, len(COLS)), 0.25)
    values[:, COLS.index("cpu_capacity_cores")] = 8
    values[:, COLS.index("mem_capacity_gib")] = 32
    return {
        "time": 10.0,
        "columns": COLS,
        "nodes": [f"n{i}" for i in range(n)],
        "values": values.tolist(),
        "sample_time": [5.0] * n,
    }


def test_a_push_to_one_replica_reaches_the_other():
    with start_redis() as url:
        cfg = load_config(None, redis_url=url, refresh_interval_s=0.2)
        with TestClient(build_app(cfg)) as a, TestClient(build_app(cfg)) as b:
            assert b.get("/readyz").status_code == 503
            assert a.put("/v1/node-state", json=payload()).status_code == 200
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and b.get("/readyz").status_code != 200:
                time.sleep(0.05)
            state = b.get("/v1/state").json()
            assert state["nodes"] == 5 and state["ready"]
            assert state["version"] == a.get("/v1/state").json()["version"]
            names = [f"n{i}" for i in range(5)]
            pod = {"metadata": {"uid": "x"}, "spec": {"containers": [{}]}}
            r = b.post("/filter", json={"Pod": pod, "NodeNames": names})
            assert r.json()["NodeNames"] == names


def test_snapshot_roundtrip_keeps_every_array():
    cfg = load_config(None)
    with TestClient(build_app(cfg)) as a:
        a.put("/v1/node-state", json=payload(3))
        snap = a.app.state.extender.snapshot
    back = decode_snapshot(encode_snapshot(snap))
    assert back.names == snap.names and back.version == snap.version
    np.testing.assert_array_equal(back.nodes.cap_cpu, snap.nodes.cap_cpu)
    np.testing.assert_array_equal(back.anomaly_flag, snap.anomaly_flag)
    assert abs(back.received_at - snap.received_at) < 1.0
