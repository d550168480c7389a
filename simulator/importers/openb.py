"""Importer for Alibaba's cluster-trace-gpu-v2023 ("OpenB") node and pod lists.

Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent", USENIX ATC '23 (github.com/alibaba/clusterdata,
``cluster-trace-gpu-v2023``).

Node list columns ``sn,cpu_milli,memory_mib,gpu,model``; pod list columns
``name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,
deletion_time,scheduled_time`` (seconds from the trace start).

GPUs are ignored: the simulator models CPU and memory only. The GPU columns are kept in
the returned frames (``gpu``, ``num_gpu``, ``gpu_milli``) for reference, nothing uses them.

QoS mapping (OpenB's QoS label → scheduling priority and Kubernetes QoS class):

=========== ======== ============= ===================
OpenB qos   priority k8s qos class limits
=========== ======== ============= ===================
LS          1000     Burstable     none
Guaranteed  1000     Guaranteed    limits = requests
Burstable   500      Burstable     none
BE          0        Burstable     none
=========== ======== ============= ===================

Kubernetes derives the class from requests and limits: every OpenB pod sets CPU and
memory requests, so a pod without limits is ``Burstable`` (a ``BestEffort`` pod would
have no requests at all), and only OpenB's ``Guaranteed`` pods get limits equal to their
requests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hydatis.errors import DataSourceError
from simulator.importers._common import read_csv_checked, resolve, resolve_default

__all__ = [
    "DEFAULT_NODE_LIST",
    "DEFAULT_POD_LIST",
    "OPENB_DIR",
    "QOS_CLASS",
    "QOS_PRIORITY",
    "load_openb",
    "read_openb_nodes",
    "read_openb_pods",
]

OPENB_DIR = "alibaba-openb"
DEFAULT_NODE_LIST = "openb_node_list_all_node.csv"
DEFAULT_POD_LIST = "openb_pod_list_default.csv"

QOS_PRIORITY = {"LS": 1000, "Guaranteed": 1000, "Burstable": 500, "BE": 0}
QOS_CLASS = {
    "LS": "Burstable",
    "Guaranteed": "Guaranteed",
    "Burstable": "Burstable",
    "BE": "Burstable",
}

_NODE_COLS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
_POD_COLS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)


def _openb_path(name: str | Path, data_dir: str | Path | None) -> Path:
    defaults = {
        DEFAULT_NODE_LIST: "openb_node_list_*.csv",
        DEFAULT_POD_LIST: "openb_pod_list_*.csv",
    }
    if str(name) in defaults:  # another slice may hold another node list or pod mix
        return resolve_default(
            Path(OPENB_DIR) / name, data_dir, f"{OPENB_DIR}/{defaults[str(name)]}"
        )
    p = Path(name)
    if p.exists() or p.is_absolute() or len(p.parts) > 1:
        return resolve(p, data_dir)
    return resolve(Path(OPENB_DIR) / p, data_dir)


def read_openb_nodes(path: str | Path, *, data_dir: str | Path | None = None) -> pd.DataFrame:
    """Read an OpenB node list.

    Args:
        path: the CSV file, or its name inside ``<data_dir>/alibaba-openb/``.
        data_dir: where the traces live (default :func:`hydatis.config.data_dir`).

    Returns:
        ``node, cpu_cores, mem_gib, gpu, model`` (cores and GiB), one row per node.

    Raises:
        DataSourceError: missing file or column, a bad number, a non-positive capacity
            or a duplicate node name, naming the file and line.
    """
    file = _openb_path(path, data_dir)
    df, lines = read_csv_checked(
        file,
        columns=_NODE_COLS,
        numeric=("cpu_milli", "memory_mib", "gpu"),
        required=("sn", "cpu_milli", "memory_mib"),
        string=("sn", "model"),
    )
    for col in ("cpu_milli", "memory_mib"):
        bad = np.flatnonzero(df[col].to_numpy(dtype="float64") <= 0)
        if bad.size:
            i = int(bad[0])
            raise DataSourceError(
                f"{file}: line {lines[i]}, column '{col}': capacity must be positive, "
                f"got {df[col].iloc[i]}"
            )
    dup = np.flatnonzero(df["sn"].duplicated().to_numpy())
    if dup.size:
        i = int(dup[0])
        raise DataSourceError(
            f"{file}: line {lines[i]}, column 'sn': duplicate node {df['sn'][i]!r}"
        )
    return pd.DataFrame(
        {
            "node": df["sn"].astype(str).str.strip(),
            "cpu_cores": df["cpu_milli"].to_numpy(dtype="float64") / 1000.0,
            "mem_gib": df["memory_mib"].to_numpy(dtype="float64") / 1024.0,
            "gpu": df["gpu"].fillna(0).to_numpy(dtype="int64"),
            "model": df["model"].where(df["model"].notna(), None),
        }
    )


def read_openb_pods(path: str | Path, *, data_dir: str | Path | None = None) -> pd.DataFrame:
    """Read an OpenB pod list (any of the published mixes, e.g. ``openb_pod_list_cpu200``).

    Args:
        path: the CSV file, or its name inside ``<data_dir>/alibaba-openb/``.
        data_dir: where the traces live (default :func:`hydatis.config.data_dir`).

    Returns:
        One row per pod, in file order: ``pod, cpu_request, mem_request`` (cores, GiB),
        ``cpu_limit, mem_limit`` (equal to the requests for Guaranteed pods, else NaN),
        ``priority, qos`` (see the module docstring), ``openb_qos, phase``,
        ``creation_s, deletion_s, scheduled_s`` (seconds from the trace start;
        ``scheduled_s`` NaN for a pod that stayed Pending), ``num_gpu, gpu_milli``.

    Raises:
        DataSourceError: missing file or column, a bad number, an unknown QoS, a
            deletion before creation or a duplicate pod name, naming the file and line.
    """
    file = _openb_path(path, data_dir)
    df, lines = read_csv_checked(
        file,
        columns=_POD_COLS,
        numeric=(
            "cpu_milli",
            "memory_mib",
            "num_gpu",
            "gpu_milli",
            "creation_time",
            "deletion_time",
            "scheduled_time",
        ),
        required=("name", "cpu_milli", "memory_mib", "qos", "creation_time"),
        nonnegative=("cpu_milli", "memory_mib", "creation_time"),
        string=("name", "qos", "pod_phase", "gpu_spec"),
    )
    qos = df["qos"].astype(str).str.strip()
    bad = np.flatnonzero(~qos.isin(list(QOS_PRIORITY)).to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataSourceError(
            f"{file}: line {lines[i]}, column 'qos': unknown QoS {qos.iloc[i]!r} "
            f"(expected one of {sorted(QOS_PRIORITY)})"
        )
    created = df["creation_time"].to_numpy(dtype="float64")
    deleted = df["deletion_time"].to_numpy(dtype="float64")
    bad = np.flatnonzero(deleted < created)
    if bad.size:
        i = int(bad[0])
        raise DataSourceError(
            f"{file}: line {lines[i]}, column 'deletion_time': {deleted[i]:g} is before "
            f"creation_time {created[i]:g}"
        )
    dup = np.flatnonzero(df["name"].duplicated().to_numpy())
    if dup.size:
        i = int(dup[0])
        raise DataSourceError(
            f"{file}: line {lines[i]}, column 'name': duplicate pod {df['name'].iloc[i]!r}"
        )
    cpu = df["cpu_milli"].to_numpy(dtype="float64") / 1000.0
    mem = df["memory_mib"].to_numpy(dtype="float64") / 1024.0
    guaranteed = (qos == "Guaranteed").to_numpy()
    return pd.DataFrame(
        {
            "pod": df["name"].astype(str).str.strip(),
            "cpu_request": cpu,
            "mem_request": mem,
            "cpu_limit": np.where(guaranteed, cpu, np.nan),
            "mem_limit": np.where(guaranteed, mem, np.nan),
            "priority": qos.map(QOS_PRIORITY).to_numpy(dtype="int64"),
            "qos": qos.map(QOS_CLASS).to_numpy(dtype=object),
            "openb_qos": qos.to_numpy(dtype=object),
            "phase": df["pod_phase"].to_numpy(dtype=object),
            "creation_s": created,
            "deletion_s": deleted,
            "scheduled_s": df["scheduled_time"].to_numpy(dtype="float64"),
            "num_gpu": df["num_gpu"].fillna(0).to_numpy(dtype="float64"),
            "gpu_milli": df["gpu_milli"].fillna(0).to_numpy(dtype="float64"),
        }
    )


def load_openb(
    data_dir: str | Path | None = None,
    *,
    node_list: str | Path = DEFAULT_NODE_LIST,
    pod_list: str | Path = DEFAULT_POD_LIST,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read an OpenB node list and pod list; return ``(nodes, pods)``.

    See :func:`read_openb_nodes` and :func:`read_openb_pods` for the columns.
    """
    return (
        read_openb_nodes(node_list, data_dir=data_dir),
        read_openb_pods(pod_list, data_dir=data_dir),
    )
