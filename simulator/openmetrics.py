"""A cluster dataset written as OpenMetrics text under the metric names a real cluster has.

Why: the platform reads clusters through Prometheus (:mod:`components.extract`), and its
recording rules, alerts and dashboards read node_exporter / kube-state-metrics / cAdvisor
names. Writing a replay under those exact names lets ``promtool tsdb create-blocks-from
openmetrics`` backfill a real Prometheus with it, so one set of queries, rules and
dashboards serves a cluster and a replay, and extraction can be tested end to end.

Families written (every node series carries a ``node`` label, as clusters commonly
relabel node_exporter):

- ``node_cpu_seconds_total{node,cpu,mode="idle"}`` counter: each of ``cpus_per_node``
  CPUs is idle ``(1 - cpu_util)`` of each step, so ``1 - avg by (node)
  (rate(...[1m]))`` gives back the mean ``cpu_util`` of the last minute;
- ``node_memory_MemAvailable_bytes``, ``node_memory_MemTotal_bytes`` gauges;
- ``node_network_receive_bytes_total`` / ``_transmit_`` and ``node_disk_read_bytes_total``
  / ``_written_`` counters, when the dataset has the ``net_rx_bytes_s``, ``net_tx_bytes_s``,
  ``disk_read_bytes_s``, ``disk_write_bytes_s`` columns (bytes per second);
- ``kube_node_status_capacity{node,resource,unit}`` (cores, bytes);
- ``kube_pod_info{namespace,pod,node,created_by_kind,created_by_name,priority}`` = 1 while
  the pod is on its node (``priority`` is an extra label: kube-state-metrics itself only
  has ``priority_class``);
- ``kube_pod_container_resource_requests`` / ``_limits`` ``{namespace,pod,container,node,
  resource,unit}`` while the pod is on its node;
- ``container_cpu_usage_seconds_total{namespace,pod,container,node}`` counter and
  ``container_memory_working_set_bytes`` gauge, from ``pod_usage`` (each sample holds
  until the pod's next one, as the simulator uses it).

A value at time ``t`` stands for the step that ends at ``t``: a counter grows by
``rate(t) · step`` between the previous sample and ``t``. Each family is contiguous, each
series' timestamps increase, the file ends with ``# EOF``, and it is written series by
series, never built in memory.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset
from hydatis.errors import ConfigError

__all__ = ["NET_DISK_COLUMNS", "OpenMetricsExport", "write_openmetrics"]

GIB = 1024**3
DEFAULT_STEP_S = 30.0
CONTAINER = "main"
#: dataset column -> (counter family, device label)
NET_DISK_COLUMNS: dict[str, tuple[str, str]] = {
    "net_rx_bytes_s": ("node_network_receive_bytes", "eth0"),
    "net_tx_bytes_s": ("node_network_transmit_bytes", "eth0"),
    "disk_read_bytes_s": ("node_disk_read_bytes", "sda"),
    "disk_write_bytes_s": ("node_disk_written_bytes", "sda"),
}


@dataclass(frozen=True)
class OpenMetricsExport:
    """What :func:`write_openmetrics` wrote.

    Attributes:
        path: the file.
        series: number of series.
        samples: number of samples.
        shift_s: seconds added to every dataset time (0 without ``end_before``).
        first: first sample time, unix seconds (after the shift).
        last: last sample time, unix seconds (after the shift).
        step_s: the scrape step the series were written at.
    """

    path: Path
    series: int
    samples: int
    shift_s: float
    first: float
    last: float
    step_s: float


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


class _Writer:
    """Writes families and series, counting what it wrote."""

    def __init__(self, fh: IO[str], whole_seconds: bool) -> None:
        self.fh, self.series, self.samples = fh, 0, 0
        self.whole = whole_seconds
        self.first, self.last = np.inf, -np.inf

    def family(self, name: str, kind: str, help_: str, unit: str | None = None) -> None:
        self.fh.write(f"# HELP {name} {help_}\n# TYPE {name} {kind}\n")
        if unit:
            self.fh.write(f"# UNIT {name} {unit}\n")

    def series_(self, name: str, labels: str, ts: np.ndarray, values: np.ndarray, fmt: str):
        if ts.size == 0:
            return
        prefix = f"{name}{labels} "
        stamps = ts.astype(np.int64).tolist() if self.whole else [f"{t:.3f}" for t in ts]
        vals = values.tolist()
        self.fh.write(
            "".join([f"{prefix}{v:{fmt}} {t}\n" for v, t in zip(vals, stamps, strict=True)])
        )
        self.series += 1
        self.samples += ts.size
        self.first, self.last = min(self.first, float(ts[0])), max(self.last, float(ts[-1]))


def _counter(rate: np.ndarray, ts: np.ndarray, step: float) -> np.ndarray:
    """Counter values at ``ts``: the sum of ``rate · dt`` over the steps ending at each."""
    dt = np.diff(ts, prepend=ts[0] - step) if ts.size else ts
    return np.cumsum(rate * dt)


def _grid(ds: ClusterDataset, step_s: float | None) -> tuple[np.ndarray, float]:
    """The scrape times (unix seconds): the node series' times, else a regular grid."""
    nm = ds.node_metrics
    if len(nm):
        grid = np.unique(nm["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)) / 1e9
        step = step_s or (float(np.median(np.diff(grid))) if grid.size > 1 else DEFAULT_STEP_S)
        return grid, step
    step = step_s or DEFAULT_STEP_S
    starts = ds.pods["start_ts"]
    ends = pd.concat([ds.pods["end_ts"], ds.pod_usage["ts"]]).dropna()
    if not len(starts):
        return np.zeros(0), step
    t0 = starts.min().value / 1e9
    t1 = max(ends.max().value / 1e9 if len(ends) else t0, t0)
    return t0 + np.arange(int(np.floor((t1 - t0) / step)) + 1) * step, step


def _unix(s: pd.Series) -> np.ndarray:
    """UTC timestamps → unix seconds (NaT → NaN)."""
    ns = s.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype("float64")
    return np.where(s.isna().to_numpy(), np.nan, ns / 1e9)


def write_openmetrics(
    ds: ClusterDataset,
    path: str | Path,
    *,
    end_before: float | pd.Timedelta | None = None,
    cpus_per_node: int = 1,
    step_s: float | None = None,
    attribute_interval_s: float | None = None,
    namespace: str = "default",
    now: float | None = None,
) -> OpenMetricsExport:
    """Write ``ds`` as OpenMetrics text (see the module docstring for the families).

    Args:
        ds: the dataset (e.g. :func:`simulator.history.history_dataset` of a run).
        path: the file to write.
        end_before: shift every time so the data ends this long before ``now`` (seconds
            or a Timedelta; the shift is a whole number of steps). Prometheus keeps the
            last few hours in its head block and refuses backfilled blocks there, so use
            more than 3 h (e.g. 4 h).
        cpus_per_node: per-CPU idle series written per node (real node_exporter writes
            one per core; their average is what the queries read, so 1 keeps files small).
        step_s: the scrape step (default: the node series' median step, else 30 s).
        attribute_interval_s: write the static families (``MemTotal``, node capacity, pod
            requests and limits) only every this many seconds (from each
            series' first sample) to keep big exports small; default: every step. Keep it
            below Prometheus's 5-minute lookback.
        namespace: the ``namespace`` label of pod series.
        now: "now" for ``end_before`` (unix seconds; default: the clock).

    Returns:
        What was written (:class:`OpenMetricsExport`).

    Raises:
        ConfigError: a bad argument.
    """
    if cpus_per_node < 1:
        raise ConfigError(f"cpus_per_node must be >= 1, got {cpus_per_node}")
    grid, step = _grid(ds, step_s)
    if not step > 0:
        raise ConfigError(f"step_s must be > 0, got {step}")
    shift = 0.0
    if end_before is not None and grid.size:
        before = end_before.total_seconds() if isinstance(end_before, pd.Timedelta) else end_before
        target = (now if now is not None else time.time()) - float(before)
        shift = float(np.floor((target - grid[-1]) / step) * step)
    every = 1
    if attribute_interval_s is not None:
        every = max(round(attribute_interval_s / step), 1)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    whole = bool(np.all(np.mod(grid + shift, 1.0) == 0)) and float(shift).is_integer()
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        w = _Writer(fh, whole)
        _write_nodes(w, ds, grid, step, shift, cpus_per_node, every)
        _write_pods(w, ds, grid, step, shift, namespace, every)
        fh.write("# EOF\n")
    first = w.first if w.samples else float("nan")
    last = w.last if w.samples else float("nan")
    return OpenMetricsExport(out, w.series, w.samples, shift, first, last, step)


def _node_frames(ds: ClusterDataset) -> Iterator[tuple[str, pd.DataFrame]]:
    nm = ds.node_metrics.sort_values(["node", "ts"], kind="stable")
    nm = nm.drop_duplicates(["node", "ts"], keep="last")
    for node, frame in nm.groupby("node", sort=True):
        yield str(node), frame


def _write_nodes(
    w: _Writer,
    ds: ClusterDataset,
    grid: np.ndarray,
    step: float,
    shift: float,
    cpus: int,
    every: int,
) -> None:
    frames = list(_node_frames(ds))
    cap = ds.nodes.set_index("node")
    w.family("node_cpu_seconds", "counter", "Seconds the CPUs spent in each mode.", "seconds")
    for node, f in frames:
        ts = _unix(f["ts"])
        idle = _counter(1.0 - f["cpu_util"].to_numpy(dtype="float64"), ts, step)
        for cpu in range(cpus):
            w.series_(
                "node_cpu_seconds_total",
                _labels(node=node, cpu=cpu, mode="idle"),
                ts + shift,
                idle,
                ".6f",
            )
    w.family("node_memory_MemAvailable_bytes", "gauge", "Memory information field MemAvailable.")
    for node, f in frames:
        total = float(cap.at[node, "mem_gib"]) * GIB
        avail = (1.0 - f["mem_util"].to_numpy(dtype="float64")) * total
        w.series_(
            "node_memory_MemAvailable_bytes",
            _labels(node=node),
            _unix(f["ts"]) + shift,
            avail,
            ".0f",
        )
    w.family("node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal.")
    for node, f in frames:
        ts = _unix(f["ts"])[::every]
        total = np.full(ts.size, float(cap.at[node, "mem_gib"]) * GIB)
        w.series_("node_memory_MemTotal_bytes", _labels(node=node), ts + shift, total, ".0f")
    for col, (family, device) in NET_DISK_COLUMNS.items():
        if col not in ds.node_metrics.columns:
            continue
        w.family(family, "counter", f"Bytes counted from the dataset's {col}.", "bytes")
        for node, f in frames:
            ts = _unix(f["ts"])
            rate = np.nan_to_num(f[col].to_numpy(dtype="float64"), nan=0.0)
            w.series_(
                f"{family}_total",
                _labels(node=node, device=device),
                ts + shift,
                _counter(rate, ts, step),
                ".3f",
            )
    w.family("kube_node_status_capacity", "gauge", "The capacity for different resources.")
    attr = grid[::every] + shift
    for node, cores, gib in ds.nodes[["node", "cpu_cores", "mem_gib"]].itertuples(index=False):
        w.series_(
            "kube_node_status_capacity",
            _labels(node=node, resource="cpu", unit="core"),
            attr,
            np.full(attr.size, float(cores)),
            ".10g",
        )
        w.series_(
            "kube_node_status_capacity",
            _labels(node=node, resource="memory", unit="byte"),
            attr,
            np.full(attr.size, float(gib) * GIB),
            ".0f",
        )


def _pod_life(ds: ClusterDataset, grid: np.ndarray) -> pd.DataFrame:
    """Pods with a node, with the grid index range ``[i0, i1)`` of their stay."""
    pods = ds.pods[ds.pods["node"].notna()].sort_values(["start_ts", "pod"], kind="stable")
    start, end = _unix(pods["start_ts"]), _unix(pods["end_ts"])
    i0 = np.searchsorted(grid, start - 1e-6, side="left")
    i1 = np.where(np.isnan(end), grid.size, np.searchsorted(grid, end - 1e-6, side="left"))
    out = pods.reset_index(drop=True).copy()
    out["_i0"], out["_i1"] = i0, np.maximum(i1, i0)
    return out


def _pod_rows(pods: pd.DataFrame) -> Iterable[dict]:
    return pods.to_dict("records")


def _write_pods(
    w: _Writer,
    ds: ClusterDataset,
    grid: np.ndarray,
    step: float,
    shift: float,
    namespace: str,
    every: int,
) -> None:
    pods = _pod_life(ds, grid)
    rows = [r for r in _pod_rows(pods) if r["_i1"] > r["_i0"]]
    w.family("kube_pod_info", "gauge", "Information about pod.")
    for r in rows:
        ts = grid[r["_i0"] : r["_i1"]] + shift
        labels = _labels(
            namespace=namespace,
            pod=r["pod"],
            node=r["node"],
            created_by_kind="ReplicaSet",
            created_by_name=r["workload"],
            priority=int(r["priority"]),
        )
        w.series_("kube_pod_info", labels, ts, np.ones(ts.size), ".0f")
    for family, cols, help_ in (
        ("kube_pod_container_resource_requests", ("cpu_request", "mem_request"), "requested"),
        ("kube_pod_container_resource_limits", ("cpu_limit", "mem_limit"), "limit"),
    ):
        w.family(family, "gauge", f"The number of {help_} resource by a container.")
        for r in rows:
            ts = grid[r["_i0"] : r["_i1"] : every] + shift
            for col, resource, unit, scale, fmt in (
                (cols[0], "cpu", "core", 1.0, ".10g"),
                (cols[1], "memory", "byte", float(GIB), ".0f"),
            ):
                value = r.get(col)
                if value is None or pd.isna(value):
                    continue
                labels = _labels(
                    namespace=namespace,
                    pod=r["pod"],
                    container=CONTAINER,
                    node=r["node"],
                    resource=resource,
                    unit=unit,
                )
                w.series_(family, labels, ts, np.full(ts.size, float(value) * scale), fmt)
    usage = _usage_on_grid(ds, rows, grid)
    w.family("container_cpu_usage_seconds", "counter", "Cumulative cpu time consumed.", "seconds")
    for r, (cpu, _) in zip(rows, usage, strict=True):
        if cpu is None:
            continue
        ts = grid[r["_i0"] : r["_i1"]]
        labels = _labels(namespace=namespace, pod=r["pod"], container=CONTAINER, node=r["node"])
        w.series_(
            "container_cpu_usage_seconds_total",
            labels,
            ts + shift,
            _counter(cpu, ts, step),
            ".6f",
        )
    w.family("container_memory_working_set_bytes", "gauge", "Current working set.", "bytes")
    for r, (_, mem) in zip(rows, usage, strict=True):
        if mem is None:
            continue
        ts = grid[r["_i0"] : r["_i1"]] + shift
        labels = _labels(namespace=namespace, pod=r["pod"], container=CONTAINER, node=r["node"])
        w.series_("container_memory_working_set_bytes", labels, ts, mem * GIB, ".0f")


def _usage_on_grid(
    ds: ClusterDataset, rows: list[dict], grid: np.ndarray
) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """Each pod's usage at the grid times of its stay: the latest sample at or before each
    time (the first sample before it), as the simulator holds a sample until the next."""
    use = ds.pod_usage.sort_values(["pod", "ts"], kind="stable")
    names = use["pod"].to_numpy(dtype=object)
    secs = _unix(use["ts"])
    cpu = use["cpu_used"].to_numpy(dtype="float64")
    mem = use["mem_used"].to_numpy(dtype="float64")
    bounds = {}
    if names.size:
        cut = np.flatnonzero(np.r_[True, names[1:] != names[:-1], True])
        bounds = {names[a]: (a, b) for a, b in itertools.pairwise(cut)}
    out: list[tuple[np.ndarray | None, np.ndarray | None]] = []
    for r in rows:
        span = bounds.get(r["pod"])
        if span is None:
            out.append((None, None))
            continue
        a, b = span
        t = grid[r["_i0"] : r["_i1"]]
        idx = np.clip(np.searchsorted(secs[a:b], t + 1e-6, side="right") - 1, 0, b - a - 1) + a
        out.append((cpu[idx], mem[idx]))
    return out
