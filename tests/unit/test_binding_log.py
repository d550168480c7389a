"""The binding log and the incremental window sums load-aware schedulers read it with."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.types import BindingLog, PodSpec, WindowSum


def cpu_of(b):
    return b.cpu_request.astype(float)


def brute(log_rows, t0, n):
    out = np.zeros(n)
    for t, node, cpu in log_rows:
        if t > t0:
            out[node] += cpu
    return out


@pytest.mark.parametrize(
    "pattern",
    ["forward", "with-step-back", "with-prune", "empty-window"],
)
def test_window_sum_matches_brute_force(pattern):
    rng = np.random.default_rng(7)
    log, rows, n = BindingLog(capacity=4), [], 5
    window = WindowSum(cpu_of)
    t = 0.0
    for step in range(400):
        t += float(rng.exponential(2.0))
        node, cpu = int(rng.integers(n)), int(rng.integers(1, 2000))
        log.append(t, node, PodSpec(f"p{step}", cpu, 1))
        rows.append((t, node, cpu))
        span = 60.0 if pattern != "empty-window" else 0.0
        t0 = t - span
        if pattern == "with-step-back" and step % 37 == 0:
            t0 -= 200.0
        if pattern == "with-prune" and step % 50 == 0:
            log.prune(t - 90.0)
            rows = [r for r in rows if r[0] >= t - 90.0]
        np.testing.assert_array_equal(window.get(log, t0, n), brute(rows, t0, n))


def test_since_is_strictly_after_and_survives_prune():
    log = BindingLog(capacity=2)
    for i, t in enumerate([1.0, 2.0, 2.0, 3.0]):
        log.append(t, i, PodSpec(f"p{i}", None, 5))
    assert log.since(2.0).node.tolist() == [3]
    assert log.since(1.0).node.tolist() == [1, 2, 3]
    assert log.since(0.0).cpu_request.tolist() == [-1, -1, -1, -1]  # unset request
    version = log.version
    log.prune(2.0)
    assert len(log) == 3 and log.base == 1 and log.version > version
    assert log.since(0.0).node.tolist() == [1, 2, 3]
    assert log.first_after(2.0) == 3 and log.end == 4
