"""The embedded synthetic default: a cluster and a services workload drawn from the
calibration figures (:mod:`simulator.calibration`), so a fresh clone without the public
traces runs end to end with a workload shaped like the real composite.

Same structure as the composite trace in services mode (:mod:`simulator.composite`):
node types and shares from OpenB; workloads whose requests follow OpenB's request
quantiles, added until they request OpenB's share of the cluster's CPU (× load_factor);
each workload a chain of pod instances with OpenB-shaped lifetimes mapped onto
[30 min, horizon]; each instance's usage a Bitbrains-like shape at a calibrated level:

- CPU: ``level × request × shape``, clipped at the limit (Guaranteed) or
  ``BURST_CAP × request``; the level is lognormal (mean ``TARGET_CPU_USE_PER_REQUEST ×
  usage_scale``, log-sd ``CPU_LEVEL_SIGMA``); the shape is a lognormal AR(1) (lag-1
  autocorrelation and coefficient of variation of Bitbrains' median VM), raised to
  ``CPU_BURST_RATIO_MEDIAN`` × the mean at a rate of ``CPU_BURST_FREQ_MEDIAN`` per step,
  times the Google 2019 hourly diurnal factor; a global factor (bisection) restores the
  target mean after clipping.
- Memory: the same without bursts or diurnal factor, with Bitbrains' memory figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset
from hydatis.errors import ConfigError
from simulator import _workloads as wk
from simulator import calibration as cal
from simulator.composite import empty_node_metrics
from simulator.importers.openb import QOS_CLASS, QOS_PRIORITY

__all__ = ["generate_synthetic"]

_GRID = np.asarray(cal.QUANTILE_GRID)


def _inverse_cdf(u: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    return np.interp(u, _GRID, np.asarray(quantiles, dtype="float64"))


def _node_types(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` node types in OpenB's shares (largest remainder), in seeded order."""
    types = np.asarray(cal.NODE_TYPES, dtype="float64")
    share = types[:, 2] / types[:, 2].sum()
    counts = np.floor(share * n).astype(np.int64)
    rest = n - counts.sum()
    counts[np.argsort(-(share * n - counts), kind="stable")[:rest]] += 1
    idx = rng.permutation(np.repeat(np.arange(len(types)), counts))
    return types[idx, :2]


def _ar1_shape(kk: np.ndarray, phi: float, cv: float, rng: np.random.Generator) -> np.ndarray:
    """Per row, ``exp(x - σ²/2)`` with ``x`` a stationary AR(1) along each instance's rows
    (``kk`` = step number within the instance; rows of one instance are contiguous)."""
    sigma = float(np.sqrt(np.log1p(cv * cv)))
    x = rng.standard_normal(kk.size) * sigma
    innov = np.sqrt(1.0 - phi * phi)
    order = np.argsort(kk, kind="stable")
    bounds = np.searchsorted(kk[order], np.arange(1, int(kk.max()) + 2 if kk.size else 1))
    for k in range(1, bounds.size):
        rows = order[bounds[k - 1] : bounds[k]]
        x[rows] = phi * x[rows - 1] + innov * x[rows]
    return np.exp(x - sigma * sigma / 2.0)


