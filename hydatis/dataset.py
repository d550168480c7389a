"""The cluster dataset: the one schema every source (trace importer, synthetic generator,
Prometheus extraction) produces, with its loader and validator.

Four parquet tables, times in UTC:

- ``nodes``: node, cpu_cores, mem_gib (+ optional label columns)
- ``node_metrics``: ts, node, cpu_util, mem_util in [0, 1] (+ optional net/disk columns)
- ``pods``: pod, workload, start_ts, end_ts, node (as recorded, may be null), cpu_request,
  mem_request, priority (+ optional cpu_limit, mem_limit, qos). Requests and limits are in
  cores and GiB; a null request means "not set" (Kubernetes then applies its defaults), an
  explicit 0 stays 0.
- ``pod_usage``: ts, pod, cpu_used, mem_used (cores, GiB)

Validation fails on the first problem with a :class:`~hydatis.errors.SchemaError` naming the
table, the column and the first bad row, so a user can find it in the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hydatis.errors import SchemaError

__all__ = [
    "SCHEMA",
    "TABLES",
    "ClusterDataset",
    "empty_table",
    "load_dataset",
    "save_dataset",
    "validate",
]

TABLES = ("nodes", "node_metrics", "pods", "pod_usage")

# column -> kind: "str", "float", "int", "ts"; a trailing "?" allows nulls.
SCHEMA: dict[str, dict[str, str]] = {
    "nodes": {"node": "str", "cpu_cores": "float", "mem_gib": "float"},
    "node_metrics": {"ts": "ts", "node": "str", "cpu_util": "float", "mem_util": "float"},
    "pods": {
        "pod": "str",
        "workload": "str",
        "start_ts": "ts",
        "end_ts": "ts?",
        "node": "str?",
        "cpu_request": "float?",
        "mem_request": "float?",
        "priority": "int",
    },
    "pod_usage": {"ts": "ts", "pod": "str", "cpu_used": "float", "mem_used": "float"},
}
OPTIONAL: dict[str, dict[str, str]] = {
    "pods": {"cpu_limit": "float?", "mem_limit": "float?", "qos": "str?"},
}
META_FILE = "meta.json"
_DTYPES = {
    "str": object,
    "float": "float64",
    "int": "int64",
    "ts": "datetime64[ns, UTC]",
}


def empty_table(name: str) -> pd.DataFrame:
    """A table with the schema's columns and types and no rows (for a source that records
    nothing of that kind, e.g. node series without pods)."""
    return pd.DataFrame(
        {col: pd.Series([], dtype=_DTYPES[kind.rstrip("?")]) for col, kind in SCHEMA[name].items()}
    )


@dataclass
class ClusterDataset:
    """The four tables plus free-form metadata (source, calibration, knobs used).

    ``node_metrics`` may be empty for a source that records no node series (a workload
    trace to be replayed); ``meta`` is written as ``meta.json`` beside the tables.
    """

    nodes: pd.DataFrame
    node_metrics: pd.DataFrame
    pods: pd.DataFrame
    pod_usage: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame:
        """Return a table by name."""
        return getattr(self, name)

    def validate(self) -> ClusterDataset:
        """Validate every table; return self so calls chain."""
        validate(self)
        return self


def _first_bad(mask: np.ndarray | pd.Series) -> int | None:
    arr = np.asarray(mask, dtype=bool)
    idx = np.flatnonzero(arr)
    return int(idx[0]) if idx.size else None


def _check_column(table: str, col: str, kind: str, s: pd.Series) -> None:
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    if kind == "ts":
        if not pd.api.types.is_datetime64_any_dtype(s.dtype):
            raise SchemaError(table, col, None, f"expected a UTC timestamp column, got {s.dtype}")
        tz = getattr(s.dtype, "tz", None)
        if tz is None or str(tz) != "UTC":
            raise SchemaError(table, col, None, f"timestamps must be UTC, got tz={tz}")
    elif kind in ("float", "int"):
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
            raise SchemaError(table, col, None, f"expected a numeric column, got {s.dtype}")
        if kind == "int" and not pd.api.types.is_integer_dtype(s.dtype):
            raise SchemaError(table, col, None, f"expected an integer column, got {s.dtype}")
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        bad = _first_bad(np.isinf(values))
        if bad is not None:
            raise SchemaError(table, col, bad, f"infinite value {values[bad]}")
        bad = _first_bad(values < 0)
        if bad is not None:
            raise SchemaError(table, col, bad, f"negative value {values[bad]}")
    elif kind == "str":
        if not (pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)):
            raise SchemaError(table, col, None, f"expected a string column, got {s.dtype}")
        nonnull = s.dropna()
        bad_types = ~nonnull.map(lambda v: isinstance(v, str))
        if bad_types.any():
            pos = s.index.get_loc(bad_types[bad_types].index[0])
            raise SchemaError(table, col, int(pos), f"expected a string, got {s.iloc[pos]!r}")
    if not nullable:
        bad = _first_bad(s.isna())
        if bad is not None:
            raise SchemaError(table, col, bad, "missing value")


def _check_table(name: str, df: pd.DataFrame) -> None:
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(name, None, None, f"expected a DataFrame, got {type(df).__name__}")
    for col, kind in SCHEMA[name].items():
        if col not in df.columns:
            raise SchemaError(name, col, None, "missing column")
        _check_column(name, col, kind, df[col])
    for col, kind in OPTIONAL.get(name, {}).items():
        if col in df.columns:
            _check_column(name, col, kind, df[col])


def _check_fraction(table: str, df: pd.DataFrame, cols: tuple[str, ...]) -> None:
    for col in cols:
        values = df[col].to_numpy(dtype="float64")
        bad = _first_bad(~((values >= 0.0) & (values <= 1.0)))
        if bad is not None:
            raise SchemaError(table, col, bad, f"utilisation {values[bad]!r} outside [0, 1]")


def _check_unique(table: str, df: pd.DataFrame, col: str) -> None:
    bad = _first_bad(df[col].duplicated().to_numpy())
    if bad is not None:
        raise SchemaError(table, col, bad, f"duplicate key {df[col].iloc[bad]!r}")


def _check_known(table: str, df: pd.DataFrame, col: str, known: pd.Index, what: str) -> None:
    values = df[col]
    present = values.notna().to_numpy()
    unknown = present & ~values.isin(known).to_numpy()
    bad = _first_bad(unknown)
    if bad is not None:
        raise SchemaError(table, col, bad, f"unknown {what} {values.iloc[bad]!r}")


def validate(ds: ClusterDataset) -> None:
    """Check every table of ``ds`` against the schema.

    Raises:
        SchemaError: on the first problem, naming the table, the column and the first bad
            row (its 0-based position in the table).
    """
    for name in TABLES:
        _check_table(name, ds.table(name))
    _check_unique("nodes", ds.nodes, "node")
    _check_unique("pods", ds.pods, "pod")
    nodes = pd.Index(ds.nodes["node"])
    for col in ("cpu_cores", "mem_gib"):
        bad = _first_bad(ds.nodes[col].to_numpy(dtype="float64") <= 0)
        if bad is not None:
            raise SchemaError("nodes", col, bad, "capacity must be positive")
    _check_fraction("node_metrics", ds.node_metrics, ("cpu_util", "mem_util"))
    _check_known("node_metrics", ds.node_metrics, "node", nodes, "node")
    pods = ds.pods
    ends, starts = pods["end_ts"], pods["start_ts"]
    bad = _first_bad((ends.notna() & (ends < starts)).to_numpy())
    if bad is not None:
        raise SchemaError(
            "pods", "end_ts", bad, f"end {ends.iloc[bad]} before start {starts.iloc[bad]}"
        )
    _check_known("pods", pods, "node", nodes, "node")
    _check_known("pod_usage", ds.pod_usage, "pod", pd.Index(pods["pod"]), "pod")


def save_dataset(ds: ClusterDataset, path: str | Path) -> Path:
    """Validate ``ds`` and write it as ``<table>.parquet`` files plus ``meta.json``."""
    validate(ds)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        ds.table(name).to_parquet(out / f"{name}.parquet", index=False)
    (out / META_FILE).write_text(json.dumps(ds.meta, indent=2, default=str))
    return out


def load_dataset(path: str | Path, *, check: bool = True) -> ClusterDataset:
    """Read a dataset directory written by :func:`save_dataset` and validate it.

    Raises:
        SchemaError: a table is missing or breaks the schema.
    """
    src = Path(path)
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        file = src / f"{name}.parquet"
        if not file.is_file():
            raise SchemaError(name, None, None, f"file {file} not found")
        tables[name] = pd.read_parquet(file)
    meta_file = src / META_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    ds = ClusterDataset(meta=meta, **tables)
    if check:
        validate(ds)
    return ds
