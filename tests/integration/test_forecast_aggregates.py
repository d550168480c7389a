"""``hydatis forecast`` and the rolling-origin evaluation on a real public cluster aggregate
(Alibaba 2018, the shortest): reads the data directory, skips without it."""

from __future__ import annotations

import json

import pytest

from cli.forecast import main as forecast_main
from hydatis.config import data_dir
from monitoring.forecast import Evaluation, evaluate_origins, held_out_origins
from simulator.importers.aggregates import STEP_S, read_aggregate

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(data_dir() is None, reason="needs the trace data directory"),
]


def test_cli_on_an_aggregate(tmp_path, capsys):
    out = tmp_path / "out"
    code = forecast_main(
        ["--aggregate", "alibaba2018", "--resources", "cpu", "--horizon", "24h", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    (s,) = summary["series"]
    assert s["name"] == "alibaba2018 cpu" and s["unit"] == "% of capacity"
    # No node sizes: the answer is a factor of today's capacity.
    assert s["nodes_needed"]["point"] is None and s["capacity_factor"]["point"] > 0


def test_week_horizon_on_eight_days_is_refused(tmp_path, capsys):
    code = forecast_main(["--aggregate", "alibaba2018", "--horizon", "7d", "--out", str(tmp_path)])
    assert code == 2
    assert "needs at least 16 d of history" in capsys.readouterr().err


def test_rolling_evaluation_on_the_last_day():
    y = read_aggregate("alibaba2018")["cpu_util_percent"].to_numpy()
    origins, how = held_out_origins(
        y.size, STEP_S, 86400, test_share=0.2, stride_s=86400, max_origins=None
    )
    assert how == "1 × 1 d, last 20%"
    ev = Evaluation.of(evaluate_origins(y, STEP_S, 86400, origins))
    assert set(ev.wape) == {"model", "naive_day"}  # 7.8 days: no week-ago naive
    assert 1 - ev.wape["model"] > 0.8 and 0 < ev.coverage[80] <= ev.coverage[95]
