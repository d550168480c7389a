"""Node state for the extender, from the simulator: what a feature producer beside
Prometheus would push to the shim.

In a replay the simulator is the cluster, so it is also what feeds the extender's node
state (source ``push``, ``PUT /v1/node-state``). :class:`NodeStateFeed` turns what the
scheduler side sees — the *lagged* node samples of :class:`~simulator.types.NodeMetrics`
(what Prometheus holds at that moment) and the pods' exact requests and counts — into one
row of the node features (``hydatis.features.feature_names()``) per node, with the
streaming builder :class:`~hydatis.features.stream.FeatureStream` (the same numbers as
``node_features(ds, at=now)`` on those samples, at a fraction of the cost), and into the
JSON body of the push.

The grid step defaults to the simulator's metrics interval (60 s): the scheduler side
sees one new sample per interval, so a finer grid would only repeat it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset
from hydatis.features.stream import FeatureStream, PodTotals
from simulator.types import ClusterView

__all__ = [
    "DEFAULT_FEATURE_STEP_S",
    "GIB",
    "NodeStateFeed",
    "dataset_epoch_s",
    "encode_json",
    "scheduler_context",
]

GIB = 1024**3
NS = 1_000_000_000
DEFAULT_FEATURE_STEP_S = 60.0


def dataset_epoch_s(ds: ClusterDataset) -> float:
    """The wall-clock time (s since the Unix epoch) of the simulator's time 0 for ``ds``:
    the first pod start or node sample, as :func:`simulator.workload.compile_workload`
    takes it. Time-of-day features and the shim's clock need it."""
    firsts = [ds.pods["start_ts"].min(), ds.node_metrics["ts"].min()]
    firsts = [t for t in firsts if not pd.isna(t)]
    t0 = min(firsts) if firsts else pd.Timestamp(0, tz="UTC")
    return pd.Timestamp(t0).value / NS


def scheduler_context(ds: ClusterDataset) -> dict[str, Any]:
    """The keyword arguments an :class:`~simulator.extender.ExtenderScheduler` needs to
    name the replay's nodes and time as the dataset does: ``node_names`` (in the
    simulator's node order) and ``epoch_s``."""
    return {"node_names": ds.nodes["node"].astype(str).tolist(), "epoch_s": dataset_epoch_s(ds)}


def encode_json(body: Any) -> bytes:
    """JSON bytes with NaN as ``null``; numpy arrays allowed.

    orjson (installed with kserve) writes a 1,500 × 75 feature matrix in a few ms, the
    standard library in ~70 ms; the fallback keeps this module usable without it.
    """
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson comes with the serving stack
        return json.dumps(_plain(body), allow_nan=False).encode()
    return orjson.dumps(body, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value


class NodeStateFeed:
    """The simulator's node-state producer: lagged samples in, feature rows and the
    ``PUT /v1/node-state`` body out.

    Call :meth:`observe` whenever the view may have new metrics (it appends a sample only
    when the view's metrics moved on), then :meth:`payload` for a snapshot.

    Args:
        node_names: the nodes' names, in the simulator's node order.
        cap_cpu_m, cap_mem_bytes: node capacities (millicores, bytes).
        epoch_s: wall-clock time of simulated time 0 (:func:`dataset_epoch_s`).
        step_s: the feature grid step (default: the simulator's metrics interval).
        keep_lags: keep the rows the 1-day / 7-day lag features need.
    """

    def __init__(
        self,
        node_names: Sequence[str],
        cap_cpu_m: np.ndarray,
        cap_mem_bytes: np.ndarray,
        *,
        epoch_s: float = 0.0,
        step_s: float = DEFAULT_FEATURE_STEP_S,
        keep_lags: bool = True,
    ) -> None:
        self.node_names = list(node_names)
        self.cap_cpu = np.asarray(cap_cpu_m, dtype=np.float64)
        self.cap_mem = np.asarray(cap_mem_bytes, dtype=np.float64)
        if not (len(self.node_names) == self.cap_cpu.size == self.cap_mem.size):
            raise ValueError("node_names, cap_cpu_m and cap_mem_bytes must have one entry per node")
        self.epoch_s = float(epoch_s)
        self.stream = FeatureStream(
            self.cap_cpu / 1000.0, self.cap_mem / GIB, step_s=step_s, keep_lags=keep_lags
        )
        self._seen = -math.inf  # simulated time of the latest sample appended

    @property
    def columns(self) -> list[str]:
        """The feature names of each row, in order."""
        return self.stream.columns

    def _ns(self, t_sim: float) -> int:
        return round((self.epoch_s + t_sim) * NS)

    def observe(self, view: ClusterView) -> bool:
        """Append the view's newest visible sample if it is new; True when one was.

        A node whose ``updated_at`` is not the newest time has no sample at that time.
        """
        m = view.metrics
        if not np.isfinite(m.updated_at).any():
            return False
        t = float(np.nanmax(m.updated_at))
        if t <= self._seen:
            return False
        with np.errstate(invalid="ignore", divide="ignore"):
            cpu = m.cpu_used / self.cap_cpu
            mem = m.mem_used / self.cap_mem
        fresh = m.updated_at == t
        self.stream.append(self._ns(t), np.where(fresh, cpu, np.nan), np.where(fresh, mem, np.nan))
        self._seen = t
        return True

    def sample_time_s(self) -> np.ndarray:
        """Per node, the simulated time of its latest sample (NaN: none yet)."""
        last = self.stream.latest_sample_ns
        known = last != np.iinfo(np.int64).min
        out = np.full(last.size, np.nan)
        out[known] = last[known] / NS - self.epoch_s
        return out

    def pod_totals(self, view: ClusterView) -> PodTotals:
        """What the pods on each node add up to now, exactly as the simulator knows it
        (limits unset count 0, as in the offline features)."""
        n = view.n_nodes
        sample = self.sample_time_s()
        bound = np.zeros(n, dtype=np.int64)
        if np.isfinite(sample).any():
            recent = view.bindings.since(float(np.nanmin(sample)))
            if len(recent):
                after = recent.time > np.nan_to_num(sample, nan=np.inf)[recent.node]
                bound = np.bincount(recent.node[after], minlength=n)
        return PodTotals(
            cpu_requested=view.req_cpu / 1000.0,
            mem_requested=view.req_mem / GIB,
            pod_count=view.pod_count,
            bound_since_sample=bound,
            cpu_limit=view.lim_cpu / 1000.0,
            mem_limit=view.lim_mem / GIB,
        )

    def rows(self, view: ClusterView) -> np.ndarray:
        """Every node's feature row at ``view.now`` (``[n_nodes, len(columns)]`` float32)."""
        self.observe(view)
        return self.stream.features(self._ns(view.now), self.pod_totals(view))

    def payload(self, view: ClusterView) -> dict[str, Any]:
        """The ``PUT /v1/node-state`` body at ``view.now``: times on the dataset's wall
        clock, ``null`` for a missing value, the view's allocatable and pod limits."""
        values = self.rows(view)
        last = self.stream.latest_sample_ns
        sample = np.where(last == np.iinfo(np.int64).min, np.nan, last / NS)
        return {
            "time": self.epoch_s + float(view.now),
            "columns": self.columns,
            "nodes": self.node_names,
            "values": values,
            "sample_time": sample,
            "alloc_cpu_m": np.asarray(view.alloc_cpu, dtype=np.int64),
            "alloc_mem_bytes": np.asarray(view.alloc_mem, dtype=np.int64),
            "max_pods": np.asarray(view.max_pods, dtype=np.int64),
        }
