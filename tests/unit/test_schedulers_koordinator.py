"""Koordinator v1.8 LoadAwareScheduling.

Cases marked "upstream" come from loadaware/load_aware_test.go (TestFilterUsage,
TestScore: a 96-core / 512 GiB node) and estimator/default_estimator_test.go.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.schedulers import KoordinatorScheduler
from simulator.schedulers.koordinator import (
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    estimate_usage,
    load_aware_filter,
    load_aware_score,
)
from simulator.types import UNSET, ClusterView, PodSpec

GI = 1024**3
MI = 1024**2
CPU96, MEM512 = 96000, 512 * GI
EST_32GI = 24051816858  # go_round(32 GiB * 70 / 100)


def test_defaults_for_pods_without_requests():
    assert (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST) == (250, 200 * MI)


@pytest.mark.parametrize(
    ("req", "lim", "factor", "default", "expected"),
    [
        (16000, 16000, 85, 250, 13600),
        (8000, 16000, 85, 250, 13600),
        (1000, UNSET, 85, 250, 850),
        (UNSET, 2000, 85, 250, 1700),
        (UNSET, UNSET, 85, 250, 250),
        (0, UNSET, 85, 250, 250),
        (UNSET, UNSET, 70, 200 * MI, 200 * MI),
        (32 * GI, 32 * GI, 70, 200 * MI, EST_32GI),
        (1000, 1000, 120, 250, 1000),
        (1000, UNSET, 120, 250, 1200),
        (1, UNSET, 50, 250, 1),
        (5, UNSET, 50, 250, 3),
    ],
    ids=[
        "upstream-request-equals-limit",
        "upstream-request-less-than-limit-uses-limit",
        "request-only",
        "limit-only",
        "pod-without-requests-unscaled-default",
        "explicit-zero-is-default",
        "memory-default-200MiB",
        "upstream-32GiB-memory",
        "capped-at-limit",
        "no-limit-no-cap",
        "go-round-0.5-to-1",
        "go-round-2.5-to-3",
    ],
)
def test_estimate_usage(req, lim, factor, default, expected):
    got = estimate_usage(np.array([req]), np.array([lim]), factor, default)
    assert got.tolist() == [expected]


@pytest.mark.parametrize(
    ("used_cpu", "used_mem", "alloc_cpu", "alloc_mem", "expected"),
    [
        (13600, EST_32GI, CPU96, MEM512, 90),
        (32000 + 13600, 10 * GI + EST_32GI, CPU96, MEM512, 72),
        (32000 + 2 * 13600, 10 * GI + 2 * EST_32GI, CPU96, MEM512, 63),
        (250, 200 * MI, CPU96, MEM512, 99),
        (100000, 0, CPU96, MEM512, 50),
        (CPU96, MEM512, CPU96, MEM512, 0),
        (0, 0, 0, MEM512, 50),
    ],
    ids=[
        "upstream-score-empty-node",
        "upstream-score-load-node",
        "upstream-score-load-node-with-just-assigned-pod",
        "upstream-score-empty-pod",
        "usage-exceeds-allocatable",
        "zero-free-room",
        "zero-allocatable-resource-scores-0",
    ],
)
def test_load_aware_score(used_cpu, used_mem, alloc_cpu, alloc_mem, expected):
    got = load_aware_score(
        np.array([used_cpu]), np.array([used_mem]), np.array([alloc_cpu]), np.array([alloc_mem])
    )
    assert got.tolist() == [expected]


@pytest.mark.parametrize(
    ("used_cpu", "used_mem", "has", "expired", "thresholds", "expected"),
    [
        (60000 + 250, 256 * GI + 200 * MI, True, False, (65, 95), True),
        (0, 0, False, False, (65, 95), True),
        (70000 + 250, 256 * GI + 200 * MI, True, False, (65, 95), False),
        (30000 + 250, 500 * GI + 200 * MI, True, False, (65, 95), False),
        (70000, 500 * GI, True, False, (0, 0), True),
        (0, 0, True, True, (65, 95), False),
        (62400, 0, True, False, (65, 95), True),
        (62880, 0, True, False, (65, 95), False),
        (12000, 0, True, False, (12, 95), False),
    ],
    ids=[
        "upstream-filter-normal-usage",
        "upstream-filter-node-missing-NodeMetrics",
        "upstream-filter-exceed-cpu-usage",
        "upstream-filter-exceed-memory-usage",
        "thresholds-disabled",
        "stale-metric-fails",
        "equality-65-passes",
        "65.5-rounds-to-66-fails",
        "go-round-12.5-to-13-fails",
    ],
)
def test_load_aware_filter(used_cpu, used_mem, has, expired, thresholds, expected):
    got = load_aware_filter(
        np.array([used_cpu]),
        np.array([used_mem]),
        np.array([CPU96]),
        np.array([MEM512]),
        np.array([has]),
        np.array([expired]),
        *thresholds,
    )
    assert got.tolist() == [expected]


BIG = PodSpec("p", 16000, 32 * GI, cpu_limit=16000, mem_limit=32 * GI)


def _view(now: float = 1010.0) -> ClusterView:
    view = ClusterView.empty(np.full(3, CPU96), np.full(3, MEM512), now=now)
    m = view.metrics
    m.updated_at[:2] = 1000.0  # node 2 has no NodeMetric
    m.cpu_used[:2] = 8000.0
    m.mem_used[:2] = 10 * GI
    return view


def test_scheduler_counts_pods_bound_since_update_minus_report_interval():
    view = _view()
    for t in (930.0, 940.0, 950.0, 1005.0):  # 940 = update - 60: not counted
        view.bindings.append(t, 0, BIG)
    sched = KoordinatorScheduler()
    sched.reset(0)
    used_cpu, used_mem = sched.node_usage(BIG, view)
    assert used_cpu.tolist() == [8000 + 3 * 13600, 8000 + 13600, 13600]
    assert used_mem[0] == 10 * GI + 3 * EST_32GI
    # node0: cpu 48800 -> 51 % passes; score ((47200*100)//96000 + 84) // 2 = (49 + 84) // 2
    # node1: cpu 21600 -> (77 + 93) // 2 = 85; node2: no NodeMetric -> passes, scores 0.
    assert sched.filter(BIG, view).tolist() == [True, True, True]
    assert sched.score(BIG, view, np.arange(3)).tolist() == [66, 85, 0]
    assert sched.select(BIG, view) == 1


def test_filter_uses_incoming_pod_estimate():
    view = _view()
    view.metrics.cpu_used[0] = 62400.0 - 13600  # 65 % only with the incoming pod
    view.metrics.cpu_used[1] = 62880.0 - 13600  # 65.5 % -> 66 with the incoming pod
    sched = KoordinatorScheduler()
    sched.reset(0)
    assert sched.filter(BIG, view).tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("now", "passes", "scored"),
    [(1179.0, True, True), (1180.0, False, False), (1500.0, False, False)],
    ids=["fresh-179s", "stale-exactly-180s", "stale-500s"],
)
def test_stale_metric_fails_filter_and_scores_zero(now, passes, scored):
    view = _view(now)
    sched = KoordinatorScheduler()
    sched.reset(0)
    assert sched.filter(BIG, view)[0] == passes
    assert (sched.score(BIG, view, np.array([0]))[0] > 0) == scored


def test_no_metrics_anywhere_and_empty_candidates():
    view = ClusterView.empty(np.full(2, CPU96), np.full(2, MEM512))
    sched = KoordinatorScheduler()
    sched.reset(0)
    assert sched.filter(BIG, view).tolist() == [True, True]
    assert sched.score(BIG, view, np.arange(2)).tolist() == [0, 0]
    assert sched.score(BIG, view, np.array([], dtype=np.int64)).size == 0


def test_pod_without_requests_estimates_defaults():
    view = _view()
    sched = KoordinatorScheduler()
    sched.reset(0)
    used_cpu, used_mem = sched.node_usage(PodSpec("p", None, None), view)
    assert (used_cpu[2], used_mem[2]) == (250, 200 * MI)


@pytest.mark.parametrize("uniform", [True, False], ids=["one-report-time", "per-node-times"])
def test_recent_pod_estimates_match_a_brute_force_sum(uniform):
    """The incremental path (every node reported at once) and the per-node path give the
    usage a plain sum over the recent bindings gives."""
    from simulator.schedulers.koordinator import (
        DEFAULT_MEMORY_REQUEST,
        DEFAULT_MILLI_CPU_REQUEST,
    )

    rng = np.random.default_rng(4)
    n = 6
    view = ClusterView.empty(np.full(n, 16_000), np.full(n, 64 * 1024**3), now=2000.0)
    view.metrics.cpu_used[:] = rng.uniform(0, 8000, n)
    view.metrics.mem_used[:] = rng.uniform(0, 32 * 1024**3, n)
    view.metrics.updated_at[:] = 1900.0 if uniform else rng.uniform(1850.0, 1950.0, n)
    sched = KoordinatorScheduler()
    sched.reset(0)
    pods = []
    for i, t in enumerate(np.sort(rng.uniform(1700.0, 2000.0, 40))):
        pod = PodSpec(f"p{i}", int(rng.integers(100, 4000)), None, None, None)
        view.bindings.append(float(t), int(rng.integers(n)), pod)
        pods.append((float(t), pod))
        sched.node_usage(PodSpec("probe", None, None), view)  # the cache follows bindings
    cpu, mem = sched.node_usage(PodSpec("probe", None, None), view)
    # The probe sets no request, so it estimates the unscaled defaults itself.
    want_cpu = view.metrics.cpu_used.copy() + DEFAULT_MILLI_CPU_REQUEST
    want_mem = view.metrics.mem_used.copy() + DEFAULT_MEMORY_REQUEST
    nodes = view.bindings.since(0.0).node
    for (t, pod), node in zip(pods, nodes, strict=True):
        if t > view.metrics.updated_at[node] - 60.0:
            want_cpu[node] += estimate_usage(
                np.array([pod.cpu_request]), np.array([UNSET]), 85, 100
            )[0]
            want_mem[node] += DEFAULT_MEMORY_REQUEST  # no memory request: the default
    np.testing.assert_allclose(cpu, np.round(want_cpu), atol=1)
    np.testing.assert_allclose(mem, np.round(want_mem), atol=1)
