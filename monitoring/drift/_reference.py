"""Like-with-like reference samples and window scoring, shared by calibration and checks.

A window is compared with the reference rows at the same time of day (``same_hours``)
or with all of them (``pooled``); in calibration the window's own calendar day is left
out of its reference (leave-one-day-out), so a no-change window is scored exactly as a
monitored one would be, against days it is not part of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring.drift.data import NAIVE_COLUMNS, DriftData
from monitoring.drift.settings import DriftSettings
from monitoring.drift.stats import column_score

__all__ = ["DAY_NS", "NS", "ErrorStream", "RowIndex", "window_starts"]

NS = 1_000_000_000
DAY_NS = 86400 * NS
_DAY_S = 86400
#: a time-of-day band needs this many error steps to standardise a window's errors.
MIN_STREAM_STEPS = 10


def window_starts(ts_ns: np.ndarray, window_ns: int, *, end_ns: int | None = None) -> np.ndarray:
    """Start times (ns) of the complete windows spanned by ``ts_ns``: windows begin on
    multiples of ``window_ns`` since the epoch; one is complete when it starts at or after
    the first row and ends at or before ``end_ns`` (default: the last row)."""
    if ts_ns.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = int(ts_ns.min()), int(ts_ns.max() if end_ns is None else end_ns)
    first = -(-lo // window_ns) * window_ns
    last = (hi // window_ns) * window_ns  # the last window ending at or before hi
    if last <= first:
        return np.zeros(0, dtype=np.int64)
    return np.arange(first, last, window_ns, dtype=np.int64)


def band_mask(tod_s: np.ndarray, start_ns: int, settings: DriftSettings) -> np.ndarray | None:
    """Rows whose time of day lies within the window's hours ± ``hour_pad_s`` (None: all
    rows, in pooled mode or when the band covers the whole day)."""
    width = settings.window_s + 2.0 * settings.hour_pad_s
    if settings.reference_mode == "pooled" or width >= _DAY_S:
        return None
    lo = (start_ns // NS - settings.hour_pad_s) % _DAY_S
    return ((tod_s - lo) % _DAY_S) < width


class RowIndex:
    """A period's rows as arrays, for fast window slicing and reference sampling."""

    def __init__(self, data: DriftData, columns: list[str], settings: DriftSettings) -> None:
        self.settings = settings
        self.columns = list(columns)
        self.ts = data.ts_ns
        self.tod = (self.ts // NS) % _DAY_S
        self.day = self.ts // DAY_NS
        self.values = (
            data.frame[self.columns].to_numpy(dtype=np.float64)
            if self.columns
            else np.zeros((len(self.ts), 0))
        )
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def days(self) -> np.ndarray:
        """The calendar days (UTC, days since the epoch) with rows."""
        return np.unique(self.day)

    def window(self, start_ns: int, end_ns: int) -> np.ndarray:
        """The values of rows with ``start <= t < end`` (rows are sorted by time)."""
        lo, hi = np.searchsorted(self.ts, [start_ns, end_ns], side="left")
        return self.values[lo:hi]

    def reference_rows(self, start_ns: int, exclude_day: int | None = None) -> np.ndarray:
        """Row positions of the reference for the window starting at ``start_ns``: same
        time of day (or all), not on ``exclude_day``, at most ``max_reference_rows`` of
        them (a sample seeded by the settings' seed, the time of day and the day left
        out, so the same window always meets the same reference)."""
        s0 = int((start_ns // NS) % _DAY_S) if self.settings.reference_mode == "same_hours" else 0
        key = (s0, -1 if exclude_day is None else int(exclude_day))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        mask = band_mask(self.tod, start_ns, self.settings)
        keep = np.ones(len(self.ts), dtype=bool) if mask is None else mask
        if exclude_day is not None:
            keep &= self.day != exclude_day
        rows = np.flatnonzero(keep)
        cap = self.settings.max_reference_rows
        if rows.size > cap:
            rng = np.random.default_rng([self.settings.seed, s0, key[1] + 1])
            rows = np.sort(rng.choice(rows, size=cap, replace=False))
        self._cache[key] = rows
        return rows

    def scores(
        self, current: np.ndarray, start_ns: int, exclude_day: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each column's drift score for a window's values against its reference.

        Returns:
            ``(scores, n_current, n_reference)`` per column; the score is NaN where
            either side has fewer than ``min_window_rows`` values.
        """
        ref = self.values[self.reference_rows(start_ns, exclude_day)]
        k = len(self.columns)
        out = np.full(k, np.nan)
        n_cur = np.zeros(k, dtype=np.int64)
        n_ref = np.zeros(k, dtype=np.int64)
        need = self.settings.min_window_rows
        for j in range(k):
            cur = current[:, j]
            cur = cur[~np.isnan(cur)]
            rj = ref[:, j]
            rj = rj[~np.isnan(rj)]
            n_cur[j], n_ref[j] = cur.size, rj.size
            if cur.size >= need and rj.size >= need:
                out[j] = column_score(self.settings.method, rj, cur)
        return out, n_cur, n_ref


@dataclass
class ErrorStream:
    """The mean absolute error over nodes at each time step, per error column.

    Attributes:
        ts: step times (ns), increasing.
        means: (steps, columns) mean absolute error at each step (NaN: none known).
    """

    ts: np.ndarray
    means: np.ndarray

    @classmethod
    def of(cls, data: DriftData, columns: list[str], settings: DriftSettings) -> ErrorStream:
        """Aggregate ``columns`` over the rows in each step of ``error_step_s`` (steps begin
        on multiples of it since the epoch; a step is stamped with its start): their mean,
        or with ``error_scale="persistence"`` their sum divided by the persistence
        forecast's summed error on the same rows (NaN where that is 0 or unknown)."""
        if not columns or not len(data.frame):
            return cls(np.zeros(0, dtype=np.int64), np.zeros((0, len(columns))))
        step = max(1, round(settings.error_step_s * NS))
        ts = data.ts_ns
        steps = (ts // step) * step
        if settings.error_scale == "none":
            frame = data.frame[columns].copy()
            frame["_step"] = steps
            grouped = frame.groupby("_step", sort=True)[columns].mean()
            return cls(grouped.index.to_numpy(dtype=np.int64), grouped.to_numpy(np.float64))
        parts = {}
        for col in columns:
            naive = NAIVE_COLUMNS.get(col)
            err = data.frame[col].to_numpy(dtype=np.float64)
            ref = (
                data.frame[naive].to_numpy(dtype=np.float64)
                if naive in data.frame.columns
                else np.full(err.shape, np.nan)
            )
            both = ~np.isnan(err) & ~np.isnan(ref)
            parts[f"{col}__e"] = np.where(both, err, 0.0)
            parts[f"{col}__n"] = np.where(both, ref, 0.0)
        frame = pd.DataFrame(parts)
        frame["_step"] = steps
        sums = frame.groupby("_step", sort=True).sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.column_stack(
                [
                    np.where(
                        sums[f"{c}__n"].to_numpy() > 0,
                        sums[f"{c}__e"].to_numpy() / sums[f"{c}__n"].to_numpy(),
                        np.nan,
                    )
                    for c in columns
                ]
            )
        return cls(sums.index.to_numpy(dtype=np.int64), ratio)

    @property
    def tod(self) -> np.ndarray:
        return (self.ts // NS) % _DAY_S

    @property
    def day(self) -> np.ndarray:
        return self.ts // DAY_NS

    def slice(self, start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ts, means)`` of the steps with ``start <= t < end``."""
        lo, hi = np.searchsorted(self.ts, [start_ns, end_ns], side="left")
        return self.ts[lo:hi], self.means[lo:hi]

    def moments(
        self, start_ns: int, settings: DriftSettings, exclude_day: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each column's step errors at the window's time
        of day (NaN where fewer than ``MIN_STREAM_STEPS`` steps are known)."""
        mask = band_mask(self.tod, start_ns, settings)
        keep = np.ones(len(self.ts), dtype=bool) if mask is None else mask
        if exclude_day is not None:
            keep &= self.day != exclude_day
        vals = self.means[keep]
        k = self.means.shape[1]
        mu, sd = np.full(k, np.nan), np.full(k, np.nan)
        for j in range(k):
            v = vals[:, j]
            v = v[~np.isnan(v)]
            if v.size >= MIN_STREAM_STEPS:
                mu[j] = float(v.mean())
                sd[j] = max(float(v.std(ddof=1)), 1e-12)
        return mu, sd
