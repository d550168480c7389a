"""The verdict per kind (alarm carried from earlier checks, reasons for what is not
monitored, strict JSON) and the summary page."""

from __future__ import annotations

import json
import math

import pandas as pd

from monitoring.drift import (
    Calibration,
    ColumnScore,
    DriftSettings,
    DriftState,
    KindCalibration,
    KindResult,
    TriggerResult,
    WindowResult,
    verdict,
    write_summary_html,
)
from monitoring.drift.report import write_verdict

T = pd.Timestamp("2024-01-05T10:00:00Z")


def calibration() -> Calibration:
    rule = KindCalibration("data", {"cpu_util": 0.4, "mem_util": 0.3}, 1.1, 90, 0.011, [0.2, 1.2])
    return Calibration({}, {"data": rule}, {"reference": {"rows": 10}}, ["target: no labels"])


def window(score: float, drifted: bool, alarm: bool, start: pd.Timestamp = T) -> WindowResult:
    cols = {
        "cpu_util": ColumnScore(score * 0.44, 0.44, 40, 300),
        "mem_util": ColumnScore(math.nan, 0.33, 3, 300),
    }
    kinds = {
        "data": KindResult("data", "drifted" if drifted else "ok", score, drifted, 2, alarm, cols),
        "prediction": KindResult("prediction", "not_monitored", math.nan, False, 0, False),
        "performance": KindResult("performance", "not_monitored", math.nan, False, 0, False),
        "target": KindResult("target", "not_monitored", math.nan, False, 0, False),
    }
    return WindowResult(start, start + pd.Timedelta(hours=1), kinds)


def test_verdict_per_kind(tmp_path):
    s = DriftSettings(kinds=["data", "prediction", "target"])
    state = DriftState(
        consecutive={"data": 2},
        alarm={"data": True},
        alarm_since={"data": T.isoformat()},
        last_window_end=(T + pd.Timedelta(hours=1)).isoformat(),
    )
    windows = [window(0.5, False, False, T - pd.Timedelta(hours=1)), window(2.0, True, True)]
    v = verdict(windows, state, calibration(), s, retraining=TriggerResult(True, ["x"], "drift"))
    data = v["kinds"]["data"]
    assert v["drift"] is True and data["drift"] is True and data["status"] == "drift"
    assert data["windows_scored"] == 2 and data["windows_drifted"] == 1
    assert data["top_columns"] == [
        {"column": "cpu_util", "score": 0.88, "threshold": 0.44, "ratio": 2.0}
    ]
    assert v["kinds"]["target"] == {
        "drift": False,
        "persistence_windows": 2,
        "consecutive_windows": 0,
        "alarm_since": None,
        "status": "not_monitored",
        "reason": "target: no labels",
    }
    assert v["kinds"]["performance"]["reason"] == "not in the monitored kinds"
    assert v["retraining"]["started"] is True
    path = write_verdict(v, tmp_path / "verdict.json")
    assert json.loads(path.read_text())["kinds"]["data"]["score"] == 2.0


def test_no_new_window_keeps_the_alarm():
    s = DriftSettings()
    state = DriftState(alarm={"data": True}, consecutive={"data": 5})
    v = verdict([], state, calibration(), s, retraining_reason="cooldown")
    assert v["kinds"]["data"]["status"] == "drift" and v["drift"] is True
    assert v["windows_checked"] == 0
    assert v["retraining"] == {"started": False, "reason": "cooldown"}
    quiet = verdict([], DriftState(), calibration(), s)
    assert quiet["kinds"]["data"]["status"] == "no_new_window"


def test_summary_page_is_self_contained(tmp_path):
    s = DriftSettings()
    windows = [window(0.5, False, False, T - pd.Timedelta(hours=1)), window(2.0, True, True)]
    v = verdict(windows, DriftState(), calibration(), s)
    page = write_summary_html(windows, calibration(), v, tmp_path / "s.html", evidently_report="r")
    text = page.read_text()
    assert "<script src=" not in text  # plotly inlined: opens offline
    assert "Plotly.newPlot" in text and 'href="r"' in text
    assert "target: no labels" in text
