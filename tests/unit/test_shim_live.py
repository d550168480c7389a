"""The load predictor's live accuracy (scheduler_shim.live): forecasts matched with the
observation one horizon later, 1 − WAPE over a rolling window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.train_load.core import TARGETS
from scheduler_shim.config import load_config
from scheduler_shim.live import RESOURCES, LiveAccuracy

NAN = float("nan")


def arr(*v: float) -> np.ndarray:
    return np.array(v, dtype=np.float64)


def step(live: LiveAccuracy, t: float, names, cpu_obs, cpu_fc, mem_obs=None, mem_fc=None):
    observed = {"cpu": arr(*cpu_obs), "memory": arr(*(mem_obs or cpu_obs))}
    forecast = {"cpu": arr(*cpu_fc), "memory": arr(*(mem_fc or cpu_fc))}
    return live.observe(t, names, observed, forecast)


def test_the_default_gates_are_the_registry_gates_targets() -> None:
    targets = {t.metric: t.value for t in TARGETS}
    config = load_config(None)
    assert config.accuracy_gate_cpu == targets["load_cpu_accuracy"]
    assert config.accuracy_gate_memory == targets["load_mem_accuracy"]
    assert config.load_horizon_s == 300.0
    assert set(RESOURCES) == {"cpu", "memory"}


def test_exact_wape_on_a_hand_computed_example() -> None:
    live = LiveAccuracy(horizon_s=300, window_s=3600)
    # t=0: forecasts for t=300; t=300: the observation (and new forecasts)
    step(live, 0, ["a", "b"], [0.1, 0.1], [0.50, 0.20], [0.3, 0.3], [0.40, 0.60])
    figs = step(live, 300, ["a", "b"], [0.40, 0.25], [0.9, 0.9], [0.50, 0.50], [0.9, 0.9])
    # cpu: |0.50 − 0.40| + |0.20 − 0.25| = 0.15 over 0.65 → 1 − 0.15/0.65
    assert figs["cpu"].accuracy == pytest.approx(1 - 0.15 / 0.65, abs=1e-12)
    assert figs["cpu"].pairs == 2
    # memory: |0.40 − 0.50| + |0.60 − 0.50| = 0.20 over 1.00
    assert figs["memory"].accuracy == pytest.approx(0.8, abs=1e-12)
    assert figs["memory"].pairs == 2


@pytest.mark.parametrize(
    ("refreshes", "cpu_pairs", "cpu_accuracy"),
    [
        pytest.param([(0, ["a"], [0.5], [0.5])], 0, NAN, id="no-pairs-yet"),
        pytest.param(
            [(0, ["a"], [0.5], [0.5]), (299, ["a"], [0.5], [0.5])], 0, NAN, id="before-horizon"
        ),
        pytest.param(
            # forecasts at 0 are matched at 330, the first refresh at or after 300
            [(0, ["a"], [0.1], [0.4]), (200, ["a"], [0.9], [0.9]), (330, ["a"], [0.5], [0.5])],
            1,
            1 - 0.1 / 0.5,
            id="first-refresh-at-or-after",
        ),
        pytest.param(
            [(0, ["a", "b"], [0.1, 0.1], [0.4, NAN]), (300, ["a", "b"], [0.5, 0.5], [0.5, 0.5])],
            1,
            1 - 0.1 / 0.5,
            id="nan-forecast-skipped",
        ),
        pytest.param(
            [(0, ["a", "b"], [0.1, 0.1], [0.4, 0.4]), (300, ["a", "b"], [NAN, 0.5], [0.5, 0.5])],
            1,
            1 - 0.1 / 0.5,
            id="nan-observation-skipped",
        ),
        pytest.param(
            # b left, c joined: only a is in both refreshes
            [(0, ["a", "b"], [0.1, 0.1], [0.4, 0.9]), (300, ["c", "a"], [0.2, 0.5], [0.5, 0.5])],
            1,
            1 - 0.1 / 0.5,
            id="node-set-changes",
        ),
        pytest.param(
            [(0, ["a"], [0.1], [NAN]), (300, ["a"], [0.5], [0.5])],
            0,
            NAN,
            id="load-model-gave-nothing",
        ),
        pytest.param(
            [(0, ["a"], [0.1], [0.1]), (300, ["a"], [0.0], [0.0])],
            1,
            NAN,
            id="all-observed-zero",
        ),
        pytest.param(
            # the pair matched at 300 leaves the 1 h window by 4000; the one at 3900 stays
            [
                (0, ["a"], [0.1], [0.9]),
                (300, ["a"], [0.5], [NAN]),
                (3600, ["a"], [0.5], [0.4]),
                (3900, ["a"], [0.5], [0.5]),
                (4000, ["a"], [0.5], [0.5]),
            ],
            1,
            1 - 0.1 / 0.5,
            id="window-drops-old-pairs",
        ),
        pytest.param(
            # no refresh between 300 and 1000: the forecast made at 0 is more than a
            # horizon late by then, and is dropped rather than scored on another time
            [(0, ["a"], [0.1], [0.9]), (1000, ["a"], [0.5], [0.5])],
            0,
            NAN,
            id="too-late-to-score",
        ),
        pytest.param(
            [(0, ["a"], [0.1], [0.4]), (600, ["a"], [0.5], [0.5])],
            1,
            1 - 0.1 / 0.5,
            id="late-by-at-most-a-horizon",
        ),
        pytest.param(
            # a new replay on the same extender: the clock goes back, nothing carries over
            [(5000, ["a"], [0.1], [0.9]), (100, ["a"], [0.5], [0.5]), (400, ["a"], [0.5], [0.5])],
            1,
            1.0,
            id="clock-goes-back",
        ),
    ],
)
def test_matching(refreshes, cpu_pairs: int, cpu_accuracy: float) -> None:
    live = LiveAccuracy(horizon_s=300, window_s=3600)
    figs = None
    for t, names, observed, forecast in refreshes:
        figs = step(live, t, names, observed, forecast)
    assert figs["cpu"].pairs == cpu_pairs
    if math.isnan(cpu_accuracy):
        assert math.isnan(figs["cpu"].accuracy)
    else:
        assert figs["cpu"].accuracy == pytest.approx(cpu_accuracy, abs=1e-12)


def test_the_window_pools_pairs_over_refreshes() -> None:
    live = LiveAccuracy(horizon_s=60, window_s=3600)
    step(live, 0, ["a"], [0.5], [0.6])
    step(live, 60, ["a"], [0.5], [0.2])  # pair 1: |0.6 − 0.5|
    figs = step(live, 120, ["a"], [0.3], [0.3])  # pair 2: |0.2 − 0.3|
    assert figs["cpu"].pairs == 2
    assert figs["cpu"].accuracy == pytest.approx(1 - 0.2 / 0.8, abs=1e-12)


@pytest.mark.parametrize(("horizon", "window"), [(0, 10), (10, 0), (-1, 10)])
def test_bad_parameters_are_refused(horizon: float, window: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        LiveAccuracy(horizon, window)
