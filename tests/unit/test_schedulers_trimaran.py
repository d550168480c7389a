"""Trimaran TargetLoadPacking and LoadVariationRiskBalancing.

Cases marked "upstream" come from scheduler-plugins' targetloadpacking_test.go,
loadvariationriskbalancing_test.go and analysis_test.go.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.schedulers import LoadVariationRiskBalancingScheduler, TargetLoadPackingScheduler
from simulator.schedulers._common import go_round
from simulator.schedulers.trimaran import (
    DEFAULT_TARGET_UTILIZATION,
    UPSTREAM_TARGET_UTILIZATION,
    lvrb_resource_score,
    lvrb_score,
    predict_cpu,
    tlp_score,
)
from simulator.types import UNSET, ClusterView, PodSpec

GI = 1024**3
MI = 1024**2
NAN = float("nan")


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (0.5, 1.0),
        (1.5, 2.0),
        (2.5, 3.0),
        (-0.5, -1.0),
        (-2.5, -3.0),
        (0.49999999999999994, 0.0),
        (62.4999, 62.0),
        (-0.4, -0.0),
        (4503599627370497.0, 4503599627370497.0),
    ],
    ids=[
        "half-up",
        "odd-half-up",
        "even-half-away-not-to-even",
        "negative-half-away",
        "negative-even-half-away",
        "just-below-half",
        "below-half",
        "small-negative",
        "beyond-2^52",
    ],
)
def test_go_round(x, expected):
    assert go_round(x) == expected
    assert np.isnan(go_round(NAN))


def test_defaults():
    assert DEFAULT_TARGET_UTILIZATION == 65  # this project's target
    assert UPSTREAM_TARGET_UTILIZATION == 40
    assert TargetLoadPackingScheduler().target_utilization == 65


# -- TargetLoadPacking ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "limit", "expected"),
    [
        (100, 500, 500),
        (UNSET, 300, 300),
        (100, UNSET, 150),
        (1, UNSET, 2),
        (3, UNSET, 5),
        (UNSET, UNSET, 1000),
        (0, UNSET, 0),
        (100, 0, 0),
    ],
    ids=[
        "limit-wins",
        "limit-only",
        "request-times-1.5",
        "go-round-1.5-to-2",
        "go-round-4.5-to-5",
        "pod-without-requests-1000m",
        "explicit-zero-request",
        "explicit-zero-limit",
    ],
)
def test_predict_cpu(req, limit, expected):
    assert predict_cpu(np.array([req]), np.array([limit])).tolist() == [expected]


@pytest.mark.parametrize(
    ("used", "missing", "pod", "cap", "target", "expected"),
    [
        ([1000, 2000, 3000], 0, 0, 4000, 50, [75, 100, 25]),
        ([0], 0, 0, 1000, 40, [40]),
        ([500], 0, 0, 1000, 40, [33]),
        ([300], 0, 1000, 1000, 40, [0]),
        ([NAN], 0, 0, 1000, 40, [0]),
        ([500], 0, 0, 4000, 50, [63]),
        ([2300], 0, 0, 4000, 50, [43]),
        ([1000], 1000, 0, 4000, 50, [100]),
        ([0], 0, 0, 1000, 65, [65]),
        ([650], 0, 0, 1000, 65, [100]),
        ([825], 0, 0, 1000, 65, [33]),
        ([1000], 0, 0, 1000, 65, [0]),
        ([900], 0, 101, 1000, 65, [0]),
    ],
    ids=[
        "worked-check-X50-1-2-3-of-4-cores",
        "upstream-new-node",
        "upstream-hot-node",
        "upstream-excess-utilization-min-score",
        "no-metric-NaN-min-score",
        "go-round-62.5-to-63",
        "go-round-42.5-to-43",
        "missing-utilisation-counts",
        "X65-idle-node",
        "X65-at-target",
        "X65-above-target-32.5-to-33",
        "X65-exactly-full",
        "X65-over-100",
    ],
)
def test_tlp_score(used, missing, pod, cap, target, expected):
    n = len(used)
    got = tlp_score(np.array(used, float), np.full(n, missing), pod, np.full(n, cap), target)
    assert got.tolist() == expected


def _tlp_view() -> ClusterView:
    view = ClusterView.empty(np.array([4000, 4000]), np.array([8 * GI, 8 * GI]), now=1060.0)
    view.metrics.window_end = 1000.0
    view.metrics.cpu_avg[:] = 0.0
    return view


def test_tlp_worked_check_through_the_scheduler():
    """X=50, 4-core nodes using 1/2/3 cores, a pod predicting 0 (explicit zero request)."""
    view = ClusterView.empty(np.full(3, 4000), np.full(3, 8 * GI))
    view.metrics.window_end = 0.0
    view.metrics.cpu_avg[:] = [0.25, 0.5, 0.75]  # 1, 2 and 3 of 4 cores over the window
    view.metrics.cpu_used[:] = 4000.0  # the latest sample is not what TLP reads
    sched = TargetLoadPackingScheduler(target_utilization=50)
    sched.reset(0)
    pod = PodSpec("p", cpu_request=0, mem_request=GI)
    assert sched.score(pod, view, np.arange(3)).tolist() == [75, 100, 25]
    assert sched.select(pod, view) == 1


def test_tlp_counts_pods_bound_within_60s_before_window_end_or_after():
    view = _tlp_view()
    bound = PodSpec("b", cpu_request=100, mem_request=MI, cpu_limit=500)
    for t in (930.0, 940.0, 950.0, 1030.0):  # 940 = end - 60: not counted (strict)
        view.bindings.append(t, 0, bound)
    sched = TargetLoadPackingScheduler(target_utilization=50)
    sched.reset(0)
    pod = PodSpec("p", cpu_request=0, mem_request=MI)
    # node0: (950, 1030) -> 1000 m missing -> U = 25 -> 75; node1: U = 0 -> 50.
    assert sched.score(pod, view, np.array([0, 1])).tolist() == [75, 50]


def test_tlp_pod_prediction_and_capacity_not_allocatable():
    view = _tlp_view()
    view.alloc_cpu[:] = 2000  # ignored: TLP divides by capacity
    sched = TargetLoadPackingScheduler(target_utilization=50)
    sched.reset(0)
    # no request, no limit -> 1000 m -> U = 25 -> 75
    assert sched.score(PodSpec("p", None, None), view, np.array([0])).tolist() == [75]


def test_tlp_no_metrics_at_all():
    view = ClusterView.empty(np.array([4000]), np.array([GI]))
    sched = TargetLoadPackingScheduler()
    sched.reset(0)
    assert sched.score(PodSpec("p", 100, MI), view, np.array([0])).tolist() == [0]
    assert sched.score(PodSpec("p", 100, MI), view, np.array([], dtype=np.int64)).size == 0


# -- LoadVariationRiskBalancing -------------------------------------------------------


@pytest.mark.parametrize(
    ("avg", "std", "req", "alloc", "margin", "sensitivity", "expected"),
    [
        (0.40, 0.36, 10, 100, 1, 1, 57),
        (0.40, 0.36, 10, 0, 1, 2, 0),
        (-0.40, 0.36, 10, 100, 1, 2, 65),
        (2.00, 0.36, 10, 100, 1, 2, 20),
        (0.40, -0.36, 10, 100, 1, 2, 75),
        (0.40, 1.20, 10, 100, 1, 2, 25),
        (0.40, 0.36, 10, 100, -1, 1, 75),
        (0.40, 0.36, 10, 100, 1, -1, 57),
        (0.40, 0.36, 10, 100, 1, 0, 75),
    ],
    ids=[
        "upstream-valid-data",
        "upstream-zero-capacity",
        "upstream-negative-usedAvg",
        "upstream-large-usedAvg",
        "upstream-negative-usedStdev",
        "upstream-large-usedStdev",
        "upstream-negative-margin",
        "upstream-negative-sensitivity",
        "upstream-zero-sensitivity",
    ],
)
def test_lvrb_resource_score(avg, std, req, alloc, margin, sensitivity, expected):
    score, valid = lvrb_resource_score(
        np.array([avg]), np.array([std]), req, np.array([alloc]), margin, sensitivity
    )
    assert valid.tolist() == [True]
    assert go_round(score).tolist() == [expected]


def test_lvrb_score_combines_with_min_or_max():
    yes, no = np.array([True]), np.array([False])
    assert lvrb_score((np.array([67.0]), yes), (np.array([45.0]), yes)).tolist() == [45]
    assert lvrb_score((np.array([67.0]), yes), (np.array([99.0]), no)).tolist() == [67]
    assert lvrb_score((np.array([67.0]), no), (np.array([45.0]), no)).tolist() == [0]
    assert lvrb_score((np.array([62.5]), yes), (np.array([70.0]), yes)).tolist() == [63]


def _lvrb_view(cpu, mem) -> ClusterView:
    """One node of 1000 m / 1 GiB (upstream's test node) with the given (avg, std)."""
    view = ClusterView.empty(np.array([1000]), np.array([GI]))
    m = view.metrics
    m.cpu_avg[:], m.cpu_std[:] = cpu
    m.mem_avg[:], m.mem_std[:] = mem
    return view


@pytest.mark.parametrize(
    ("pod", "cpu", "mem", "expected"),
    [
        (PodSpec("p", None, None), (0.5, NAN), (NAN, NAN), 75),
        (PodSpec("p", None, None), (1.0, NAN), (NAN, NAN), 50),
        (PodSpec("p", 200, 256 * MI), (0.30, 0.16), (NAN, NAN), 67),
        (PodSpec("p", 100, 512 * MI), (0.40, 0.16), (0.50, 0.10), 45),
        (PodSpec("p", 100, 512 * MI), (0.80, 0.20), (0.25, 0.15), 45),
        (PodSpec("p", 100, 512 * MI), (NAN, NAN), (NAN, NAN), 0),
        (PodSpec("p", None, 512 * MI), (NAN, NAN), (0.25, NAN), 63),
    ],
    ids=[
        "upstream-new-node",
        "upstream-hot-node",
        "upstream-average-and-stdev",
        "upstream-cpu-and-memory-min",
        "upstream-pick-worst-case",
        "upstream-no-metrics-NaN",
        "memory-only-no-default-requests-62.5-to-63",
    ],
)
def test_lvrb_scheduler_score(pod, cpu, mem, expected):
    sched = LoadVariationRiskBalancingScheduler()
    sched.reset(0)
    assert sched.score(pod, _lvrb_view(cpu, mem), np.array([0])).tolist() == [expected]


def test_lvrb_uses_allocatable():
    view = _lvrb_view((0.0, 0.0), (NAN, NAN))
    view.alloc_cpu[:] = 500
    sched = LoadVariationRiskBalancingScheduler()
    sched.reset(0)
    # mu = 250 / 500 = 0.5 -> (1 - 0.25) * 100 = 75
    assert sched.score(PodSpec("p", 250, None), view, np.array([0])).tolist() == [75]
