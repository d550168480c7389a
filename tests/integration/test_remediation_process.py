"""The remediation service as a process (``python -m monitoring.remediation``, what
``hydatis remediate serve`` runs), acting for real on a replay through the replay's
Kubernetes API: the exact requests, the cordon and the evictions landing in the replay,
the settings file and environment, a malformed payload, and Prometheus unreachable (a
named 503, the service still up, the delivery retried)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from simulator.engine import simulate
from simulator.k8s_api import ReplayApiServer, ReplayCluster
from simulator.schedulers import make_scheduler
from simulator.synthetic import generate_synthetic
from simulator.workload import compile_workload
from tests.servers import free_port, running_process

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _notification(node: str, fingerprint: str = "abc123") -> dict:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "hydatis-remediation",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "HydatisNodeAnomalous",
                    "node": node,
                    "severity": "warning",
                    "remediation": "cordon_drain",
                },
                "annotations": {},
                "startsAt": "2024-01-01T00:10:00Z",
                "fingerprint": fingerprint,
            }
        ],
    }


@pytest.fixture
def replay():
    ds = generate_synthetic(nodes=10, horizon_s=2 * 3600, seed=4)
    workload = compile_workload(ds)
    cluster = ReplayCluster(workload, owners=dict(zip(ds.pods.pod, ds.pods.workload, strict=True)))
    simulate(workload, make_scheduler("default"), seed=0, control=cluster)
    with ReplayApiServer(cluster) as api:
        yield cluster, api


def _service(tmp_path: Path, settings: dict, monkeypatch: pytest.MonkeyPatch, *flags: str):
    port = free_port()
    cfg = tmp_path / "remediation.yaml"
    cfg.write_text(yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), **settings}))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("HYDATIS_REMEDIATION_MAX_CORDONED_SHARE", "0.2")
    argv = [sys.executable, "-m", "monitoring.remediation", "--config", str(cfg)]
    argv += ["--port", str(port), *flags]
    url = f"http://127.0.0.1:{port}"
    return running_process(
        argv, ready_url=f"{url}/readyz", url=url, port=port, log=tmp_path / "svc.log", timeout=60
    )


def test_acts_on_the_replay_through_its_kubernetes_api(tmp_path, replay, monkeypatch) -> None:
    cluster, api = replay
    node = cluster.workload.node_names[6]
    on_node = {cluster.workload.pods[i].name for i in cluster.pods_on(6).tolist()}
    assert on_node
    with _service(tmp_path, {"kube_api": api.url}, monkeypatch, "--act") as svc:
        bad = httpx.post(f"{svc.url}/v1/alerts", content=b'{"version": "4", "alerts": [{}]}')
        assert bad.status_code == 400
        assert bad.json() == {
            "error": "alerts[0].status: expected 'firing' or 'resolved', got None"
        }
        first = httpx.post(f"{svc.url}/v1/alerts", json=_notification(node), timeout=30).json()
        again = httpx.post(f"{svc.url}/v1/alerts", json=_notification(node), timeout=30).json()
        metrics = httpx.get(f"{svc.url}/metrics").text
    decision = first["decisions"][0]
    assert (decision["action"], decision["result"]) == ("cordon_drain", "done"), decision
    assert decision["reason"] == f"cordoned; evicted {len(on_node)} of {len(on_node)} pod(s)"
    assert again["decisions"][0]["result"] == "duplicate"
    # the replay saw exactly a cordon and one Eviction per pod on the node
    writes = [(r.method, r.path) for r in cluster.requests if r.method != "GET"]
    assert writes[0] == ("PATCH", f"/api/v1/nodes/{node}")
    assert sorted(writes[1:]) == sorted(
        ("POST", f"/api/v1/namespaces/default/pods/{p}/eviction") for p in on_node
    )
    assert cluster.unschedulable[6]
    assert sorted(cluster._evict) == sorted(cluster.pod_index[p] for p in on_node)
    # the blast-radius cap came from the environment (0.2 of 10 nodes: 2)
    record = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[0])
    assert record["details"]["pool"] == {"name": "default", "size": 10, "cordoned": 0, "cap": 2}
    assert record["dry_run"] is False
    assert f'hydatis_remediation_evictions_total{{result="evicted"}} {len(on_node)}.0' in metrics
    assert "hydatis_remediation_dry_run 0.0" in metrics


def test_prometheus_unreachable_is_a_named_503_and_the_service_stays_up(
    tmp_path, replay, monkeypatch
) -> None:
    cluster, api = replay
    node = cluster.workload.node_names[2]
    settings = {
        "kube_api": api.url,
        "prometheus_url": f"http://127.0.0.1:{free_port()}",
        "prometheus_retries": 2,
        "prometheus_timeout_s": 1,
    }
    with _service(tmp_path, settings, monkeypatch) as svc:
        for _ in range(2):
            resp = httpx.post(f"{svc.url}/v1/alerts", json=_notification(node), timeout=60)
            assert resp.status_code == 503
            assert resp.json()["error"].startswith("PrometheusUnavailable: Prometheus at")
            assert "after 3 tries" in resp.json()["error"]
        assert httpx.get(f"{svc.url}/healthz").json() == {"status": "ok"}
        assert svc.process.poll() is None
    assert not [r for r in cluster.requests if r.method != "GET"]
    log = (tmp_path / "svc.log").read_text()
    assert "retry 1/2" in log and "webhook deferred (PrometheusUnavailable)" in log
