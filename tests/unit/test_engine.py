"""The engine's rules, each on a hand-made cluster small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hydatis.errors import ConfigError
from simulator.engine import SimConfig, simulate
from simulator.metrics import summarize
from simulator.types import ClusterView, FrameworkScheduler, PodSpec, Scheduler
from simulator.workload import GIB, compile_workload
from tests.factories import make_dataset


class FirstFit(FrameworkScheduler):
    """Lowest node index among the feasible ones."""

    name = "first-fit"

    def score(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        return -nodes


class Fixed(Scheduler):
    """Always the same node, even when it does not fit (to force overloads)."""

    name = "fixed"

    def __init__(self, node: int) -> None:
        self.node = node

    def select(self, pod: PodSpec, view: ClusterView) -> int | None:
        return self.node


class Spy(FirstFit):
    """Records what the view showed at each decision."""

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self.seen: list[tuple[float, float]] = []

    def select(self, pod: PodSpec, view: ClusterView) -> int | None:
        self.seen.append((view.now, float(view.metrics.updated_at[0])))
        return super().select(pod, view)


def run(ds, sched, **cfg):
    return simulate(compile_workload(ds), sched, seed=0, config=SimConfig(**cfg))


def test_pod_larger_than_every_node_stays_pending_and_is_impacted():
    ds = make_dataset([(4, 8)], [{"cpu": 1}, {"cpu": 8}], horizon_s=600)
    res = run(ds, FirstFit())
    fig = summarize(res)
    assert res.never_placed == 1
    assert res.placements == 1
    # The big pod is impacted from 60 s on: steps at 90..600 s (of 21 steps of 2 pods).
    late_steps = sum(1 for t in res.times if t > 60)
    assert fig["impacted_pending"] == pytest.approx(late_steps / (2 * res.times.size))
    assert fig["availability"] == pytest.approx(1 - late_steps / (2 * res.times.size))


def test_completion_frees_the_node_for_a_waiting_pod():
    ds = make_dataset(
        [(4, 8)],
        [{"cpu": 3, "end": 300}, {"start": 30, "cpu": 3}],
        horizon_s=900,
    )
    res = run(ds, FirstFit())
    assert res.placements == 2 and res.never_placed == 0
    # The second pod waited from 30 s to 300 s.
    assert res.pending_times_s.max() == pytest.approx(270.0)


def test_memory_overuse_evicts_lowest_priority_over_request_pod_and_reschedules_it():
    pods = [
        {"cpu": 1, "mem": 4, "priority": 10, "use": [(1, 4)]},
        {"cpu": 1, "mem": 4, "priority": 0, "use": [(1, 4), (1, 7)]},
    ]
    ds = make_dataset([(8, 10), (8, 10)], pods, horizon_s=900)
    # Both land on node 0 (first fit); after 300 s pod 1 uses 7 GiB: 11 > 10 GiB.
    res = run(ds, FirstFit())
    assert res.evictions >= 1
    fig = summarize(res)
    assert fig["impacted_oom"] > 0
    # The evicted pod is placed again (a third placement).
    assert res.placements >= 3
    assert res.pending[-1] == 0
    assert res.node_mem.max() <= 1.0


def test_cpu_demand_above_capacity_impacts_every_pod_on_the_node():
    pods = [{"cpu": 1, "use": [(3, 1)]}, {"cpu": 1, "use": [(2, 1)]}]
    ds = make_dataset([(4, 8)], pods, horizon_s=300)
    res = run(ds, Fixed(0))
    assert (res.cpu_overloaded_nodes == 1).all()
    assert summarize(res)["impacted_cpu"] == pytest.approx(1.0)
    assert res.node_cpu.max() == pytest.approx(1.0)  # reported utilisation is capped


def test_usage_follows_the_pods_age_not_the_wall_clock():
    # Node 0 is full until 600 s, so the pod starts late; its profile must start at its
    # first sample (2 cores), not at the sample of the wall-clock time (4 cores).
    pods = [
        {"cpu": 4, "end": 600, "use": [(0.0, 0.1)]},
        {"start": 0, "cpu": 1, "use": [(2, 1), (2, 1), (4, 1)]},
    ]
    ds = make_dataset([(4, 8)], pods, horizon_s=900)
    res = run(ds, FirstFit())
    at_600 = int(600 / 30)
    assert res.node_cpu[at_600, 0] == pytest.approx(0.5)
    assert res.node_cpu[int(900 / 30), 0] == pytest.approx(0.5)


def test_schedulers_see_metrics_late_by_the_lag():
    pods = [{"start": s, "cpu": 0.1, "end": s + 60} for s in range(0, 1800, 90)]
    ds = make_dataset([(4, 8)], pods, horizon_s=1800)
    spy = Spy()
    run(ds, spy, metrics_lag_s=120, metrics_interval_s=60)
    ages = [now - upd for now, upd in spy.seen if not np.isnan(upd)]
    assert ages and min(ages) >= 120 and max(ages) < 120 + 60 + 30
    assert np.isnan(spy.seen[0][1])  # nothing visible at the start


def test_same_seed_same_result_and_requests_accounted():
    rng = np.random.default_rng(1)
    pods = [
        {"start": float(s), "cpu": float(c), "mem": 2.0, "end": float(s) + 1200}
        for s, c in zip(rng.uniform(0, 600, 40), rng.choice([0.5, 1, 2], 40), strict=True)
    ]
    ds = make_dataset([(8, 32)] * 6, pods, horizon_s=1800)

    class Random(FrameworkScheduler):
        name = "rand"

        def score(self, pod, view, nodes):
            return np.zeros(nodes.size)

    a, b = run(ds, Random()), run(ds, Random())
    np.testing.assert_array_equal(a.node_cpu, b.node_cpu)
    assert summarize(a)["objective"] == summarize(b)["objective"]
    workload = compile_workload(ds)
    assert workload.req_mem.sum() == 40 * 2 * GIB


def test_pod_without_requests_uses_kubernetes_defaults_for_scoring_only():
    ds = make_dataset([(4, 8)], [{"cpu": None, "mem": None}])
    spec = compile_workload(ds).pods[0]
    assert (spec.cpu_req, spec.mem_req) == (0, 0)
    assert (spec.nz_cpu_req, spec.nz_mem_req) == (100, 200 * 1024 * 1024)
    assert spec.qos == "BestEffort"


@pytest.mark.parametrize(
    ("key", "value"),
    [("step_s", 0), ("metrics_lag_s", -1), ("max_pods", 0), ("horizon_s", -5)],
    ids=["zero-step", "negative-lag", "no-pods-allowed", "negative-horizon"],
)
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        SimConfig(**{key: value})


class MetricsSpy(FirstFit):
    """Records Crane's annotations at each decision."""

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self.seen: list[tuple[float, float, float, float]] = []

    def select(self, pod: PodSpec, view: ClusterView) -> int | None:
        m = view.metrics
        self.seen.append((view.now, m.cpu_avg_5m[0], m.cpu_max_1h[0], m.cpu_max_1d[0]))
        return super().select(pod, view)


