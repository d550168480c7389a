"""``hydatis rollout`` and ``hydatis fallback`` through cli.main with a local settings
file and a JSON state file (no cluster): the parser wiring, dry run by default, exit
codes, JSON output, and bad input named."""

from __future__ import annotations

import json

import pytest
import yaml

from cli.main import main


@pytest.fixture
def files(tmp_path):
    settings = tmp_path / "shim.yaml"
    settings.write_text(yaml.safe_dump({"mode": "active", "rollout_percent": 0}))
    common = ["--extender-config-file", str(settings), "--audit-log", str(tmp_path / "a.jsonl")]
    return settings, tmp_path / "rollout.json", common, tmp_path / "a.jsonl"


def _share(settings) -> float:
    return float(yaml.safe_load(settings.read_text())["rollout_percent"])


def test_rollout_advance_is_a_dry_run_unless_applied(files, capsys) -> None:
    settings, state, common, audit = files
    assert main(["rollout", "advance", "--state-file", str(state), *common]) == 0
    assert _share(settings) == 0.0 and not state.exists()
    assert main(["rollout", "advance", "--apply", "--state-file", str(state), *common]) == 0
    assert _share(settings) == 10.0
    assert json.loads(state.read_text())["index"] == 0
    capsys.readouterr()
    assert main(["rollout", "status", "--json", "--state-file", str(state), *common]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["planned_percent"] == 10.0 and st["in_sync"] and st["next_percent"] == 50.0
    assert main(["rollout", "rollback", "--apply", "--state-file", str(state), *common]) == 0
    assert _share(settings) == 0.0
    assert [json.loads(x)["action"] for x in audit.read_text().splitlines()] == [
        "rollout_advance",
        "rollout_advance",
        "rollout_rollback",
    ]


def test_rollout_steps_option_and_a_bad_one(files, capsys) -> None:
    settings, state, common, _ = files
    args = ["rollout", "advance", "--apply", "--steps", "25,100", "--state-file", str(state)]
    assert main([*args, *common]) == 0
    assert _share(settings) == 25.0
    capsys.readouterr()
    assert main(["rollout", "status", "--steps", "50,20", "--state-file", str(state), *common]) == 2
    assert "steps" in capsys.readouterr().out


def test_rollout_without_a_state_place_is_an_error(files, capsys) -> None:
    _, _, common, _ = files
    assert main(["rollout", "status", *common]) == 2
    assert "--state-file" in capsys.readouterr().out


def test_fallback_on_and_off_with_a_settings_file(files, capsys) -> None:
    settings, _, common, _ = files
    settings.write_text(yaml.safe_dump({"mode": "active", "rollout_percent": 50}))
    # no cluster: the share changes, the templates step is refused (exit 1)
    assert main(["fallback", "on", "--apply", *common]) == 1
    assert _share(settings) == 0.0
    capsys.readouterr()
    assert main(["fallback", "status", "--json", *common]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["fallback_on"] and st["previous_share"] == "50"
    assert main(["fallback", "off", "--apply", *common]) == 0
    assert _share(settings) == 50.0
