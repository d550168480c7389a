"""Where node state comes from, and the background loop that refreshes it.

- push: a producer PUTs snapshots to ``/v1/node-state`` (the simulator does, standing in
  for a cluster's metrics pipeline); :func:`rows_from_payload` parses them.
- pulled (``feast``, ``prometheus``): a :class:`FrameSource` wraps a function returning
  the latest feature frame of some nodes (``node_id`` + feature columns, optionally
  ``sample_time``). The command line wires the Feast reader or the Prometheus extract
  + feature function into it, so this package imports neither (dependencies are passed
  in); :func:`refresh_loop` calls it every ``refresh_interval_s`` in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scheduler_shim.protocol import BadRequestError
from scheduler_shim.state import NodeRows

__all__ = ["FrameSource", "refresh_loop", "rows_from_frame", "rows_from_payload"]

log = logging.getLogger(__name__)


def _floats(value: Any, n: int, where: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != n:
        raise BadRequestError(where, f"expected an array of {n} numbers")
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadRequestError(where, f"not numbers: {exc}") from exc


def rows_from_payload(body: Any) -> NodeRows:
    """Parse a ``PUT /v1/node-state`` body (format in the README).

    Raises:
        BadRequestError: a missing key, mismatched lengths, or non-numbers (named).
    """
    if not isinstance(body, dict):
        raise BadRequestError("body", "expected an object")
    for key in ("time", "columns", "nodes", "values"):
        if key not in body:
            raise BadRequestError(key, "is missing")
    try:
        t = float(body["time"])
    except (TypeError, ValueError) as exc:
        raise BadRequestError("time", "expected a number") from exc
    names, columns = body["nodes"], body["columns"]
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise BadRequestError("nodes", "expected an array of node names")
    if len(set(names)) != len(names):
        raise BadRequestError("nodes", "node names repeat")
    if not isinstance(columns, list) or not all(isinstance(x, str) for x in columns):
        raise BadRequestError("columns", "expected an array of feature names")
    n, d = len(names), len(columns)
    values = body["values"]
    if not isinstance(values, list) or len(values) != n:
        raise BadRequestError("values", f"expected {n} rows, one per node")
    for i, row in enumerate(values):
        if not isinstance(row, list) or len(row) != d:
            raise BadRequestError(f"values[{i}]", f"expected {d} values (one per column)")
    try:
        matrix = np.array(values, dtype=np.float64).reshape(n, d)  # None -> NaN
    except (TypeError, ValueError) as exc:
        raise BadRequestError("values", f"expected numbers or null: {exc}") from exc
    sample = (
        _floats(body["sample_time"], n, "sample_time")
        if body.get("sample_time") is not None
        else np.full(n, np.nan)
    )
    extra = {
        key: _floats(body[key], n, key) if body.get(key) is not None else None
        for key in ("alloc_cpu_m", "alloc_mem_bytes", "max_pods")
    }
    return NodeRows(t, list(names), list(columns), matrix, sample, **extra)


def rows_from_frame(frame: pd.DataFrame, at: float) -> NodeRows:
    """Rows from a feature frame (``node_id``, features, optional ``sample_time`` in s,
    ``event_timestamp``); a node with no features at all is dropped."""
    skip = {"node_id", "event_timestamp", "sample_time"}
    columns = [c for c in frame.columns if c not in skip]
    values = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~np.isnan(values).all(axis=1) if columns else np.zeros(len(frame), bool)
    if "sample_time" in frame:
        sample = frame["sample_time"].to_numpy(dtype=np.float64)
    elif "metric_age_s" in frame:
        sample = at - frame["metric_age_s"].to_numpy(dtype=np.float64)
    else:
        sample = np.full(len(frame), np.nan)
    names = frame["node_id"].astype(str).to_numpy()
    return NodeRows(at, list(names[present]), columns, values[present], sample[present])


@dataclass
class FrameSource:
    """A pulled source: ``read(node_names)`` → the latest feature frame of those nodes.

    Args:
        read: the reader (Feast online store, or Prometheus + the feature function).
        nodes: names refreshed even before a request mentions them.
        clock: wall-clock seconds (the rows' time).
    """

    read: Callable[[Sequence[str]], pd.DataFrame]
    nodes: list[str] = field(default_factory=list)
    clock: Callable[[], float] = time.time
    _seen: set[str] = field(default_factory=set)

    def remember(self, names: Sequence[str]) -> None:
        """Add node names seen in requests to the refreshed set."""
        self._seen.update(names)

    def fetch(self) -> NodeRows | None:
        """The latest rows of every known node (None when no node is known yet)."""
        wanted = sorted(set(self.nodes) | self._seen)
        if not wanted:
            return None
        return rows_from_frame(self.read(wanted), self.clock())


async def refresh_loop(extender: Any, source: FrameSource, interval_s: float) -> None:
    """Refresh ``extender`` from ``source`` every ``interval_s`` until cancelled; a failed
    read is logged and counted, and the old state ages towards the stale fallback."""
    while True:
        start = time.monotonic()
        try:
            rows = await asyncio.to_thread(source.fetch)
            if rows is not None:
                await extender.refresh(rows)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any source failure: keep serving the old state
            extender.metrics.refreshes.labels("failed").inc()
            log.warning("node-state refresh failed: %s", exc)
        await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - start)))
