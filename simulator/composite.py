"""The real composite trace: Alibaba OpenB's cluster and pods, each pod's usage shaped by
a Bitbrains VM and rescaled to a real cluster's utilisation level.

OpenB gives a real Kubernetes cluster (1,523 nodes) and 8,152 pods' requests, QoS and
lifecycles, but no usage; Bitbrains gives real 5-min usage shapes of 200 VMs, but at
levels far below any Kubernetes request (median VM 1.8% of its provisioned CPU). The
composite keeps OpenB's requests and Bitbrains' shapes, and rescales each shape's level
so that at ``load_factor=1`` the cluster runs at Alibaba v2018's measured node CPU
utilisation (mean 0.335). See ``simulator/TRACES.md`` for the whole recipe.

Contract with the simulator: pod_usage rows are ``ts = start_ts + k · 300 s``; the
simulator reads a pod's usage by its age (``ts - start_ts``).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hydatis.config import require_data_dir
from hydatis.dataset import ClusterDataset
from hydatis.errors import ConfigError, DataSourceError
from simulator import _workloads as wk
from simulator import calibration as cal
from simulator.calibrate import usable_vms
from simulator.importers.bitbrains import DEFAULT_FOLDER, VMSeries, load_bitbrains
from simulator.importers.openb import DEFAULT_NODE_LIST, DEFAULT_POD_LIST, OPENB_DIR, load_openb

__all__ = ["MODES", "VMProfiles", "build_composite", "solve_scales"]

log = logging.getLogger(__name__)

MODES = ("services", "trace")
_STEPS_PER_DAY = wk.DAY_S // wk.STEP_S


class VMProfiles:
    """Bitbrains VM series stacked into padded matrices (one row per VM)."""

    def __init__(self, vms: list[VMSeries]) -> None:
        if not vms:
            raise DataSourceError("no usable Bitbrains VM profile (need >= 2 days of samples)")
        self.names = [v.vm for v in vms]
        self.length = np.array([len(v) for v in vms], dtype=np.int64)
        width = int(self.length.max())
        self.cpu = np.zeros((len(vms), width))
        self.mem = np.zeros((len(vms), width))
        self.mask = np.zeros((len(vms), width), dtype=bool)
        for i, v in enumerate(vms):
            self.cpu[i, : len(v)] = v.cpu_frac
            self.mem[i, : len(v)] = v.mem_frac
            self.mask[i, : len(v)] = True
        self.tod_s = np.array([v.t0 % wk.DAY_S for v in vms], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.names)

    def mean_level(self, which: str) -> np.ndarray:
        """Each VM's mean ``cpu`` or ``mem`` fraction of its provisioned size."""
        x = getattr(self, which)
        return (x * self.mask).sum(axis=1) / self.length


