"""The candidate forecasters, built from statsforecast's models.

Base models (each maps a history on a regular grid to a point forecast):

- ``naive_day`` / ``naive_week``: ``SeasonalNaive`` — the same time yesterday / last week.
  They are the baselines every benchmark compares against, and candidates too: when
  nothing beats them on the backtest, they are the forecast.
- ``mstl``: ``MSTL`` (daily + weekly seasons, the weekly one once two weeks of history
  exist) on hourly means, its level carried by ``WindowAverage`` over the last day.
- ``mstl_ets``: the same decomposition with an ``AutoETS`` trend (damped or not, chosen by
  AIC), for demand that grows.

Why hourly: STL's cost grows with the season length; a weekly season of 5-minute steps
(2016) took ~45 s a fit on this project's 2-core machine, on hourly means (168) it takes
well under a second, which is what makes a backtest per forecast affordable. What hourly
means lose comes back in two parts: the hourly forecast is interpolated between hour
centres, and the pattern within the hour (batch jobs started on the hour, cron spikes)
is added back as ``SeasonalWindowAverage`` of the residuals at the same time of day over
the last week.

Candidates are base models or the mean of two (``mstl+naive_day``,
``mstl+naive_week``): a decomposition averages the recent cycles, the seasonal naive
repeats the latest one, and their mean is usually steadier than either (forecast
combination). Which candidate a series gets is decided by the rolling-origin backtest in
:mod:`monitoring.forecast.forecaster`, never fixed per source.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from monitoring.forecast.errors import ForecastInputError
from monitoring.forecast.series import DAY_S, WEEK_S

__all__ = [
    "BASE_MODELS",
    "CANDIDATES",
    "DEFAULT_CANDIDATES",
    "BaseModel",
    "MSTLModel",
    "SeasonalNaiveModel",
    "candidate_forecast",
    "members",
]

log = logging.getLogger(__name__)

#: The coarse step the decomposition is fitted on.
COARSE_S = 3600.0
#: History the decomposition looks at (older cycles say little about next week).
MSTL_HISTORY_S = 4 * WEEK_S
#: Days of residuals averaged for the within-hour pattern.
PROFILE_DAYS = 7


class BaseModel(Protocol):
    """A point forecaster on a regular grid."""

    name: str

    def min_history_s(self) -> float:
        """The least history it can be fitted on, seconds."""
        ...

    def forecast(self, y: np.ndarray, h: int, step_s: float) -> np.ndarray:
        """The next ``h`` values after ``y`` (sampled every ``step_s``)."""
        ...


@dataclass(frozen=True)
class SeasonalNaiveModel:
    """The value one season ago (statsforecast ``SeasonalNaive``).

    Attributes:
        name: the model's name.
        season_s: the season, seconds (a day or a week).
    """

    name: str
    season_s: float

    def min_history_s(self) -> float:
        return self.season_s

    def forecast(self, y: np.ndarray, h: int, step_s: float) -> np.ndarray:
        from statsforecast.models import SeasonalNaive

        m = round(self.season_s / step_s)
        if y.size < m:
            raise ForecastInputError(f"{self.name} needs {m} steps of history, got {y.size}")
        out = SeasonalNaive(season_length=m).forecast(y=y[-m:], h=h)["mean"]
        return np.asarray(out, dtype="float64")


def _coarse_factor(step_s: float, coarse_s: float) -> int:
    """The largest k ≤ coarse_s / step_s with k steps dividing a day (1 when step ≥ coarse)."""
    per_day = round(DAY_S / step_s)
    k = max(1, int(coarse_s // step_s))
    while k > 1 and per_day % k:
        k -= 1
    return k


def _centre_interp(bins: np.ndarray, k: int) -> np.ndarray:
    """Per-step values from bin means: linear between bin centres (flat at the ends)."""
    centres = np.arange(bins.size) * k + (k - 1) / 2
    return np.interp(np.arange(bins.size * k), centres, bins)


@dataclass(frozen=True)
class MSTLModel:
    """MSTL on coarse (hourly) means, back on the native grid (see the module docstring).

    Attributes:
        name: the model's name.
        trend: ``"level"`` (``WindowAverage`` over the last day of the deseasonalised
            series) or ``"ets"`` (``AutoETS``, additive error, trend chosen by AIC).
        coarse_s: the fitting step (default one hour).
        history_s: the most history used.
    """

    name: str
    trend: str = "level"
    coarse_s: float = COARSE_S
    history_s: float = MSTL_HISTORY_S

    def min_history_s(self) -> float:
        return 2 * DAY_S

    def _trend_forecaster(self, per_day: int, n_bins: int):
        from statsforecast.models import AutoETS, WindowAverage

        if self.trend == "level":
            return WindowAverage(window_size=per_day)
        if self.trend == "week_level":
            return WindowAverage(window_size=min(7 * per_day, n_bins))
        if self.trend == "ets":
            return AutoETS(model="ZZN")
        raise ForecastInputError(f"{self.name}: unknown trend {self.trend!r}")

    def forecast(self, y: np.ndarray, h: int, step_s: float) -> np.ndarray:
        from statsforecast.models import MSTL, SeasonalWindowAverage

        k = _coarse_factor(step_s, self.coarse_s)
        per_day = round(DAY_S / step_s)
        bins_per_day = per_day // k
        keep = min(y.size, round(self.history_s / step_s)) // k * k
        if keep < 2 * per_day:
            raise ForecastInputError(f"{self.name} needs two days of history, got {y.size} steps")
        tail = y[-keep:]
        bins = tail.reshape(-1, k).mean(axis=1)
        seasons = [s for s in (bins_per_day, 7 * bins_per_day) if s > 1 and bins.size >= 2 * s]
        if not seasons:
            raise ForecastInputError(
                f"{self.name}: step {step_s} s leaves no daily cycle to fit (use ≤ 1 h steps)"
            )
        model = MSTL(
            season_length=seasons if len(seasons) > 1 else seasons[0],
            trend_forecaster=self._trend_forecaster(bins_per_day, bins.size),
        )
        h_bins = math.ceil(h / k)
        with warnings.catch_warnings():
            # AutoETS warns on near-constant series; the backtest judges the result.
            warnings.simplefilter("ignore")
            coarse = np.asarray(model.fit(bins).predict(h=h_bins)["mean"], dtype="float64")
        if k == 1:
            return coarse[:h]
        # Anchor the interpolation on the last observed bin so the forecast starts where
        # the history ends rather than at the first forecast bin's centre.
        centres = np.concatenate([[-(k + 1) / 2], np.arange(h_bins) * k + (k - 1) / 2])
        fine = np.interp(np.arange(h), centres, np.concatenate([[bins[-1]], coarse]))
        residual = tail - _centre_interp(bins, k)
        days = min(PROFILE_DAYS, residual.size // per_day)
        if days >= 1:
            profile = SeasonalWindowAverage(season_length=per_day, window_size=days).forecast(
                y=residual, h=h
            )["mean"]
            fine = fine + np.asarray(profile, dtype="float64")
        return fine


BASE_MODELS: dict[str, BaseModel] = {
    "naive_day": SeasonalNaiveModel("naive_day", DAY_S),
    "naive_week": SeasonalNaiveModel("naive_week", WEEK_S),
    "mstl": MSTLModel("mstl", trend="week_level"),
    "mstl_day": MSTLModel("mstl_day", trend="level"),
    "mstl_ets": MSTLModel("mstl_ets", trend="ets"),
}

#: candidate -> the base models it averages.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "naive_day": ("naive_day",),
    "naive_week": ("naive_week",),
    "mstl": ("mstl",),
    "mstl+naive_day": ("mstl", "naive_day"),
    "mstl+naive_week": ("mstl", "naive_week"),
    "mstl_day": ("mstl_day",),
    "mstl_ets": ("mstl_ets",),
    "mstl_day+naive_day": ("mstl_day", "naive_day"),
    "mstl_day+naive_week": ("mstl_day", "naive_week"),
}
DEFAULT_CANDIDATES: tuple[str, ...] = (
    "naive_day",
    "naive_week",
    "mstl",
    "mstl+naive_day",
    "mstl+naive_week",
)


def members(candidates: tuple[str, ...] | list[str]) -> list[str]:
    """The base models the candidates need, each once, in a stable order.

    Raises:
        ForecastInputError: an unknown candidate.
    """
    unknown = [c for c in candidates if c not in CANDIDATES]
    if unknown:
        raise ForecastInputError(f"unknown forecast model(s) {unknown}; known: {list(CANDIDATES)}")
    out: list[str] = []
    for c in candidates:
        out += [m for m in CANDIDATES[c] if m not in out]
    return out


def candidate_forecast(name: str, base: dict[str, np.ndarray]) -> np.ndarray:
    """A candidate's forecast: the mean of its members' forecasts in ``base``."""
    parts = [base[m] for m in CANDIDATES[name]]
    return parts[0] if len(parts) == 1 else np.mean(parts, axis=0)
