"""Crane Dynamic: filter on cpu_avg_5m / cpu_max_1h, weighted score minus the hot value."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.schedulers import CraneScheduler
from simulator.schedulers.crane import (
    crane_filter,
    crane_load_score,
    crane_score,
    hot_value,
    usage_valid,
)
from simulator.types import ClusterView, PodSpec

GI = 1024**3
NAN = float("nan")
WEIGHTS = (0.2, 0.3, 0.5)


def _valid(values):
    return [usage_valid(np.array([v]), None, 0.0, 180.0) for v in values]


@pytest.mark.parametrize(
    ("usages", "hot", "expected"),
    [
        ((0.25, 0.5, 0.75), 0, 42),
        ((0.0, 0.0, 0.0), 0, 100),
        ((0.25, 0.5, NAN), 0, 30),
        ((NAN, NAN, NAN), 0, 0),
        ((0.25, 0.5, 0.75), 2, 22),
        ((0.25, 0.5, 0.75), 5, 0),
        ((1.2, 1.2, 1.2), 0, 0),
        ((0.25, -0.5, 0.75), 0, 27),
        ((0.1, 0.1, 0.1), 1, 80),
    ],
    ids=[
        "weighted-sum-truncated-42.5",
        "idle-node",
        "NaN-counts-0-keeps-its-weight",
        "no-metrics",
        "hot-value-2-minus-20",
        "clamped-at-0",
        "overloaded-negative-clamped",
        "negative-usage-is-missing",
        "idle-ish-hot-1",
    ],
)
def test_crane_score(usages, hot, expected):
    got = crane_score([np.array([u]) for u in usages], _valid(usages), WEIGHTS, np.array([hot]))
    assert got.tolist() == [expected]


def test_crane_load_score_is_not_clamped():
    usages = [np.array([1.5, 0.0])] * 3
    valid = [np.array([True, True])] * 3
    assert crane_load_score(usages, valid, WEIGHTS).tolist() == [-50, 100]


def test_crane_score_without_priorities_is_zero():
    assert crane_score([], [], [], np.array([0, 1])).tolist() == [0, 0]


@pytest.mark.parametrize(
    ("avg5", "max1h", "limits", "expected"),
    [
        (0.65, 0.75, (0.65, 0.75), True),
        (0.66, 0.10, (0.65, 0.75), False),
        (0.10, 0.76, (0.65, 0.75), False),
        (NAN, NAN, (0.65, 0.75), True),
        (NAN, 0.80, (0.65, 0.75), False),
        (0.99, 0.99, (0.0, 0.0), True),
        (-1.0, 0.10, (0.65, 0.75), True),
    ],
    ids=[
        "equality-passes-strict-gt",
        "avg5m-over",
        "max1h-over",
        "NaN-skipped",
        "one-NaN-other-over",
        "limit-0-disables",
        "negative-is-missing",
    ],
)
def test_crane_filter(avg5, max1h, limits, expected):
    usages = [np.array([avg5]), np.array([max1h])]
    assert crane_filter(usages, _valid((avg5, max1h)), limits).tolist() == [expected]


@pytest.mark.parametrize(
    ("taken_at", "expected"),
    [(0.0, True), (479.0, True), (-480.0, False), (-1000.0, False)],
    ids=["fresh", "just-taken", "expired-exactly-period-plus-5min", "expired"],
)
def test_usage_valid_expiry(taken_at, expected):
    # period 180 s + 300 s extra: active while now < taken_at + 480
    got = usage_valid(np.array([0.5]), np.array([taken_at]), 0.0, 180.0)
    assert got.tolist() == [expected]


def _bind(view: ClusterView, times, node: int) -> None:
    for t in times:
        view.bindings.append(t, node, PodSpec("b", 100, GI))


def test_hot_value_windows_are_strict():
    view = ClusterView.empty(np.full(3, 4000), np.full(3, 8 * GI), now=1000.0)
    events = sorted(
        [(t, 0) for t in (701.0, 800.0, 900.0, 941.0, 970.0)]  # 5 in 5 min, 2 in 1 min
        + [(t, 1) for t in (700.0, 750.0, 800.0, 850.0, 990.0)]  # 700 is outside: 4 and 1
        + [(t, 2) for t in (940.0, 945.0, 950.0)]  # 940 outside 1 min: 3 and 2
    )
    for t, node in events:
        _bind(view, [t], node)
    got = hot_value(view.bindings.since(700.0), 1000.0, 3)
    assert got.tolist() == [1 + 1, 0 + 0, 0 + 1]


def _view() -> ClusterView:
    view = ClusterView.empty(np.full(3, 4000), np.full(3, 8 * GI), now=1000.0)
    m = view.metrics
    m.cpu_avg_5m[:] = [0.25, 0.20, 0.70]
    m.cpu_max_1h[:] = [0.50, 0.45, 0.70]
    m.cpu_max_1d[:] = [0.75, 0.70, 0.70]
    return view


def test_scheduler_filters_scores_and_penalises_hot_nodes():
    view = _view()
    sched = CraneScheduler()
    sched.reset(0)
    pod = PodSpec("p", 100, GI)
    assert sched.filter(pod, view).tolist() == [True, True, False]
    # node0: 15 + 15 + 12.5 = 42.5 -> 42; node1: 16 + 16.5 + 15 = 47.5 -> 47
    assert sched.score(pod, view, np.array([0, 1])).tolist() == [42, 47]
    assert sched.select(pod, view) == 1
    _bind(view, [990.0, 995.0], 1)  # 2 in the last minute: hot 1 -> 37
    assert sched.score(pod, view, np.array([0, 1])).tolist() == [42, 37]
    assert sched.select(pod, view) == 0


def test_scheduler_reads_annotation_times_when_present():
    view = _view()
    view.metrics.cpu_max_1d_at = np.array([0.0, 0.0, 0.0])  # 1000 s old: within 3 h + 5 min
    view.metrics.cpu_avg_5m_at = np.array([0.0, 600.0, 0.0])  # node0's is 1000 s old
    sched = CraneScheduler()
    sched.reset(0)
    # node0 loses cpu_avg_5m (15 points): 15 + 12.5 = 27.5 -> 27
    assert sched.score(PodSpec("p", 1, 1), view, np.array([0, 1])).tolist() == [27, 47]


def test_scheduler_empty_candidates():
    sched = CraneScheduler()
    sched.reset(0)
    got = sched.score(PodSpec("p", 1, 1), _view(), np.array([], dtype=np.int64))
    assert got.size == 0


def test_scheduler_hot_value_matches_the_formula_over_time():
    """The scheduler counts recent bindings incrementally; at every instant its penalty is
    ten times :func:`hot_value` over the same bindings."""
    from simulator.schedulers.crane import hot_value

    rng = np.random.default_rng(5)
    n = 4
    view = ClusterView.empty(np.full(n, 8000), np.full(n, 32 * 1024**3))
    for name in ("cpu_avg_5m", "cpu_max_1h", "cpu_max_1d"):
        getattr(view.metrics, name)[:] = 0.0  # load score 100: only the penalty remains
    sched = CraneScheduler()
    sched.reset(0)
    nodes = np.arange(n)
    for i, t in enumerate(np.sort(rng.uniform(0.0, 1200.0, 60))):
        view.now = float(t)
        view.bindings.append(float(t), int(rng.integers(n)), PodSpec(f"p{i}", 100, 1))
        hot = hot_value(view.bindings.since(view.now - 300.0), view.now, n)
        expected = np.clip(100 - 10 * hot, 0, 100)
        np.testing.assert_array_equal(sched.score(PodSpec("x", 100, 1), view, nodes), expected)
