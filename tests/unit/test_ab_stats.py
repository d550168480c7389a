"""The A/B test's statistics: outcomes per placement, matched windows, the always-valid
decision (promote only when the challenger is better at the stated confidence)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hydatis.errors import ConfigError
from operations._ab_stats import decide, matched_windows, msprt_interval, placement_outcomes


def _windows(mean_diff: float, sd: float, n: int, seed: int, base: float = 0.03):
    rng = np.random.default_rng(seed)
    champion = base + rng.normal(0.0, 0.004, n)
    challenger = champion - mean_diff + rng.normal(0.0, sd, n)
    return champion, challenger


@pytest.mark.parametrize(
    ("mean_diff", "n", "max_windows", "expected"),
    [
        (0.01, 30, None, "promote"),
        (-0.01, 30, None, "keep"),
        (0.0, 30, None, "undecided"),
        (0.0, 30, 30, "keep"),
        (0.01, 5, None, "undecided"),
        (0.01, 0, None, "undecided"),
    ],
    ids=[
        "known-better-promoted",
        "known-worse-kept",
        "known-equal-not-promoted",
        "known-equal-at-planned-end-kept",
        "too-few-windows-undecided",
        "no-windows-undecided",
    ],
)
def test_decision_table(mean_diff, n, max_windows, expected):
    champion, challenger = _windows(mean_diff, 0.004, n, seed=3)
    v = decide(champion, challenger, min_windows=8, max_windows=max_windows)
    assert v.decision == expected, v.reason
    assert v.windows == n


def test_known_better_interval_above_zero_and_improvement_positive():
    champion, challenger = _windows(0.01, 0.004, 30, seed=1)
    v = decide(champion, challenger)
    assert v.low > 0 and v.mean_diff > 0
    assert v.improvement > 0
    assert v.challenger_objective < v.champion_objective


def test_equal_arms_promoted_rarely_even_when_looked_at_after_every_window():
    """Always valid: checking after each window (8..40) of 300 equal-arm tests promotes
    in at most the 5 % the confidence allows."""
    promoted = 0
    for seed in range(300):
        champion, challenger = _windows(0.0, 0.004, 40, seed=seed)
        if any(decide(champion[:k], challenger[:k]).decision == "promote" for k in range(8, 41)):
            promoted += 1
    assert promoted / 300 <= 0.05


def test_a_point_estimate_alone_does_not_promote():
    """Better on average over the windows, but noisy: no promotion."""
    champion, challenger = _windows(0.001, 0.02, 10, seed=5)
    v = decide(champion, challenger)
    assert v.mean_diff > 0
    assert v.decision != "promote"


def test_identical_arms_zero_variance_are_not_promoted():
    x = np.full(20, 0.02)
    v = decide(x, x.copy())
    assert v.decision == "undecided"
    assert v.low <= 0 <= v.high


def test_interval_narrows_with_more_windows():
    champion, challenger = _windows(0.005, 0.004, 200, seed=2)
    widths = [np.diff(msprt_interval(champion[:k] - challenger[:k])[1:])[0] for k in (10, 50, 200)]
    assert widths[0] > widths[1] > widths[2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"confidence": 1.0}, "confidence"),
        ({"min_windows": 1}, "min_windows"),
    ],
    ids=["confidence-one", "min-windows-one"],
)
def test_bad_settings_named(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        decide(np.zeros(10), np.zeros(10), **kwargs)


def test_mismatched_windows_named():
    with pytest.raises(ConfigError, match="differ"):
        decide(np.zeros(10), np.zeros(9))


def test_placement_outcome_is_excess_on_its_node_after_placement():
    times = np.array([0.0, 60.0, 120.0, 180.0])
    cpu = np.array([[0.9, 0.1], [0.75, 0.2], [0.85, 0.3], [0.65, 0.95]])
    out = placement_outcomes(
        times, cpu, np.array([0.0, 0.0, 120.0, 180.0]), np.array([0, 1, 1, 0]), horizon_s=120.0
    )
    # node 0 after t=0: samples at 60, 120 -> (0.10 + 0.20) / 2
    assert out[0] == pytest.approx(0.15)
    assert out[1] == pytest.approx(0.0)
    assert out[2] == pytest.approx(0.30)  # node 1 at 180: 0.95 - 0.65
    assert math.isnan(out[3])  # nothing after the last sample


@pytest.mark.parametrize(
    ("cpu", "nodes", "match"),
    [
        (np.zeros((3, 2)), np.array([0]), "shape"),
        (np.zeros((4, 2)), np.array([2]), "node index"),
    ],
    ids=["rows-not-times", "node-out-of-range"],
)
def test_placement_outcome_bad_input_named(cpu, nodes, match):
    with pytest.raises(ConfigError, match=match):
        placement_outcomes(np.arange(4.0), cpu, np.zeros(nodes.size), nodes)


def test_matched_windows_need_both_arms():
    t = np.array([0, 10, 20, 30, 1300, 1310, 1320, 2500, 2510])
    y = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    chal = np.array([0, 0, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    w = matched_windows(t, y, chal, window_s=1200.0, min_per_arm=2)
    assert w["start"].tolist() == [0.0]  # window 1 has no challenger, window 2 one each
    assert w["champion"][0] == pytest.approx(0.15)
    assert w["challenger"][0] == pytest.approx(0.35)
    assert w["n_champion"].tolist() == [2] and w["n_challenger"].tolist() == [2]
