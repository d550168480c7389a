"""Training labels for the load predictor, built on the same grid as the features.

The target of the row (node, t) is the node's CPU and memory utilisation at the grid point
``h`` later (the first grid point at or after ``t + h``), so :func:`node_labels` and the
offline :func:`~hydatis.features.node_features` table join one-to-one on
``(node_id, event_timestamp)``. Labels read the future by definition; they are never fed
to a model as inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset
from hydatis.features.compute import _NS, _offline_grid

__all__ = ["DEFAULT_HORIZON_S", "node_labels"]

DEFAULT_HORIZON_S = 300.0


def node_labels(
    ds: ClusterDataset, *, horizon_s: float = DEFAULT_HORIZON_S, step_s: float | None = None
) -> pd.DataFrame:
    """Utilisation ``horizon_s`` ahead, for every row of the offline feature table.

    Args:
        ds: the cluster dataset.
        horizon_s: how far ahead, in seconds (> 0); rounded up to whole grid steps.
        step_s: grid step in seconds, as for ``node_features`` (default: the median
            sample gap); pass the same value to both.

    Returns:
        ``node_id, event_timestamp, cpu_util_target, mem_util_target`` (float32), rows in
        the offline feature table's order; NaN where ``t + h`` is past the end of the
        series or has no sample (within the carry-forward limit).
    """
    if not horizon_s > 0:
        raise ValueError(f"horizon_s must be positive, got {horizon_s}")
    og = _offline_grid(ds, step_s)
    t, n = len(og.times), len(og.names)
    k = -(-round(horizon_s * _NS) // og.step_ns)
    cols = {}
    for res in ("cpu", "mem"):
        ahead = np.full((n, t), np.nan)
        if k < t:
            ahead[:, : t - k] = og.grid[res][:, k:]
        cols[f"{res}_util_target"] = ahead.ravel().astype(np.float32)
    stamps = pd.DatetimeIndex(np.tile(og.times, n).view("datetime64[ns]"), tz="UTC")
    df = pd.DataFrame(
        {"node_id": np.repeat(og.names.astype(object), t), "event_timestamp": stamps, **cols}
    )
    if not og.keep.all():
        df = df.loc[og.keep].reset_index(drop=True)
    return df