def solve_scales(
    x: np.ndarray, mask: np.ndarray, target: np.ndarray, cap: float, iters: int = 48
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the factor ``s`` with ``mean(min(s · x, cap)) = target`` over the masked
    steps, by bisection on ``log s`` (the mean is monotone in ``s``). A target above what
    clipping allows is lowered to 95% of the reachable maximum.

    Returns:
        ``(s, achieved mean)`` per row.
    """
    n = mask.sum(axis=1)
    reach = cap * (x > 0).sum(axis=1) / n
    tgt = np.minimum(target, 0.95 * reach)
    mean = (x * mask).sum(axis=1) / n
    lo = np.log(np.maximum(tgt, 1e-12) / np.maximum(mean, 1e-12))  # unclipped solution
    hi = lo + np.log(1e6)

    def level(log_s: np.ndarray) -> np.ndarray:
        return (np.minimum(np.exp(log_s)[:, None] * x, cap) * mask).sum(axis=1) / n

    for _ in range(iters):
        mid = (lo + hi) / 2
        below = level(mid) < tgt
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    s = np.exp((lo + hi) / 2)
    s = np.where(mean > 0, s, 0.0)
    return s, level(np.log(np.maximum(s, 1e-300)))


@lru_cache(maxsize=2)
def _profiles(base: str, folder: str) -> VMProfiles:
    """The usable VM profiles of a Bitbrains folder, read once per process."""
    return VMProfiles(usable_vms(load_bitbrains(folder, data_dir=base)))


def _level_targets(levels: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    """Quantile mapping: the VM of rank q (by its own mean level) gets the level of
    quantile q of a lognormal with ``mean`` and log-sd ``sigma``."""
    rank = np.argsort(np.argsort(levels, kind="stable"), kind="stable")
    q = (rank + 0.5) / levels.size
    return wk.lognormal_quantile(q, mean, sigma)


def _select_nodes(nodes: pd.DataFrame, want: int, rng: np.random.Generator) -> pd.DataFrame:
    """``want`` nodes: a seeded sample when fewer than the list holds, else whole copies of
    the list (named ``<node>-c1``, ``-c2``, …) plus a seeded sample of the remainder."""
    n = len(nodes)
    copies, rem = divmod(want, n)
    parts = []
    for c in range(copies):
        part = nodes.copy()
        if c:
            part["node"] = part["node"] + f"-c{c}"
        parts.append(part)
    if rem:
        part = nodes.iloc[np.sort(rng.choice(n, size=rem, replace=False))].copy()
        if copies:
            part["node"] = part["node"] + f"-c{copies}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _select_workloads(
    pods: pd.DataFrame, want: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into ``pods`` and copy numbers: whole copies of the pod list plus a
    seeded sample of the remainder, in OpenB creation order."""
    n = len(pods)
    k = max(round(want), 0)
    copies, rem = divmod(k, n)
    idx = [np.arange(n)] * copies + [np.sort(rng.choice(n, size=rem, replace=False))]
    copy = [np.full(n, c) for c in range(copies)] + [np.full(rem, copies)]
    rows, cp = np.concatenate(idx).astype(np.int64), np.concatenate(copy).astype(np.int64)
    order = np.lexsort((rows, cp, pods["creation_s"].to_numpy()[rows]))
    return rows[order], cp[order]


def build_composite(
    data_dir: str | Path | None = None,
    *,
    nodes: int | None = None,
    load_factor: float = 1.0,
    usage_scale: float = 1.0,
    horizon_s: float = 86400,
    ramp_s: float = 3600,
    mode: str = "services",
    pod_list: str = DEFAULT_POD_LIST,
    node_list: str = DEFAULT_NODE_LIST,
    bitbrains_dir: str = DEFAULT_FOLDER,
    seed: int = 0,
) -> ClusterDataset:
    """Build the composite trace (see the module docstring and ``simulator/TRACES.md``).

    Args:
        data_dir: the trace folder (default :func:`hydatis.config.data_dir`).
        nodes: this many nodes (None = OpenB's list): a seeded sample of the list, or
            whole copies of it plus a sample (to replay a larger cluster); the pods are
            subsampled or replicated in proportion to the CPU capacity, so the requested
            share stays the trace's.
        load_factor: scales the number of workloads (whole copies of the pod list plus
            a seeded sample); 1.0 = the trace's own pod set.
        usage_scale: multiplies the target use/request levels.
        horizon_s: length of the trace (s).
        ramp_s: services mode: workloads arrive spread over [0, ramp_s].
        mode: ``services`` (every workload a long-running chain of instances) or
            ``trace`` (pods at their own OpenB timestamps, shifted to start at 0).
        pod_list, node_list: OpenB files (names inside ``alibaba-openb/`` or paths).
        bitbrains_dir: the Bitbrains month folder (or glob) giving the usage shapes.
        seed: seeds every random choice.

    Raises:
        ConfigError: a bad knob or no data directory.
        DataSourceError: a trace file is missing or malformed.
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    if load_factor < 0 or usage_scale < 0 or horizon_s <= 0 or ramp_s < 0:
        raise ConfigError("load_factor, usage_scale and ramp_s must be >= 0, horizon_s > 0")
    base = Path(data_dir) if data_dir is not None else require_data_dir()
    rng = np.random.default_rng(seed)
    node_df, pod_df = load_openb(base, node_list=node_list, pod_list=pod_list)
    total_cpu = float(node_df["cpu_cores"].sum())
    if nodes is not None:
        if nodes < 1:
            raise ConfigError(f"nodes must be >= 1, got {nodes}")
        node_df = _select_nodes(node_df, nodes, rng)
    cap_frac = float(node_df["cpu_cores"].sum()) / total_cpu
    rows, copy = _select_workloads(pod_df, len(pod_df) * cap_frac * load_factor, rng)
    base_names = pod_df["pod"].to_numpy(dtype=object)[rows]
    workloads = np.where(
        copy == 0, base_names, base_names + np.char.mod("-x%d", copy).astype(object)
    ).astype(str)
    lives = pod_df["deletion_s"].to_numpy() - pod_df["creation_s"].to_numpy()
    lives = lives[np.isfinite(lives)]

    if mode == "services":
        k = rows.size
        arrivals = ramp_s * np.arange(k) / max(k, 1)
        src_lo, src_hi = np.quantile(lives, [0.01, 0.99])

        def draw_life(n: int) -> np.ndarray:
            return wk.map_lifetimes(np.quantile(lives, rng.random(n)), src_lo, src_hi, horizon_s)

        w, r, start, end = wk.service_chains(arrivals, draw_life, horizon_s)
        names = np.char.add(np.char.add(workloads[w], "-r"), r.astype(str))
        window = (min(ramp_s, horizon_s * 0.5), horizon_s)
    else:
        created = pod_df["creation_s"].to_numpy()[rows]
        deleted = pod_df["deletion_s"].to_numpy()[rows]
        t0 = created.min() if created.size else 0.0
        start, end = created - t0, np.where(np.isfinite(deleted), deleted - t0, np.inf)
        inside = start < horizon_s
        w = np.flatnonzero(inside)
        start, end = start[inside], end[inside]
        names = workloads[w]
        window = (0.0, horizon_s)

    prow = rows[w]
    cpu_req = pod_df["cpu_request"].to_numpy()[prow]
    mem_req = pod_df["mem_request"].to_numpy()[prow]
    qos = pod_df["qos"].to_numpy(dtype=object)[prow].astype(str)
    pods = wk.assemble_pods(
        names,
        workloads[w],
        start,
        end,
        horizon_s,
        cpu_req,
        mem_req,
        pod_df["priority"].to_numpy()[prow],
        qos,
    )

    profiles = _profiles(str(base), str(bitbrains_dir))
    cpu_target = _level_targets(
        profiles.mean_level("cpu"),
        cal.TARGET_CPU_USE_PER_REQUEST * usage_scale,
        cal.CPU_LEVEL_SIGMA,
    )
    mem_target = _level_targets(
        profiles.mean_level("mem"),
        cal.TARGET_MEM_USE_PER_REQUEST * usage_scale,
        cal.MEM_LEVEL_SIGMA,
    )
    caps = (1.0, cal.BURST_CAP)  # index 0: limit = request (Guaranteed); 1: no limit
    scale_cpu = np.stack(
        [solve_scales(profiles.cpu, profiles.mask, cpu_target, c)[0] for c in caps]
    )
    scale_mem = np.stack(
        [solve_scales(profiles.mem, profiles.mask, mem_target, c)[0] for c in caps]
    )

    inst, kk = wk.usage_rows(start, end, horizon_s)
    n_rows = np.bincount(inst, minlength=start.size)
    vm = rng.integers(len(profiles), size=start.size)
    length = profiles.length[vm]
    phase = np.round(((start % wk.DAY_S) - profiles.tod_s[vm]) % wk.DAY_S / wk.STEP_S)
    phase = phase.astype(np.int64) % _STEPS_PER_DAY
    max_day = (length - phase - n_rows) // _STEPS_PER_DAY
    day = np.floor(rng.random(start.size) * (np.maximum(max_day, 0) + 1)).astype(np.int64)
    offset = day * _STEPS_PER_DAY + phase
    col = (offset[inst] + kk) % length[inst]
    vrow = vm[inst]
    ci = np.where(qos == "Guaranteed", 0, 1)[inst]
    cap_mult = np.asarray(caps)[ci]
    cpu_used = np.minimum(scale_cpu[ci, vrow] * profiles.cpu[vrow, col], cap_mult) * cpu_req[inst]
    mem_used = np.minimum(scale_mem[ci, vrow] * profiles.mem[vrow, col], cap_mult) * mem_req[inst]
    usage = wk.assemble_usage(names, start, inst, kk, cpu_used, mem_used)

    node_out = node_df[["node", "cpu_cores", "mem_gib"]].copy()
    shares = wk.steady_state_shares(
        pods, usage, float(node_out["cpu_cores"].sum()), float(node_out["mem_gib"].sum()), *window
    )
    meta: dict[str, Any] = {
        "source": "composite: Alibaba OpenB (nodes, pods) + Bitbrains (usage shapes)",
        "files": {
            "node_list": f"{OPENB_DIR}/{node_list}",
            "pod_list": f"{OPENB_DIR}/{pod_list}",
            "bitbrains": str(bitbrains_dir),
            "data_dir": str(base),
        },
        "knobs": {
            "nodes": nodes,
            "load_factor": load_factor,
            "usage_scale": usage_scale,
            "horizon_s": horizon_s,
            "ramp_s": ramp_s,
            "mode": mode,
            "seed": seed,
        },
        "calibration": {
            "target_cpu_use_per_request": cal.TARGET_CPU_USE_PER_REQUEST * usage_scale,
            "target_mem_use_per_request": cal.TARGET_MEM_USE_PER_REQUEST * usage_scale,
            "cpu_level_sigma": cal.CPU_LEVEL_SIGMA,
            "mem_level_sigma": cal.MEM_LEVEL_SIGMA,
            "burst_cap": cal.BURST_CAP,
            "min_service_lifetime_s": cal.MIN_SERVICE_LIFETIME_S,
            "target_node_cpu_mean": cal.ALIBABA_NODE_CPU_MEAN,
            "target_node_cpu_p95": cal.ALIBABA_NODE_CPU_P95,
            "bitbrains_vms": len(profiles),
        },
        "workloads": int(rows.size),
        "pods": len(pods),
        "steady_state_window_s": list(window),
        **shares,
        "expected_mean_cpu_util": shares["used_cpu_share"],
        "epoch": str(wk.EPOCH),
    }
    log.info(
        "composite trace: %d nodes, %d workloads, %d pods, %d usage rows, requested cpu %.3f",
        len(node_out),
        rows.size,
        len(pods),
        len(usage),
        shares["requested_cpu_share"],
    )
    return ClusterDataset(node_out, empty_node_metrics(), pods, usage, meta)


def empty_node_metrics() -> pd.DataFrame:
    """A node_metrics table with no rows (the simulator produces node series)."""
    return pd.DataFrame(
        {
            "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
            "node": pd.Series([], dtype=object),
            "cpu_util": pd.Series([], dtype="float64"),
            "mem_util": pd.Series([], dtype="float64"),
        }
    )
