"""The exact Kubernetes API requests remediation sends through the ``kubernetes`` client.

A real HTTP server on loopback (``tests.kube_api.ApiRecorder``) plays the API server:
it answers from a small table of objects and records every request (method, path,
query, content type, body), so these tests see what a cluster would see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring.remediation.actions import CordonDrain, ExtenderSettings, extender_blocked_nodes
from monitoring.remediation.config import RemediationConfig
from monitoring.remediation.errors import KubeApiError
from monitoring.remediation.kube import KubeCluster, connect
from monitoring.remediation.metrics import RemediationMetrics
from monitoring.remediation.payload import parse_notification
from monitoring.remediation.service import Remediator
from tests.kube_api import Answer, ApiRecorder, Routes, serving

SMP = "application/strategic-merge-patch+json"
NOW = 1_700_000_000.0  # the tests' clock


@pytest.fixture
def api() -> Iterator[Callable[[Routes], ApiRecorder]]:
    with serving() as start:
        yield start


def node(name: str, *, cordoned: bool = False, pool: str | None = None) -> dict:
    labels = {"kubernetes.io/hostname": name}
    if pool:
        labels["hydatis.io/node-pool"] = pool
    spec = {"unschedulable": True} if cordoned else {}
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


def pod(
    name: str,
    *,
    ns: str = "default",
    owner: str | None = "ReplicaSet",
    labels: dict | None = None,
    phase: str = "Running",
    **meta: Any,
) -> dict:
    metadata: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {}, **meta}
    if owner:
        metadata["ownerReferences"] = [{"kind": owner, "name": f"{name}-owner", "controller": True}]
    return {"metadata": metadata, "spec": {"nodeName": "n1"}, "status": {"phase": phase}}


def lst(items: list) -> tuple[int, dict]:
    return 200, {"kind": "List", "metadata": {}, "items": items}


def config(tmp_path: Path, **kw: Any) -> RemediationConfig:
    return RemediationConfig(audit_log=tmp_path / "audit.jsonl", **kw)


def drain_for(rec: ApiRecorder, tmp_path: Path, **kw: Any) -> CordonDrain:
    cfg = config(tmp_path, kube_api=rec.url, **kw)
    return CordonDrain(KubeCluster(connect(rec.url)), cfg, RemediationMetrics(), lambda: NOW)


PODS_ON_N1 = [
    pod("web-1", labels={"app": "web"}),
    pod("web-2", labels={"app": "web"}),
    pod("api-0", labels={"app": "api"}),
    pod("logs-x", owner="DaemonSet"),
    pod("bare"),
    pod("static", annotations={"kubernetes.io/config.mirror": "abc"}),
    pod("dns", ns="kube-system"),
    pod("going", deletionTimestamp="2023-11-14T22:00:00Z"),
    pod("job-done", owner="Job", phase="Succeeded"),
]
PODS_ON_N1[4]["metadata"].pop("ownerReferences")
PDBS = [
    {
        "metadata": {"name": "web-pdb", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}},
        "status": {"disruptionsAllowed": 1},
    }
]


def cluster_routes(nodes: list[dict], pods: list[dict], eviction: Answer = (201, {})) -> dict:
    routes: dict[tuple[str, str], Answer] = {
        ("GET", "/api/v1/nodes"): lst(nodes),
        ("GET", "/api/v1/pods"): lst(pods),
        ("GET", "/apis/policy/v1/poddisruptionbudgets"): lst(PDBS),
    }
    for n in nodes:
        name = n["metadata"]["name"]
        routes[("GET", f"/api/v1/nodes/{name}")] = (200, n)
        routes[("PATCH", f"/api/v1/nodes/{name}")] = (200, n)
    for p in pods:
        m = p["metadata"]
        routes[("POST", f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/eviction")] = (
            eviction
        )
    return routes


TEN_NODES = [node(f"n{i}") for i in range(1, 11)]


def test_cordon_drain_sends_what_kubectl_cordon_and_drain_send(api, tmp_path: Path) -> None:
    rec = api(cluster_routes(TEN_NODES, PODS_ON_N1))
    out = drain_for(rec, tmp_path).run("n1", "HydatisNodeCPUHot n1", dry_run=False)
    assert out.result == "done", out.reason
    calls = [(s.method, s.path) for s in rec.seen]
    assert calls == [
        ("GET", "/api/v1/nodes/n1"),
        ("GET", "/api/v1/nodes"),
        ("GET", "/api/v1/pods"),
        ("GET", "/apis/policy/v1/poddisruptionbudgets"),
        ("PATCH", "/api/v1/nodes/n1"),
        ("POST", "/api/v1/namespaces/default/pods/web-1/eviction"),
        ("POST", "/api/v1/namespaces/default/pods/api-0/eviction"),
    ]
    assert rec.seen[2].query == {"fieldSelector": ["spec.nodeName=n1"], "limit": ["500"]}
    patch = rec.seen[4]
    assert patch.content_type == SMP
    assert patch.body == {
        "spec": {"unschedulable": True},
        "metadata": {
            "annotations": {
                "hydatis.io/cordoned-by": "hydatis-remediation",
                "hydatis.io/cordoned-at": "2023-11-14T22:13:20Z",
                "hydatis.io/cordon-reason": "HydatisNodeCPUHot n1",
            }
        },
    }
    for seen, name in zip(rec.seen[5:], ["web-1", "api-0"], strict=True):
        assert seen.content_type == "application/json"
        assert seen.body == {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": "default"},
        }
    why = {s["pod"]: s["why"] for s in out.details["skipped"]}
    assert why == {
        "default/web-2": "PodDisruptionBudget web-pdb allows no more disruptions",
        "default/logs-x": "owned by a DaemonSet (its pods belong to the node)",
        "default/bare": "not owned by a controller (nothing would recreate it)",
        "default/static": "mirror (static) pod",
        "kube-system/dns": "namespace kube-system is protected",
        "default/going": "already terminating",
        "default/job-done": "already finished (Succeeded)",
    }
    assert out.details["evictions"] == {"default/web-1": "evicted", "default/api-0": "evicted"}


def test_dry_run_reads_and_changes_nothing(api, tmp_path: Path) -> None:
    rec = api(cluster_routes(TEN_NODES, PODS_ON_N1))
    out = drain_for(rec, tmp_path).run("n1", "HydatisNodeAnomalous n1", dry_run=True)
    assert out.result == "dry_run"
    assert out.details["evict"] == ["default/web-1", "default/api-0"]
    assert rec.writes() == []


def test_server_side_pdb_refusal_is_recorded_and_retried_later(api, tmp_path: Path) -> None:
    rec = api(cluster_routes(TEN_NODES, PODS_ON_N1, eviction=(429, {"message": "PDB"})))
    out = drain_for(rec, tmp_path).run("n1", "x", dry_run=False)
    assert out.result == "partial"
    assert set(out.details["evictions"].values()) == {"blocked_by_pdb"}


def test_a_pod_already_gone_is_not_a_failure(api, tmp_path: Path) -> None:
    rec = api(cluster_routes(TEN_NODES, PODS_ON_N1[:1], eviction=(404, {"message": "gone"})))
    out = drain_for(rec, tmp_path).run("n1", "x", dry_run=False)
    assert out.result == "done"
    assert out.details["evictions"] == {"default/web-1": "gone"}


def test_per_action_eviction_cap(api, tmp_path: Path) -> None:
    rec = api(cluster_routes(TEN_NODES, PODS_ON_N1))
    out = drain_for(rec, tmp_path, max_evictions_per_action=1).run("n1", "x", dry_run=False)
    assert list(out.details["evictions"]) == ["default/web-1"]
    assert {"pod": "default/api-0", "why": "over the per-action eviction cap"} in (
        out.details["skipped"]
    )


@pytest.mark.parametrize(
    ("nodes", "share", "reason"),
    [
        (
            [node("n1"), node("n2", cordoned=True), *TEN_NODES[2:]],
            0.1,
            "cordoning n1 would make 2 of 10 nodes of pool default cordoned; the cap is 1",
        ),
        (
            [node("n1", pool="gpu"), node("n2", pool="gpu", cordoned=True), *TEN_NODES[2:]],
            0.5,
            "n1 is the last schedulable node of pool gpu",
        ),
        (
            [node("n1", pool="small"), node("n2", pool="small"), node("n3", pool="small")],
            0.2,
            "cordoning n1 would make 1 of 3 nodes of pool small cordoned; the cap is 0",
        ),
    ],
    ids=["pool-share-cap", "last-schedulable-node", "pool-too-small-for-the-share"],
)
def test_blast_radius_refuses_before_any_change(api, tmp_path: Path, nodes, share, reason):
    rec = api(cluster_routes(nodes, PODS_ON_N1))
    out = drain_for(rec, tmp_path, max_cordoned_share=share).run("n1", "x", dry_run=False)
    assert out.result == "refused"
    assert out.reason.startswith(reason)
    assert [(s.method, s.path) for s in rec.seen] == [
        ("GET", "/api/v1/nodes/n1"),
        ("GET", "/api/v1/nodes"),
    ]


def test_an_already_cordoned_node_is_drained_without_a_new_cordon(api, tmp_path: Path) -> None:
    nodes = [node("n1", cordoned=True), *TEN_NODES[1:]]
    rec = api(cluster_routes(nodes, PODS_ON_N1[:1]))
    out = drain_for(rec, tmp_path).run("n1", "x", dry_run=False)
    assert out.result == "done"
    assert [(s.method, s.path) for s in rec.writes()] == [
        ("POST", "/api/v1/namespaces/default/pods/web-1/eviction")
    ]


def test_unknown_node_is_refused(api, tmp_path: Path) -> None:
    rec = api(cluster_routes(TEN_NODES, []))
    out = drain_for(rec, tmp_path).run("ghost", "x", dry_run=False)
    assert (out.result, out.reason) == ("refused", "no node named ghost")


def test_api_unreachable_is_a_named_error(tmp_path: Path) -> None:
    cfg = config(tmp_path, kube_api="http://127.0.0.1:9", kube_timeout_s=2)
    cluster = KubeCluster(connect(cfg.kube_api), timeout_s=2)
    cluster.api_client.configuration.retries = 0
    with pytest.raises(KubeApiError, match="Kubernetes API unreachable"):
        CordonDrain(cluster, cfg, RemediationMetrics()).run("n1", "x", dry_run=False)


# ------------------------------------------------------------------------- the extender
SHIM_YAML = "source: feast\nmode: active\nrollout_percent: 100\n"


def extender_routes(deployment_env: list[dict] | None, settings: str = SHIM_YAML) -> dict:
    cm = {"metadata": {"name": "hydatis-shim-config"}, "data": {"shim.yaml": settings}}
    base = "/api/v1/namespaces/hydatis-system/configmaps/hydatis-shim-config"
    dep_path = "/apis/apps/v1/namespaces/hydatis-system/deployments/hydatis-shim"
    routes: dict[tuple[str, str], Answer] = {("GET", base): (200, cm), ("PATCH", base): (200, cm)}
    if deployment_env is not None:
        dep = {
            "metadata": {"name": "hydatis-shim"},
            "spec": {
                "template": {"spec": {"containers": [{"name": "shim", "env": deployment_env}]}}
            },
        }
        routes[("GET", dep_path)] = (200, dep)
        routes[("PATCH", dep_path)] = (200, dep)
    return routes


def settings_for(rec: ApiRecorder, tmp_path: Path) -> ExtenderSettings:
    cfg = config(tmp_path, kube_api=rec.url)
    return ExtenderSettings(KubeCluster(connect(rec.url)), cfg, lambda: NOW)


def test_fallback_patches_the_configmap_then_rolls_the_deployment(api, tmp_path: Path) -> None:
    rec = api(extender_routes([{"name": "HYDATIS_SHIM_MODE", "value": "active"}]))
    out = settings_for(rec, tmp_path).change("extender_fallback", dry_run=False)
    assert out.result == "done", out.reason
    assert out.reason == "set mode active -> shadow"
    cm_patch, dep_patch = rec.writes()
    assert (cm_patch.path, cm_patch.content_type) == (
        "/api/v1/namespaces/hydatis-system/configmaps/hydatis-shim-config",
        SMP,
    )
    assert yaml.safe_load(cm_patch.body["data"]["shim.yaml"]) == {
        "source": "feast",
        "mode": "shadow",
        "rollout_percent": 100.0,
    }
    assert dep_patch.path == "/apis/apps/v1/namespaces/hydatis-system/deployments/hydatis-shim"
    assert dep_patch.content_type == SMP
    assert dep_patch.body == {
        "spec": {
            "template": {
                "metadata": {"annotations": {"hydatis.io/remediated-at": "2023-11-14T22:13:20Z"}},
                "spec": {
                    "containers": [
                        {"name": "shim", "env": [{"name": "HYDATIS_SHIM_MODE", "value": "shadow"}]}
                    ]
                },
            }
        }
    }


def test_rollout_lower_reads_the_deployment_variable_first(api, tmp_path: Path) -> None:
    env = [{"name": "HYDATIS_SHIM_ROLLOUT_PERCENT", "value": "50"}]
    rec = api(extender_routes(env))
    out = settings_for(rec, tmp_path).change("rollout_lower", dry_run=False)
    assert out.details["before"]["rollout_percent"] == 50.0
    assert out.details["after"]["rollout_percent"] == 25.0
    dep_patch = rec.writes()[1]
    assert dep_patch.body["spec"]["template"]["spec"]["containers"] == [
        {"name": "shim", "env": [{"name": "HYDATIS_SHIM_ROLLOUT_PERCENT", "value": "25"}]}
    ]


def test_without_a_deployment_only_the_configmap_changes(api, tmp_path: Path) -> None:
    rec = api(extender_routes(None))
    out = settings_for(rec, tmp_path).change("rollout_lower", dry_run=False)
    assert out.result == "done"
    assert [s.method for s in rec.writes()] == ["PATCH"]
    assert "no Deployment" in out.details["apply"]


@pytest.mark.parametrize(
    ("action", "settings", "result"),
    [
        ("extender_fallback", "mode: shadow\n", "noop"),
        ("rollout_lower", "rollout_percent: 0\n", "noop"),
        ("rollout_lower", "rollout_percent: 1\n", "done"),
    ],
    ids=["already-shadow", "rollout-already-zero", "rollout-one-to-zero"],
)
def test_extender_change_edges(api, tmp_path: Path, action, settings, result) -> None:
    rec = api(extender_routes([], settings))
    out = settings_for(rec, tmp_path).change(action, dry_run=False)
    assert out.result == result
    assert bool(rec.writes()) == (result == "done")


def test_missing_configmap_is_refused(api, tmp_path: Path) -> None:
    rec = api({})
    out = settings_for(rec, tmp_path).change("extender_fallback", dry_run=False)
    assert (out.result, out.reason) == (
        "refused",
        "no ConfigMap hydatis-system/hydatis-shim-config",
    )


# ------------------------------------------------------------------------- pending pods
def pending(name: str, message: str, created: str = "2023-11-14T21:00:00Z") -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
        "spec": {},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "message": message}],
        },
    }


BLOCKED = (
    "0/10 nodes are available: 2 Insufficient cpu, 8 predicted CPU utilisation 0.93 after "
    "placement exceeds the hot threshold 0.85. preemption: 0/10 nodes are available: 10 "
    "Preemption is not helpful for scheduling."
)
CAPACITY = "0/10 nodes are available: 10 Insufficient cpu. preemption: ..."


@pytest.mark.parametrize(
    ("message", "blocked", "total"),
    [
        (BLOCKED, 8, 10),
        (CAPACITY, 0, 10),
        (
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 node flagged anomalous "
            "(anomaly score 0.91).",
            2,
            3,
        ),
        ("", 0, 0),
    ],
    ids=["extender-filters-fitting-nodes", "capacity", "anomalous-with-decimals", "empty"],
)
def test_extender_blocked_nodes(message: str, blocked: int, total: int) -> None:
    assert extender_blocked_nodes(message) == (blocked, total)


def alert(name: str, labels: dict | None = None, fingerprint: str = "f1") -> dict:
    return {
        "status": "firing",
        "labels": {"alertname": name, **(labels or {})},
        "startsAt": "2023-11-14T22:00:00.123456789Z",
        "fingerprint": fingerprint,
    }


@pytest.mark.parametrize(
    ("pods", "result", "writes"),
    [
        ([pending("stuck", BLOCKED)], "done", 2),
        ([pending("stuck", CAPACITY)], "noop", 0),
        ([pending("young", BLOCKED, created="2023-11-14T22:10:00Z")], "noop", 0),
    ],
    ids=["extender-keeps-pods-off-fitting-nodes", "capacity-not-extender", "not-late-yet"],
)
def test_pending_pods_switch_the_extender_only_when_it_is_the_cause(
    api, tmp_path: Path, pods, result, writes
) -> None:
    routes = extender_routes([])
    routes[("GET", "/api/v1/pods")] = lst(pods)
    rec = api(routes)
    cfg = config(tmp_path, kube_api=rec.url, dry_run=False)
    r = Remediator(cfg, cluster=KubeCluster(connect(rec.url)), clock=lambda: NOW)
    two = parse_notification(
        {
            "version": "4",
            "alerts": [
                alert("HydatisPodPendingTooLong", {"pod": "stuck"}, "a"),
                alert("HydatisPodPendingTooLong", {"pod": "other"}, "b"),
            ],
        }
    )
    first, second = r.handle(two)
    assert first.result == result
    # one decision per notification for a cluster-wide action
    assert second.result == "noop" and "earlier in this notification" in second.reason
    pod_lists = [s for s in rec.seen if s.path == "/api/v1/pods"]
    assert len(pod_lists) == 1
    assert pod_lists[0].query["fieldSelector"] == ["status.phase=Pending"]
    assert len(rec.writes()) == writes


def test_markers_and_defaults_match_the_extender() -> None:
    """Remediation recognises the extender's own filter reasons and defaults."""
    import numpy as np

    from monitoring.remediation.actions import (
        EXTENDER_REASON_MARKERS,
        SHIM_DEFAULT_MODE,
        SHIM_DEFAULT_ROLLOUT,
    )
    from scheduler_shim.config import ShimConfig
    from scheduler_shim.scoring import filter_reasons
    from simulator.k8s_api import EXTENDER_REJECT_REASON

    reasons = filter_reasons(
        np.array([0.95, 0.1, 0.1]),
        np.array([0.1, 0.99, 0.1]),
        np.array([0.1, 0.1, 0.9]),
        np.array([False, False, True]),
        hot=0.85,
        mem_hot=0.95,
    )
    for reason in [*reasons, EXTENDER_REJECT_REASON]:
        assert any(m in reason for m in EXTENDER_REASON_MARKERS), reason
    shim = ShimConfig()
    assert (shim.mode, shim.rollout_percent) == (SHIM_DEFAULT_MODE, SHIM_DEFAULT_ROLLOUT)
