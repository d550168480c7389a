"""Drift detection's own logic: the sequential test, windows and like-with-like
references, the calibration rule, the persistence of decisions, the state, the settings
and the inputs. Evidently computes the statistics (checked against it directly here)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hydatis.errors import ConfigError
from monitoring.drift import (
    Calibration,
    DriftData,
    DriftDetector,
    DriftInputError,
    DriftSettings,
    DriftState,
    calibrate,
    column_score,
    drift_data,
    load_settings,
    page_hinkley,
)
from monitoring.drift._reference import NS, RowIndex, band_mask, window_starts
from monitoring.drift.calibrate import MIN_PH_LEVEL, _rule
from monitoring.drift.stats import to_evidently_threshold

T0 = pd.Timestamp("2024-01-01", tz="UTC")
HOUR = 3600 * NS

# --------------------------------------------------------------------------- page-hinkley


@pytest.mark.parametrize(
    ("z", "delta", "expected"),
    [
        ([0.0, 0.0, 0.0], 0.5, [0.0, 0.0, 0.0]),  # no change: stays at 0
        ([1.5, 1.5, 1.5], 0.5, [1.0, 2.0, 3.0]),  # a shift climbs by shift - delta
        ([2.0, -5.0, 1.0], 0.5, [1.5, 0.0, 0.5]),  # reflected at 0
        ([1.5, math.nan, 1.5], 0.5, [1.0, 1.0, 2.0]),  # missing step: unchanged
        ([], 0.5, []),  # empty stream
    ],
    ids=["no-change", "shift", "reflect", "nan-step", "empty"],
)
def test_page_hinkley_table(z, delta, expected):
    g, last = page_hinkley(np.array(z, dtype=float), delta)
    assert np.allclose(g, expected)
    assert last[0] == (expected[-1] if expected else 0.0)


def test_page_hinkley_carries_its_start_and_streams():
    z = np.array([[1.0, 0.0], [1.0, 0.0]])
    g, last = page_hinkley(z, 0.5, start=np.array([2.0, 3.0]))
    assert np.allclose(g, [[2.5, 2.5], [3.0, 2.0]])
    assert np.allclose(last, [3.0, 2.0])
    with pytest.raises(ValueError, match="delta"):
        page_hinkley(z, -1.0)


# --------------------------------------------------------------------------- statistics


def test_column_scores_are_evidentlys_and_oriented():
    from evidently.legacy.calculations.stattests import ks_stat_test, wasserstein_stat_test
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(0)
    ref, same, moved = rng.normal(0, 1, 2000), rng.normal(0, 1, 500), rng.normal(1, 1, 500)
    w = wasserstein_stat_test(pd.Series(ref), pd.Series(moved), ColumnType.Numerical, None)
    assert column_score("wasserstein", ref, moved) == pytest.approx(w.drift_score)
    p = ks_stat_test(pd.Series(ref), pd.Series(moved), ColumnType.Numerical, None).drift_score
    assert column_score("ks", ref, moved) == pytest.approx(-math.log10(max(p, 1e-300)))
    for method in ("wasserstein", "psi", "ks"):
        assert column_score(method, ref, moved) > column_score(method, ref, same)
    assert to_evidently_threshold("ks", 2.0) == pytest.approx(0.01)
    assert to_evidently_threshold("psi", 0.3) == 0.3


@pytest.mark.parametrize(
    ("method", "ref", "cur", "match"),
    [
        ("chi2", [1.0], [1.0], "unknown drift method"),
        ("psi", [], [1.0], "non-empty"),
    ],
    ids=["unknown-method", "empty-reference"],
)
def test_column_score_rejects(method, ref, cur, match):
    with pytest.raises(ValueError, match=match):
        column_score(method, np.array(ref), np.array(cur))


# --------------------------------------------------------------------------- windows


def test_window_starts_are_aligned_and_complete():
    ts = np.array([T0.value + 30 * 60 * NS, T0.value + 4 * HOUR + 10 * NS])
    starts = window_starts(ts, HOUR)
    # the first whole hour after 00:30 is 01:00; the last complete window ends by 04:00
    assert [pd.Timestamp(s, tz="UTC").hour for s in starts] == [1, 2, 3]
    assert window_starts(np.zeros(0, dtype=np.int64), HOUR).size == 0


def test_band_wraps_midnight_and_pooled_takes_all():
    s = DriftSettings(window_s=3600, hour_pad_s=3600)
    tod = np.array([22.5, 23.5, 0.5, 1.5, 12.0]) * 3600
    start = (T0 + pd.Timedelta(hours=23)).value  # 23:00-24:00, padded 22:00-01:00
    assert band_mask(tod, start, s).tolist() == [True, True, True, False, False]
    assert band_mask(tod, start, DriftSettings(reference_mode="pooled")) is None


def _frame(
    days: float,
    *,
    per_hour: int = 40,
    shift_from: pd.Timestamp | None = None,
    shift: float = 0.0,
    seed: int = 0,
    start: pd.Timestamp = T0,
) -> DriftData:
    """``per_hour`` rows an hour of a column ``x`` ~ N(0, 1) (+ ``shift`` from
    ``shift_from``), with a daily cycle in its mean."""
    rng = np.random.default_rng(seed)
    n = int(days * 24 * per_hour)
    ts = start + pd.to_timedelta(np.arange(n) * 3600 / per_hour, unit="s")
    hours = (ts.hour + ts.minute / 60).to_numpy()
    x = rng.normal(0, 1, n) + 2.0 * np.sin(2 * np.pi * hours / 24)
    if shift_from is not None:
        x = x + shift * (ts >= shift_from)
    frame = pd.DataFrame({"node_id": "n0", "event_timestamp": ts, "x": x})
    return DriftData(frame, {"data": ["x"], "prediction": [], "target": [], "performance": []})


def test_reference_rows_same_hours_leave_day_out_capped_and_seeded():
    data = _frame(4)
    s = DriftSettings(max_reference_rows=100, hour_pad_s=0)
    index = RowIndex(data, ["x"], s)
    start = (T0 + pd.Timedelta(days=1, hours=5)).value
    rows = index.reference_rows(start, exclude_day=start // (86400 * NS))
    ts = data.frame["event_timestamp"].iloc[rows]
    assert len(rows) == 100  # 3 other days x 40 rows in that hour, sampled down to the cap
    assert set(ts.dt.hour) == {5}
    assert T0.normalize() + pd.Timedelta(days=1) not in set(ts.dt.normalize())
    again = RowIndex(data, ["x"], s).reference_rows(start, exclude_day=start // (86400 * NS))
    assert np.array_equal(rows, again)


# --------------------------------------------------------------------------- calibration


def test_rule_takes_the_quantiles_and_calibrates_the_family():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, (200, 3))
    scores[:, 2] = 0.0  # a column that never differs
    s = DriftSettings(false_alarm_rate=0.05)
    rule = _rule("data", scores, ["a", "b", "c"], s)
    assert rule.column_thresholds["a"] == pytest.approx(np.quantile(scores[:, 0], 0.95))
    assert "c" in rule.skipped and "c" not in rule.column_thresholds
    # two columns each at their 95 % quantile: the family needs a larger scale
    assert rule.scale > 1.0
    assert rule.reference_rate == pytest.approx(0.05, abs=0.011)
    perf = _rule("performance", np.zeros((20, 1)) + 0.1, ["e"], s)
    assert perf.column_thresholds["e"] == MIN_PH_LEVEL


def test_calibrate_needs_two_days_and_enough_windows():
    s = DriftSettings(kinds=["data"])
    with pytest.raises(DriftInputError, match="at least 2"):
        calibrate(_frame(0.9), s)
    with pytest.raises(DriftInputError, match="complete window"):
        calibrate(_frame(0.35, start=T0 + pd.Timedelta(hours=20)), s)


def test_daily_cycle_is_not_drift_with_same_hours_and_a_shift_is():
    s = DriftSettings(kinds=["data"], persistence_windows=2, min_window_rows=20)
    ref = _frame(4)
    cal = calibrate(ref, s)
    assert set(cal.kinds) == {"data"}
    cur = _frame(
        1.0,
        start=T0 + pd.Timedelta(days=4),
        shift_from=T0 + pd.Timedelta(days=4, hours=12),
        shift=1.5,
        seed=1,
    )
    det = DriftDetector(s, cal, ref)
    state = DriftState()
    windows = det.evaluate(cur, state)
    assert len(windows) == 24
    drifted = [w.kinds["data"].drifted for w in windows]
    alarm = [w.kinds["data"].alarm for w in windows]
    assert sum(drifted[:12]) <= 1  # the cycle itself is not drift
    assert all(drifted[12:]) and all(alarm[13:])  # K = 2: in drift from the second window
    assert not alarm[12]
    assert state.alarm["data"] and state.consecutive["data"] == 12
    assert state.alarm_since["data"] == windows[13].start.isoformat()
    # pooled, the daily cycle itself fills the no-change scores: the calibrated threshold
    # is larger and the same shift stands out less
    pooled = DriftSettings(kinds=["data"], reference_mode="pooled", min_window_rows=20)
    pooled_cal = calibrate(ref, pooled)
    assert pooled_cal.kinds["data"].threshold("x") > cal.kinds["data"].threshold("x")
    after = DriftDetector(pooled, pooled_cal, ref).evaluate(cur)[12:]
    assert np.mean([w.kinds["data"].score for w in after]) < np.mean(
        [w.kinds["data"].score for w in windows[12:]]
    )


def test_state_carries_and_windows_are_not_checked_twice(tmp_path):
    s = DriftSettings(kinds=["data"], min_window_rows=20)
    ref = _frame(3)
    det = DriftDetector(s, calibrate(ref, s), ref)
    cur = _frame(1, start=T0 + pd.Timedelta(days=3), seed=2)
    state = DriftState()
    first = det.evaluate(cur.between(None, T0 + pd.Timedelta(days=3, hours=10)), state)
    path = state.save(tmp_path / "state.json")
    again = DriftState.load(path)
    second = det.evaluate(cur, again)
    assert len(first) == 10 and len(second) == 14
    assert second[0].start == first[-1].end
    assert det.evaluate(cur, again) == []
    assert DriftState.load(tmp_path / "absent.json") == DriftState()
    renamed = DriftData(cur.frame.rename(columns={"x": "y"}), cur.columns, [])
    with pytest.raises(DriftInputError, match="lacks the calibrated column"):
        det.evaluate(renamed, DriftState())
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DriftInputError, match="not JSON"):
        DriftState.load(tmp_path / "bad.json")


def test_calibration_round_trip_and_settings_mismatch(tmp_path):
    s = DriftSettings(kinds=["data"], min_window_rows=20)
    ref = _frame(3)
    cal = calibrate(ref, s)
    back = Calibration.load(cal.save(tmp_path / "cal.json"))
    assert back.kinds["data"].column_thresholds == cal.kinds["data"].column_thresholds
    other = DriftSettings(kinds=["data"], min_window_rows=20, method="ks")
    assert back.matches(other) == ["method"]
    with pytest.raises(DriftInputError, match="other settings"):
        DriftDetector(other, back, ref)
    (tmp_path / "v0.json").write_text('{"version": 0}')
    with pytest.raises(DriftInputError, match="format"):
        Calibration.load(tmp_path / "v0.json")


def test_a_window_without_data_keeps_the_run():
    s = DriftSettings(kinds=["data"], min_window_rows=20, persistence_windows=3)
    ref = _frame(3)
    det = DriftDetector(s, calibrate(ref, s), ref)
    state = DriftState(consecutive={"data": 2}, alarm={"data": False})
    # 10 rows an hour: too few to score
    cur = _frame(0.25, per_hour=10, start=T0 + pd.Timedelta(days=3))
    windows = det.evaluate(cur, state)
    assert windows and all(w.kinds["data"].status == "insufficient_data" for w in windows)
    assert state.consecutive["data"] == 2
    assert windows[0].kinds["prediction"].status == "not_monitored"


# --------------------------------------------------------------------------- performance


def test_performance_kind_alarms_when_errors_grow():
    rng = np.random.default_rng(0)
    n = 4 * 24 * 12  # 4 days at 5 minutes
    ts = T0 + pd.to_timedelta(np.arange(n) * 300, unit="s")
    err = np.abs(rng.normal(0, 0.05, n))
    later = ts >= T0 + pd.Timedelta(days=3, hours=6)
    err[later] *= 3.0
    frame = pd.DataFrame({"node_id": "n0", "event_timestamp": ts, "cpu_abs_error": err})
    data = DriftData(
        frame, {"data": [], "prediction": [], "target": [], "performance": ["cpu_abs_error"]}
    )
    s = DriftSettings(kinds=["performance"], error_step_s=300, error_scale="none")
    ref = data.between(None, T0 + pd.Timedelta(days=3))
    cal = calibrate(ref, s, performance_reference=ref)
    det = DriftDetector(s, cal, ref)
    windows = det.evaluate(data.between(T0 + pd.Timedelta(days=3), None), DriftState())
    alarm = [w.kinds["performance"].alarm for w in windows]
    assert not any(alarm[:6])
    assert all(alarm[8:])


@pytest.mark.parametrize(
    ("model_factor", "naive_factor", "alarms"),
    [(3.0, 3.0, False), (3.0, 1.0, True)],
    ids=["volatile-period-every-forecast-worse", "stale-model-only-it-worse"],
)
def test_performance_relative_to_persistence(model_factor, naive_factor, alarms):
    rng = np.random.default_rng(1)
    n = 4 * 24 * 12
    ts = T0 + pd.to_timedelta(np.repeat(np.arange(n) * 300, 4), unit="s")
    naive = np.abs(rng.normal(0, 0.05, ts.size))
    model = 0.8 * naive + np.abs(rng.normal(0, 0.005, ts.size))
    later = np.asarray(ts >= T0 + pd.Timedelta(days=3, hours=6))
    model[later] *= model_factor
    naive[later] *= naive_factor
    frame = pd.DataFrame(
        {
            "node_id": np.tile(["a", "b", "c", "d"], n),
            "event_timestamp": ts,
            "cpu_abs_error": model,
            "cpu_naive_error": naive,
        }
    )
    data = DriftData(
        frame, {"data": [], "prediction": [], "target": [], "performance": ["cpu_abs_error"]}
    )
    s = DriftSettings(kinds=["performance"])
    ref = data.between(None, T0 + pd.Timedelta(days=3))
    det = DriftDetector(s, calibrate(ref, s, performance_reference=ref), ref)
    windows = det.evaluate(data.between(T0 + pd.Timedelta(days=3), None), DriftState())
    assert any(w.kinds["performance"].alarm for w in windows) is alarms


# --------------------------------------------------------------------------- inputs


def test_drift_data_groups_columns_and_computes_errors():
    ts = T0 + pd.to_timedelta([0, 300], unit="s")
    keys = {"node_id": ["a", "a"], "event_timestamp": ts}
    feats = pd.DataFrame({**keys, "cpu_util": [0.1, 0.2], "hour_sin": [0.0, 0.1]})
    labels = pd.DataFrame({**keys, "cpu_util_target": [0.3, 0.2]})
    preds = pd.DataFrame({**keys, "cpu_util_pred": [0.1, 0.5], "mem_util_pred": [0.5, 0.5]})
    s = DriftSettings(features=["all"])
    data = drift_data(feats, settings=s, labels=labels, predictions=preds)
    assert data.columns["data"] == ["cpu_util"]  # calendar features are not drift
    assert data.columns["prediction"] == ["cpu_util_pred", "mem_util_pred"]
    assert data.columns["target"] == ["cpu_util_target"]
    assert data.columns["performance"] == ["cpu_abs_error"]
    assert data.frame["cpu_abs_error"].tolist() == pytest.approx([0.2, 0.3])
    assert data.frame["cpu_naive_error"].tolist() == pytest.approx([0.2, 0.0])
    assert any("mem_util_target" in n for n in data.notes)
    bare = drift_data(feats, settings=DriftSettings(features=["cpu_util"]))
    assert bare.columns["performance"] == [] and bare.columns["target"] == []


@pytest.mark.parametrize(
    ("features", "drop", "match"),
    [
        (["cpu_util", "cpu_nope"], None, "lacks the watched feature"),
        (["cpu_util"], "node_id", "key column"),
    ],
    ids=["unknown-feature", "no-keys"],
)
def test_drift_data_rejects(features, drop, match):
    feats = pd.DataFrame({"node_id": ["a"], "event_timestamp": [T0], "cpu_util": [0.1]})
    if drop:
        feats = feats.drop(columns=drop)
    with pytest.raises(DriftInputError, match=match):
        drift_data(feats, settings=DriftSettings(features=features))


# --------------------------------------------------------------------------- settings


def test_settings_precedence_and_errors(tmp_path, monkeypatch):
    cfg = tmp_path / "drift.yaml"
    cfg.write_text("window_s: 1800\nmethod: psi\npersistence_windows: 4\n")
    monkeypatch.setenv("HYDATIS_DRIFT_METHOD", "ks")
    s = load_settings(cfg, persistence_windows=3, window_s=None)
    assert (s.window_s, s.method, s.persistence_windows) == (1800, "ks", 3)
    (tmp_path / "bad.yaml").write_text("windw_s: 10\n")
    with pytest.raises(ConfigError, match="windw_s"):
        load_settings(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="false_alarm_rate"):
        load_settings(false_alarm_rate=0.9)
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "absent.yaml")
