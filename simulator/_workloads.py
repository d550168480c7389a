"""Pieces the composite trace and the synthetic default share: the services-mode instance
chains, the lifetime mapping, the level distribution and table assembly."""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import pandas as pd

from simulator import calibration as cal

EPOCH = pd.Timestamp("2024-01-01T00:00:00Z")  # dataset time 0: a Monday, 00:00 UTC
STEP_S = 300
DAY_S = 86400


def lifetime_bounds(horizon_s: float) -> tuple[float, float]:
    """The range services-mode instance lifetimes are mapped onto: [30 min, horizon]."""
    hi = float(horizon_s)
    return min(cal.MIN_SERVICE_LIFETIME_S, hi / 4.0), hi


def map_lifetimes(lives: np.ndarray, src_lo: float, src_hi: float, horizon_s: float) -> np.ndarray:
    """Map OpenB lifetimes log-linearly from [src_lo, src_hi] (OpenB's p1 and p99) onto
    :func:`lifetime_bounds`, so their order and log-shape are kept."""
    lo, hi = lifetime_bounds(horizon_s)
    src_lo = max(src_lo, 1.0)
    x = (np.log(np.maximum(lives, src_lo)) - np.log(src_lo)) / np.log(
        max(src_hi, src_lo * 1.01) / src_lo
    )
    x = np.clip(x, 0.0, 1.0)
    return np.exp(np.log(lo) + x * (np.log(hi) - np.log(lo)))


def service_chains(
    arrivals: np.ndarray,
    draw_life: Callable[[int], np.ndarray],
    horizon_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Chains of pod instances: workload ``w`` starts its first instance at
    ``arrivals[w]`` and each next one when the previous ends, until the horizon.

    Returns:
        ``(workload index, instance number, start_s, end_s)`` per instance, ordered by
        workload then instance; ``end_s`` may pass the horizon.
    """
    k = arrivals.size
    lo, _ = lifetime_bounds(horizon_s)
    m = int(np.ceil(horizon_s / lo)) + 1
    lives = draw_life(k * m).reshape(k, m)
    ends = arrivals[:, None] + np.cumsum(lives, axis=1)
    starts = ends - lives
    keep = starts < horizon_s
    w, r = np.nonzero(keep)
    return w, r, starts[keep], ends[keep]


def lognormal_quantile(q: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    """Quantile ``q`` of a lognormal with the given mean and log-sd."""
    inv = np.vectorize(NormalDist().inv_cdf)
    z = inv(np.clip(q, 1e-6, 1 - 1e-6))
    return np.exp(np.log(mean) - sigma * sigma / 2.0 + sigma * z)


def usage_rows(
    start_s: np.ndarray, end_s: np.ndarray, horizon_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of pod_usage: for instance ``i``, ``k = 0 .. n_i - 1`` with
    ``n_i = ceil((min(end, horizon) - start) / 300)`` (at least 1).

    Returns:
        ``(instance index per row, k per row)``.
    """
    dur = np.minimum(end_s, horizon_s) - start_s
    n = np.maximum(np.ceil(dur / STEP_S).astype(np.int64), 1)
    inst = np.repeat(np.arange(n.size), n)
    first = np.cumsum(n) - n
    k = np.arange(inst.size) - np.repeat(first, n)
    return inst, k


def to_ts(seconds: np.ndarray) -> pd.DatetimeIndex:
    """Dataset seconds → UTC timestamps (whole milliseconds)."""
    return EPOCH + pd.to_timedelta(np.round(np.asarray(seconds, dtype="float64") * 1000), unit="ms")


def assemble_pods(
    names: np.ndarray,
    workloads: np.ndarray,
    start_s: np.ndarray,
    end_s: np.ndarray,
    horizon_s: float,
    cpu: np.ndarray,
    mem: np.ndarray,
    priority: np.ndarray,
    qos: np.ndarray,
) -> pd.DataFrame:
    """The pods table; an instance still running at the horizon has a null ``end_ts``."""
    end = to_ts(end_s)
    guaranteed = qos == "Guaranteed"
    return pd.DataFrame(
        {
            "pod": names.astype(object),
            "workload": workloads.astype(object),
            "start_ts": to_ts(start_s),
            "end_ts": end.where(end_s <= horizon_s, pd.NaT),
            "node": pd.Series([None] * names.size, dtype=object),
            "cpu_request": cpu.astype("float64"),
            "mem_request": mem.astype("float64"),
            "priority": priority.astype("int64"),
            "cpu_limit": np.where(guaranteed, cpu, np.nan),
            "mem_limit": np.where(guaranteed, mem, np.nan),
            "qos": qos.astype(object),
        }
    )


def assemble_usage(
    names: np.ndarray,
    start_s: np.ndarray,
    inst: np.ndarray,
    k: np.ndarray,
    cpu_used: np.ndarray,
    mem_used: np.ndarray,
) -> pd.DataFrame:
    """The pod_usage table (``ts = start + k · 300 s``), pods as a categorical-free str
    column."""
    ts = start_s[inst] + k * STEP_S
    return pd.DataFrame(
        {
            "ts": to_ts(ts),
            "pod": names.astype(object)[inst],
            "cpu_used": cpu_used.astype("float64"),
            "mem_used": mem_used.astype("float64"),
        }
    )


def steady_state_shares(
    pods: pd.DataFrame,
    usage: pd.DataFrame,
    cap_cpu: float,
    cap_mem: float,
    t_from: float,
    t_to: float,
) -> dict[str, float]:
    """Requested and used CPU/memory shares of the cluster, averaged over [t_from, t_to)."""
    start = (pods["start_ts"] - EPOCH).dt.total_seconds().to_numpy()
    end = (pods["end_ts"] - EPOCH).dt.total_seconds().to_numpy(dtype=float, na_value=np.inf)
    span = max(t_to - t_from, 1.0)
    overlap = np.clip(np.minimum(end, t_to) - np.maximum(start, t_from), 0.0, None) / span
    t = (usage["ts"] - EPOCH).dt.total_seconds().to_numpy()
    inside = (t >= t_from) & (t < t_to)
    steps = max(int(np.ceil(span / STEP_S)), 1)
    return {
        "requested_cpu_share": float((overlap * pods["cpu_request"]).sum() / cap_cpu),
        "requested_mem_share": float((overlap * pods["mem_request"]).sum() / cap_mem),
        "used_cpu_share": float(usage["cpu_used"].to_numpy()[inside].sum() / steps / cap_cpu),
        "used_mem_share": float(usage["mem_used"].to_numpy()[inside].sum() / steps / cap_mem),
    }
