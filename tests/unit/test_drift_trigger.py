"""The retraining trigger runs the configured command (a harmless one here) with its
placeholders filled, once per cooldown, and records what happened in the drift state."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from hydatis.errors import ConfigError
from monitoring.drift import DEFAULT_RETRAIN_COMMAND, DriftState, RetrainTrigger

NOW = pd.Timestamp("2024-01-05T12:00:00Z")


def recorder(marker: Path) -> str:
    """A command line that writes its arguments to ``marker`` as JSON."""
    code = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    return shlex.join([sys.executable, "-c", code, str(marker)])


def in_drift(*kinds: str) -> DriftState:
    return DriftState(alarm={k: True for k in kinds}, consecutive={k: 3 for k in kinds})


def test_runs_the_command_with_placeholders_filled(tmp_path):
    marker = tmp_path / "called.json"
    trig = RetrainTrigger(
        recorder(marker) + " --dataset {dataset} --features {features} --why {kinds}",
        placeholders={"dataset": str(tmp_path / "my data"), "features": "f"},
        log_path=tmp_path / "retraining.log",
    )
    state = in_drift("data", "target")
    result = trig.fire(state, NOW, wait=True)
    assert result is not None and result.started and result.returncode == 0
    args = json.loads(marker.read_text())
    assert args == [
        "--dataset",
        str(tmp_path / "my data"),
        "--features",
        "f",
        "--why",
        "data,target",
    ]
    assert state.last_retrain["at"] == NOW.isoformat()
    assert state.last_retrain["started"] is True
    assert (tmp_path / "retraining.log").exists()


def test_detached_by_default(tmp_path):
    marker = tmp_path / "called.json"
    trig = RetrainTrigger(recorder(marker) + " {kinds}")
    result = trig.fire(in_drift("performance"), NOW)
    assert result is not None and result.started and result.returncode is None
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(marker.read_text()) == ["performance"]


def test_cooldown_and_no_alarm(tmp_path):
    marker = tmp_path / "called.json"
    trig = RetrainTrigger(recorder(marker), cooldown_s=3600)
    assert trig.fire(DriftState(), NOW) is None
    assert trig.due(DriftState(), NOW) == (False, "no kind is in drift")
    state = in_drift("data")
    assert trig.fire(state, NOW, wait=True) is not None
    marker.unlink()
    assert trig.fire(state, NOW + pd.Timedelta(minutes=30), wait=True) is None
    assert "cooldown" in trig.due(state, NOW + pd.Timedelta(minutes=30))[1]
    assert trig.fire(state, NOW + pd.Timedelta(hours=2), wait=True) is not None
    assert marker.exists()


def test_a_command_that_cannot_start_is_recorded_and_retried(tmp_path):
    trig = RetrainTrigger(str(tmp_path / "no-such-binary") + " {kinds}", cooldown_s=3600)
    state = in_drift("data")
    result = trig.fire(state, NOW)
    assert result is not None and not result.started and "cannot start" in result.error
    assert state.last_retrain["started"] is False
    assert trig.due(state, NOW + pd.Timedelta(minutes=1))[0]  # no cooldown after a failure


@pytest.mark.parametrize(
    ("command", "match"),
    [
        ("retrain {model}", "unknown placeholder {model}"),
        ("retrain 'unclosed", "cannot split"),
        ("retrain {dataset", "bad placeholder"),
    ],
    ids=["unknown-placeholder", "unbalanced-quote", "unbalanced-brace"],
)
def test_malformed_commands_are_config_errors(command, match):
    with pytest.raises(ConfigError, match=match):
        RetrainTrigger(command)


def test_missing_value_and_disabled():
    trig = RetrainTrigger(DEFAULT_RETRAIN_COMMAND, placeholders={"dataset": "d"})
    with pytest.raises(ConfigError, match="features"):
        trig.argv(["data"])
    off = RetrainTrigger("")
    assert not off.enabled
    assert off.due(in_drift("data"), NOW) == (False, "retraining is off (no retrain_command)")


def test_default_command_is_the_retraining_pipeline():
    trig = RetrainTrigger(DEFAULT_RETRAIN_COMMAND, placeholders={"dataset": "d", "features": "f"})
    argv = trig.argv(["data"])
    assert Path(argv[0]).name == "hydatis"
    assert argv[1:] == ["pipeline", "run", "retraining", "--dataset", "d", "--features", "f"]
