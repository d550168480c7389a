"""Naive forecasts the load predictor must beat, and the error metrics it is judged by.

Each baseline predicts the node's CPU and memory utilisation at ``t + h`` for the same rows
as the model (one row per ``(node_id, event_timestamp)`` of the feature table) and returns
``node_id, event_timestamp, cpu_util_pred, mem_util_pred``:

- :func:`persistence`: the last value, ``y(t + h) = y(t)`` (features ``cpu_util``,
  ``mem_util``);
- :func:`seasonal_naive`: the same time yesterday, ``y(t + h) = y(t + h - 1 d)``, read from
  the label series (the label of the row ``t - 1 d``) when it is given, else from the
  features ``cpu_lag_1d``/``mem_lag_1d`` (the value at ``t - 1 d``);
- :func:`ewma`: the exponentially weighted mean of the recent past (features
  ``cpu_ewma_10m``/``mem_ewma_10m``, span 10 min).

Where a baseline has no value of its own (no history a day back, too few points for the
EWMA) it falls back to persistence, so every baseline covers the same rows.

Metrics (NaN pairs are ignored; utilisation is a fraction in [0, 1]):

- ``mae_pp`` = 100 · mean |ŷ − y|, in percentage points;
- ``rmse`` = sqrt(mean (ŷ − y)²), as a fraction;
- ``accuracy_1_minus_wape`` = 1 − Σ|ŷ − y| / Σ|y|.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = [
    "BASELINES",
    "DAY_S",
    "KEYS",
    "PRED_COLUMNS",
    "accuracy_1_minus_wape",
    "ewma",
    "mae_pp",
    "persistence",
    "rmse",
    "seasonal_naive",
]

KEYS = ["node_id", "event_timestamp"]
PRED_COLUMNS = ("cpu_util_pred", "mem_util_pred")
DAY_S = 86400.0
_RES = ("cpu", "mem")


def _frame(features: pd.DataFrame, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    out = features[KEYS].reset_index(drop=True).copy()
    for res in _RES:
        out[f"{res}_util_pred"] = np.clip(cols[res].astype(np.float64), 0.0, 1.0)
    return out


def _with_fallback(features: pd.DataFrame, primary: dict[str, np.ndarray]) -> pd.DataFrame:
    cols = {}
    for res in _RES:
        last = features[f"{res}_util"].to_numpy(dtype=np.float64)
        cols[res] = np.where(np.isnan(primary[res]), last, primary[res])
    return _frame(features, cols)


def persistence(features: pd.DataFrame) -> pd.DataFrame:
    """Last value: ``y(t + h) = y(t)``.

    Args:
        features: the feature table (needs ``node_id, event_timestamp, cpu_util,
            mem_util``).

    Returns:
        ``node_id, event_timestamp, cpu_util_pred, mem_util_pred``, rows as ``features``.
    """
    return _frame(features, {r: features[f"{r}_util"].to_numpy(np.float64) for r in _RES})


def seasonal_naive(
    features: pd.DataFrame, labels: pd.DataFrame | None = None, *, period_s: float = DAY_S
) -> pd.DataFrame:
    """Same time yesterday, falling back to persistence where there is no such value.

    Args:
        features: the feature table.
        labels: the label table of the same series (``node_id, event_timestamp,
            cpu_util_target, mem_util_target``, the value at ``t + h`` for each row
            ``t``). When given, the forecast for ``(n, t)`` is the label of ``(n, t -
            period_s)``, i.e. the value at ``t + h - period_s`` exactly — known at ``t``
            since ``h <= period_s``. When None, the features ``cpu_lag_1d`` and
            ``mem_lag_1d`` (the value at ``t - 1 d``) are used.
        period_s: the season in seconds (one day).

    Returns:
        ``node_id, event_timestamp, cpu_util_pred, mem_util_pred``, rows as ``features``.
    """
    if labels is None:
        primary = {r: features[f"{r}_lag_1d"].to_numpy(np.float64) for r in _RES}
        return _with_fallback(features, primary)
    past = labels[[*KEYS, "cpu_util_target", "mem_util_target"]].copy()
    past["event_timestamp"] = past["event_timestamp"] + pd.Timedelta(seconds=period_s)
    joined = features[KEYS].merge(past, on=KEYS, how="left", validate="many_to_one")
    primary = {r: joined[f"{r}_util_target"].to_numpy(np.float64) for r in _RES}
    return _with_fallback(features, primary)


def ewma(features: pd.DataFrame) -> pd.DataFrame:
    """Exponentially weighted mean (span 10 min, features ``cpu_ewma_10m``/``mem_ewma_10m``),
    falling back to persistence where it is NaN.

    Returns:
        ``node_id, event_timestamp, cpu_util_pred, mem_util_pred``, rows as ``features``.
    """
    return _with_fallback(
        features, {r: features[f"{r}_ewma_10m"].to_numpy(np.float64) for r in _RES}
    )


#: name -> baseline(features, labels) for the evaluation table.
BASELINES: dict[str, Callable[[pd.DataFrame, pd.DataFrame | None], pd.DataFrame]] = {
    "persistence": lambda f, _labels: persistence(f),
    "seasonal_naive": lambda f, labels: seasonal_naive(f, labels),
    "ewma": lambda f, _labels: ewma(f),
}


def _pairs(y_true: np.ndarray | pd.Series, y_pred: np.ndarray | pd.Series) -> np.ndarray:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values, y_pred {p.size}")
    ok = ~(np.isnan(t) | np.isnan(p))
    return np.stack([t[ok], p[ok]])


def mae_pp(y_true: np.ndarray | pd.Series, y_pred: np.ndarray | pd.Series) -> float:
    """Mean absolute error in percentage points: ``100 · mean |ŷ − y|`` (NaN if no pair)."""
    t, p = _pairs(y_true, y_pred)
    return float(100.0 * np.mean(np.abs(p - t))) if t.size else float("nan")


def rmse(y_true: np.ndarray | pd.Series, y_pred: np.ndarray | pd.Series) -> float:
    """Root mean squared error, in the unit of the values (a fraction for utilisation)."""
    t, p = _pairs(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2))) if t.size else float("nan")


def accuracy_1_minus_wape(y_true: np.ndarray | pd.Series, y_pred: np.ndarray | pd.Series) -> float:
    """Accuracy as 1 − WAPE: ``1 − Σ|ŷ − y| / Σ|y|`` (NaN when ``Σ|y| = 0`` or no pair)."""
    t, p = _pairs(y_true, y_pred)
    denom = float(np.sum(np.abs(t)))
    if not t.size or denom == 0.0:
        return float("nan")
    return float(1.0 - np.sum(np.abs(p - t)) / denom)
