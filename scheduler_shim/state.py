"""The node-state cache: one immutable snapshot per refresh, plus the ledger of pods this
extender placed since each node's last sample.

A refresh turns feature rows (one per node) into a :class:`Snapshot`: the node arrays the
per-pod arithmetic needs, and the pod-independent model outputs — predicted CPU and
memory, anomaly score and flag — computed by one batched call per model. Requests read
the current snapshot by reference; a refresh swaps in a new one, so a request never sees
half a refresh.

Metric-lag compensation: a node's metrics show the pods that were running when it was
sampled. The :class:`Ledger` remembers where this extender sent each pod (the node it
scored best) and adds the requests of those placed since ``sample_time −
reporting_interval`` to the node's projected load, until a later sample covers them.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from hydatis.models.placement_features import NodeArrays

__all__ = ["Ledger", "NodeRows", "Snapshot", "node_arrays"]

_GIB = float(2**30)


@dataclass
class NodeRows:
    """Feature rows of some nodes at one instant (what a source delivers).

    Attributes:
        time: the rows' clock (s): wall time for a cluster, simulated time in a replay.
        names: node names.
        columns: feature names of ``values``' columns.
        values: float64 ``[len(names), len(columns)]``, NaN = missing.
        sample_time: per node, when its latest metric sample was taken (NaN = unknown).
        alloc_cpu_m, alloc_mem_bytes, max_pods: per node, when the source knows them.
    """

    time: float
    names: list[str]
    columns: list[str]
    values: np.ndarray
    sample_time: np.ndarray
    alloc_cpu_m: np.ndarray | None = None
    alloc_mem_bytes: np.ndarray | None = None
    max_pods: np.ndarray | None = None

    def column(self, name: str) -> np.ndarray:
        """One feature column (all NaN when the source did not send it)."""
        try:
            return self.values[:, self.columns.index(name)]
        except ValueError:
            return np.full(len(self.names), np.nan)


def node_arrays(rows: NodeRows, default_max_pods: int) -> NodeArrays:
    """The per-node inputs of the agent's features, from the node features.

    Capacity comes from ``cpu_capacity_cores`` / ``mem_capacity_gib`` (allocatable from the
    source, else capacity); requests from the requested ratios; the window statistics
    from the 15-minute and 1-hour features. The pods placed since the sample start at 0
    and are added per request from the :class:`Ledger`.
    """
    n = len(rows.names)
    cap_cpu = rows.column("cpu_capacity_cores") * 1000.0
    cap_mem = rows.column("mem_capacity_gib") * _GIB
    alloc_cpu = rows.alloc_cpu_m if rows.alloc_cpu_m is not None else cap_cpu
    alloc_mem = rows.alloc_mem_bytes if rows.alloc_mem_bytes is not None else cap_mem
    alloc_cpu = np.where(np.isfinite(alloc_cpu), alloc_cpu, cap_cpu)
    alloc_mem = np.where(np.isfinite(alloc_mem), alloc_mem, cap_mem)
    max_pods = (
        np.where(np.isfinite(rows.max_pods), rows.max_pods, default_max_pods)
        if rows.max_pods is not None
        else np.full(n, float(default_max_pods))
    )
    zeros = np.zeros(n)
    return NodeArrays(
        cap_cpu=np.nan_to_num(cap_cpu),
        cap_mem=np.nan_to_num(cap_mem),
        alloc_cpu=np.nan_to_num(alloc_cpu),
        alloc_mem=np.nan_to_num(alloc_mem),
        req_cpu=np.nan_to_num(rows.column("cpu_requested_ratio") * cap_cpu),
        req_mem=np.nan_to_num(rows.column("mem_requested_ratio") * cap_mem),
        pod_count=np.nan_to_num(rows.column("pod_count")),
        max_pods=max_pods,
        cpu_avg=rows.column("cpu_mean_15m"),
        cpu_used=rows.column("cpu_util"),
        cpu_std=rows.column("cpu_std_15m"),
        mem_avg=rows.column("mem_mean_15m"),
        cpu_max_1h=rows.column("cpu_max_1h"),
        recent_cpu=zeros,
        recent_count=zeros.copy(),
    )


@dataclass
class Snapshot:
    """The state every request reads (never mutated after it is published).

    Attributes:
        time: the rows' clock at refresh.
        received_at: monotonic time the refresh finished (its age is measured from here).
        names, index: node names and name → position.
        sample_time: per node, its latest sample's time (rows' clock).
        nodes: per-node arrays (``recent_*`` are zero; the ledger adds them per request).
        pred_cpu, pred_mem: predicted utilisation (NaN where the load model gave nothing).
        anomaly_score, anomaly_flag: anomaly outputs (NaN / False where none).
        degraded: the models that failed at this refresh (their parts are neutral).
        version: increases with every refresh (Redis sharing compares it).
    """

    time: float
    received_at: float
    names: list[str]
    index: dict[str, int]
    sample_time: np.ndarray
    nodes: NodeArrays
    pred_cpu: np.ndarray
    pred_mem: np.ndarray
    anomaly_score: np.ndarray
    anomaly_flag: np.ndarray
    degraded: tuple[str, ...] = ()
    version: int = 0

    def lookup(self, names: list[str]) -> np.ndarray:
        """Positions of ``names`` in the snapshot, −1 for an unknown node."""
        return np.array(list(map(self.index.get, names, repeat(-1))), dtype=np.int64)


@dataclass
class _Placement:
    uid: str
    node: str
    at: float
    cpu_m: float
    mem_bytes: float


class Ledger:
    """Pods this extender placed, not yet visible in their node's metrics.

    Keeps per-node sums aligned with the current snapshot, updated on every record, so a
    request reads them without walking the entries.

    Args:
        reporting_interval_s: a placement made this long before a node's sample is
            taken to show in it.
    """

    def __init__(self, reporting_interval_s: float = 60.0) -> None:
        self.reporting_interval_s = reporting_interval_s
        self._entries: deque[_Placement] = deque()
        self._by_uid: dict[str, _Placement] = {}
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._cpu = self._mem = self._count = np.zeros(0)

    def __len__(self) -> int:
        return len(self._by_uid)

    def _add(self, p: _Placement, sign: float) -> None:
        i = self._index.get(p.node, -1)
        if i >= 0:
            self._cpu[i] += sign * p.cpu_m
            self._mem[i] += sign * p.mem_bytes
            self._count[i] += sign

    def record(self, uid: str, node: str, at: float, cpu_m: float, mem_bytes: float) -> None:
        """Remember that pod ``uid`` was sent to ``node`` (a retry replaces the earlier
        record)."""
        with self._lock:
            old = self._by_uid.pop(uid, None)
            if old is not None:
                self._add(old, -1.0)
                old.uid = ""  # superseded; dropped at the next prune
            p = _Placement(uid, node, at, cpu_m, mem_bytes)
            self._entries.append(p)
            self._by_uid[uid] = p
            self._add(p, 1.0)

    def prune(self, snapshot: Snapshot, horizon_s: float = 3600.0) -> None:
        """Align with ``snapshot``: drop placements its samples cover (and anything older
        than ``horizon_s``, for nodes that never report), and rebuild the sums."""
        cutoff_all = snapshot.time - horizon_s
        with self._lock:
            kept: deque[_Placement] = deque()
            for p in self._entries:
                if not p.uid:
                    continue
                drop = p.at < cutoff_all
                i = snapshot.index.get(p.node, -1)
                if not drop and i >= 0:
                    s = snapshot.sample_time[i]
                    drop = bool(np.isfinite(s) and p.at <= s - self.reporting_interval_s)
                if drop:
                    self._by_uid.pop(p.uid, None)
                else:
                    kept.append(p)
            self._entries = kept
            n = len(snapshot.names)
            self._index = snapshot.index
            self._cpu, self._mem, self._count = np.zeros(n), np.zeros(n), np.zeros(n)
            for p in kept:
                self._add(p, 1.0)

    def sums(self, snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per snapshot node: CPU (m), memory (bytes) and count of the ledger's pods
        (read-only views)."""
        if self._index is not snapshot.index:
            self.prune(snapshot)
        return self._cpu, self._mem, self._count
