"""The ML scheduler's health as fallback reads it (Deployment readiness, leader Lease
freshness) and which workloads it would patch, against the replay's API server."""

from __future__ import annotations

from functools import lru_cache

import pytest

from monitoring.remediation.config import RemediationConfig
from operations._fallback_kube import OpsCluster, connect
from operations._fallback_replay import SchedulerReplay
from operations._rollout_share import ShareControl
from operations.fallback import Fallback
from simulator.k8s_api import ReplayApiServer, extender_configmap, extender_deployment
from simulator.synthetic import generate_synthetic
from simulator.workload import compile_workload

SYS = "hydatis-system"


@lru_cache(maxsize=1)
def _workload():
    return compile_workload(generate_synthetic(nodes=4, horizon_s=1800.0, seed=1))


def _setup(ready: int, lease_age_s: float | None):
    cluster = SchedulerReplay(_workload())
    cluster.configmaps[(SYS, "hydatis-shim-config")] = extender_configmap({"rollout_percent": 50})
    cluster.deployments[(SYS, "hydatis-shim")] = extender_deployment()
    cluster.deployments[(SYS, "ml-scheduler")]["status"]["readyReplicas"] = ready
    now = float(cluster.epoch) + 10_000.0
    if lease_age_s is None:
        cluster.lease["metadata"]["name"] = "someone-else"  # no Lease of that name
    else:
        from datetime import UTC, datetime

        renewed = datetime.fromtimestamp(now - lease_age_s, UTC)
        cluster.lease["spec"]["renewTime"] = renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    api = ReplayApiServer(cluster).start()
    ops = OpsCluster(connect(api.url))
    fb = Fallback(ops, ShareControl(ops, RemediationConfig(kube_api=api.url)), clock=lambda: now)
    return cluster, api, fb


@pytest.mark.parametrize(
    ("ready", "lease_age", "up", "why"),
    [
        (2, 3.0, True, "2/2 ready"),
        (0, 3.0, False, "0/2 ready"),
        (2, 120.0, False, "not renewed for 120 s"),
        (1, 20.0, True, "lease renewed 20 s ago"),  # within the 30 s default
        (2, None, True, "2/2 ready"),
    ],
    ids=["healthy", "no-ready-replica", "stale-lease", "lease-recent-enough", "no-lease"],
)
def test_health(ready: int, lease_age: float | None, up: bool, why: str) -> None:
    _, api, fb = _setup(ready, lease_age)
    try:
        health = fb.health()
        assert health.up is up and why in health.reason
    finally:
        api.stop()


def test_a_replicaset_owned_by_a_deployment_is_left_to_its_deployment() -> None:
    cluster, api, fb = _setup(0, 300.0)
    try:
        cluster.store["ReplicaSet"][("default", "web-abc")] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "web-abc",
                "namespace": "default",
                "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}],
            },
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"schedulerName": "ml-scheduler"}},
            },
        }
        start = len(cluster.requests)
        report = fb.on(dry_run=False)
        patched = [r.path for r in cluster.requests[start:] if r.method == "PATCH"]
        assert not any("replicasets" in p for p in patched)
        assert [o.result for o in report.outcomes if o.action == "fallback_template"] == ["noop"]
        assert fb.status()["workloads"][0]["owned_by_deployment"] is True
    finally:
        api.stop()
