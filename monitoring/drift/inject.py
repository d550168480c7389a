"""Changes of known size injected into a cluster dataset, to measure detection.

Each function returns a new dataset whose ``node_metrics`` differ from the input only at
or after the change time ``at``; everything before is untouched, so the features before
the change are those of the unchanged data.

- :func:`scale_load`: every node's CPU utilisation multiplied by ``factor`` (clipped to 1);
- :func:`freeze_metric`: a share of the nodes report the same value from ``at`` on (an
  exporter that stopped updating);
- :func:`swap_workload`: a share of the nodes run another source's workload from ``at``
  on: their utilisation becomes a donor node's, read at the same time of day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset

__all__ = ["freeze_metric", "scale_load", "swap_workload"]

_DAY = pd.Timedelta(days=1)


def _with_metrics(ds: ClusterDataset, metrics: pd.DataFrame, what: str) -> ClusterDataset:
    meta = {**ds.meta, "injected": [*ds.meta.get("injected", []), what]}
    return ClusterDataset(ds.nodes, metrics, ds.pods, ds.pod_usage, meta)


def _pick(nodes: list[str], share: float, rng: np.random.Generator) -> list[str]:
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    k = max(1, round(share * len(nodes)))
    return sorted(rng.choice(sorted(nodes), size=min(k, len(nodes)), replace=False).tolist())


def scale_load(
    ds: ClusterDataset, at: pd.Timestamp, factor: float, *, column: str = "cpu_util"
) -> ClusterDataset:
    """Every node's ``column`` times ``factor`` from ``at`` on, clipped to [0, 1]."""
    nm = ds.node_metrics.copy()
    after = (nm["ts"] >= at).to_numpy()
    nm.loc[after, column] = (nm.loc[after, column] * factor).clip(0.0, 1.0)
    return _with_metrics(ds, nm, f"{column} x {factor:g} from {at.isoformat()}")


def freeze_metric(
    ds: ClusterDataset,
    at: pd.Timestamp,
    share: float,
    *,
    column: str = "cpu_util",
    seed: int = 0,
) -> ClusterDataset:
    """A ``share`` of the nodes (seeded choice) report their last ``column`` value before
    ``at`` for every sample from ``at`` on."""
    nm = ds.node_metrics.copy()
    chosen = _pick(nm["node"].unique().tolist(), share, np.random.default_rng(seed))
    for node in chosen:
        mine = (nm["node"] == node).to_numpy()
        before = mine & (nm["ts"] < at).to_numpy()
        after = mine & (nm["ts"] >= at).to_numpy()
        if not before.any() or not after.any():
            continue
        last = nm.loc[before].sort_values("ts")[column].iloc[-1]
        nm.loc[after, column] = last
    return _with_metrics(ds, nm, f"{column} frozen on {len(chosen)} node(s) from {at}")


def swap_workload(
    ds: ClusterDataset,
    at: pd.Timestamp,
    donor: ClusterDataset,
    share: float,
    *,
    columns: tuple[str, ...] = ("cpu_util", "mem_util"),
    seed: int = 0,
) -> ClusterDataset:
    """A ``share`` of the nodes take a donor source's workload from ``at`` on.

    Each chosen node keeps its own sample times; its ``columns`` become those of a donor
    node (seeded choice) at the same offset from a donor day start with ``at``'s time of
    day (the latest donor sample at or before, at most two donor steps old, else missing).

    Raises:
        ValueError: the donor's history is too short to cover ``ds`` after ``at``.
    """
    rng = np.random.default_rng(seed)
    nm = ds.node_metrics.copy()
    chosen = _pick(nm["node"].unique().tolist(), share, rng)
    dm = donor.node_metrics.sort_values(["node", "ts"])
    need = nm["ts"].max() - at
    d0, d1 = dm["ts"].min(), dm["ts"].max()
    tod = at - at.normalize()
    first = d0.normalize() + tod
    if first < d0:
        first += _DAY
    starts = []
    day = first
    while day + need <= d1:
        starts.append(day)
        day += _DAY
    if not starts:
        raise ValueError(
            f"the donor covers {d1 - d0}; the change needs {need} of donor history "
            f"starting at {tod} into a day"
        )
    donor_nodes = sorted(dm["node"].unique().tolist())
    picks = rng.choice(donor_nodes, size=len(chosen), replace=len(donor_nodes) < len(chosen))
    step = dm.groupby("node")["ts"].diff().median()
    for node, dnode in zip(chosen, picks, strict=True):
        start = starts[int(rng.integers(len(starts)))]
        mine = ((nm["node"] == node) & (nm["ts"] >= at)).to_numpy()
        if not mine.any():
            continue
        host = nm.loc[mine, ["ts"]].copy()
        host["_donor_ts"] = start + (host["ts"] - at)
        host["_order"] = np.arange(len(host))
        src = dm.loc[dm["node"] == dnode, ["ts", *columns]].rename(columns={"ts": "_donor_ts"})
        joined = pd.merge_asof(
            host.sort_values("_donor_ts"),
            src,
            on="_donor_ts",
            direction="backward",
            tolerance=2 * step,
        ).sort_values("_order")
        for col in columns:
            nm.loc[mine, col] = joined[col].to_numpy()
    src_name = donor.meta.get("source", "donor")
    return _with_metrics(ds, nm, f"{len(chosen)} node(s) run {src_name}'s workload from {at}")
