"""Drift exported as Prometheus metrics: names, labels and values of the latest window,
the alarm state, retraining starts, and the textfile format."""

from __future__ import annotations

import math

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from monitoring.drift import (
    Calibration,
    ColumnScore,
    DriftMetrics,
    DriftState,
    KindCalibration,
    KindResult,
    TriggerResult,
    WindowResult,
)

T = pd.Timestamp("2024-01-05T10:00:00Z")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def window() -> WindowResult:
    data = KindResult(
        "data",
        "drifted",
        1.8,
        True,
        2,
        True,
        {"cpu_util": ColumnScore(0.9, 0.5, 40, 200), "mem_util": ColumnScore(0.1, 0.6, 40, 200)},
    )
    perf = KindResult(
        "performance", "ok", 0.2, False, 0, False, {"cpu_abs_error": ColumnScore(1.0, 5.0, 12, 99)}
    )
    none = KindResult("prediction", "not_monitored", math.nan, False, 0, False)
    target = KindResult("target", "insufficient_data", math.nan, False, 0, False)
    kinds = {"data": data, "prediction": none, "performance": perf, "target": target}
    return WindowResult(T, T + pd.Timedelta(hours=1), kinds)


def test_gauges_describe_the_latest_window_and_state():
    m = DriftMetrics()
    cal = Calibration(
        {}, {"data": KindCalibration("data", {"cpu_util": 0.4}, 1.2, 80, 0.0125)}, {}, []
    )
    m.observe_calibration(cal)
    m.observe([window(), window()])
    m.observe_state(DriftState(alarm={"data": True}, consecutive={"data": 2}), ["data"])
    m.observe_trigger(TriggerResult(True, ["retrain"], "drift"))
    got = samples(m.exposition().decode())
    assert got[("hydatis_drift_score", (("feature", "cpu_util"), ("kind", "data")))] == 0.9
    assert got[("hydatis_drift_threshold", (("feature", "cpu_util"), ("kind", "data")))] == 0.5
    assert got[("hydatis_drift_score", (("feature", "cpu_abs_error"), ("kind", "performance")))]
    assert got[("hydatis_drift_kind_score", (("kind", "data"),))] == 1.8
    assert got[("hydatis_drift_detected", (("kind", "data"),))] == 1.0
    assert got[("hydatis_drift_detected", (("kind", "performance"),))] == 0.0
    assert got[("hydatis_drift_window_drifted", (("kind", "data"),))] == 1.0
    assert got[("hydatis_drift_consecutive_windows", (("kind", "data"),))] == 2.0
    assert got[("hydatis_drift_reference_false_alarm_ratio", (("kind", "data"),))] == 0.0125
    assert got[("hydatis_drift_windows_checked_total", ())] == 2.0
    assert got[("hydatis_drift_retraining_triggers_total", (("result", "started"),))] == 1.0
    assert got[("hydatis_drift_retraining_triggers_total", (("result", "failed"),))] == 0.0
    end = got[("hydatis_drift_last_window_end_timestamp_seconds", ())]
    assert end == (T + pd.Timedelta(hours=1)).timestamp()
    # a kind that is not monitored exports nothing; one without data exports its state only
    assert not any(k[1] == (("kind", "prediction"),) for k in got)
    assert ("hydatis_drift_kind_score", (("kind", "target"),)) not in got


def test_textfile_is_prometheus_text(tmp_path):
    m = DriftMetrics()
    m.observe([window()])
    path = m.write_textfile(tmp_path / "drift.prom")
    got = samples(path.read_text())
    assert got[("hydatis_drift_kind_score", (("kind", "data"),))] == 1.8
    for name, _ in got:
        assert name.startswith("hydatis_drift_")
