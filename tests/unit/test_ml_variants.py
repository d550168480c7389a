"""The ML scheduler's ablations: names the simulator accepts, each an extender setting."""

from __future__ import annotations

import pytest

from cli.ml_stack import ML_VARIANTS as SETTINGS
from cli.ml_stack import SHIM_SETTINGS
from scheduler_shim.config import ShimConfig
from simulator.extender import ExtenderScheduler
from simulator.schedulers import ML_VARIANTS, SCHEDULERS, make_scheduler


def test_every_variant_has_extender_settings_and_a_scheduler_name() -> None:
    assert set(SETTINGS) == set(ML_VARIANTS)
    assert set(ML_VARIANTS) <= set(SCHEDULERS)


@pytest.mark.parametrize("name", ML_VARIANTS)
def test_variant_settings_are_valid_extender_settings(name: str) -> None:
    config = ShimConfig(**{**SHIM_SETTINGS, **SETTINGS[name]})
    w = config.weights
    if name == "ml-load":
        assert (w.agent, w.anomaly, config.filter_anomalous) == (0.0, 0.0, False)
    if name == "ml-agent":
        assert (w.load, w.anomaly, config.filter_hot, config.filter_anomalous) == (
            0.0,
            0.0,
            False,
            False,
        )
    if name == "ml-anomaly":
        assert (w.load, w.agent, config.filter_hot, config.filter_anomalous) == (
            0.0,
            0.0,
            False,
            True,
        )
    assert config.lag_compensation == (name != "ml-nolag")


@pytest.mark.parametrize("name", ML_VARIANTS)
def test_variant_names_build_the_extender_scheduler(name: str) -> None:
    sched = make_scheduler(name, url="http://127.0.0.1:1", push_state=False)
    assert isinstance(sched, ExtenderScheduler)
