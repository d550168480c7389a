"""``hydatis fallback`` at the HTTP boundary: the exact Kubernetes API requests the
``kubernetes`` client sends for on / off / status, against the replay's API server (a real
HTTP server on loopback that records every request and keeps the objects' state, so a
repeated ``on`` sees what the first one did).

The replay: 8 nodes, 2 h; four workloads use the ML scheduler (a Deployment, a
StatefulSet, a bare ReplicaSet, a Job); the ML scheduler is down from 10 min on. At 1 h an
operator runs the commands; the engine then places what fallback released.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np
import pytest
import yaml

from monitoring.remediation.audit import AuditLog
from monitoring.remediation.config import RemediationConfig
from operations._fallback_kube import OpsCluster, connect
from operations._fallback_replay import RoutedScheduler, SchedulerReplay
from operations._rollout_share import ShareControl
from operations.fallback import (
    ANNOTATION_PREVIOUS_SCHEDULER,
    MEMORY_PREVIOUS_SHARE,
    Fallback,
    selector_matches,
)
from simulator.engine import simulate
from simulator.k8s_api import ReplayApiServer, extender_configmap, extender_deployment
from simulator.schedulers import make_scheduler
from simulator.synthetic import generate_synthetic
from simulator.workload import compile_workload

HOUR = 3600.0
DOWN_AT, ACT_AT = 600.0, HOUR
SMP = "application/strategic-merge-patch+json"
NS = "default"
SYS = "hydatis-system"


@lru_cache(maxsize=1)
def _dataset():
    ds = generate_synthetic(nodes=8, horizon_s=2 * HOUR, seed=3)
    owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
    w = compile_workload(ds)
    arrival = dict(zip((s.name for s in w.pods), w.arrival.tolist(), strict=True))
    late = sorted({owners[p] for p, t in arrival.items() if DOWN_AT < t < ACT_AT})
    assert len(late) >= 4, "the synthetic trace must have workloads arriving in the outage"
    kinds = dict(zip(late[:4], ["Deployment", "StatefulSet", "ReplicaSet", "Job"], strict=True))
    return ds, owners, kinds


def _replay(*, down: bool = True) -> tuple[SchedulerReplay, Any]:
    ds, owners, kinds = _dataset()
    workload = compile_workload(ds)
    cluster = SchedulerReplay(
        workload,
        owners=owners,
        kinds=kinds,
        schedulers=dict.fromkeys(kinds, "ml-scheduler"),
        ml_down=[(DOWN_AT, 10 * HOUR)] if down else [],
    )
    cluster.configmaps[(SYS, "hydatis-shim-config")] = extender_configmap({"rollout_percent": 50})
    cluster.deployments[(SYS, "hydatis-shim")] = extender_deployment()
    return cluster, workload


def _fallback(url: str, cluster: SchedulerReplay, audit: AuditLog | None = None) -> Fallback:
    ops = OpsCluster(connect(url))
    share = ShareControl(ops, RemediationConfig(kube_api=url))
    return Fallback(ops, share, audit=audit, clock=cluster.now)


def _writes(reqs) -> list[tuple[str, str, str, Any]]:
    return [(r.method, r.path, r.content_type, r.body) for r in reqs if r.method != "GET"]


@lru_cache(maxsize=2)
def _run(down: bool = True) -> dict[str, Any]:
    """Replay once; at ACT_AT run status, dry-run on, on, on again, status; record."""
    cluster, workload = _replay(down=down)
    seen: dict[str, Any] = {}
    api = ReplayApiServer(cluster).start()
    audit_path = f"/tmp/fallback-test-audit-{id(cluster)}.jsonl"
    audit = AuditLog(audit_path)
    fb = _fallback(api.url, cluster, audit)

    def operator(c: SchedulerReplay, t: float) -> None:
        if t != ACT_AT:
            return
        seen["pending_before"] = {
            i: c.pod_scheduler[i] for i in c.alive_pods().tolist() if c.state[i] == 1
        }
        for phase, call in (
            ("status0", lambda: fb.status()),
            ("dry", lambda: fb.on(dry_run=True)),
            ("on", lambda: fb.on(dry_run=False)),
            ("again", lambda: fb.on(dry_run=False)),
            ("status1", lambda: fb.status()),
        ):
            start = len(c.requests)
            seen[phase] = call()
            seen[phase + "_requests"] = list(c.requests[start:])

    cluster.observers.append(operator)
    default = make_scheduler("default")
    routed = RoutedScheduler(
        cluster, {"default-scheduler": default, "ml-scheduler": make_scheduler("default")}
    )
    try:
        result = simulate(workload, routed, seed=0, control=cluster)
    finally:
        api.stop()
    seen.update(result=result, cluster=cluster, audit=list(audit.records()), routed=routed)
    return seen


def test_selector_matching() -> None:
    sel = {"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "t", "operator": "Exists"}]}
    assert selector_matches(sel, {"app": "a", "t": "x"})
    assert not selector_matches(sel, {"app": "a"})
    assert not selector_matches({}, {"app": "a"})


def test_status_before_reports_the_scheduler_down_and_the_workloads() -> None:
    run = _run()
    status = run["status0"]
    assert status["scheduler"]["up"] is False
    assert "0/2 ready" in status["scheduler"]["reason"]
    assert status["fallback_on"] is False
    assert status["share"] == {"mode": "active", "rollout_percent": 50.0}
    kinds = sorted(w["kind"] for w in status["workloads"])
    assert kinds == ["Deployment", "Job", "ReplicaSet", "StatefulSet"]
    assert sum(w["pending_ml_pods"] for w in status["workloads"]) > 0
    assert all(r.method == "GET" for r in run["status0_requests"])
    paths = {r.path for r in run["status0_requests"]}
    assert {
        f"/apis/apps/v1/namespaces/{SYS}/deployments/ml-scheduler",
        f"/apis/coordination.k8s.io/v1/namespaces/{SYS}/leases/ml-scheduler",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/statefulsets",
        "/apis/apps/v1/replicasets",
        "/apis/batch/v1/jobs",
        "/api/v1/pods",
    } <= paths
    pods = [r for r in run["status0_requests"] if r.path == "/api/v1/pods"]
    assert pods[0].query["fieldSelector"] == ["status.phase=Pending"]


def test_dry_run_sends_no_write_and_says_what_it_would_do() -> None:
    run = _run()
    assert _writes(run["dry_requests"]) == []
    results = {o.action: o.result for o in run["dry"].outcomes}
    assert results["fallback_share"] == "dry_run"
    job = [o for o in run["dry"].outcomes if o.target.startswith("Job")]
    assert job and job[0].result == "refused" and "immutable" in job[0].reason


def test_on_sends_exactly_these_writes() -> None:
    run = _run()
    _, _, kinds = _dataset()
    writes = _writes(run["on_requests"])
    # 1. the share: ConfigMap settings, then the extender Deployment (memory + roll)
    method, path, ctype, body = writes[0]
    assert (method, path, ctype) == (
        "PATCH",
        f"/api/v1/namespaces/{SYS}/configmaps/hydatis-shim-config",
        SMP,
    )
    assert yaml.safe_load(body["data"]["shim.yaml"]) == {"rollout_percent": 0.0, "mode": "active"}
    method, path, ctype, body = writes[1]
    assert (method, path, ctype) == (
        "PATCH",
        f"/apis/apps/v1/namespaces/{SYS}/deployments/hydatis-shim",
        SMP,
    )
    assert body["metadata"]["annotations"][MEMORY_PREVIOUS_SHARE] == "50"
    assert "hydatis.io/remediated-at" in body["spec"]["template"]["metadata"]["annotations"]
    # 2. per workload (not the Job): template patch, then DELETE of its pending ML pods
    plural = {
        "Deployment": "deployments",
        "StatefulSet": "statefulsets",
        "ReplicaSet": "replicasets",
    }
    patches = [w for w in writes[2:] if w[0] == "PATCH"]
    assert sorted(p[1] for p in patches) == sorted(
        f"/apis/apps/v1/namespaces/{NS}/{plural[k]}/{n}" for n, k in kinds.items() if k != "Job"
    )
    for _, _, ctype, body in patches:
        assert ctype == SMP
        assert body["spec"] == {"template": {"spec": {"schedulerName": "default-scheduler"}}}
        assert body["metadata"]["annotations"][ANNOTATION_PREVIOUS_SCHEDULER] == "ml-scheduler"
    deletes = [w for w in writes if w[0] == "DELETE"]
    job = next(n for n, k in kinds.items() if k == "Job")
    cluster = run["cluster"]
    expect = sorted(
        f"/api/v1/namespaces/{NS}/pods/{cluster.workload.pods[i].name}"
        for i, s in run["pending_before"].items()
        if s == "ml-scheduler" and cluster.owner_of[i] != job
    )
    assert expect and sorted(d[1] for d in deletes) == expect
    assert all(w[0] in ("PATCH", "DELETE") for w in writes)
    assert [o.result for o in run["on"].outcomes if o.target.startswith("Job")] == ["refused"]


def test_a_repeated_on_changes_nothing() -> None:
    run = _run()
    assert _writes(run["again_requests"]) == []
    assert {o.result for o in run["again"].outcomes} <= {"noop", "refused"}
    status = run["status1"]
    assert status["fallback_on"] is True and status["previous_share"] == "50"
    assert status["share"]["rollout_percent"] == 0.0


def test_the_released_pods_are_placed_and_the_job_waits() -> None:
    run = _run()
    cluster, result = run["cluster"], run["result"]
    _, _, kinds = _dataset()
    job = next(n for n, k in kinds.items() if k == "Job")
    placed_at = {int(s[0]): s[2] for s in result.segments}
    for i, sched in run["pending_before"].items():
        if sched != "ml-scheduler":
            continue
        if cluster.owner_of[i] == job:
            assert i not in placed_at, "a Job's pod must wait for the ML scheduler"
        else:
            assert ACT_AT <= placed_at[i] <= ACT_AT + 60, cluster.workload.pods[i].name


def test_every_decision_is_audited() -> None:
    run = _run()
    records = run["audit"]
    assert {r["status"] for r in records} == {"fallback on"}
    assert sum(r["dry_run"] for r in records) == len(run["dry"].outcomes)
    assert all(r["labels"]["command"] == "hydatis fallback on" for r in records)


def test_off_restores_templates_and_share() -> None:
    cluster, workload = _replay(down=True)
    cluster.ml_down = [(DOWN_AT, HOUR + 600)]
    seen: dict[str, Any] = {}
    api = ReplayApiServer(cluster).start()
    fb = _fallback(api.url, cluster)

    def operator(c: SchedulerReplay, t: float) -> None:
        if t == ACT_AT:
            fb.on(dry_run=False)
        if t == ACT_AT + 300:
            start = len(c.requests)
            seen["refused"] = fb.off(dry_run=False)
            seen["refused_writes"] = _writes(c.requests[start:])
        if t == ACT_AT + 900:
            start = len(c.requests)
            seen["off"] = fb.off(dry_run=False)
            seen["off_writes"] = _writes(c.requests[start:])
            seen["status"] = fb.status()

    cluster.observers.append(operator)
    routed = RoutedScheduler(
        cluster,
        {"default-scheduler": make_scheduler("default"), "ml-scheduler": make_scheduler("default")},
    )
    try:
        simulate(workload, routed, seed=0, control=cluster, config=None)
    finally:
        api.stop()
    assert seen["refused_writes"] == []
    assert seen["refused"].outcomes[0].result == "refused"
    writes = seen["off_writes"]
    patches = [w for w in writes if "/namespaces/default/" in w[1]]
    assert len(patches) == 3
    for _, _, ctype, body in patches:
        assert ctype == SMP
        assert body == {
            "metadata": {
                "annotations": {
                    ANNOTATION_PREVIOUS_SCHEDULER: None,
                    "hydatis.io/fallback-at": None,
                }
            },
            "spec": {"template": {"spec": {"schedulerName": "ml-scheduler"}}},
        }
    cm = [w for w in writes if w[1].endswith("configmaps/hydatis-shim-config")]
    assert yaml.safe_load(cm[0][3]["data"]["shim.yaml"])["rollout_percent"] == 50.0
    dep = [w for w in writes if w[1].endswith("deployments/hydatis-shim")]
    assert dep[0][3]["metadata"]["annotations"][MEMORY_PREVIOUS_SHARE] is None
    status = seen["status"]
    assert status["fallback_on"] is False and status["share"]["rollout_percent"] == 50.0
    assert all(w["scheduler"] == "ml-scheduler" for w in status["workloads"])


def test_with_the_scheduler_up_only_the_share_changes() -> None:
    run = _run(down=False)
    writes = _writes(run["on_requests"])
    assert [w[1].rsplit("/", 1)[-1] for w in writes] == ["hydatis-shim-config", "hydatis-shim"]
    tmpl = [o for o in run["on"].outcomes if o.action == "fallback_templates"]
    assert tmpl[0].result == "noop" and "is up" in tmpl[0].reason


def test_a_routed_replay_without_outage_is_the_default_run() -> None:
    ds, _, _ = _dataset()
    plain = simulate(compile_workload(ds), make_scheduler("default"), seed=0)
    cluster, workload = _replay(down=False)
    one = make_scheduler("default")  # one instance: the same random tie-breaks as the plain run
    routed = RoutedScheduler(cluster, {"default-scheduler": one, "ml-scheduler": one})
    hooked = simulate(workload, routed, seed=0, control=cluster)
    np.testing.assert_array_equal(plain.node_cpu, hooked.node_cpu)


def test_a_file_target_keeps_its_memory_beside_the_settings(tmp_path) -> None:
    settings = tmp_path / "shim.yaml"
    settings.write_text(yaml.safe_dump({"mode": "active", "rollout_percent": 10}))
    share = ShareControl(
        None, RemediationConfig(extender_target="file", extender_config_file=settings)
    )
    fb = Fallback(None, share)
    out = fb.on(dry_run=False)
    assert out.outcomes[0].result == "done"
    assert yaml.safe_load(settings.read_text())["rollout_percent"] == 0.0
    again = fb.on(dry_run=False)
    assert again.outcomes[0].result == "noop"
    back = fb.off(dry_run=False)
    assert back.outcomes[-1].result == "done"
    assert yaml.safe_load(settings.read_text())["rollout_percent"] == 10.0
    memory = json.loads((tmp_path / "shim.yaml.operations.json").read_text())
    assert memory == {}


@pytest.mark.parametrize("bad", ["101", "-1"], ids=["above-100", "negative"])
def test_a_share_outside_0_100_is_refused(tmp_path, bad: str) -> None:
    settings = tmp_path / "shim.yaml"
    settings.write_text("rollout_percent: 10\n")
    share = ShareControl(
        None, RemediationConfig(extender_target="file", extender_config_file=settings)
    )
    with pytest.raises(ValueError, match="rollout_percent"):
        share.set_rollout(float(bad), action="x", dry_run=True)