def test_crane_maxima_are_taken_over_five_minute_averages():
    # One 30 s spike to 4 of 4 cores on a 1-core baseline: the raw maximum would be 1.0,
    # the maximum of 5-minute averages is (9 × 0.25 + 1.0) / 10 = 0.325.
    use = [(1.0, 1.0)] * 20 + [(4.0, 1.0)] + [(1.0, 1.0)] * 100
    pods = [{"cpu": 1, "use": use}] + [
        {"start": s, "cpu": 0.0, "mem": 0.0, "end": s + 30} for s in range(60, 3000, 60)
    ]
    ds = make_dataset([(4, 8)], pods, horizon_s=3000, usage_step=30)
    spy = MetricsSpy()
    run(ds, spy)
    late = [row for row in spy.seen if row[0] > 1800]
    assert late and max(r[2] for r in late) == pytest.approx(0.325, abs=1e-6)
    assert max(r[3] for r in late) == pytest.approx(0.325, abs=1e-6)
    assert late[-1][1] == pytest.approx(0.25, abs=1e-6)


def test_non_pod_load_in_the_node_series_stays_with_the_node():
    # n0 reports 50 % CPU while its recorded pod uses 1 of 4 cores: 1 core is non-pod
    # load. n1 reports 25 % with no pod at all. The replay keeps both backgrounds.
    import pandas as pd

    from tests.factories import ts

    ds = make_dataset([(4, 8), (4, 8)], [{"cpu": 1, "use": [(1.0, 1.0)] * 4}], horizon_s=900)
    ds.pods["node"] = ["n0"]
    times = list(range(0, 900, 30))
    ds.node_metrics = pd.DataFrame(
        {
            "ts": ts(times * 2),
            "node": ["n0"] * len(times) + ["n1"] * len(times),
            "cpu_util": [0.5] * len(times) + [0.25] * len(times),
            "mem_util": [0.25] * len(times) + [0.5] * len(times),
        }
    )
    ds.validate()
    res = run(ds, Fixed(1))  # the replay places the pod on n1 instead
    np.testing.assert_allclose(res.node_cpu[5:, 0], 0.25)  # n0: its background only
    np.testing.assert_allclose(res.node_cpu[5:, 1], 0.5)  # n1: background + the pod
    np.testing.assert_allclose(res.node_mem[5:, 1], 0.5 + 1 / 8)


def test_segments_record_each_stay_of_each_pod():
    ds = make_dataset(
        [(4, 8)], [{"cpu": 3, "end": 300}, {"start": 30, "cpu": 3, "end": 630}], horizon_s=900
    )
    res = run(ds, FirstFit())
    rows = sorted(map(tuple, res.segments.tolist()))
    assert rows == [(0.0, 0.0, 0.0, 300.0), (1.0, 0.0, 300.0, 900.0)]
