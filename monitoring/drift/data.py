"""What drift is measured on: one table per period, its columns grouped by kind.

Rows are (node, time) as in the offline feature table; the columns are

- ``data``: the node features the load predictor reads;
- ``prediction``: the models' outputs (``cpu_util_pred``, ``mem_util_pred``, or any other
  output column, such as an anomaly score);
- ``target``: the load observed once the horizon has passed (the labels);
- ``performance``: the absolute error of each load forecast, ``|pred - observed|``, with
  beside it the error of the persistence forecast (the current value) on the same row,
  ``|util(t) - observed|``, which the performance test divides by (see
  :class:`~monitoring.drift.settings.DriftSettings`, ``error_scale``).

:func:`drift_data` assembles the table from the feature table, the labels and the
predictions; :func:`predict_load` runs a load predictor over the features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hydatis.errors import HydatisError
from monitoring.drift.settings import CALENDAR_FEATURES, DriftSettings

__all__ = [
    "ERROR_COLUMNS",
    "KEYS",
    "NAIVE_COLUMNS",
    "DriftData",
    "DriftInputError",
    "drift_data",
    "predict_load",
    "resolve_features",
]

KEYS = ("node_id", "event_timestamp")
_RESOURCES = ("cpu", "mem")
#: The performance kind's columns.
ERROR_COLUMNS = tuple(f"{r}_abs_error" for r in _RESOURCES)
#: The persistence forecast's error on the same rows (the scale of each error column).
NAIVE_COLUMNS = {f"{r}_abs_error": f"{r}_naive_error" for r in _RESOURCES}
_NS = 1_000_000_000


class DriftInputError(HydatisError):
    """Drift inputs are missing, misaligned or too short (the message says which)."""


@dataclass
class DriftData:
    """One period's rows and which columns each kind reads.

    Attributes:
        frame: ``node_id``, ``event_timestamp`` (UTC) and the value columns, sorted by time.
        columns: kind -> its columns in ``frame`` (a kind with no column is not monitored).
        notes: why a kind or column is left out.
    """

    frame: pd.DataFrame
    columns: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)

    @property
    def ts_ns(self) -> np.ndarray:
        """Row times as int64 nanoseconds since the epoch."""
        return _ts_ns(self.frame["event_timestamp"])

    def between(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> DriftData:
        """The rows with ``start <= t < end`` (either bound open when None)."""
        ts = self.frame["event_timestamp"]
        keep = np.ones(len(ts), dtype=bool)
        if start is not None:
            keep &= (ts >= _utc(start)).to_numpy()
        if end is not None:
            keep &= (ts < _utc(end)).to_numpy()
        return DriftData(
            self.frame.loc[keep].reset_index(drop=True),
            {k: list(v) for k, v in self.columns.items()},
            list(self.notes),
        )

    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last row time, None when empty."""
        if not len(self.frame):
            return None
        ts = self.frame["event_timestamp"]
        return ts.iloc[0], ts.iloc[-1]


def _utc(t: Any) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _ts_ns(col: pd.Series) -> np.ndarray:
    return col.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def resolve_features(wanted: list[str], available: list[str]) -> list[str]:
    """The data-drift columns: ``wanted`` in order, or every numeric non-calendar column
    when it is ``["all"]``.

    Raises:
        DriftInputError: a wanted feature is not in the feature table.
    """
    if [w.lower() for w in wanted] == ["all"]:
        return [c for c in available if c not in KEYS and c not in CALENDAR_FEATURES]
    missing = [w for w in wanted if w not in available]
    if missing:
        raise DriftInputError(
            f"the feature table lacks the watched feature(s) {missing[:5]}: list them in "
            "the drift settings' `features` only if the table has them"
        )
    return list(wanted)


def predict_load(model: Any, features: pd.DataFrame) -> pd.DataFrame:
    """The load predictor's forecasts for every row of ``features``.

    Args:
        model: a fitted :class:`hydatis.models.load_predictor.LoadPredictor` (anything
            with its ``predict``).
        features: the offline feature table.

    Returns:
        ``node_id, event_timestamp, cpu_util_pred, mem_util_pred``.
    """
    try:
        return model.predict(features)
    except KeyError as exc:
        raise DriftInputError(f"the load predictor cannot read the features: {exc}") from exc


def drift_data(
    features: pd.DataFrame,
    *,
    settings: DriftSettings,
    labels: pd.DataFrame | None = None,
    predictions: pd.DataFrame | None = None,
) -> DriftData:
    """Assemble one period's drift table.

    Args:
        features: the offline feature table (``node_id``, ``event_timestamp``, features).
        settings: which features, prediction and target columns to watch.
        labels: ``node_id, event_timestamp`` and the target columns (the load at t + h);
            without it the target and performance kinds are not monitored.
        predictions: ``node_id, event_timestamp`` and the prediction columns; without it
            the prediction and performance kinds are not monitored.

    Raises:
        DriftInputError: a table lacks its keys, or a watched feature is missing.
    """
    for name, table in (("features", features), ("labels", labels), ("predictions", predictions)):
        if table is None:
            continue
        missing = [k for k in KEYS if k not in table.columns]
        if missing:
            raise DriftInputError(f"the {name} table lacks the key column(s) {missing}")
    notes: list[str] = []
    feats = resolve_features(settings.features, [str(c) for c in features.columns])
    frame = features[[*KEYS, *feats]].copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    columns: dict[str, list[str]] = {"data": feats, "prediction": [], "target": []}
    columns["performance"] = []
    for name, table, wanted in (
        ("predictions", predictions, settings.prediction_columns),
        ("labels", labels, settings.target_columns),
    ):
        kind = "prediction" if name == "predictions" else "target"
        if table is None:
            notes.append(f"{kind}: no {name} given")
            continue
        have = [c for c in wanted if c in table.columns]
        lacking = [c for c in wanted if c not in table.columns]
        if lacking:
            notes.append(f"{kind}: the {name} lack {lacking}")
        if not have:
            continue
        right = table[[*KEYS, *have]].copy()
        right["event_timestamp"] = pd.to_datetime(right["event_timestamp"], utc=True)
        frame = frame.merge(right, on=list(KEYS), how="left", validate="one_to_one")
        columns[kind] = have
    for res, col in zip(_RESOURCES, ERROR_COLUMNS, strict=True):
        pred, obs, now = f"{res}_util_pred", f"{res}_util_target", f"{res}_util"
        if pred in frame.columns and obs in frame.columns:
            frame[col] = (frame[pred] - frame[obs]).abs()
            columns["performance"].append(col)
            if now in features.columns:
                current = features[[*KEYS, now]].rename(columns={now: "_now"})
                current["event_timestamp"] = pd.to_datetime(current["event_timestamp"], utc=True)
                joined = frame[list(KEYS)].merge(current, on=list(KEYS), how="left")
                frame[NAIVE_COLUMNS[col]] = (joined["_now"].to_numpy() - frame[obs]).abs()
    if not columns["performance"]:
        notes.append("performance: needs both the load forecasts and the observed load")
    frame = frame.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    for col in {c for cols in columns.values() for c in cols}:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    return DriftData(frame, columns, notes)
