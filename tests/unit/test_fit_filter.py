"""NodeResourcesFit's filter, numFeasibleNodesToFind and FrameworkScheduler's rotation."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.types import (
    ClusterView,
    FrameworkScheduler,
    PodSpec,
    fit_filter,
    num_feasible_nodes_to_find,
)

GI = 1024**3


def _one_node(alloc_cpu: int, alloc_mem: int, req_cpu: int, req_mem: int, pods: int = 0):
    view = ClusterView.empty(np.array([alloc_cpu]), np.array([alloc_mem]), max_pods=3)
    view.req_cpu[:] = req_cpu
    view.req_mem[:] = req_mem
    view.pod_count[:] = pods
    return view


@pytest.mark.parametrize(
    ("pod", "node", "fits"),
    [
        (PodSpec("p", 400, GI), (1000, 4 * GI, 600, 3 * GI), True),
        (PodSpec("p", 401, GI), (1000, 4 * GI, 600, 3 * GI), False),
        (PodSpec("p", 400, GI + 1), (1000, 4 * GI, 600, 3 * GI), False),
        (PodSpec("p", None, None), (1000, 4 * GI, 1000, 4 * GI), True),
        (PodSpec("p", 0, 0), (1000, 4 * GI, 1000, 4 * GI), True),
        (PodSpec("p", 1, None), (1000, 4 * GI, 1000, 4 * GI), False),
        (PodSpec("p", 2000, GI), (1000, 4 * GI, 0, 0), False),
        (PodSpec("p", 100, 100), (1000, 4 * GI, 0, 0, 3), False),
        (PodSpec("p", None, None), (1000, 4 * GI, 0, 0, 3), False),
        (PodSpec("p", 100, 100), (1000, 4 * GI, 0, 0, 2), True),
    ],
    ids=[
        "equality-fits",
        "cpu-over-by-one",
        "memory-over-by-one",
        "no-requests-fit-a-full-node",
        "explicit-zero-fits-a-full-node",
        "zero-free-room",
        "request-exceeds-allocatable",
        "pod-count-at-max",
        "pod-count-checked-even-without-requests",
        "pod-count-below-max",
    ],
)
def test_fit_filter(pod, node, fits):
    view = _one_node(*node)
    assert fit_filter(pod, view).tolist() == [fits]


def test_fit_filter_empty_cluster():
    view = ClusterView.empty(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert fit_filter(PodSpec("p", 1, 1), view).size == 0


@pytest.mark.parametrize(
    ("n", "percentage", "expected"),
    [
        (0, 0, 0),
        (50, 0, 50),
        (99, 0, 99),
        (99, 10, 99),
        (100, 0, 100),
        (200, 0, 100),
        (1000, 0, 420),
        (5000, 0, 500),
        (6500, 0, 325),
        (10000, 0, 500),
        (1000, 10, 100),
        (1000, 5, 100),
        (1000, 50, 500),
        (1000, 100, 1000),
    ],
    ids=[
        "no-nodes",
        "under-100-all",
        "99-all",
        "99-all-whatever-percentage",
        "100-adaptive-floor",
        "200-adaptive-floor",
        "1000-adaptive-42pct",
        "5000-adaptive-10pct",
        "6500-adaptive-min-5pct",
        "10000-adaptive-min-5pct",
        "1000-at-10pct",
        "1000-at-5pct-floor-100",
        "1000-at-50pct",
        "1000-at-100pct",
    ],
)
def test_num_feasible_nodes_to_find(n, percentage, expected):
    assert num_feasible_nodes_to_find(n, percentage) == expected


class _Flat(FrameworkScheduler):
    """Scores every candidate alike (ties broken at random)."""

    def score(self, pod, view, nodes):
        return np.zeros(nodes.size)


def _cluster(n: int) -> ClusterView:
    return ClusterView.empty(np.full(n, 4000), np.full(n, 8 * GI))


def test_rotation_all_feasible():
    sched = _Flat()
    sched.reset(0)
    view, pod = _cluster(200), PodSpec("p", 100, GI)
    assert sched.candidates(pod, view).tolist() == list(range(100))
    assert sched.candidates(pod, view).tolist() == list(range(100, 200))
    assert sched.candidates(pod, view).tolist() == list(range(100))


def test_rotation_skips_infeasible_and_counts_them_as_processed():
    sched = _Flat()
    sched.reset(0)
    view, pod = _cluster(200), PodSpec("p", 100, GI)
    view.req_cpu[:10] = 4000  # nodes 0-9 are full
    assert sched.candidates(pod, view).tolist() == list(range(10, 110))
    # The next cycle starts at 110, wraps past the 10 infeasible nodes: 90 + 10 more.
    assert sched.candidates(pod, view).tolist() == list(range(110, 200)) + list(range(10, 20))
    assert sched._next_start == 20


def test_small_cluster_scores_every_feasible_node_and_keeps_start():
    sched = _Flat()
    sched.reset(0)
    view, pod = _cluster(10), PodSpec("p", 100, GI)
    view.req_cpu[3] = 4000
    assert sched.candidates(pod, view).tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert sched._next_start == 0


def test_select_none_when_nothing_fits_and_ties_uniform():
    sched = _Flat()
    sched.reset(1)
    view = _cluster(4)
    assert sched.select(PodSpec("p", 5000, GI), view) is None
    picks = {sched.select(PodSpec("p", 100, GI), view) for _ in range(200)}
    assert picks == {0, 1, 2, 3}
