"""The random baseline: uniform over every feasible node, deterministic per seed."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.schedulers import RandomScheduler
from simulator.types import ClusterView, PodSpec

GI = 1024**3


def _cluster(n: int) -> ClusterView:
    return ClusterView.empty(np.full(n, 4000), np.full(n, 8 * GI))


@pytest.mark.parametrize(
    ("n", "full"),
    [(0, []), (3, [0, 1, 2])],
    ids=["empty-node-list", "no-node-has-room"],
)
def test_none_when_nothing_fits(n, full):
    view = _cluster(n)
    view.req_cpu[full] = 4000
    sched = RandomScheduler()
    sched.reset(0)
    assert sched.select(PodSpec("p", 1000, GI), view) is None


def test_only_feasible_nodes_all_of_them_uniformly():
    view = _cluster(300)
    view.req_cpu[::3] = 4000  # every third node is full
    sched = RandomScheduler()
    sched.reset(7)
    picks = np.array([sched.select(PodSpec("p", 1000, GI), view) for _ in range(20000)])
    feasible = np.setdiff1d(np.arange(300), np.arange(0, 300, 3))
    assert set(picks.tolist()) == set(feasible.tolist())  # no percentageOfNodesToScore subset
    counts = np.bincount(picks, minlength=300)[feasible]
    expected = picks.size / feasible.size
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 300  # 199 degrees of freedom: p < 1e-5 above this


def test_same_seed_same_choices():
    view = _cluster(50)

    def draws(seed: int) -> list[int | None]:
        sched = RandomScheduler()
        sched.reset(seed)
        return [sched.select(PodSpec("p", 10, 10), view) for _ in range(30)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
