"""Rolling-origin backtests: fit on everything before an origin, forecast the next h steps,
compare with what happened, for several origins.

The same routine chooses the model inside every forecast (windows before the forecast's
own origin) and scores the whole procedure in ``benchmarks/forecast.py`` (origins in the
held-out part of a trace): a window never sees data after its origin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from monitoring.forecast.models import BASE_MODELS, BaseModel

__all__ = ["BaseBacktest", "backtest_base", "window_origins"]


def window_origins(n: int, h: int, stride: int, count: int, min_train: int) -> list[int]:
    """Up to ``count`` origins, the latest first at ``n − h``, every ``stride`` steps back,
    none with less than ``min_train`` steps before it; returned in time order."""
    out = [n - h - j * stride for j in range(count)]
    return sorted(o for o in out if o >= min_train)


@dataclass(frozen=True)
class BaseBacktest:
    """Base-model forecasts at each origin.

    Attributes:
        origins: the origins (steps into the series).
        h: steps forecast from each.
        actual: (origins, h) what happened.
        forecasts: base model -> (origins, h) forecasts.
    """

    origins: list[int]
    h: int
    actual: np.ndarray
    forecasts: dict[str, np.ndarray]


def backtest_base(
    y: np.ndarray,
    models: Sequence[str],
    h: int,
    step_s: float,
    origins: Sequence[int],
    *,
    registry: dict[str, BaseModel] | None = None,
    on_window: Callable[[int, int], None] | None = None,
) -> BaseBacktest:
    """Forecast ``h`` steps from each origin with each base model.

    Args:
        y: the series.
        models: base model names (keys of ``registry``).
        h: steps to forecast (each origin + h must be ≤ len(y)).
        step_s: the series' step.
        origins: where each window's history ends.
        registry: name -> model (default :data:`~monitoring.forecast.models.BASE_MODELS`).
        on_window: called with (done, total) after each origin.
    """
    registry = registry or BASE_MODELS
    origins = list(origins)
    actual = np.stack([y[o : o + h] for o in origins]) if origins else np.zeros((0, h))
    out = {m: np.empty((len(origins), h)) for m in models}
    for i, o in enumerate(origins):
        for m in models:
            out[m][i] = registry[m].forecast(y[:o], h, step_s)
        if on_window is not None:
            on_window(i + 1, len(origins))
    return BaseBacktest(origins, h, actual, out)
