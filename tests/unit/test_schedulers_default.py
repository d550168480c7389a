"""kube-scheduler v1.30 defaults (LeastAllocated + BalancedAllocation) and the registry.

Score cases marked "upstream" come from least_allocated_test.go and
balanced_allocation_test.go (kubernetes v1.30); requested sums there already include
the incoming pod.
"""

from __future__ import annotations

import numpy as np
import pytest

from hydatis.errors import ConfigError
from simulator.schedulers import BASELINES, DefaultScheduler, make_scheduler
from simulator.schedulers.default import balanced_allocation_score, least_allocated_score
from simulator.types import DEFAULT_MEMORY_REQUEST, ClusterView, PodSpec, Scheduler

GI = 1024**3


@pytest.mark.parametrize(
    ("req_cpu", "req_mem", "alloc_cpu", "alloc_mem", "weights", "expected"),
    [
        (0, 0, 4000, 10000, (1, 1), 100),
        (3000, 5000, 4000, 10000, (1, 1), 37),
        (3000, 5000, 6000, 10000, (1, 1), 50),
        (6000, 0, 10000, 20000, (1, 1), 70),
        (6000, 5000, 10000, 20000, (1, 1), 57),
        (6000, 10000, 10000, 20000, (1, 1), 45),
        (6000, 10000, 10000, 50000, (1, 1), 60),
        (6000, 0, 4000, 10000, (1, 1), 50),
        (6000, 5000, 4000, 10000, (1, 1), 25),
        (3000, 0, 0, 0, (1, 1), 0),
        (3000, 5000, 4000, 10000, (1, 2), 41),
        (3000, 5000, 6000, 10000, (1, 2), 50),
        (4000, 10000, 4000, 10000, (1, 1), 0),
        (3000, 0, 4000, 0, (1, 1), 25),
    ],
    ids=[
        "upstream-nothing-requested",
        "upstream-differently-sized-node1-floor",
        "upstream-differently-sized-node2",
        "upstream-scheduled-no-pod-request-node1",
        "upstream-scheduled-no-pod-request-node2",
        "upstream-scheduled-and-requested-node2",
        "upstream-differently-sized-memory",
        "upstream-request-exceeds-allocatable-node1",
        "upstream-request-exceeds-allocatable-node2",
        "upstream-zero-node-resources",
        "upstream-memory-weight-2-node1",
        "upstream-memory-weight-2-node2",
        "zero-free-room",
        "resource-the-node-lacks-left-out",
    ],
)
def test_least_allocated_score(req_cpu, req_mem, alloc_cpu, alloc_mem, weights, expected):
    got = least_allocated_score(
        np.array([req_cpu]),
        np.array([req_mem]),
        np.array([alloc_cpu]),
        np.array([alloc_mem]),
        *weights,
    )
    assert got.tolist() == [expected]


@pytest.mark.parametrize(
    ("req_cpu", "req_mem", "alloc_cpu", "alloc_mem", "expected"),
    [
        (0, 0, 4000, 10000, 100),
        (3000, 5000, 4000, 10000, 87),
        (3000, 5000, 6000, 10000, 100),
        (6000, 5000, 10000, 20000, 82),
        (6000, 10000, 10000, 20000, 95),
        (6000, 5000, 6000, 10000, 75),
        (6000, 10000, 6000, 10000, 100),
        (8000, 5000, 4000, 10000, 75),
        (3000, 0, 10000, 20000, 85),
        (3000, 0, 4000, 0, 100),
    ],
    ids=[
        "upstream-nothing-requested",
        "upstream-differently-sized-node1",
        "upstream-differently-sized-node2",
        "upstream-scheduled-truncates-82.5",
        "upstream-scheduled-node2",
        "upstream-cpu-at-capacity",
        "upstream-both-at-capacity",
        "fraction-capped-at-1",
        "zero-request-pod-still-scored-in-v1.30",
        "one-resource-std-zero",
    ],
)
def test_balanced_allocation_score(req_cpu, req_mem, alloc_cpu, alloc_mem, expected):
    got = balanced_allocation_score(
        np.array([req_cpu]), np.array([req_mem]), np.array([alloc_cpu]), np.array([alloc_mem])
    )
    assert got.tolist() == [expected]


def _view() -> ClusterView:
    view = ClusterView.empty(np.array([4000, 4000]), np.array([4 * GI, 4 * GI]))
    view.req_cpu[1] = view.nz_req_cpu[1] = 2000
    view.req_mem[1] = view.nz_req_mem[1] = 2 * GI
    return view


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        # node0: least (97 + 95) // 2 = 96, balanced 100; node1: least (47 + 45) // 2,
        # balanced 100.  The 100 m / 200 MiB defaults enter LeastAllocated only.
        (PodSpec("p", None, None), [196, 146]),
        # explicit zeros stay zero: node0 least 100, node1 least 50.
        (PodSpec("p", 0, 0), [200, 150]),
        # 1000 m / 1 GiB: node0 least (75 + 75) // 2, balanced 100; node1 least 25.
        (PodSpec("p", 1000, GI), [175, 125]),
        # 1000 m, no memory request: node0 least (75 + 95) // 2 = 85,
        # balanced f = (0.25, 0) -> 87; node1 (25 + 45) // 2 = 35, f = (0.75, 0.5) -> 87.
        (PodSpec("p", 1000, None), [172, 122]),
    ],
    ids=["pod-without-requests", "explicit-zero-requests", "pod-with-requests", "cpu-only"],
)
def test_default_scheduler_score(pod, expected):
    sched = DefaultScheduler()
    sched.reset(0)
    view = _view()
    assert sched.score(pod, view, np.array([0, 1])).tolist() == expected
    assert sched.select(pod, view) == 0


def test_default_memory_default_is_200_mib():
    assert DEFAULT_MEMORY_REQUEST == 200 * 1024 * 1024


def test_default_scheduler_empty_candidates():
    sched = DefaultScheduler()
    sched.reset(0)
    assert sched.score(PodSpec("p", 1, 1), _view(), np.array([], dtype=np.int64)).size == 0
    assert sched.select(PodSpec("p", 5000, 1), _view()) is None


# -- registry -------------------------------------------------------------------------


@pytest.mark.parametrize("name", BASELINES)
def test_make_scheduler_builds_every_baseline(name):
    sched = make_scheduler(name)
    assert isinstance(sched, Scheduler)
    assert sched.name == name


def test_make_scheduler_passes_params_unchanged():
    sched = make_scheduler("default", percentage_of_nodes_to_score=30, cpu_weight=2)
    assert (sched.percentage_of_nodes_to_score, sched.cpu_weight) == (30, 2)


def test_make_scheduler_unknown_name_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown scheduler 'bogus'") as info:
        make_scheduler("bogus")
    for name in BASELINES:
        assert name in str(info.value)


def test_make_scheduler_unknown_param_is_config_error():
    with pytest.raises(ConfigError, match="tlp"):
        make_scheduler("tlp", no_such_param=1)
