"""Means with confidence intervals and paired differences across seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.evaluation import Estimate, mean_ci, paired_difference, paired_ratio


def test_mean_ci_matches_the_student_t_interval() -> None:
    est = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sd sqrt(2.5), t(0.975, 4) = 2.7764451
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)
    assert est.mean == pytest.approx(3.0)
    assert (est.low, est.high) == pytest.approx((3.0 - half, 3.0 + half), abs=1e-6)
    assert est.n == 5


@pytest.mark.parametrize(
    ("values", "n", "finite_interval"),
    [
        ([], 0, False),
        ([0.4], 1, False),
        ([0.4, math.nan, 0.6], 2, True),
        ([0.5, 0.5, 0.5], 3, True),
    ],
    ids=["empty", "one-value", "nan-dropped", "no-spread"],
)
def test_mean_ci_edge_cases(values: list[float], n: int, finite_interval: bool) -> None:
    est = mean_ci(values)
    assert est.n == n
    assert math.isfinite(est.low) == finite_interval
    assert not (n < 2 and est.excludes_zero())


def test_mean_ci_rejects_a_bad_confidence() -> None:
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=1.5)


@pytest.mark.parametrize(
    ("a", "b", "better", "worse"),
    [
        ({0: 0.02, 1: 0.03, 2: 0.025}, {0: 0.04, 1: 0.05, 2: 0.045}, True, False),
        ({0: 0.04, 1: 0.05, 2: 0.045}, {0: 0.02, 1: 0.03, 2: 0.025}, False, True),
        ({0: 0.02, 1: 0.05, 2: 0.03}, {0: 0.03, 1: 0.04, 2: 0.03}, False, False),
    ],
    ids=["a-lower-every-seed", "a-higher-every-seed", "mixed"],
)
def test_paired_difference_says_better_only_when_the_interval_says_so(
    a: dict[int, float], b: dict[int, float], better: bool, worse: bool
) -> None:
    d = paired_difference(a, b)
    assert d.below(0.0) == better
    assert d.above(0.0) == worse


def test_pairs_use_only_the_seeds_both_have() -> None:
    d = paired_difference({0: 1.0, 1: 2.0, 2: 9.0}, {0: 0.5, 1: 1.5, 3: 0.0})
    assert d.n == 2 and d.mean == pytest.approx(0.5)


def test_paired_ratio_skips_zero_denominators() -> None:
    r = paired_ratio({0: 1.0, 1: 2.0, 2: 3.0}, {0: 2.0, 1: 4.0, 2: 0.0})
    assert r.n == 2 and r.mean == pytest.approx(0.5) and r.low == pytest.approx(0.5)


def test_estimate_text() -> None:
    assert Estimate(0.5, 0.4, 0.6, 3).text("{:.1f}", 100.0) == "50.0 [40.0, 60.0]"
    assert Estimate(0.5, math.nan, math.nan, 1).text("{:.2f}") == "0.50"
    assert np.isnan(mean_ci([math.nan]).mean)
