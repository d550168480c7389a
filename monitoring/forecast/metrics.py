"""Forecast accuracy: WAPE, MASE and interval coverage.

- WAPE = Σ|y − ŷ| / Σ|y| (weighted absolute percentage error); reported as 1 − WAPE,
  "the share of demand predicted right", which stays meaningful when a series crosses 0
  nowhere and is comparable across sources of different units.
- MASE = mean|y − ŷ| / mean|y_t − y_{t−m}| over the training history (m = one day): below
  1 beats the in-sample same-time-yesterday forecast.
- Coverage: the share of actual values inside an interval.
"""

from __future__ import annotations

import numpy as np

__all__ = ["coverage", "mase", "mase_scale", "wape"]


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Σ|actual − forecast| / Σ|actual| (NaN when the actual sums to 0)."""
    denom = float(np.abs(actual).sum())
    if denom == 0:
        return float("nan")
    return float(np.abs(np.asarray(actual) - np.asarray(forecast)).sum() / denom)


def mase_scale(history: np.ndarray, season: int) -> float:
    """mean |y_t − y_{t−season}| over ``history`` (NaN when too short or constant)."""
    y = np.asarray(history, dtype="float64")
    if y.size <= season:
        return float("nan")
    scale = float(np.abs(y[season:] - y[:-season]).mean())
    return scale if scale > 0 else float("nan")


def mase(actual: np.ndarray, forecast: np.ndarray, scale: float) -> float:
    """mean|actual − forecast| / ``scale`` (see :func:`mase_scale`)."""
    return float(np.abs(np.asarray(actual) - np.asarray(forecast)).mean() / scale)


def coverage(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """The share of ``actual`` inside [lo, hi]."""
    a = np.asarray(actual)
    return float(((a >= lo) & (a <= hi)).mean())
