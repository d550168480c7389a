"""Recompute the calibration figures of :mod:`simulator.calibration` from the public traces.

``python -m simulator.calibrate [DATA_DIR]`` prints them; :func:`recompute` returns them
as a dict keyed like the constants in :mod:`simulator.calibration`, so a test can check
the committed numbers against the data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hydatis.config import require_data_dir
from simulator.importers.aggregates import diurnal_profile, read_aggregate
from simulator.importers.alibaba_v2018 import read_machine_usage
from simulator.importers.bitbrains import DEFAULT_FOLDER, VMSeries, load_bitbrains
from simulator.importers.openb import load_openb

__all__ = [
    "QUANTILE_GRID",
    "SOURCE_GLOBS",
    "bitbrains_vm_stats",
    "main",
    "random_fit_node_cpu",
    "recompute",
    "source_fingerprint",
    "usable_vms",
]

QUANTILE_GRID = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
MIN_VM_STEPS = 576  # a VM profile must span at least 2 days of 5-min steps
MIN_VM_COVERAGE = 0.5  # and hold real samples in at least half of its steps
SIG = 4  # significant digits kept in the committed figures


#: The files the figures are derived from, relative to the data directory.
SOURCE_GLOBS = (
    "alibaba-openb/openb_node_list_all_node.csv",
    "alibaba-openb/openb_pod_list_default.csv",
    f"{DEFAULT_FOLDER}/*.csv",
    "datacenter-aggregates/google2019/machine_usage_grouped_300_seconds.csv",
    "datacenter-aggregates/alibaba2018/machine_usage_grouped_300_seconds.csv",
    "alibaba-v2018/machine_usage*.csv",
)


def source_fingerprint(data_dir: str | Path | None = None) -> str:
    """SHA-256 over the names and contents of the source files (:data:`SOURCE_GLOBS`).

    It tells whether a data directory holds the very slice the committed figures came
    from: on another slice (another month, day range or pod mix) the figures legitimately
    differ, and a check against them does not apply.
    """
    base = Path(data_dir) if data_dir is not None else require_data_dir()
    digest = hashlib.sha256()
    for pattern in SOURCE_GLOBS:
        for file in sorted(base.glob(pattern)):
            digest.update(file.relative_to(base).as_posix().encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _r(x: float) -> float:
    return float(f"{float(x):.{SIG}g}")


def _rq(values: np.ndarray) -> tuple[float, ...]:
    return tuple(_r(v) for v in np.quantile(np.asarray(values, dtype="float64"), QUANTILE_GRID))


def usable_vms(vms: list[VMSeries]) -> list[VMSeries]:
    """The VM profiles long and complete enough to serve as usage shapes."""
    return [v for v in vms if len(v) >= MIN_VM_STEPS and v.coverage >= MIN_VM_COVERAGE]


def _lag1(x: np.ndarray) -> float:
    x = x - x.mean()
    den = float((x * x).sum())
    return float((x[1:] * x[:-1]).sum() / den) if den > 0 else 0.0


def bitbrains_vm_stats(vm: VMSeries) -> dict[str, float]:
    """Level and burstiness of one VM's 5-min CPU and memory series.

    ``cpu_cv``: std / mean; ``cpu_lag1``: lag-1 autocorrelation; a *burst* is a step
    above mean + 3 std: ``cpu_burst_freq`` is their share of steps and
    ``cpu_burst_ratio`` the median of value / mean over them.
    """
    c, m = vm.cpu_frac, vm.mem_frac
    mean, std = float(c.mean()), float(c.std())
    burst = c > mean + 3 * std
    return {
        "cpu_level": mean,
        "mem_level": float(m.mean()),
        "cpu_cv": std / mean if mean > 0 else 0.0,
        "cpu_lag1": _lag1(c),
        "cpu_burst_freq": float(burst.mean()),
        "cpu_burst_ratio": float(np.median(c[burst]) / mean) if burst.any() and mean > 0 else 1.0,
        "mem_cv": float(m.std() / m.mean()) if m.mean() > 0 else 0.0,
        "mem_lag1": _lag1(m),
    }


def recompute(
    data_dir: str | Path | None = None, *, bitbrains_dir: str = DEFAULT_FOLDER
) -> dict[str, Any]:
    """Recompute every data-derived figure of :mod:`simulator.calibration`.

    Raises:
        ConfigError: no data directory.
        DataSourceError: a trace file is missing or malformed.
    """
    base = Path(data_dir) if data_dir is not None else require_data_dir()
    out: dict[str, Any] = {}

    nodes, pods = load_openb(base)
    types = nodes.groupby(["cpu_cores", "mem_gib"]).size().sort_index()
    out["NODE_TYPES"] = tuple(
        (float(c), float(m), _r(n / len(nodes))) for (c, m), n in types.items()
    )
    out["REQUESTED_CPU_SHARE"] = _r(pods["cpu_request"].sum() / nodes["cpu_cores"].sum())
    out["REQUESTED_MEM_SHARE"] = _r(pods["mem_request"].sum() / nodes["mem_gib"].sum())
    out["POD_CPU_REQUEST_Q"] = _rq(pods["cpu_request"])
    out["POD_MEM_REQUEST_Q"] = _rq(pods["mem_request"])
    cpu = pods["cpu_request"].to_numpy()
    out["POD_MEM_PER_CPU_Q"] = _rq(pods["mem_request"].to_numpy()[cpu > 0] / cpu[cpu > 0])
    out["POD_LIFETIME_Q_S"] = _rq(pods["deletion_s"] - pods["creation_s"])
    shares = pods["openb_qos"].value_counts(normalize=True).sort_index()
    out["QOS_SHARES"] = {str(k): _r(v) for k, v in shares.items()}

    vms = usable_vms(load_bitbrains(bitbrains_dir, data_dir=base))
    stats = {k: np.array([bitbrains_vm_stats(v)[k] for v in vms]) for k in _STAT_KEYS}
    out["BITBRAINS_VMS_USED"] = len(vms)
    out["VM_CPU_LEVEL_Q"] = _rq(stats["cpu_level"])
    out["VM_MEM_LEVEL_Q"] = _rq(stats["mem_level"])
    out["CPU_CV_MEDIAN"] = _r(np.median(stats["cpu_cv"]))
    out["CPU_LAG1_MEDIAN"] = _r(np.median(stats["cpu_lag1"]))
    out["CPU_BURST_FREQ_MEDIAN"] = _r(np.median(stats["cpu_burst_freq"]))
    out["CPU_BURST_RATIO_MEDIAN"] = _r(np.median(stats["cpu_burst_ratio"]))
    out["MEM_CV_MEDIAN"] = _r(np.median(stats["mem_cv"]))
    out["MEM_LAG1_MEDIAN"] = _r(np.median(stats["mem_lag1"]))

    out["DIURNAL_CPU_GOOGLE2019"] = tuple(
        _r(v) for v in diurnal_profile("google2019", data_dir=base)
    )
    out["DIURNAL_CPU_ALIBABA2018"] = tuple(
        _r(v) for v in diurnal_profile("alibaba2018", data_dir=base)
    )
    g = read_aggregate("google2019", data_dir=base)
    out["GOOGLE2019_MEM_USE_PER_ASSIGNED"] = _r(g["mem_util"].mean() / g["assigned_mem"].mean())

    usage = read_machine_usage(data_dir=base)
    c = usage["cpu_util"].to_numpy()
    out["ALIBABA_NODE_CPU_MEAN"] = _r(c.mean())
    out["ALIBABA_NODE_CPU_MEDIAN"] = _r(np.median(c))
    out["ALIBABA_NODE_CPU_P95"] = _r(np.quantile(c, 0.95))
    out["ALIBABA_NODE_CPU_P99"] = _r(np.quantile(c, 0.99))
    out["ALIBABA_NODE_CPU_ABOVE_065"] = _r((c > 0.65).mean())
    out["ALIBABA_NODE_CPU_ABOVE_085"] = _r((c > 0.85).mean())
    out["ALIBABA_NODE_MEM_MEAN"] = _r(usage["mem_util"].mean())
    return out


_STAT_KEYS = (
    "cpu_level",
    "mem_level",
    "cpu_cv",
    "cpu_lag1",
    "cpu_burst_freq",
    "cpu_burst_ratio",
    "mem_cv",
    "mem_lag1",
)


def main(argv: list[str] | None = None) -> int:
    """Print the recomputed figures as JSON (or as Python assignments with ``--python``)."""
    parser = argparse.ArgumentParser(prog="python -m simulator.calibrate", description=__doc__)
    parser.add_argument("data_dir", nargs="?", help="trace folder (default: HYDATIS_DATA_DIR)")
    parser.add_argument("--python", action="store_true", help="print Python assignments")
    args = parser.parse_args(argv)
    figures = recompute(args.data_dir)
    if args.python:
        for k, v in figures.items():
            sys.stdout.write(f"{k} = {v!r}\n")
    else:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def random_fit_node_cpu(
    ds: Any, *, t_from: float = 3600.0, seed: int = 0, spread: bool = False
) -> dict[str, float]:
    """Node CPU utilisation of a dataset packed by a simple random-fit placement.

    Each workload is bound once, in order of first start, to a uniformly random node whose
    unrequested CPU and memory fit it (all its instances share the node; pods that fit
    nowhere are dropped); node use per 5-min step is the sum of its pods' use, capped at
    the node's capacity. With ``spread`` the node is instead the one with the lowest
    requested CPU share (a spreading scheduler). A yardstick for the calibration, not a
    scheduler.

    Returns:
        mean, p95, p99 of node CPU utilisation over node-time after ``t_from`` (s from
        the first start), the shares above 0.65 and 0.85, and the share of workloads
        placed.
    """
    nodes, pods, usage = ds.nodes, ds.pods, ds.pod_usage
    rng = np.random.default_rng(seed)
    cap_c = nodes["cpu_cores"].to_numpy(dtype="float64")
    cap_m = nodes["mem_gib"].to_numpy(dtype="float64")
    free_c, free_m = cap_c.copy(), cap_m.copy()
    first = pods.sort_values("start_ts", kind="stable").drop_duplicates("workload")
    where: dict[str, int] = {}
    for wl, c, m in zip(first["workload"], first["cpu_request"], first["mem_request"], strict=True):
        ok = np.flatnonzero((free_c >= c) & (free_m >= m))
        if ok.size:
            if spread:
                n = int(ok[np.argmin(1.0 - free_c[ok] / cap_c[ok])])
            else:
                n = int(ok[rng.integers(ok.size)])
            free_c[n] -= c
            free_m[n] -= m
            where[wl] = n
    node_of_pod = pods["workload"].map(where)
    t0 = pods["start_ts"].min()
    row_node = usage["pod"].map(dict(zip(pods["pod"], node_of_pod, strict=True))).to_numpy()
    placed = ~np.isnan(row_node.astype("float64"))
    step = ((usage["ts"] - t0).dt.total_seconds().to_numpy() // 300).astype(np.int64)
    keep = placed & (step >= int(t_from // 300))
    step = step[keep] - int(t_from // 300)
    n_steps = int(step.max()) + 1 if step.size else 1
    node_idx = row_node[keep].astype(np.int64)
    used = np.bincount(
        node_idx * n_steps + step,
        weights=usage["cpu_used"].to_numpy()[keep],
        minlength=len(nodes) * n_steps,
    ).reshape(len(nodes), n_steps)
    util = np.minimum(used / cap_c[:, None], 1.0).ravel()
    return {
        "mean": float(util.mean()),
        "p95": float(np.quantile(util, 0.95)),
        "p99": float(np.quantile(util, 0.99)),
        "above_065": float((util > 0.65).mean()),
        "above_085": float((util > 0.85).mean()),
        "placed_share": len(where) / max(first.shape[0], 1),
    }
