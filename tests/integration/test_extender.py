"""The extender as kube-scheduler uses it: the three model servers and the extender run
as separate processes on loopback, requests carry kube-scheduler's exact JSON in both
``nodeCacheCapable`` modes, and a model server killed mid-test never costs an answer."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from hydatis.features import feature_names
from hydatis.models.anomaly_detector import AnomalyDetector
from hydatis.models.load_predictor import LoadPredictor
from tests.model_fixtures import MODEL_NAMES, SERVER_MODULES, feature_rows, fit_tiny_models
from tests.servers import free_port, stop_process, wait_http_ready

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COLS = feature_names()
N = 24
DEADLINE_S = 0.3


def start(args: list[str], ready: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_http_ready(ready, 90, proc=proc)
    except Exception:
        stop_process(proc)
        raise
    return proc


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extender")
    paths = fit_tiny_models(tmp)
    procs: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    try:
        for kind, module in SERVER_MODULES.items():
            port = free_port()
            urls[kind] = f"http://127.0.0.1:{port}"
            procs[kind] = start(
                [
                    "-m",
                    module,
                    "--model_source",
                    str(paths[kind]),
                    "--http_port",
                    str(port),
                    "--model_name",
                    MODEL_NAMES[kind],
                ],
                f"{urls[kind]}/v2/models/{MODEL_NAMES[kind]}/ready",
            )
        cfg = tmp / "shim.yaml"
        cfg.write_text(
            f"deadline_s: {DEADLINE_S}\nagent_timeout_s: 0.15\nmodel_timeout_s: 2.0\n"
            f"stale_after_s: 600\n"
        )
        port = free_port()
        shim = f"http://127.0.0.1:{port}"
        procs["shim"] = start(
            [
                "-m",
                "scheduler_shim",
                "--config",
                str(cfg),
                "--port",
                str(port),
                "--load-url",
                urls["load"],
                "--anomaly-url",
                urls["anomaly"],
                "--agent-url",
                urls["agent"],
                "--log-level",
                "warning",
            ],
            f"{shim}/healthz",
        )
        yield {"shim": shim, "urls": urls, "procs": procs, "paths": paths}
    finally:
        for p in procs.values():
            stop_process(p)


def snapshot(seed: int = 1) -> tuple[np.ndarray, dict]:
    x = feature_rows(N, seed)
    hot = [0, 1, 2]  # running hot: their forecast after a 4-core pod passes 0.85
    for c in ("cpu_util", "cpu_ewma_10m", "cpu_mean_5m", "cpu_mean_15m", "cpu_mean_1h"):
        x[hot, COLS.index(c)] = 0.95
    body = {
        "time": 1000.0,
        "columns": COLS,
        "nodes": [f"node-{i}" for i in range(N)],
        "values": x.tolist(),
        "sample_time": [990.0] * N,
    }
    return x, body


def pod(uid: str, cpu: str = "4", mem: str = "2Gi") -> dict:
    return {
        "metadata": {"name": f"web-{uid}", "namespace": "shop", "uid": uid},
        "spec": {
            "schedulerName": "ml-scheduler",
            "priority": 0,
            "containers": [
                {
                    "name": "app",
                    "image": "nginx",
                    "resources": {"requests": {"cpu": cpu, "memory": mem}},
                }
            ],
        },
    }


def node_object(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
        },
    }


def expected_failures(paths: dict[str, Path], x: np.ndarray, pod_cores: float) -> set[str]:
    """What the filter must drop, computed in-process from the same model files."""
    load = LoadPredictor.load(paths["load"]).predict_array(x.astype(np.float32))
    anomaly = AnomalyDetector.load(paths["anomaly"])
    flag = anomaly.score(x) >= anomaly.threshold_
    cpu_after = load[:, 0] + pod_cores / 32.0
    mem_after = load[:, 1] + 2 / 128.0
    bad = (cpu_after > 0.85) | (mem_after > 0.95) | flag
    if bad.all():
        return set()
    return {f"node-{i}" for i in np.flatnonzero(bad)}


def metric(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_filter_and_prioritize_both_cache_modes(stack):
    shim, paths = stack["shim"], stack["paths"]
    x, body = snapshot()
    with httpx.Client(timeout=5) as c:
        r = c.put(f"{shim}/v1/node-state", json=body)
        assert r.status_code == 200 and r.json()["degraded"] == []
        names = body["nodes"]
        want = expected_failures(paths, x, 4.0)
        assert {"node-0", "node-1", "node-2"} <= want

        # nodeCacheCapable: true — names in, names out
        f = c.post(f"{shim}/filter", json={"Pod": pod("a"), "Nodes": None, "NodeNames": names})
        assert f.status_code == 200
        out = f.json()
        assert set(out) == {
            "Nodes",
            "NodeNames",
            "FailedNodes",
            "FailedAndUnresolvableNodes",
            "Error",
        }
        assert out["Nodes"] is None and out["Error"] == ""
        assert set(out["FailedNodes"]) == want
        assert out["NodeNames"] == [n for n in names if n not in want]

        # nodeCacheCapable: false — whole Node objects in, the kept ones echoed back
        objs = [node_object(n) for n in names]
        f = c.post(
            f"{shim}/filter", json={"Pod": pod("b"), "Nodes": {"items": objs}, "NodeNames": None}
        )
        out = f.json()
        assert out["NodeNames"] is None
        assert out["Nodes"]["items"] == [o for o in objs if o["metadata"]["name"] not in want]

        kept = [n for n in names if n not in want]
        p = c.post(f"{shim}/prioritize", json={"Pod": pod("c"), "NodeNames": kept})
        assert p.status_code == 200
        hosts = p.json()
        assert [h["Host"] for h in hosts] == kept
        scores = [h["Score"] for h in hosts]
        assert all(type(s) is int and 0 <= s <= 10 for s in scores)
        assert len(set(scores)) > 1  # the models decided: not one neutral value

        # lower-case field names, as Go decodes them
        p2 = c.post(f"{shim}/prioritize", json={"pod": pod("d"), "nodenames": kept[:3]})
        assert [h["Host"] for h in p2.json()] == kept[:3]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[1]",
        b'{"Pod": {"spec": {"containers": [{"resources": {"requests": '
        b'{"cpu": "fast"}}}]}}, "NodeNames": ["node-1"]}',
    ],
    ids=["empty", "truncated", "array", "bad-quantity"],
)
def test_malformed_requests_get_400_with_a_reason(stack, content):
    with httpx.Client(timeout=5) as c:
        for verb in ("filter", "prioritize"):
            r = c.post(f"{stack['shim']}/{verb}", content=content)
            assert r.status_code == 400, r.text
            assert r.json()["error"]
        assert c.get(f"{stack['shim']}/healthz").status_code == 200


def test_killed_model_servers_cost_no_answer(stack):
    """Runs last in this module: it stops the agent and the load predictor."""
    shim, procs = stack["shim"], stack["procs"]
    _, body = snapshot(2)
    names = body["nodes"]
    with httpx.Client(timeout=5) as c:
        c.put(f"{shim}/v1/node-state", json=body).raise_for_status()
        before = metric(
            c.get(f"{shim}/metrics").text, 'hydatis_extender_fallbacks_total{reason="agent_failed"}'
        )
        stop_process(procs["agent"])
        took = []
        for i in range(20):
            t0 = time.perf_counter()
            f = c.post(f"{shim}/filter", json={"Pod": pod(f"k{i}"), "NodeNames": names})
            kept = f.json()["NodeNames"]  # kube-scheduler prioritizes what survived
            p = c.post(f"{shim}/prioritize", json={"Pod": pod(f"k{i}"), "NodeNames": kept})
            took.append(time.perf_counter() - t0)
            assert f.status_code == 200 and p.status_code == 200
            assert [h["Host"] for h in p.json()] == kept
        assert max(took) < 2 * DEADLINE_S + 0.2  # two requests, each inside its deadline
        text = c.get(f"{shim}/metrics").text
        after = metric(text, 'hydatis_extender_fallbacks_total{reason="agent_failed"}')
        assert after - before == 20

        stop_process(procs["load"])
        r = c.put(f"{shim}/v1/node-state", json=body)
        assert r.status_code == 200 and r.json()["degraded"] == ["load"]
        f = c.post(f"{shim}/filter", json={"Pod": pod("z"), "NodeNames": names})
        assert f.status_code == 200
        assert (
            metric(
                c.get(f"{shim}/metrics").text,
                'hydatis_extender_fallbacks_total{reason="refresh_load_failed"}',
            )
            == 1
        )
        assert c.get(f"{shim}/readyz").status_code == 200  # degraded, but fresh
