"""Small helpers the baseline schedulers share: Go's rounding and per-node sums.

Private to the package; each helper is pure and works on whole numpy arrays.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.types import UNSET, RecentBindings

__all__ = [
    "MAX_NODE_SCORE",
    "MIN_NODE_SCORE",
    "free_share_score",
    "go_round",
    "nan_to_zero",
    "per_node_sum",
    "unset_to_zero",
]

# framework.MaxNodeScore / MinNodeScore in kube-scheduler.
MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


def go_round(x: np.ndarray | float) -> np.ndarray | float:
    """Go's ``math.Round``: to the nearest integer, halves away from zero.

    ``go_round(x) = trunc(x) + sign(x)`` when ``|x - trunc(x)| >= 0.5``, else ``trunc(x)``.
    Unlike Python's ``round`` (halves to even) and unlike ``floor(x + 0.5)`` (which turns
    0.49999999999999994 into 1), this is exact: ``x - trunc(x)`` has no rounding error.

    Args:
        x: a number or an array of any shape; NaN and infinities stay as they are.

    Returns:
        A float for a Python number, else a float array of the rounded values.
    """
    if isinstance(x, int | float):
        if math.isnan(x) or math.isinf(x):
            return float(x)
        whole = float(math.trunc(x))
        return whole + math.copysign(1.0, x) if abs(x - whole) >= 0.5 else whole
    x = np.asarray(x, dtype=np.float64)
    whole = np.trunc(x)
    return whole + (np.abs(x - whole) >= 0.5) * np.sign(x)


def nan_to_zero(x: np.ndarray) -> np.ndarray:
    """``x`` with NaN replaced by 0 (a faster ``np.nan_to_num`` for finite data)."""
    return np.where(np.isnan(x), 0.0, x)


def unset_to_zero(values: np.ndarray) -> np.ndarray:
    """Integer array with ``UNSET`` entries (an unset request or limit) replaced by 0."""
    return np.where(values == UNSET, 0, values)


def per_node_sum(
    bindings: RecentBindings, weights: np.ndarray, n_nodes: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """Sum ``weights`` (one per binding) per node: ``out[j] = Σ_{b: node_b = j} w_b``.

    Args:
        bindings: the bindings to sum over.
        weights: one value per binding.
        n_nodes: length of the result.
        mask: optional boolean per binding; only True ones count.

    Returns:
        Float array of length ``n_nodes``.
    """
    if len(bindings) == 0:
        return np.zeros(n_nodes)
    nodes = bindings.node
    if mask is not None:
        nodes, weights = nodes[mask], np.asarray(weights)[mask]
    return np.bincount(nodes, weights=weights, minlength=n_nodes).astype(np.float64)


def free_share_score(used: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    """Per resource, the free share in integer percent, as upstream computes it.

    ``(alloc − used) * 100 // alloc``; 0 when ``used > alloc`` or ``alloc == 0``. Both
    kube-scheduler's LeastAllocated (with requests) and Koordinator's LoadAware (with
    estimated usage) score a resource this way.
    """
    used, alloc = np.asarray(used, np.int64), np.asarray(alloc, np.int64)
    if alloc.all():  # the usual case; a negative floor quotient means used > alloc
        return np.maximum((alloc - used) * MAX_NODE_SCORE // alloc, 0)
    safe = np.where(alloc == 0, 1, alloc)
    score = (alloc - used) * MAX_NODE_SCORE // safe
    return np.where((alloc == 0) | (used > alloc), 0, score)
