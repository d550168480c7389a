"""Prediction intervals from backtest errors (split-conformal, by horizon bucket).

Why not the models' own intervals: a seasonal naive has none worth the name, a mean of
two models has none at all, and MSTL's come from the trend model's residuals alone, so
they ignore how much the daily and weekly cycles themselves change. The errors the
backtest already made at each lead time are the honest measure: for lead times in
bucket b, the interval at level L is

    [ŷ + q_b((1 − L)/2),  ŷ + q_b((1 + L)/2)]

where q_b are quantiles of the signed errors (actual − forecast) of the backtest windows
in that bucket, at levels widened by the finite-sample factor (n + 1)/n. Signed
quantiles keep a model's bias out of the coverage; buckets let the interval widen with
the lead time without needing many windows for every single step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_BUCKETS", "Conformal", "calibrate"]

DEFAULT_BUCKETS = 8


@dataclass(frozen=True)
class Conformal:
    """Error quantiles per lead time.

    Attributes:
        levels: the interval levels, percent.
        lower: level -> the lower error quantile at each lead time (≤ 0 usually).
        upper: level -> the upper error quantile at each lead time.
        samples: errors per bucket it was calibrated on.
    """

    levels: tuple[int, ...]
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    samples: int

    def bounds(self, mean: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """level -> (lo, hi) around ``mean`` (as long as the calibration's horizon)."""
        h = mean.size
        return {lv: (mean + self.lower[lv][:h], mean + self.upper[lv][:h]) for lv in self.levels}


def calibrate(
    errors: np.ndarray, levels: tuple[int, ...], buckets: int = DEFAULT_BUCKETS
) -> Conformal:
    """Error quantiles per lead-time bucket.

    Args:
        errors: (windows, h) signed errors, actual − forecast.
        levels: interval levels in percent, e.g. (80, 95).
        buckets: lead-time buckets (equal widths; fewer when h is smaller).

    Returns:
        The calibration, one value per lead time.
    """
    errors = np.atleast_2d(np.asarray(errors, dtype="float64"))
    h = errors.shape[1]
    edges = np.linspace(0, h, min(buckets, h) + 1).round().astype(int)
    lower = {lv: np.empty(h) for lv in levels}
    upper = {lv: np.empty(h) for lv in levels}
    windows = errors.shape[0]
    n = windows * int(np.diff(edges).min())
    for a, b in itertools.pairwise(edges):
        e = errors[:, a:b].ravel()
        for lv in levels:
            alpha = 1 - lv / 100
            widen = min(1.0, (1 - alpha) * (windows + 1) / windows)
            lo_q, hi_q = (1 - widen) / 2, 1 - (1 - widen) / 2
            lower[lv][a:b] = np.quantile(e, lo_q)
            upper[lv][a:b] = np.quantile(e, hi_q)
    return Conformal(tuple(levels), lower, upper, n)
