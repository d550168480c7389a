"""The replay's Kubernetes API (simulator/k8s_api.py) and the engine's cluster-control hook:
a cordon keeps pods off a node, an eviction moves them, the API answers the official
client, and a run with an idle control is the run without one."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from monitoring.remediation.actions import extender_blocked_nodes
from monitoring.remediation.kube import KubeCluster, connect
from simulator.engine import PENDING, RUNNING, simulate
from simulator.k8s_api import (
    EXTENDER_REJECT_REASON,
    ReplayApiServer,
    ReplayCluster,
    extender_configmap,
    extender_deployment,
)
from simulator.schedulers import make_scheduler
from simulator.synthetic import generate_synthetic
from simulator.workload import compile_workload

HOUR = 3600.0


@lru_cache(maxsize=1)
def _dataset():
    ds = generate_synthetic(nodes=8, horizon_s=2 * HOUR, seed=3)
    return ds, dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))


def replay() -> ReplayCluster:
    ds, owners = _dataset()
    return ReplayCluster(compile_workload(ds), owners=owners)


def run(cluster: ReplayCluster | None):
    ds, _ = _dataset()
    return simulate(compile_workload(ds), make_scheduler("default"), seed=0, control=cluster)


def test_an_idle_control_changes_nothing() -> None:
    plain, hooked = run(None), run(replay())
    np.testing.assert_array_equal(plain.node_cpu, hooked.node_cpu)
    assert plain.placements == hooked.placements
    assert hooked.extra == {"api_evictions": 0}


def test_a_cordoned_node_gets_no_new_pods_and_evictions_move_pods() -> None:
    cluster = replay()
    done = {}

    def act(c: ReplayCluster, t: float) -> None:
        if t == HOUR and not done:
            c.set_unschedulable(2, True)
            on = c.pods_on(2)
            for i in on.tolist():
                c.request_eviction(i)
            done["evicted"] = on.size

    cluster.observers.append(act)
    result = run(cluster)
    assert done["evicted"] > 0
    assert result.extra["api_evictions"] == done["evicted"]
    late = result.segments[result.segments[:, 2] >= HOUR]
    assert late.size and not (late[:, 1] == 2).any(), "a pod was placed on the cordoned node"
    after = result.times > HOUR + 60
    assert result.node_cpu[after, 2].max() == 0.0
    assert (cluster.state[cluster.pod_node == 2] != RUNNING).all()


@pytest.fixture
def served():
    cluster = replay()
    cluster.configmaps[("hydatis-system", "hydatis-shim-config")] = extender_configmap(
        {"mode": "active", "rollout_percent": 100}
    )
    cluster.deployments[("hydatis-system", "hydatis-shim")] = extender_deployment()
    run(cluster)
    with ReplayApiServer(cluster) as server:
        yield cluster, server, KubeCluster(connect(server.url))


def test_the_official_client_reads_the_replay(served) -> None:
    cluster, _, kube = served
    nodes = kube.list_nodes()
    assert [n["metadata"]["name"] for n in nodes] == cluster.workload.node_names
    node = nodes[0]
    assert node["status"]["capacity"]["pods"] == "110"
    running = kube.pods_on_node(node["metadata"]["name"])
    assert len(running) == cluster.pods_on(0).size > 0
    pod = running[0]
    assert pod["status"]["phase"] == "Running"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert pod["spec"]["nodeName"] == node["metadata"]["name"]
    assert kube.get_node("no-such-node") is None
    assert kube.list_pdbs() == []


def test_cordon_and_evict_through_the_api(served) -> None:
    cluster, _server, kube = served
    name = cluster.workload.node_names[1]
    kube.cordon(name, {"hydatis.io/cordoned-by": "test"})
    node = kube.get_node(name)
    assert node["spec"]["unschedulable"] is True
    assert node["metadata"]["annotations"] == {"hydatis.io/cordoned-by": "test"}
    assert cluster.unschedulable[1]
    victim = kube.pods_on_node(name)[0]["metadata"]
    assert kube.evict(victim["namespace"], victim["name"]) == "evicted"
    again = kube.pods_on_node(name)
    gone = {p["metadata"]["name"]: p["metadata"].get("deletionTimestamp") for p in again}
    assert gone[victim["name"]] is not None
    assert kube.evict("default", "no-such-pod") == "gone"
    posts = [r for r in cluster.requests if r.method == "POST"]
    assert posts[0].path == f"/api/v1/namespaces/default/pods/{victim['name']}/eviction"
    assert posts[0].body["kind"] == "Eviction"


def test_pending_pods_carry_kube_schedulers_message(served) -> None:
    cluster, _, kube = served
    i = int(np.flatnonzero(cluster.state == RUNNING)[0])
    cluster.state[i], cluster.pod_node[i] = PENDING, -1  # a pod waiting for a node
    pending = np.flatnonzero(cluster.state == PENDING)
    items = kube.pending_pods()
    assert len(items) == pending.size
    assert cluster.workload.pods[i].name in {p["metadata"]["name"] for p in items}
    cond = items[0]["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "PodScheduled",
        "False",
        "Unschedulable",
    )
    assert cond["message"].startswith(f"0/{cluster.workload.n_nodes} nodes are available: ")


def test_pending_message_names_extender_rejections() -> None:
    cluster = replay()
    run(cluster)
    w = cluster.workload
    i = int(np.flatnonzero(cluster.state == RUNNING)[0])
    cluster.state[i], cluster.pod_node[i] = PENDING, -1  # it waits; the extender rejects all
    cluster.extender_filter = lambda j: np.ones(w.n_nodes, dtype=bool)
    message = cluster.pod_object(i)["status"]["conditions"][0]["message"]
    blocked, total = extender_blocked_nodes(message)
    assert EXTENDER_REJECT_REASON in message
    assert blocked > 0 and total == w.n_nodes


def test_configmap_and_deployment_patches_merge(served) -> None:
    _, _, kube = served
    kube.patch_configmap("hydatis-system", "hydatis-shim-config", {"shim.yaml": "mode: shadow\n"})
    kube.patch_deployment(
        "hydatis-system",
        "hydatis-shim",
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"a": "1"}},
                    "spec": {
                        "containers": [{"name": "shim", "env": [{"name": "X", "value": "y"}]}]
                    },
                }
            }
        },
    )
    cm = kube.read_configmap("hydatis-system", "hydatis-shim-config")
    assert cm["data"]["shim.yaml"] == "mode: shadow\n"
    dep = kube.read_deployment("hydatis-system", "hydatis-shim")
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"a": "1"}
    assert dep["spec"]["template"]["spec"]["containers"] == [
        {"name": "shim", "env": [{"name": "X", "value": "y"}]}
    ]
    assert dep["spec"]["selector"]  # the rest of the object is kept
    assert kube.read_configmap("hydatis-system", "missing") is None


def test_unsupported_field_selector_is_a_400(served) -> None:
    import httpx

    _, server, _ = served
    resp = httpx.get(f"{server.url}/api/v1/pods", params={"fieldSelector": "metadata.name=x"})
    assert resp.status_code == 400
    assert resp.json()["message"] == 'field label not supported: "metadata.name"'


def test_metrics_endpoint_uses_cluster_names(served) -> None:
    import httpx

    cluster, server, _ = served
    first = httpx.get(f"{server.url}/metrics").text
    second = httpx.get(f"{server.url}/metrics").text
    name = cluster.workload.node_names[0]
    line = f'node_cpu_seconds_total{{node="{name}",cpu="0",mode="idle"}}'
    assert line in first
    for family in (
        "node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes",
        "kube_node_spec_unschedulable",
        "kube_pod_status_phase",
        "kube_pod_created",
    ):
        assert f"# TYPE {family} " in first
    value = [float(x.rsplit(" ", 1)[1]) for x in second.splitlines() if x.startswith(line)]
    assert value[0] >= 0.0
