"""Small hand-made datasets for tests: a few nodes and pods with explicit usage."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def ts(seconds: float | Sequence[float]) -> pd.Timestamp | pd.DatetimeIndex:
    """UTC timestamps ``seconds`` after T0."""
    if np.isscalar(seconds):
        return T0 + pd.Timedelta(seconds=float(seconds))
    return T0 + pd.to_timedelta(np.asarray(seconds, dtype=float), unit="s")


def make_dataset(
    nodes: Sequence[tuple[float, float]],
    pods: Sequence[dict],
    *,
    horizon_s: float = 3600.0,
    ramp_s: float = 0.0,
    usage_step: float = 300.0,
) -> ClusterDataset:
    """Build a dataset.

    Args:
        nodes: (cpu_cores, mem_gib) per node, named n0, n1, ...
        pods: dicts with start, end (s, None = runs on), cpu, mem (requests, cores/GiB,
            None = unset), priority, and use: a list of (cpu, mem) samples, one every
            ``usage_step`` seconds of the pod's age (default: its requests, constant).
    """
    node_df = pd.DataFrame(
        {
            "node": [f"n{i}" for i in range(len(nodes))],
            "cpu_cores": [float(c) for c, _ in nodes],
            "mem_gib": [float(m) for _, m in nodes],
        }
    )
    rows, usage = [], []
    for j, p in enumerate(pods):
        name = p.get("name", f"p{j}")
        start, end = float(p.get("start", 0.0)), p.get("end")
        cpu, mem = p.get("cpu", 1.0), p.get("mem", 1.0)
        rows.append(
            {
                "pod": name,
                "workload": p.get("workload", name),
                "start_ts": ts(start),
                "end_ts": ts(end) if end is not None else pd.NaT,
                "node": None,
                "cpu_request": np.nan if cpu is None else float(cpu),
                "mem_request": np.nan if mem is None else float(mem),
                "priority": int(p.get("priority", 0)),
            }
        )
        use = p.get("use") or [(cpu or 0.0, mem or 0.0)]
        for k, (u_cpu, u_mem) in enumerate(use):
            usage.append((ts(start + k * usage_step), name, float(u_cpu), float(u_mem)))
    pod_df = pd.DataFrame(rows)
    pod_df["end_ts"] = pd.to_datetime(pod_df["end_ts"], utc=True)
    pod_df["node"] = pod_df["node"].astype(object)
    usage_df = pd.DataFrame(usage, columns=["ts", "pod", "cpu_used", "mem_used"])
    metrics = pd.DataFrame(
        {
            "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
            "node": pd.Series([], dtype=object),
            "cpu_util": pd.Series([], dtype=float),
            "mem_util": pd.Series([], dtype=float),
        }
    )
    meta = {"horizon_s": horizon_s, "ramp_s": ramp_s}
    return ClusterDataset(node_df, metrics, pod_df, usage_df, meta)