def _solve_global(base: np.ndarray, req: np.ndarray, cap: np.ndarray, target: float) -> float:
    """The factor ``g`` with ``Σ min(g·base, cap)·req = target · Σ req``, by bisection."""
    want = target * req.sum()
    lo, hi = 0.0, 1.0
    while (np.minimum(hi * base, cap) * req).sum() < want and hi < 1e6:
        hi *= 2.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if (np.minimum(mid * base, cap) * req).sum() < want:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def generate_synthetic(
    *,
    nodes: int = 500,
    load_factor: float = 1.0,
    usage_scale: float = 1.0,
    horizon_s: float = 86400,
    ramp_s: float = 3600,
    seed: int = 0,
) -> ClusterDataset:
    """Generate the embedded default dataset (see the module docstring).

    Args:
        nodes: cluster size.
        load_factor: scales the requested share (1.0 = OpenB's 68% of the CPU).
        usage_scale: multiplies the target use/request levels.
        horizon_s: length of the trace (s).
        ramp_s: workloads arrive spread over [0, ramp_s].
        seed: the same seed gives the same dataset.

    Raises:
        ConfigError: a bad knob.
    """
    if nodes <= 0 or load_factor < 0 or usage_scale < 0 or horizon_s <= 0 or ramp_s < 0:
        raise ConfigError("nodes and horizon_s must be > 0; the other knobs >= 0")
    rng = np.random.default_rng(seed)
    types = _node_types(nodes, rng)
    node_names = np.array([f"node-{i:04d}" for i in range(nodes)], dtype=object)

    want = cal.REQUESTED_CPU_SHARE * types[:, 0].sum() * load_factor
    mean_cpu = float(np.mean(_inverse_cdf(np.linspace(0, 1, 1001), cal.POD_CPU_REQUEST_Q)))
    batch = int(want / mean_cpu * 1.3) + 16
    cpu = np.round(_inverse_cdf(rng.random(batch), cal.POD_CPU_REQUEST_Q), 3)
    while cpu.sum() < want:
        more = np.round(_inverse_cdf(rng.random(batch), cal.POD_CPU_REQUEST_Q), 3)
        cpu = np.concatenate([cpu, more])
    k = int(np.searchsorted(np.cumsum(cpu), want)) + 1 if want > 0 else 0
    cpu = cpu[:k]
    mem = np.round(cpu * _inverse_cdf(rng.random(k), cal.POD_MEM_PER_CPU_Q), 3)
    labels = sorted(cal.QOS_SHARES)
    p = np.array([cal.QOS_SHARES[q] for q in labels])
    openb_qos = np.asarray(labels, dtype=object)[rng.choice(len(labels), size=k, p=p / p.sum())]
    workloads = np.array([f"svc-{i:05d}" for i in range(k)], dtype=str)

    arrivals = ramp_s * np.arange(k) / max(k, 1)
    log_q = np.log(np.maximum(np.asarray(cal.POD_LIFETIME_Q_S), 1.0))
    src_lo, src_hi = cal.POD_LIFETIME_Q_S[1], cal.POD_LIFETIME_Q_S[-2]  # p1, p99

    def draw_life(n: int) -> np.ndarray:
        lives = np.exp(np.interp(rng.random(n), _GRID, log_q))
        return wk.map_lifetimes(lives, src_lo, src_hi, horizon_s)

    w, r, start, end = wk.service_chains(arrivals, draw_life, horizon_s)
    names = np.char.add(np.char.add(workloads[w], "-r"), r.astype(str))
    qos = np.array([QOS_CLASS[q] for q in openb_qos], dtype=object)[w].astype(str)
    priority = np.array([QOS_PRIORITY[q] for q in openb_qos], dtype=np.int64)[w]
    pods = wk.assemble_pods(
        names, workloads[w], start, end, horizon_s, cpu[w], mem[w], priority, qos
    )

    inst, kk = wk.usage_rows(start, end, horizon_s)
    n_inst = start.size
    cap = np.where(qos == "Guaranteed", 1.0, cal.BURST_CAP)[inst]
    cpu_req, mem_req = cpu[w][inst], mem[w][inst]
    # CPU: level x AR(1) shape x bursts x diurnal.
    lvl_c = rng.lognormal(-(cal.CPU_LEVEL_SIGMA**2) / 2, cal.CPU_LEVEL_SIGMA, n_inst)[inst]
    shape_c = _ar1_shape(kk, cal.CPU_LAG1_MEDIAN, cal.CPU_CV_MEDIAN, rng)
    burst = rng.random(kk.size) < cal.CPU_BURST_FREQ_MEDIAN
    shape_c = np.where(burst, np.maximum(shape_c, cal.CPU_BURST_RATIO_MEDIAN), shape_c)
    hour = ((start[inst] + kk * wk.STEP_S) % wk.DAY_S // 3600).astype(np.int64)
    shape_c = shape_c * np.asarray(cal.DIURNAL_CPU_GOOGLE2019)[hour]
    base_c = lvl_c * shape_c
    t_cpu = cal.TARGET_CPU_USE_PER_REQUEST * usage_scale
    g_c = _solve_global(base_c, cpu_req, cap, t_cpu)
    cpu_used = np.minimum(g_c * base_c, cap) * cpu_req
    # Memory: level x AR(1) shape.
    lvl_m = rng.lognormal(-(cal.MEM_LEVEL_SIGMA**2) / 2, cal.MEM_LEVEL_SIGMA, n_inst)[inst]
    base_m = lvl_m * _ar1_shape(kk, cal.MEM_LAG1_MEDIAN, cal.MEM_CV_MEDIAN, rng)
    t_mem = cal.TARGET_MEM_USE_PER_REQUEST * usage_scale
    g_m = _solve_global(base_m, mem_req, cap, t_mem)
    mem_used = np.minimum(g_m * base_m, cap) * mem_req
    usage = wk.assemble_usage(names, start, inst, kk, cpu_used, mem_used)

    node_df = pd.DataFrame({"node": node_names, "cpu_cores": types[:, 0], "mem_gib": types[:, 1]})
    window = (min(ramp_s, horizon_s * 0.5), horizon_s)
    shares = wk.steady_state_shares(
        pods, usage, float(types[:, 0].sum()), float(types[:, 1].sum()), *window
    )
    meta: dict[str, Any] = {
        "source": "embedded synthetic default (simulator.calibration)",
        "knobs": {
            "nodes": nodes,
            "load_factor": load_factor,
            "usage_scale": usage_scale,
            "horizon_s": horizon_s,
            "ramp_s": ramp_s,
            "seed": seed,
        },
        "calibration": {
            "target_cpu_use_per_request": t_cpu,
            "target_mem_use_per_request": t_mem,
            "cpu_level_sigma": cal.CPU_LEVEL_SIGMA,
            "mem_level_sigma": cal.MEM_LEVEL_SIGMA,
            "burst_cap": cal.BURST_CAP,
            "requested_cpu_share_target": cal.REQUESTED_CPU_SHARE * load_factor,
            "target_node_cpu_mean": cal.ALIBABA_NODE_CPU_MEAN,
            "target_node_cpu_p95": cal.ALIBABA_NODE_CPU_P95,
        },
        "workloads": k,
        "pods": len(pods),
        "steady_state_window_s": list(window),
        **shares,
        "expected_mean_cpu_util": shares["used_cpu_share"],
        "epoch": str(wk.EPOCH),
    }
    return ClusterDataset(node_df, empty_node_metrics(), pods, usage, meta)
