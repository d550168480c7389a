"""Unit tests of the capacity forecast's core: horizons, the regular grid, the models,
the backtest-chosen forecast, its intervals, the metrics and the node count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.forecast import (
    CANDIDATES,
    DemandSeries,
    Evaluation,
    ForecastSettings,
    HistoryTooShortError,
    capacity_need,
    evaluate_origins,
    forecast_series,
    forecast_values,
    held_out_origins,
    min_history_s,
    nodes_for,
    parse_horizon,
    regular_series,
)
from monitoring.forecast.errors import ForecastInputError
from monitoring.forecast.intervals import calibrate
from monitoring.forecast.metrics import coverage, mase, mase_scale, wape
from monitoring.forecast.models import BASE_MODELS, _coarse_factor, members

DAY = 86400.0


def seasonal(
    days: float, step_s: float = 3600.0, *, seed: int = 0, noise: float = 0.02, weekly: float = 0.1
):
    """A demand series with a daily and a weekly cycle plus Gaussian noise, and its
    noise-free truth."""
    t = np.arange(int(days * DAY / step_s)) * step_s
    truth = 10.0 * (
        1 + 0.3 * np.sin(2 * np.pi * t / DAY) + weekly * np.sin(2 * np.pi * t / (7 * DAY))
    )
    rng = np.random.default_rng(seed)
    return truth + rng.normal(0, noise * 10.0, t.size), truth


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h", DAY),
        ("7d", 7 * DAY),
        ("30d", 30 * DAY),
        ("90m", 5400.0),
        ("2w", 14 * DAY),
        (" 1.5 h ", 5400.0),
        ("3600", 3600.0),
        (3600, 3600.0),
    ],
    ids=["24h", "7d", "30d", "minutes", "weeks", "spaces-decimal", "bare-seconds", "number"],
)
def test_parse_horizon(text, seconds):
    assert parse_horizon(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "-1h", "0d", "1y"], ids=lambda t: t or "empty")
def test_parse_horizon_rejects(text):
    with pytest.raises(ForecastInputError, match="horizon"):
        parse_horizon(text)


def test_regular_series_fills_a_short_gap():
    ts = np.array([0, 300, 600, 1500, 1800], dtype=float)  # 900 and 1200 missing
    start, v = regular_series(ts, np.array([1, 2, 3, 6, 7.0]), 300, name="x")
    assert start == pd.Timestamp(0, unit="s", tz="UTC")
    np.testing.assert_allclose(v, [1, 2, 3, 4, 5, 6, 7])


def test_regular_series_names_a_long_gap():
    ts = np.concatenate([np.arange(10) * 300.0, 10 * 300.0 + 7200 + np.arange(10) * 300.0])
    with pytest.raises(
        ForecastInputError, match=r"x: 2 h of data missing from 1970-01-01 00:50:00"
    ):
        regular_series(ts, np.ones(ts.size), 300, name="x")
    start, v = regular_series(ts, np.ones(ts.size), 300, name="x", keep_after_gap=True)
    assert v.size == 10 and start == pd.Timestamp(ts[10], unit="s", tz="UTC")


def test_regular_series_rejects_no_samples():
    with pytest.raises(ForecastInputError, match="no samples"):
        regular_series(np.array([0.0]), np.array([np.nan]), 300, name="x")


@pytest.mark.parametrize("step", [0.0, 7.0, 1000.0, 90.5], ids=["zero", "7s", "1000s", "fraction"])
def test_steps_must_divide_a_day(step):
    with pytest.raises(ForecastInputError, match="does not divide a day"):
        DemandSeries("c", "cpu", "cores", pd.Timestamp(0, tz="UTC"), step, np.ones(10))


def test_demand_series_rejects_nan():
    with pytest.raises(ForecastInputError, match=r"value 2 .* is not finite"):
        DemandSeries("c", "cpu", "cores", pd.Timestamp(0, tz="UTC"), 300, np.array([1, 2, np.nan]))


@pytest.mark.parametrize(
    ("horizon", "days"), [(DAY, 4), (7 * DAY, 16), (30 * DAY, 62)], ids=["24h", "7d", "30d"]
)
def test_min_history(horizon, days):
    assert min_history_s(horizon, 300) == days * DAY


def test_too_short_history_names_the_minimum():
    y, _ = seasonal(3.0)
    with pytest.raises(HistoryTooShortError) as info:
        forecast_values(y, DAY, 3600, name="cluster cpu")
    err = info.value
    assert err.minimum_s == 4 * DAY and err.got_s == 3 * DAY
    assert "cluster cpu: a 1 d forecast needs at least 4 d of history" in str(err)
    assert "got 3 d" in str(err)


def test_forecast_follows_the_cycles_and_intervals_nest():
    y, truth = seasonal(16.0, seed=1)
    past, fut = y[: 15 * 24], truth[15 * 24 :]
    res = forecast_values(past, DAY, 3600)
    assert res.mean.shape == (24,)
    assert wape(fut, res.mean) < 0.03
    assert all(c in CANDIDATES for c in res.model.split(" & "))
    lo80, hi80 = res.bounds[80]
    lo95, hi95 = res.bounds[95]
    assert np.all(lo95 <= lo80) and np.all(lo80 <= res.mean) and np.all(res.mean <= hi80)
    assert np.all(hi80 <= hi95)
    assert res.windows == 14


def test_forecast_is_deterministic():
    y, _ = seasonal(12.0, seed=2)
    a = forecast_values(y, DAY, 3600)
    b = forecast_values(y, DAY, 3600)
    assert a.model == b.model
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.bounds[80][1], b.bounds[80][1])


def test_five_minute_steps_use_the_hourly_fit_and_the_fine_profile():
    # A spike at minute 25 of every hour, which hourly means smear out: the residual
    # profile must put it back.
    y, _ = seasonal(9.0, 300, seed=3, noise=0.005)
    spike = (np.arange(y.size) % 12 == 5) * 2.0
    y = y + spike
    res = forecast_values(y[:-288], DAY, 300, ForecastSettings(candidates=("mstl",), windows=3))
    f = res.mean
    height = f[5::12] - (f[4::12] + f[6::12]) / 2
    assert height.mean() == pytest.approx(2.0, abs=0.2)  # hourly means alone give ~0.17
    assert _coarse_factor(300, 3600) == 12 and _coarse_factor(3600, 3600) == 1


def test_forecast_is_never_negative():
    y = np.clip(seasonal(10.0, seed=4, noise=0.2)[0] - 9.0, 0, None)
    res = forecast_values(y, DAY, 3600)
    assert (res.mean >= 0).all() and all((lo >= 0).all() for lo, _ in res.bounds.values())


def test_forecast_series_times_start_after_the_history():
    y, _ = seasonal(6.0)
    s = DemandSeries("c", "cpu", "cores", pd.Timestamp("2024-01-01", tz="UTC"), 3600, y)
    fc = forecast_series(s, DAY)
    assert fc.times[0] == pd.Timestamp("2024-01-07", tz="UTC")
    assert len(fc.times) == 24


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"candidates": ("prophet",)}, "unknown forecast model"),
        ({"candidates": ()}, "no forecast"),
        ({"windows": 2, "min_windows": 3}, "min_windows"),
        ({"levels": (80, 100)}, "levels"),
        ({"top": 0}, "top"),
    ],
    ids=["unknown-model", "no-model", "windows", "level-100", "top-0"],
)
def test_settings_validation(kwargs, match):
    with pytest.raises(ForecastInputError, match=match):
        ForecastSettings(**kwargs)


def test_seasonal_naive_repeats_the_season():
    y = np.arange(48.0)
    out = BASE_MODELS["naive_day"].forecast(y, 30, 3600)
    np.testing.assert_array_equal(out, np.concatenate([y[24:], y[24:30]]))
    assert members(["mstl+naive_day", "naive_day", "mstl"]) == ["mstl", "naive_day"]


def test_conformal_intervals_cover_their_level_on_exchangeable_errors():
    rng = np.random.default_rng(0)
    cal = calibrate(rng.normal(0, 1, (200, 24)), (80, 95))
    new = rng.normal(0, 1, (2000, 24))
    b = cal.bounds(np.zeros(24))
    for lv in (80, 95):
        lo, hi = b[lv]
        assert abs(coverage(new, lo, hi) - lv / 100) < 0.02


def test_conformal_keeps_bias_and_widens_with_lead_time():
    rng = np.random.default_rng(1)
    errors = 1.0 + rng.normal(0, 1, (300, 16)) * np.linspace(0.5, 2, 16)
    cal = calibrate(errors, (80,), buckets=4)
    lo, hi = cal.bounds(np.zeros(16))[80]
    assert ((lo + hi) / 2 > 0.7).all()  # centred on the bias, not on zero
    assert (hi - lo)[-1] > 2 * (hi - lo)[0]


@pytest.mark.parametrize(
    ("actual", "forecast", "expected"),
    [([1, 2, 3], [1, 2, 3], 0.0), ([2, 2], [1, 3], 0.5), ([0, 0], [1, 1], float("nan"))],
    ids=["exact", "half", "zero-actual"],
)
def test_wape(actual, forecast, expected):
    np.testing.assert_equal(round(wape(np.array(actual), np.array(forecast)), 12), expected)


def test_mase_and_coverage():
    assert mase_scale(np.array([1.0, 2, 3, 5]), 2) == 2.5
    assert np.isnan(mase_scale(np.ones(5), 2)) and np.isnan(mase_scale(np.ones(2), 2))
    assert mase(np.array([1.0, 2]), np.array([2.0, 4]), 1.5) == 1.0
    assert coverage(np.array([1, 2, 3, 4]), np.full(4, 1.5), np.full(4, 3.0)) == 0.5


@pytest.mark.parametrize(
    ("demand", "cap", "expected"),
    [
        (np.full(10, 13.0), 10.0, 2),
        (np.full(10, 13.01), 10.0, 3),
        (np.zeros(5), 8.0, 0),
        (np.r_[np.ones(99), 100.0], 1.0, 2),
    ],
    ids=["exact-boundary", "just-over", "no-demand", "spike-above-p95"],
)
def test_nodes_for(demand, cap, expected):
    assert nodes_for(demand, cap, 0.65, 0.95) == expected


def test_nodes_for_rejects_zero_capacity():
    with pytest.raises(ValueError, match="node capacity"):
        nodes_for(np.ones(3), 0.0, 0.65, 0.95)


def test_capacity_need_nodes_and_factor():
    y, _ = seasonal(6.0)
    s = DemandSeries(
        "pool cpu",
        "cpu",
        "cores",
        pd.Timestamp(0, tz="UTC"),
        3600,
        y,
        capacity=40.0,
        nodes=5,
        node_capacity=8.0,
    )
    need = capacity_need(forecast_series(s, DAY))
    assert need.nodes_now == 5
    assert need.nodes["point"] == nodes_for(forecast_series(s, DAY).result.mean, 8.0, 0.65, 0.95)
    assert need.nodes["point"] <= need.nodes["hi80"] <= need.nodes["hi95"]
    assert need.factor["point"] == pytest.approx(need.demand["point"] / (0.65 * 40.0))
    share = DemandSeries(
        "agg", "cpu", "share", pd.Timestamp(0, tz="UTC"), 3600, y / 20, capacity=1.0
    )
    need = capacity_need(forecast_series(share, DAY), target=0.5)
    assert need.nodes["point"] is None and need.factor["point"] > 0


def test_held_out_origins():
    n = 10 * 24  # ten days of hours
    origins, how = held_out_origins(
        n, 3600, DAY, test_share=0.3, stride_s=12 * 3600, max_origins=None
    )
    assert origins[-1] == n - 24 and all(o >= n - 72 for o in origins)
    assert how == f"{len(origins)} × 12 h, last 30%"
    long_o, how = held_out_origins(n, 3600, 5 * DAY, test_share=0.3, stride_s=DAY, max_origins=2)
    assert long_o == [] and "needs 12 d of history plus the 5 d horizon = 17 d" in how
    assert "the series has 10 d" in how


def test_evaluation_scores_the_procedure_and_the_naives():
    y, _ = seasonal(12.0, seed=5, weekly=0.0)
    settings = ForecastSettings(windows=4)
    origins, _ = held_out_origins(y.size, 3600, DAY, test_share=0.2, stride_s=DAY, max_origins=None)
    ev = Evaluation.of(evaluate_origins(y, 3600, DAY, origins, settings))
    assert ev.origins == len(origins) >= 2
    assert set(ev.wape) == {"model", "naive_day", "naive_week"}
    assert ev.ratio == pytest.approx(
        ev.wape["model"] / min(ev.wape["naive_day"], ev.wape["naive_week"])
    )
    assert ev.ratio < 1  # noise on a clean cycle: averaging cycles beats repeating one
    assert 0 <= ev.coverage[80] <= ev.coverage[95] <= 1
