"""One forecast: choose the model by a rolling-origin backtest on the history, size the
intervals from the same backtest's errors, fit the chosen model on all the history.

Minimum history for a horizon H (see :func:`min_history_s`): two days to fit a daily
cycle, then H for the first backtest window to be scored, then ``min_windows − 1`` more
windows ``stride`` apart (default stride H/2): 4 days for 24 h, 16 days for 7 d,
62 days for 30 d. A shorter history raises :class:`HistoryTooShortError` naming it,
rather than a forecast whose model and intervals nothing has checked.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitoring.forecast.backtest import backtest_base, window_origins
from monitoring.forecast.errors import ForecastInputError, HistoryTooShortError
from monitoring.forecast.intervals import DEFAULT_BUCKETS, Conformal, calibrate
from monitoring.forecast.metrics import wape
from monitoring.forecast.models import (
    BASE_MODELS,
    CANDIDATES,
    DEFAULT_CANDIDATES,
    candidate_forecast,
    members,
)
from monitoring.forecast.series import DAY_S, DemandSeries, check_step

__all__ = [
    "DEFAULT_LEVELS",
    "Forecast",
    "ForecastResult",
    "ForecastSettings",
    "forecast_series",
    "forecast_values",
    "min_history_s",
]

log = logging.getLogger(__name__)

DEFAULT_LEVELS: tuple[int, ...] = (80, 95)


@dataclass(frozen=True)
class ForecastSettings:
    """How a forecast chooses its model and sizes its intervals.

    Attributes:
        levels: interval levels, percent.
        candidates: the models the backtest chooses from (see
            :data:`~monitoring.forecast.models.CANDIDATES`).
        windows: backtest windows at most.
        min_windows: backtest windows at least (sets the minimum history).
        window_stride_s: seconds between window origins (None: half the horizon).
        min_train_s: the least history before the earliest window.
        buckets: lead-time buckets of the intervals.
        top: the forecast is the mean of this many best candidates on the backtest
            (1: the best alone). Picking one winner per forecast switches between close
            candidates on noise; averaging the leaders is steadier.
    """

    levels: tuple[int, ...] = DEFAULT_LEVELS
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES
    windows: int = 14
    min_windows: int = 3
    window_stride_s: float | None = None
    min_train_s: float = 2 * DAY_S
    buckets: int = DEFAULT_BUCKETS
    top: int = 1

    def __post_init__(self) -> None:
        members(self.candidates)  # raises on an unknown name
        if not self.candidates:
            raise ForecastInputError("no forecast model to choose from")
        if not 1 <= self.min_windows <= self.windows:
            raise ForecastInputError(
                f"need 1 ≤ min_windows ≤ windows, got {self.min_windows} and {self.windows}"
            )
        if self.top < 1:
            raise ForecastInputError(f"top must be ≥ 1, got {self.top}")
        bad = [lv for lv in self.levels if not 0 < lv < 100]
        if bad:
            raise ForecastInputError(f"interval levels must be in (0, 100), got {bad}")

    def stride_steps(self, horizon_s: float, step_s: float) -> int:
        """Steps between backtest origins."""
        stride = self.window_stride_s if self.window_stride_s is not None else horizon_s / 2
        return max(1, round(stride / step_s))


def _steps(seconds: float, step_s: float) -> int:
    return max(1, math.ceil(seconds / step_s - 1e-9))


def min_history_s(
    horizon_s: float, step_s: float, settings: ForecastSettings | None = None
) -> float:
    """The least history a forecast ``horizon_s`` ahead accepts, seconds."""
    s = settings or ForecastSettings()
    h = _steps(horizon_s, step_s)
    need = (
        _steps(s.min_train_s, step_s) + h + (s.min_windows - 1) * s.stride_steps(horizon_s, step_s)
    )
    return need * step_s


@dataclass(frozen=True)
class ForecastResult:
    """A forecast on the series' grid.

    Attributes:
        model: the candidate the backtest chose (``A & B``: the mean of the leaders).
        step_s: the grid step.
        mean: the point forecast (≥ 0), one value per step.
        bounds: level -> (lower, upper), same length.
        backtest_wape: every candidate tried (and the chosen mean) -> its WAPE over the
            backtest windows.
        windows: the number of backtest windows.
        conformal: the interval calibration.
    """

    model: str
    step_s: float
    mean: np.ndarray
    bounds: dict[int, tuple[np.ndarray, np.ndarray]]
    backtest_wape: dict[str, float]
    windows: int
    conformal: Conformal


def forecast_values(
    y: np.ndarray,
    horizon_s: float,
    step_s: float,
    settings: ForecastSettings | None = None,
    *,
    name: str = "series",
    on_window: Callable[[int, int], None] | None = None,
) -> ForecastResult:
    """Forecast ``horizon_s`` ahead of the values ``y`` (regular, every ``step_s``).

    Raises:
        HistoryTooShortError: ``y`` is shorter than :func:`min_history_s`.
        ForecastInputError: a bad step or non-finite values.
    """
    s = settings or ForecastSettings()
    check_step(step_s, name)
    y = np.asarray(y, dtype="float64")
    if not np.isfinite(y).all():
        raise ForecastInputError(f"{name}: the history holds NaN or infinite values")
    h = _steps(horizon_s, step_s)
    need = min_history_s(horizon_s, step_s, s)
    if y.size * step_s < need:
        raise HistoryTooShortError(name, horizon_s, need, y.size * step_s)
    stride = s.stride_steps(horizon_s, step_s)
    origins = window_origins(y.size, h, stride, s.windows, _steps(s.min_train_s, step_s))
    earliest_s = origins[0] * step_s
    usable = [
        c
        for c in s.candidates
        if all(BASE_MODELS[m].min_history_s() <= earliest_s for m in CANDIDATES[c])
    ]
    if not usable:
        raise ForecastInputError(
            f"{name}: none of the models {list(s.candidates)} can be fitted on the "
            f"{earliest_s / DAY_S:.3g} days before the earliest backtest window"
        )
    bt = backtest_base(y, members(usable), h, step_s, origins, on_window=on_window)
    scores = {c: wape(bt.actual, candidate_forecast(c, bt.forecasts)) for c in usable}
    ranked = sorted(usable, key=lambda c: (np.nan_to_num(scores[c], nan=np.inf), usable.index(c)))
    leaders = ranked[: s.top]
    chosen = " & ".join(leaders)
    backtest = np.mean([candidate_forecast(c, bt.forecasts) for c in leaders], axis=0)
    if len(leaders) > 1:
        scores[chosen] = wape(bt.actual, backtest)
    conformal = calibrate(bt.actual - backtest, s.levels, s.buckets)
    needed = members(leaders)
    final = {m: BASE_MODELS[m].forecast(y, h, step_s) for m in needed}
    mean = np.maximum(np.mean([candidate_forecast(c, final) for c in leaders], axis=0), 0.0)
    bounds = {
        lv: (np.maximum(lo, 0.0), np.maximum(hi, 0.0))
        for lv, (lo, hi) in conformal.bounds(mean).items()
    }
    log.info("%s: chose %s over %d windows (WAPE %s)", name, chosen, len(origins), scores)
    return ForecastResult(chosen, step_s, mean, bounds, scores, len(origins), conformal)


@dataclass(frozen=True)
class Forecast:
    """A series and its forecast, with times.

    Attributes:
        series: the history.
        horizon_s: how far ahead.
        result: the forecast on the series' grid.
        times: the forecast's times.
        meta: facts for the report.
    """

    series: DemandSeries
    horizon_s: float
    result: ForecastResult
    times: pd.DatetimeIndex
    meta: dict[str, str] = field(default_factory=dict)


def forecast_series(
    series: DemandSeries,
    horizon_s: float,
    settings: ForecastSettings | None = None,
    *,
    on_window: Callable[[int, int], None] | None = None,
) -> Forecast:
    """Forecast a :class:`DemandSeries` ``horizon_s`` ahead (see :func:`forecast_values`)."""
    result = forecast_values(
        series.values, horizon_s, series.step_s, settings, name=series.name, on_window=on_window
    )
    times = pd.date_range(series.end, periods=result.mean.size, freq=f"{series.step_s}s")
    return Forecast(series, horizon_s, result, times)
