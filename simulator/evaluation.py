"""Figures across seeds: means with confidence intervals and paired differences.

A placement comparison runs every scheduler on the same workload with the same seed, so
two schedulers' figures for one seed form a pair. Across seeds the pairs are independent
draws (another node sample, other workload copies, other usage offsets); the interval of
the mean paired difference is a Student-t interval over them. That interval, not a
point estimate, says whether one scheduler beats another: "better" needs the whole
interval on the right side of zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Estimate", "mean_ci", "paired_difference", "paired_ratio"]


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its two-sided confidence interval.

    Attributes:
        mean: the mean over the finite values.
        low, high: the interval's bounds (NaN with fewer than two values).
        n: how many values it rests on.
    """

    mean: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        """Whether the whole interval lies on one side of zero."""
        return bool(self.n >= 2 and (self.low > 0 or self.high < 0))

    def above(self, value: float) -> bool:
        """Whether the whole interval lies above ``value``."""
        return bool(self.n >= 2 and self.low > value)

    def below(self, value: float) -> bool:
        """Whether the whole interval lies below ``value``."""
        return bool(self.n >= 2 and self.high < value)

    def text(self, fmt: str = "{:.4f}", scale: float = 1.0) -> str:
        """``mean [low, high]`` (just the mean with fewer than two values)."""
        m = fmt.format(self.mean * scale)
        if self.n < 2 or not math.isfinite(self.low):
            return m
        return f"{m} [{fmt.format(self.low * scale)}, {fmt.format(self.high * scale)}]"


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Estimate:
    """The mean of ``values`` (NaNs dropped) with a Student-t interval.

    Raises:
        ValueError: ``confidence`` is not in (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sem
    return Estimate(mean, mean - half, mean + half, n)


def _pairs(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
    seeds = sorted(set(a) & set(b))
    x = np.array([a[s] for s in seeds], dtype=np.float64)
    y = np.array([b[s] for s in seeds], dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95
) -> Estimate:
    """Mean of ``a[seed] − b[seed]`` over the seeds both have, with its interval."""
    x, y = _pairs(a, b)
    return mean_ci(x - y, confidence)


def paired_ratio(
    a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95
) -> Estimate:
    """Mean of ``a[seed] / b[seed]`` over the seeds both have (pairs where ``b`` is 0
    are left out), with its interval."""
    x, y = _pairs(a, b)
    keep = y != 0
    return mean_ci(x[keep] / y[keep], confidence)
