"""Importer for Alibaba cluster-trace-v2018 machine tables (github.com/alibaba/clusterdata,
``cluster-trace-v2018``; research or study use).

- ``machine_usage`` (no header): ``machine_id, time_stamp, cpu_util_percent,
  mem_util_percent, mem_gps, mkpi, net_in, net_out, disk_io_percent``, sampled
  irregularly (median gap 60 s) → ``node_metrics``: ``cpu_util`` and ``mem_util`` as
  fractions clipped to [0, 1], plus ``net_in``, ``net_out`` (as published, normalised)
  and ``disk_io`` (fraction; the trace's -1 and 101 "abnormal" markers become NaN).
  Samples are kept as they are (not resampled); a repeated (machine, time) keeps the last.
- ``machine_meta`` (no header): ``machine_id, time_stamp, failure_domain_1,
  failure_domain_2, cpu_num, mem_size, status`` → ``nodes`` from each machine's latest
  event. ``mem_size`` is published normalised to 0–100 (100 = the largest machine); we
  ASSUME 100 ↔ ``mem_gib_at_100`` = 512 GiB, a typical 96-core server of the period. The
  true size is not published; only ratios between machines are real.

Time stamps are seconds from the trace start; they are placed after ``t0`` (default
2018-01-01 00:00 UTC, an arbitrary origin).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset, empty_table
from hydatis.errors import DataSourceError
from simulator.importers._common import DEFAULT_CHUNK_ROWS, read_csv_chunks, resolve

__all__ = [
    "ALIBABA_DIR",
    "DEFAULT_META",
    "DEFAULT_T0",
    "DEFAULT_USAGE",
    "MEM_GIB_AT_100",
    "load_alibaba_v2018",
    "read_machine_meta",
    "read_machine_usage",
]

ALIBABA_DIR = "alibaba-v2018"
DEFAULT_USAGE = "machine_usage*.csv"  # any day range of the excerpt, or the full file
DEFAULT_META = "machine_meta.csv"
DEFAULT_T0 = pd.Timestamp("2018-01-01T00:00:00Z")
MEM_GIB_AT_100 = 512.0

_USAGE_COLS = (
    "machine_id",
    "time_stamp",
    "cpu_util_percent",
    "mem_util_percent",
    "mem_gps",
    "mkpi",
    "net_in",
    "net_out",
    "disk_io_percent",
)
_META_COLS = (
    "machine_id",
    "time_stamp",
    "failure_domain_1",
    "failure_domain_2",
    "cpu_num",
    "mem_size",
    "status",
)


def _paths(name: str | Path, data_dir: str | Path | None) -> list[Path]:
    """The files a name stands for: a glob pattern (``*``, ``?``) matches several."""
    text = str(name)
    if not any(ch in text for ch in "*?["):
        return [_path(name, data_dir)]
    pattern = Path(text)
    folder = pattern.parent if len(pattern.parts) > 1 else Path(ALIBABA_DIR)
    base = resolve(folder, data_dir)
    files = sorted(p for p in base.glob(pattern.name) if p.is_file())
    if not files:
        raise DataSourceError(f"{base}: no file matches {pattern.name!r}")
    return files


def _path(name: str | Path, data_dir: str | Path | None) -> Path:
    p = Path(name)
    if p.exists() or p.is_absolute() or len(p.parts) > 1:
        return resolve(p, data_dir)
    return resolve(Path(ALIBABA_DIR) / p, data_dir)


def read_machine_usage(
    path: str | Path = DEFAULT_USAGE,
    *,
    data_dir: str | Path | None = None,
    t0: pd.Timestamp = DEFAULT_T0,
    machines: list[str] | None = None,
    chunksize: int = DEFAULT_CHUNK_ROWS,
) -> pd.DataFrame:
    """Read ``machine_usage`` in chunks into a ``node_metrics`` table.

    Args:
        path: the CSV file, or its name inside ``<data_dir>/alibaba-v2018/``; a glob
            pattern (the default, ``machine_usage*.csv``) reads every matching file.
        data_dir: where the traces live (default :func:`hydatis.config.data_dir`).
        t0: the timestamp of the trace's second 0.
        machines: keep only these machine ids (the full trace has ~4,000).
        chunksize: rows read at a time.

    Returns:
        ``ts, node, cpu_util, mem_util, net_in, net_out, disk_io`` sorted by node and ts.

    Raises:
        DataSourceError: a bad number or an empty machine id, time or CPU/memory value,
            naming the file, line and column.
    """
    files = _paths(path, data_dir)
    file = files[0]
    keep = set(machines) if machines is not None else None
    frames = []
    chunks = (
        chunk
        for f in files
        for _first, chunk in read_csv_chunks(
            f,
            columns=_USAGE_COLS,
            numeric=_USAGE_COLS[1:],
            header=False,
            required=("machine_id", "time_stamp", "cpu_util_percent", "mem_util_percent"),
            chunksize=chunksize,
            string=("machine_id",),
        )
    )
    for chunk in chunks:
        if keep is not None:
            chunk = chunk[chunk["machine_id"].isin(keep)]
        disk = chunk["disk_io_percent"].to_numpy(dtype="float64")
        disk = np.where((disk < 0) | (disk > 100), np.nan, disk) / 100.0
        frames.append(
            pd.DataFrame(
                {
                    "t": chunk["time_stamp"].to_numpy(dtype="float64"),
                    "node": chunk["machine_id"].astype(str).to_numpy(),
                    "cpu_util": np.clip(chunk["cpu_util_percent"].to_numpy(float) / 100, 0, 1),
                    "mem_util": np.clip(chunk["mem_util_percent"].to_numpy(float) / 100, 0, 1),
                    "net_in": chunk["net_in"].to_numpy(dtype="float64"),
                    "net_out": chunk["net_out"].to_numpy(dtype="float64"),
                    "disk_io": disk,
                }
            )
        )
    if not frames:
        raise DataSourceError(f"{file}: no data rows")
    df = pd.concat(frames, ignore_index=True)
    df = df.drop_duplicates(["node", "t"], keep="last").sort_values(["node", "t"], kind="stable")
    df.insert(0, "ts", t0 + pd.to_timedelta(df.pop("t"), unit="s"))
    return df.reset_index(drop=True)


def read_machine_meta(
    path: str | Path = DEFAULT_META,
    *,
    data_dir: str | Path | None = None,
    mem_gib_at_100: float = MEM_GIB_AT_100,
) -> pd.DataFrame:
    """Read ``machine_meta`` into a ``nodes`` table (each machine's latest event).

    Returns:
        ``node, cpu_cores, mem_gib, status`` (``mem_gib`` = ``mem_size`` / 100 ×
        ``mem_gib_at_100``, an assumption: see the module docstring), sorted by node.

    Raises:
        DataSourceError: a bad number or an empty field, naming the file, line, column.
    """
    file = _path(path, data_dir)
    frames = [
        chunk
        for _first, chunk in read_csv_chunks(
            file,
            columns=_META_COLS,
            numeric=("time_stamp", "cpu_num", "mem_size"),
            header=False,
            required=("machine_id", "time_stamp", "cpu_num", "mem_size"),
            nonnegative=("cpu_num", "mem_size"),
            string=("machine_id", "status", "failure_domain_2"),
        )
    ]
    if not frames:
        raise DataSourceError(f"{file}: no data rows")
    df = pd.concat(frames, ignore_index=True)
    last = df.sort_values(["machine_id", "time_stamp"], kind="stable").groupby("machine_id").tail(1)
    nodes = pd.DataFrame(
        {
            "node": last["machine_id"].astype(str).to_numpy(),
            "cpu_cores": last["cpu_num"].to_numpy(dtype="float64"),
            "mem_gib": last["mem_size"].to_numpy(dtype="float64") / 100.0 * mem_gib_at_100,
            "status": last["status"].astype(str).to_numpy(),
        }
    )
    return nodes.sort_values("node").reset_index(drop=True)


def load_alibaba_v2018(
    data_dir: str | Path | None = None,
    *,
    usage: str | Path = DEFAULT_USAGE,
    meta: str | Path = DEFAULT_META,
    t0: pd.Timestamp = DEFAULT_T0,
    mem_gib_at_100: float = MEM_GIB_AT_100,
) -> ClusterDataset:
    """Read machine usage and meta as a :class:`ClusterDataset` with nodes and
    node_metrics only (the machines that have usage samples); pods and pod_usage empty.

    Raises:
        DataSourceError: bad input, or a machine with usage but no meta row.
    """
    metrics = read_machine_usage(usage, data_dir=data_dir, t0=t0)
    nodes = read_machine_meta(meta, data_dir=data_dir, mem_gib_at_100=mem_gib_at_100)
    used = metrics["node"].unique()
    missing = sorted(set(used) - set(nodes["node"]))
    if missing:
        raise DataSourceError(f"{meta}: no machine_meta row for machine(s) {missing[:5]}")
    nodes = nodes[nodes["node"].isin(used)].reset_index(drop=True)
    nodes = nodes[(nodes["cpu_cores"] > 0) & (nodes["mem_gib"] > 0)].reset_index(drop=True)
    metrics = metrics[metrics["node"].isin(nodes["node"])].reset_index(drop=True)
    pods, usage_df = empty_table("pods"), empty_table("pod_usage")
    meta_info = {
        "source": "alibaba cluster-trace-v2018",
        "files": [str(usage), str(meta)],
        "mem_gib_at_100": mem_gib_at_100,
        "t0": str(t0),
    }
    return ClusterDataset(nodes, metrics, pods, usage_df, meta_info)
