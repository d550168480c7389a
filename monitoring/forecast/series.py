"""Demand series on a regular grid, and horizon parsing.

Every model here works on a regular grid whose step divides a day, so that "the same time
yesterday" and "the same time last week" are whole numbers of steps. Sources (Prometheus,
a cluster dataset, the cluster aggregates) produce a :class:`DemandSeries`; short gaps
(a missed scrape) are filled by linear interpolation, long ones are an error, because
inventing hours of demand would decide the forecast.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitoring.forecast.errors import ForecastInputError, format_duration

__all__ = [
    "DAY_S",
    "HORIZONS",
    "MAX_GAP_S",
    "WEEK_S",
    "DemandSeries",
    "parse_horizon",
    "regular_series",
]

log = logging.getLogger(__name__)

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
#: The horizons the command line offers.
HORIZONS: dict[str, float] = {"24h": DAY_S, "7d": WEEK_S, "30d": 30 * DAY_S}
#: Gaps up to this long are interpolated; longer ones are an error.
MAX_GAP_S = 3600.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": DAY_S, "w": WEEK_S}


def parse_horizon(text: str | float) -> float:
    """``'24h'``, ``'7d'``, ``'30d'`` (or any ``<number><s|m|h|d|w>``, or seconds) → seconds.

    Raises:
        ForecastInputError: not a positive duration.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise ForecastInputError(
                f"horizon {text!r} is not a duration; use one of {', '.join(HORIZONS)}"
            )
        value = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if not value > 0:
        raise ForecastInputError(f"horizon must be > 0, got {text!r}")
    return value


@dataclass(frozen=True)
class DemandSeries:
    """One demand series: a scope (the cluster or a node pool) and a resource.

    Attributes:
        name: a label for tables and errors, e.g. ``cluster cpu`` or ``pool=gpu mem``.
        resource: ``cpu`` or ``mem``.
        unit: the values' unit (``cores``, ``GiB``, ``share``, or the source's own).
        start: the time of ``values[0]`` (UTC).
        step_s: seconds between values; divides a day.
        values: the demand, finite.
        capacity: the scope's capacity in ``unit`` now (None when unknown).
        nodes: the scope's node count now (None when unknown).
        node_capacity: one node's capacity in ``unit`` (the median node; None when
            unknown), what the node count needed is measured in.
        meta: free-form facts about the source, shown in reports.
    """

    name: str
    resource: str
    unit: str
    start: pd.Timestamp
    step_s: float
    values: np.ndarray
    capacity: float | None = None
    nodes: int | None = None
    node_capacity: float | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_step(self.step_s, self.name)
        if self.values.ndim != 1 or self.values.size == 0:
            raise ForecastInputError(f"{self.name}: the series is empty")
        bad = np.flatnonzero(~np.isfinite(self.values))
        if bad.size:
            raise ForecastInputError(
                f"{self.name}: value {bad[0]} (at {self.time(int(bad[0]))}) is not finite"
            )

    @property
    def span_s(self) -> float:
        """Seconds of history covered."""
        return self.values.size * self.step_s

    @property
    def end(self) -> pd.Timestamp:
        """The time just after the last value: where a forecast starts."""
        return self.time(self.values.size)

    def time(self, i: int) -> pd.Timestamp:
        """The time of step ``i``."""
        return self.start + pd.Timedelta(seconds=i * self.step_s)

    def times(self) -> pd.DatetimeIndex:
        """The times of every value."""
        return pd.date_range(self.start, periods=self.values.size, freq=f"{self.step_s}s")


def check_step(step_s: float, what: str = "series") -> None:
    """Raise unless ``step_s`` is a positive divisor of a day (whole seconds)."""
    if not (step_s > 0 and float(step_s).is_integer() and DAY_S % step_s == 0):
        raise ForecastInputError(
            f"{what}: step {step_s} s does not divide a day into whole steps (use e.g. 60, "
            "300, 900 or 3600 s)"
        )


def regular_series(
    timestamps: np.ndarray,
    values: np.ndarray,
    step_s: float,
    *,
    name: str,
    max_gap_s: float = MAX_GAP_S,
    keep_after_gap: bool = False,
) -> tuple[pd.Timestamp, np.ndarray]:
    """Put samples on the regular grid ``first, first + step, ...``.

    Args:
        timestamps: unix seconds, increasing (Prometheus answers on the grid already).
        values: the samples; NaN counts as missing.
        step_s: the grid step.
        name: the series' name, for errors.
        max_gap_s: the longest run of missing grid points that is interpolated.
        keep_after_gap: on a longer gap, keep what follows the last one (logged) instead
            of failing: a server that was down a few hours last week should not stop
            forecasts for good; the history may then be too short, which the forecast
            reports with the minimum it needs.

    Returns:
        The grid's start and the values on it (finite).

    Raises:
        ForecastInputError: no finite sample, or a gap longer than ``max_gap_s`` (without
            ``keep_after_gap``).
    """
    check_step(step_s, name)
    ts = np.asarray(timestamps, dtype="float64")
    vals = np.asarray(values, dtype="float64")
    ok = np.isfinite(ts) & np.isfinite(vals)
    ts, vals = ts[ok], vals[ok]
    if ts.size == 0:
        raise ForecastInputError(f"{name}: no samples")
    t0 = ts[0]
    idx = np.rint((ts - t0) / step_s).astype(np.int64)
    grid = np.full(int(idx[-1]) + 1, np.nan)
    grid[idx] = vals
    missing = np.isnan(grid)
    if missing.any():
        # Longest run of missing points.
        edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
        starts = np.flatnonzero(edges == 1)
        runs = np.flatnonzero(edges == -1) - starts
        long_runs = np.flatnonzero(runs * step_s > max_gap_s)
        if long_runs.size and keep_after_gap:
            cut = int(starts[long_runs[-1]] + runs[long_runs[-1]])
            log.warning(
                "%s: %s of data missing; using the %s after the gap",
                name,
                format_duration(float(runs[long_runs[-1]] * step_s)),
                format_duration((grid.size - cut) * step_s),
            )
            t0 += cut * step_s
            grid = grid[cut:]
            missing = missing[cut:]
            runs = runs[starts >= cut]
        longest = int(runs.max()) * step_s if runs.size else 0.0
        if longest > max_gap_s:
            where = int(starts[np.argmax(runs)])
            at = pd.Timestamp(t0 + where * step_s, unit="s", tz="UTC")
            raise ForecastInputError(
                f"{name}: {format_duration(longest)} of data missing from {at} (at most "
                f"{format_duration(max_gap_s)} is filled in)"
            )
        pos = np.arange(grid.size)
        grid[missing] = np.interp(pos[missing], pos[~missing], grid[~missing])
    return pd.Timestamp(t0, unit="s", tz="UTC"), grid
