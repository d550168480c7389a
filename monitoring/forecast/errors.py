"""The forecast package's errors, all :class:`~hydatis.errors.HydatisError` so the CLI and
services report them in one place.

Prometheus failures keep their own types (:class:`hydatis.prometheus.PrometheusError` and
its subclasses): an unreachable server reaches the caller as
:class:`~hydatis.prometheus.PrometheusUnavailableError`, naming the server and the query.
"""

from __future__ import annotations

from hydatis.errors import HydatisError

__all__ = ["ForecastError", "ForecastInputError", "HistoryTooShortError"]


class ForecastError(HydatisError):
    """A forecast could not be made."""


class ForecastInputError(ForecastError):
    """The demand series is unusable (empty, a gap too long to fill, a bad step)."""


class HistoryTooShortError(ForecastError):
    """The history is shorter than the horizon asked for needs.

    Attributes:
        series: the series' name.
        horizon_s: the horizon asked for, seconds.
        minimum_s: the history needed, seconds.
        got_s: the history given, seconds.
    """

    def __init__(self, series: str, horizon_s: float, minimum_s: float, got_s: float) -> None:
        self.series, self.horizon_s = series, horizon_s
        self.minimum_s, self.got_s = minimum_s, got_s
        super().__init__(
            f"{series}: a {format_duration(horizon_s)} forecast needs at least "
            f"{format_duration(minimum_s)} of history (two days to fit the daily cycle, the "
            f"horizon itself and the backtest windows that choose the model and size its "
            f"intervals); got {format_duration(got_s)}"
        )


def format_duration(seconds: float) -> str:
    """``90000`` → ``'1.04 d'``, ``7200`` → ``'2 h'``, ``300`` → ``'5 min'``."""
    if seconds >= 86400:
        days = seconds / 86400
        return f"{days:.3g} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 60:.3g} min"
