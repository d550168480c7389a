"""The baseline schedulers and a registry that builds one by name.

Each baseline is a small pure scoring function (formula in its docstring) wired into a
:class:`~simulator.types.FrameworkScheduler`; see README.md in this folder.

Example:
    >>> from simulator.schedulers import make_scheduler
    >>> make_scheduler("tlp", target_utilization=40).target_utilization
    40
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hydatis.errors import ConfigError
from simulator.schedulers.crane import CraneScheduler
from simulator.schedulers.default import DefaultScheduler
from simulator.schedulers.koordinator import KoordinatorScheduler
from simulator.schedulers.random_ import RandomScheduler
from simulator.schedulers.trimaran import (
    LoadVariationRiskBalancingScheduler,
    TargetLoadPackingScheduler,
)
from simulator.types import Scheduler

__all__ = [
    "BASELINES",
    "ML_VARIANTS",
    "SCHEDULERS",
    "CraneScheduler",
    "DefaultScheduler",
    "KoordinatorScheduler",
    "LoadVariationRiskBalancingScheduler",
    "RandomScheduler",
    "TargetLoadPackingScheduler",
    "make_scheduler",
]

BASELINES = ("random", "default", "tlp", "lvrb", "koordinator", "crane")
#: The ML scheduler and its ablations: the same kube-scheduler + extender, each name
#: served by an extender configured to use only some of its parts (``cli/ml_stack.py``
#: ``ML_VARIANTS`` holds their settings): the load predictor's part alone, the placement
#: agent alone, the anomaly detector alone, all three without metric-lag compensation.
ML_VARIANTS = ("ml", "ml-load", "ml-agent", "ml-anomaly", "ml-nolag")
#: Every scheduler the simulator builds by name: the baselines and the ML scheduler.
SCHEDULERS = (*BASELINES, *ML_VARIANTS)


def _ml_scheduler(**params: Any) -> Scheduler:
    """The ML scheduler (kube-scheduler + the HTTP extender); imported on use because
    ``simulator.extender`` builds on this package's ``default``."""
    from simulator.extender import ExtenderScheduler

    return ExtenderScheduler(**params)


_REGISTRY: dict[str, Callable[..., Scheduler]] = {
    "random": RandomScheduler,
    "default": DefaultScheduler,
    "tlp": TargetLoadPackingScheduler,
    "lvrb": LoadVariationRiskBalancingScheduler,
    "koordinator": KoordinatorScheduler,
    "crane": CraneScheduler,
    **dict.fromkeys(ML_VARIANTS, _ml_scheduler),
}


def make_scheduler(name: str, **params: Any) -> Scheduler:
    """Build the scheduler registered as ``name``.

    Args:
        name: one of :data:`SCHEDULERS` (``ml`` and its variants need ``url=``, the
            extender's address).
        **params: the scheduler's keyword parameters (its constructor's defaults otherwise).

    Returns:
        A new, un-reset scheduler (call ``reset(seed)`` before ``select``).

    Raises:
        ConfigError: ``name`` is not a baseline, or a parameter is not one it takes.
    """
    try:
        cls = _REGISTRY[name]
    except KeyError:
        valid = ", ".join(SCHEDULERS)
        raise ConfigError(f"unknown scheduler '{name}'; valid ones: {valid}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"scheduler '{name}': {exc}") from exc
