"""A small synthetic node history with daily cycles, for the README's example and the
tests, when no real trace is at hand. The benchmark uses the real traces, never this.

Each node's CPU utilisation is its own level plus a daily sine of its own amplitude and
phase, scaled by a per-day factor (busy and quiet days), plus AR(1) noise; memory is a
slowly varying level. Values are clipped to [0, 1].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset, empty_table

__all__ = ["synthetic_history"]


def synthetic_history(
    *,
    nodes: int = 8,
    days: float = 4.0,
    step_s: float = 300.0,
    start: str = "2024-01-01",
    seed: int = 0,
) -> ClusterDataset:
    """A cluster dataset of ``nodes`` node series over ``days`` at ``step_s``.

    Args:
        nodes: how many nodes (``n0``, ``n1``, ...).
        days: length of the history.
        step_s: sample interval (s).
        start: the first sample's time (UTC midnight by default).
        seed: the random seed (same seed, same data).
    """
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start, tz="UTC")
    steps = int(days * 86400 / step_s)
    secs = np.arange(steps) * step_s
    day = (secs // 86400).astype(int)
    day_factor = rng.normal(1.0, 0.04, size=day.max() + 1)[day]
    frames = []
    for i in range(nodes):
        level = rng.uniform(0.2, 0.5)
        amp = rng.uniform(0.05, 0.15)
        phase = rng.uniform(0, 2 * np.pi)
        noise = np.zeros(steps)
        eps = rng.normal(0, 0.02, size=steps)
        for t in range(1, steps):
            noise[t] = 0.8 * noise[t - 1] + eps[t]
        cpu = (level + amp * np.sin(2 * np.pi * secs / 86400 + phase)) * day_factor + noise
        mem = rng.uniform(0.4, 0.7) + 0.02 * np.sin(2 * np.pi * secs / (3 * 86400)) + 0.3 * eps
        frames.append(
            pd.DataFrame(
                {
                    "ts": t0 + pd.to_timedelta(secs, unit="s"),
                    "node": f"n{i}",
                    "cpu_util": np.clip(cpu, 0.0, 1.0),
                    "mem_util": np.clip(mem, 0.0, 1.0),
                }
            )
        )
    node_table = pd.DataFrame(
        {"node": [f"n{i}" for i in range(nodes)], "cpu_cores": 16.0, "mem_gib": 64.0}
    )
    return ClusterDataset(
        node_table,
        pd.concat(frames, ignore_index=True),
        empty_table("pods"),
        empty_table("pod_usage"),
        {"source": "synthetic drift example", "seed": seed},
    )
