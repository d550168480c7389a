"""The evaluation metrics on hand-computed series."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.engine import SimResult
from simulator.metrics import hot_share_series, improvement, placement_objective, summarize


def result(node_cpu, *, alive=None, impacted=None, warmup=0.0, step=30.0):
    node_cpu = np.asarray(node_cpu, dtype=np.float32)
    steps, n = node_cpu.shape
    zeros = np.zeros(steps, dtype=np.int64)
    alive = np.asarray(alive if alive is not None else [1] * steps)
    impacted = np.asarray(impacted if impacted is not None else zeros)
    return SimResult(
        scheduler="x",
        seed=0,
        step_s=step,
        warmup_s=warmup,
        times=np.arange(steps) * step,
        node_cpu=node_cpu,
        node_mem=node_cpu * 0.5,
        cpu_overloaded_nodes=zeros,
        pods_alive=alive,
        pods_impacted=impacted,
        impacted_pending=impacted,
        impacted_cpu=zeros,
        impacted_oom=zeros,
        pending=zeros,
        requested_cpu_share=np.full(steps, 0.5),
        requested_mem_share=np.full(steps, 0.25),
        latencies_s=np.array([0.001, 0.002, 0.003]),
        pending_times_s=np.array([0.0, 30.0]),
        placements=2,
        evictions=0,
        never_placed=0,
        cap_cpu=np.full(n, 4000),
        cap_mem=np.full(n, 8 * 1024**3),
    )


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [([[0.5, 0.6]], 0.0), ([[0.75, 0.65]], 0.05), ([[1.0, 0.0]], 0.175), ([], float("nan"))],
    ids=["all-below-target", "one-above", "one-full-one-idle", "empty"],
)
def test_placement_objective(cpu, expected):
    got = placement_objective(np.asarray(cpu, dtype=float))
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(0.05, 0.1, 0.5), (0.1, 0.1, 0.0), (0.2, 0.1, -1.0), (0.0, 0.0, float("nan"))],
    ids=["halved", "equal", "worse", "baseline-zero"],
)
def test_improvement(a, b, expected):
    got = improvement(a, b)
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)


def test_summary_figures_by_hand():
    # Two steps, two nodes: [0.9, 0.5] then [0.66, 0.2].
    r = result([[0.9, 0.5], [0.66, 0.2]], alive=[4, 4], impacted=[1, 0])
    f = summarize(r)
    assert f["mean_cpu"] == pytest.approx((0.9 + 0.5 + 0.66 + 0.2) / 4)
    assert f["hot_share"] == pytest.approx(0.25)
    assert f["target_band_share"] == pytest.approx(0.25)
    assert f["spread"] == pytest.approx((0.2 + 0.23) / 2, abs=1e-6)
    assert f["objective"] == pytest.approx((0.25 + 0.01) / 4, abs=1e-6)
    assert f["availability"] == pytest.approx(1 - 1 / 8)
    assert f["latency_p50_ms"] == pytest.approx(2.0)
    np.testing.assert_allclose(hot_share_series(r), [0.5, 0.0])


def test_warmup_steps_are_left_out():
    r = result([[1.0, 1.0], [0.1, 0.1], [0.1, 0.1]], warmup=30.0)
    f = summarize(r)
    assert f["hot_share"] == 0.0 and f["mean_cpu"] == pytest.approx(0.1)
