"""The rollout: gates decide advance / hold / rollback and name what failed; the extender's
counters give the window's p99 and fallback rate; the controller's exact Kubernetes API
requests (share, state ConfigMap) against the replay's API server on loopback."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from hydatis.errors import ConfigError
from monitoring.remediation.config import RemediationConfig
from operations._fallback_kube import OpsCluster, connect
from operations._fallback_replay import SchedulerReplay
from operations._rollout_evidence import (
    PodSample,
    ShimCounters,
    cohort_stats,
    histogram_quantile,
)
from operations._rollout_gates import HOT_THRESHOLD, CohortStats, Evidence, GateConfig, evaluate
from operations._rollout_share import ShareControl
from operations.fallback import MEMORY_PREVIOUS_SHARE
from operations.rollout import ConfigMapStore, FileStore, Rollout, RolloutState, StateError
from scheduler_shim.metrics import ExtenderMetrics
from simulator.k8s_api import ReplayApiServer, extender_configmap, extender_deployment
from simulator.metrics import HOT_THRESHOLD as SIM_HOT
from simulator.synthetic import generate_synthetic
from simulator.workload import compile_workload

SMP = "application/strategic-merge-patch+json"
SYS = "hydatis-system"
GOOD = CohortStats(pods=100, hot_share=0.05, availability=0.999, pending_p95_s=10.0)


def ev(**kw: Any) -> Evidence:
    base = {
        "start": 0.0,
        "end": 1800.0,
        "percent": 10.0,
        "ml": GOOD,
        "default": GOOD,
        "decision_p99_s": 0.01,
        "fallback_rate": 0.0,
    }
    return Evidence(**{**base, **kw})


def cohort(**kw: Any) -> CohortStats:
    return CohortStats(**{**GOOD.__dict__, **kw})


def test_the_hot_threshold_is_the_evaluations() -> None:
    assert HOT_THRESHOLD == SIM_HOT


@pytest.mark.parametrize(
    ("evidence", "decision", "failed"),
    [
        (ev(), "advance", []),
        (ev(ml=cohort(hot_share=0.08)), "rollback", ["hot_share"]),
        (ev(ml=cohort(hot_share=0.069)), "advance", []),
        (ev(ml=cohort(availability=0.99)), "rollback", ["availability"]),
        (ev(ml=cohort(pending_p95_s=100.0)), "rollback", ["pending"]),
        (ev(decision_p99_s=0.3), "rollback", ["decision_latency"]),
        (ev(fallback_rate=0.2), "rollback", ["fallback_rate"]),
        (ev(ml=cohort(pods=5)), "hold", []),
        (ev(ml=cohort(pods=5), fallback_rate=0.5), "rollback", ["fallback_rate"]),
        (ev(default=cohort(pods=0, hot_share=math.nan)), "hold", []),
        (ev(percent=100.0, default=CohortStats()), "advance", []),
        (ev(decision_p99_s=math.nan, fallback_rate=math.nan), "advance", []),
        (
            ev(ml=cohort(hot_share=0.5, availability=0.9)),
            "rollback",
            ["hot_share", "availability"],
        ),
    ],
    ids=[
        "all-pass",
        "hot-share-over",
        "hot-share-just-under",
        "availability-drop",
        "pending-slow",
        "latency-over",
        "fallback-rate-over",
        "too-few-ml-pods",
        "few-pods-but-absolute-gate-fails",
        "no-default-cohort-below-100",
        "at-100-absolute-gates-only",
        "no-extender-counters",
        "two-gates-fail",
    ],
)
def test_gates(evidence: Evidence, decision: str, failed: list[str]) -> None:
    verdict = evaluate(evidence, GateConfig())
    assert verdict.decision == decision, verdict.reason
    assert verdict.failed == failed
    for gate in failed:
        assert f"{gate} failed" in verdict.reason


@pytest.mark.parametrize(
    "steps",
    [[50, 10], [10, 10], [0, 50], [10, 101], []],
    ids=["down", "flat", "zero", "101", "none"],
)
def test_bad_steps_are_refused(steps: list[float]) -> None:
    with pytest.raises(ValueError, match="steps"):
        GateConfig(steps=steps)


def test_gate_file_errors_name_the_field(tmp_path) -> None:
    from cli.rollout import load_gates

    bad = tmp_path / "gates.yaml"
    bad.write_text("max_fallback_rate: 2\n")
    with pytest.raises(ConfigError, match="max_fallback_rate"):
        load_gates(str(bad))
    bad.write_text("nope: 1\n")
    with pytest.raises(ConfigError, match="nope"):
        load_gates(str(bad))
    with pytest.raises(ConfigError, match="no gate configuration file"):
        load_gates(str(tmp_path / "missing.yaml"))
    assert load_gates(None, window_s=600.0).window_s == 600.0


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = {0.1: 50.0, 0.2: 90.0, 1.0: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.15)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.2 + 0.8 * 0.9)
    assert math.isnan(histogram_quantile(0.99, {math.inf: 0.0}))


def test_shim_counters_from_the_extenders_registry() -> None:
    m = ExtenderMetrics()
    m.init_labels(mode="active", rollout_percent=10, gates={"cpu": 0.9, "memory": 0.9})
    before = ShimCounters.parse(generate_latest(m.registry).decode())
    for _ in range(99):
        m.decision_seconds.labels("prioritize").observe(0.002)
        m.decisions.labels("prioritize", "active").inc()
    m.decision_seconds.labels("prioritize").observe(0.2)
    m.decisions.labels("prioritize", "active").inc()
    m.decisions.labels("prioritize", "rollout_skip").inc(500)
    m.fallbacks.labels("deadline").inc(5)
    after = ShimCounters.parse(generate_latest(m.registry).decode())
    p99, rate = after.since(before)
    assert 0.001 < p99 <= 0.003  # 99 of 100 fast: p99 inside the 2 ms bucket
    assert rate == pytest.approx(5 / 100)
    # a restarted extender (counters back near 0) counts from 0
    fresh = ExtenderMetrics()
    fresh.decisions.labels("filter", "active").inc(10)
    fresh.decision_seconds.labels("filter").observe(0.004)
    p99, rate = ShimCounters.parse(generate_latest(fresh.registry).decode()).since(after)
    assert 0.003 < p99 <= 0.005 and rate == 0.0


def test_cohort_stats_from_pod_samples() -> None:
    pods = [
        PodSample("a", 5.0, 100.0, hot=True),
        PodSample("b", 100.0, 200.0),
        PodSample("c", None, 30.0),
        PodSample("d", None, 300.0),
    ]
    st = cohort_stats(pods, grace_s=60.0)
    assert st.pods == 2 and st.hot_share == 0.5
    assert st.availability == pytest.approx(1 - 40 / 300)  # b waited 40 s past the grace
    assert cohort_stats([], 60.0).pods == 0


# --------------------------------------------------------------------------- the controller
@lru_cache(maxsize=1)
def _workload():
    return compile_workload(generate_synthetic(nodes=4, horizon_s=1800.0, seed=1))


def _api(percent: float = 10.0) -> tuple[SchedulerReplay, ReplayApiServer]:
    cluster = SchedulerReplay(_workload())
    cluster.configmaps[(SYS, "hydatis-shim-config")] = extender_configmap(
        {"mode": "active", "rollout_percent": percent}
    )
    cluster.deployments[(SYS, "hydatis-shim")] = extender_deployment()
    return cluster, ReplayApiServer(cluster).start()


def _rollout(url: str, config: GateConfig | None = None) -> Rollout:
    ops = OpsCluster(connect(url))
    share = ShareControl(ops, RemediationConfig(kube_api=url))
    return Rollout(share, ConfigMapStore(ops), config or GateConfig(), clock=lambda: 1.7e9)


def _writes(cluster: SchedulerReplay, start: int) -> list[tuple[str, str, str, Any]]:
    return [
        (r.method, r.path, r.content_type, r.body)
        for r in cluster.requests[start:]
        if r.method != "GET"
    ]


def test_advance_sends_exactly_these_requests() -> None:
    cluster, api = _api(percent=0.0)
    try:
        r = _rollout(api.url)
        start = len(cluster.requests)
        out = r.advance(dry_run=True)
        assert out.result == "dry_run" and _writes(cluster, start) == []
        start = len(cluster.requests)
        out = r.advance(dry_run=False)
        assert out.result == "done" and "0 % -> 10 %" in out.reason
        writes = _writes(cluster, start)
        assert [(m, p, c) for m, p, c, _ in writes] == [
            ("PATCH", f"/api/v1/namespaces/{SYS}/configmaps/hydatis-shim-config", SMP),
            ("PATCH", f"/apis/apps/v1/namespaces/{SYS}/deployments/hydatis-shim", SMP),
            ("POST", f"/api/v1/namespaces/{SYS}/configmaps", "application/json"),
        ]
        assert yaml.safe_load(writes[0][3]["data"]["shim.yaml"])["rollout_percent"] == 10.0
        created = writes[2][3]
        assert created["metadata"]["name"] == "hydatis-rollout"
        state = RolloutState.from_json(created["data"]["state.json"], "test")
        assert state.index == 0 and state.history[-1]["action"] == "rollout_advance"
        # the second change patches the state ConfigMap it made
        start = len(cluster.requests)
        r.advance(dry_run=False)
        writes = _writes(cluster, start)
        assert writes[-1][:3] == (
            "PATCH",
            f"/api/v1/namespaces/{SYS}/configmaps/hydatis-rollout",
            SMP,
        )
        assert json_state(writes[-1][3]).index == 1
        st = r.status()
        assert st["planned_percent"] == 50.0 and st["in_sync"] and st["next_percent"] == 100.0
    finally:
        api.stop()


def json_state(body: dict[str, Any]) -> RolloutState:
    return RolloutState.from_json(body["data"]["state.json"], "test")


def test_a_breach_rolls_back_one_step_halts_and_names_the_gate() -> None:
    cluster, api = _api(percent=0.0)
    try:
        r = _rollout(api.url)
        r.advance(dry_run=False)
        r.advance(dry_run=False)  # at 50 %
        verdict, out = r.step(ev(percent=50.0, ml=cohort(hot_share=0.3)), dry_run=False)
        assert verdict.decision == "rollback" and out.result == "done"
        assert "50 % -> 10 %" in out.reason and "hot_share failed" in out.reason
        st = r.status()
        assert st["halted"] and "hot_share failed" in st["halt_reason"]
        assert st["share"]["rollout_percent"] == 10.0
        # a passing window does not advance a halted rollout
        start = len(cluster.requests)
        verdict, out = r.step(ev(), dry_run=False)
        assert verdict.decision == "advance" and out.action == "rollout_hold"
        assert "halted" in out.reason
        assert [w[1].rsplit("/", 1)[-1] for w in _writes(cluster, start)] == ["hydatis-rollout"]
        # a further breach goes down again, to 0 %
        _, out = r.step(ev(fallback_rate=0.5), dry_run=False)
        assert "10 % -> 0 %" in out.reason and r.status()["share"]["rollout_percent"] == 0.0
        # the operator's advance clears the halt
        r.advance(dry_run=False)
        assert not r.status()["halted"]
    finally:
        api.stop()


def test_a_passing_window_advances_and_the_last_step_holds() -> None:
    _, api = _api(percent=0.0)
    try:
        r = _rollout(api.url, GateConfig(steps=[25, 100]))
        r.advance(dry_run=False)
        _, out = r.step(ev(percent=25.0), dry_run=False)
        assert out.action == "rollout_advance" and "25 % -> 100 %" in out.reason
        _, out = r.step(ev(percent=100.0, default=CohortStats()), dry_run=False)
        assert out.action == "rollout_hold" and "last step" in out.reason
    finally:
        api.stop()


def test_nothing_moves_while_fallback_is_on() -> None:
    cluster, api = _api(percent=0.0)
    try:
        dep = cluster.deployments[(SYS, "hydatis-shim")]
        dep["metadata"]["annotations"] = {MEMORY_PREVIOUS_SHARE: "50"}
        r = _rollout(api.url)
        start = len(cluster.requests)
        out = r.advance(dry_run=False)
        assert out.result == "refused" and "fallback" in out.reason
        assert [w[1].rsplit("/", 1)[-1] for w in _writes(cluster, start)] == ["configmaps"]
    finally:
        api.stop()


def test_file_store_round_trip_and_a_corrupt_state_is_named(tmp_path) -> None:
    store = FileStore(tmp_path / "rollout.json")
    assert store.load().index == -1
    store.save(RolloutState(index=1, halted=True, halt_reason="x"))
    assert store.load().halted
    store.path.write_text("{not json")
    with pytest.raises(StateError, match=r"rollout\.json"):
        store.load()


def test_replay_evidence_counts_each_windows_placements_by_cohort() -> None:
    from operations._rollout_evidence import ReplayEvidence
    from scheduler_shim.service import rollout_bucket
    from simulator.engine import simulate
    from simulator.extender import pod_object
    from simulator.k8s_api import ReplayCluster
    from simulator.schedulers import make_scheduler

    ds = generate_synthetic(nodes=8, horizon_s=7200.0, seed=3)
    workload = compile_workload(ds)
    uids = [pod_object(s)["metadata"]["uid"] for s in workload.pods]
    cfg = GateConfig(window_s=1800.0)
    evidence = ReplayEvidence(uids, lambda: 50.0, cfg)
    windows: list[tuple[float, float, Evidence]] = []

    def operator(c: ReplayCluster, t: float) -> None:
        if t == 1800.0:
            evidence.start(t)
        elif t in (3600.0, 5400.0):
            windows.append((t - 1800.0, t, evidence.take(t)))

    cluster = ReplayCluster(workload)
    cluster.observers += [evidence, operator]
    result = simulate(workload, make_scheduler("default"), seed=0, control=cluster)
    for lo, hi, got in windows:
        placed = [int(s[0]) for s in result.segments if lo <= s[2] < hi]
        ml = [i for i in placed if rollout_bucket(uids[i]) < 50.0]
        assert placed, "the window must hold placements"
        assert (got.ml.pods, got.default.pods) == (len(ml), len(placed) - len(ml))
        assert got.ml.pending_p95_s >= 0 and 0 <= got.ml.availability <= 1
        assert math.isnan(got.decision_p99_s)  # no extender counters given
