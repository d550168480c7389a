"""Scoring the whole forecast procedure on held-out origins, beside seasonal-naive
forecasts computed from the same histories.

For each origin, :func:`~monitoring.forecast.forecaster.forecast_values` sees only the
values before it (it chooses its model and sizes its intervals on that past alone); the
next ``h`` values are the truth. Figures pool all origins: WAPE = Σ|e| / Σ|y| over every
scored step, interval coverage over every step, MASE averaged over origins (each scaled by
its own history's same-time-yesterday error).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monitoring.forecast.errors import format_duration
from monitoring.forecast.forecaster import ForecastSettings, forecast_values, min_history_s
from monitoring.forecast.metrics import coverage, mase, mase_scale, wape
from monitoring.forecast.models import BASE_MODELS
from monitoring.forecast.series import DAY_S

__all__ = ["Evaluation", "OriginScore", "evaluate_origins", "held_out_origins"]

NAIVES = ("naive_day", "naive_week")


@dataclass(frozen=True)
class OriginScore:
    """One origin's forecast, the naive ones and the truth.

    Attributes:
        origin: steps into the series.
        model: the candidate the forecast chose.
        actual: the next h values.
        forecast: the point forecast.
        naive: baseline name -> its forecast (``naive_week`` only with a week of history).
        bounds: level -> (lo, hi).
        scale: the MASE scale of the history.
    """

    origin: int
    model: str
    actual: np.ndarray
    forecast: np.ndarray
    naive: dict[str, np.ndarray]
    bounds: dict[int, tuple[np.ndarray, np.ndarray]]
    scale: float


def held_out_origins(
    n: int,
    step_s: float,
    horizon_s: float,
    *,
    test_share: float,
    stride_s: float,
    max_origins: int | None,
    settings: ForecastSettings | None = None,
) -> tuple[list[int], str]:
    """Origins for a rolling-origin evaluation, and a sentence saying how they were chosen.

    Origins step back from the last one that leaves a full horizon (``n − h``) every
    ``stride_s``. They stay inside the held-out last ``test_share`` of the series when
    the horizon fits in it; a longer horizon gets the latest ``max_origins`` (default 1).
    None when the series is shorter than the horizon plus :func:`min_history_s`: the
    sentence then says what would be needed.
    """
    h = math.ceil(horizon_s / step_s - 1e-9)
    need = min_history_s(horizon_s, step_s, settings)
    need_steps = math.ceil(need / step_s)
    have = n * step_s
    if n - h < need_steps:
        return [], (
            f"not scored: needs {format_duration(need)} of history plus the "
            f"{format_duration(horizon_s)} horizon = {format_duration(need + h * step_s)}; "
            f"the series has {format_duration(have)}"
        )
    stride = max(1, round(stride_s / step_s))
    test0 = n - round(test_share * n)
    latest = n - h
    inside = latest >= test0
    cap = max_origins if max_origins is not None else (None if inside else 1)
    origins: list[int] = []
    o = latest
    while o >= need_steps and (not inside or o >= test0):
        origins.append(o)
        if cap is not None and len(origins) >= cap:
            break
        o -= stride
    where = f"last {test_share:.0%}" if inside else "latest possible"
    return sorted(origins), f"{len(origins)} × {format_duration(stride * step_s)}, {where}"


def evaluate_origins(
    y: np.ndarray,
    step_s: float,
    horizon_s: float,
    origins: list[int],
    settings: ForecastSettings | None = None,
    *,
    name: str = "series",
    on_origin: Callable[[int, int], None] | None = None,
) -> list[OriginScore]:
    """Forecast from each origin with the procedure and the seasonal naives."""
    h = math.ceil(horizon_s / step_s - 1e-9)
    per_day = round(DAY_S / step_s)
    out = []
    for i, o in enumerate(origins):
        past = y[:o]
        res = forecast_values(past, horizon_s, step_s, settings, name=name)
        naive = {
            nv: BASE_MODELS[nv].forecast(past, h, step_s)
            for nv in NAIVES
            if BASE_MODELS[nv].min_history_s() <= o * step_s
        }
        out.append(
            OriginScore(
                o,
                res.model,
                y[o : o + h],
                res.mean,
                naive,
                res.bounds,
                mase_scale(past, per_day),
            )
        )
        if on_origin is not None:
            on_origin(i + 1, len(origins))
    return out


@dataclass(frozen=True)
class Evaluation:
    """Pooled figures over the origins.

    Attributes:
        origins: how many.
        models: chosen candidate -> how often.
        wape: ``model`` and each naive -> pooled WAPE.
        best_naive: the naive with the lower WAPE.
        ratio: the model's WAPE / the best naive's.
        mase: ``model`` and each naive -> mean MASE.
        coverage: level -> the share of actual values inside the interval.
        points: the number of scored steps.
    """

    origins: int
    models: dict[str, int]
    wape: dict[str, float]
    best_naive: str
    ratio: float
    mase: dict[str, float]
    coverage: dict[int, float]
    points: int = 0

    @classmethod
    def of(cls, scores: list[OriginScore]) -> Evaluation:
        """Pool the scores (naives scored only where every origin has them)."""
        actual = np.concatenate([s.actual for s in scores])
        methods = {"model": [s.forecast for s in scores]}
        for nv in NAIVES:
            if all(nv in s.naive for s in scores):
                methods[nv] = [s.naive[nv] for s in scores]
        w = {m: wape(actual, np.concatenate(f)) for m, f in methods.items()}
        ms = {
            m: float(np.mean([mase(s.actual, f, s.scale) for s, f in zip(scores, fs, strict=True)]))
            for m, fs in methods.items()
        }
        naives = [m for m in methods if m != "model"]
        best = min(naives, key=lambda m: w[m])
        levels = scores[0].bounds.keys()
        cov = {
            lv: coverage(
                actual,
                np.concatenate([s.bounds[lv][0] for s in scores]),
                np.concatenate([s.bounds[lv][1] for s in scores]),
            )
            for lv in levels
        }
        return cls(
            len(scores),
            dict(Counter(s.model for s in scores)),
            w,
            best,
            w["model"] / w[best],
            ms,
            cov,
            int(actual.size),
        )
