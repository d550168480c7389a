"""The local tuning backend end to end, with tiny budgets: an Optuna study in SQLite
that starts from the trainer's defaults and resumes, the best-parameters file the
training step reads, the MLflow run, ``hydatis tune``'s command, and the trial entry
point as the separate process Katib runs. The placement model needs no data directory
(the synthetic trace stands in); load and anomaly are skipped without one."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hydatis.config import data_dir
from katib import local, trial
from katib.spaces import space

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
needs_data = pytest.mark.skipif(
    data_dir() is None, reason="no trace data directory (set HYDATIS_DATA_DIR)"
)


@pytest.fixture(scope="module")
def placement_study(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    seen = []
    result = local.tune(
        "placement",
        trials=2,
        budget="tiny",
        work=work,
        tracking_uri=uri,
        on_trial=lambda n, s: seen.append((n, s)),
    )
    return work, uri, result, seen


def test_study_evaluates_the_defaults_first(placement_study):
    _, _, result, seen = placement_study
    sp = space("placement")
    assert [n for n, _ in seen] == [0, 1]
    assert seen[0][1]["params"] == sp.defaults()
    assert result.default_value == seen[0][1]["value"]
    assert result.value <= result.default_value  # minimised; the defaults are a trial


def test_best_file_is_what_the_trainer_takes(placement_study):
    work, _, result, _ = placement_study
    record = local.load_best("placement", work)
    assert record == json.loads(local.best_path("placement", work).read_text())
    assert record["metric"] == "placement_objective" and record["direction"] == "minimize"
    assert record["value"] == result.value and record["trials"] == 2
    assert record["budget"] == "tiny" and record["budget_knobs"]["episodes"] == 3
    assert isinstance(record["params"]["hidden"], list)  # trainer form, not "64x64"
    sp = space("placement")
    assert record["params"] == sp.to_trainer(record["space_values"])
    from components.train_placement.core import DEFAULT_PARAMS

    assert set(record["params"]) <= set(DEFAULT_PARAMS)  # train_placement(params=...) takes it


def test_best_is_logged_to_mlflow(placement_study):
    from mlflow.tracking import MlflowClient

    _, uri, result, _ = placement_study
    client = MlflowClient(uri)
    run = client.get_run(result.mlflow_run_id)
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "hydatis-tuning"
    assert run.data.metrics["best_placement_objective"] == pytest.approx(result.value)
    assert run.data.tags["model"] == "placement" and run.data.tags["budget"] == "tiny"
    assert set(result.params) <= set(run.data.params)
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"placement_best.json", "placement_trials.csv"} <= files


def test_resume_continues_the_stored_study(placement_study):
    work, _, first, _ = placement_study
    again = local.tune("placement", trials=1, budget="tiny", work=work, resume=True, mlflow=False)
    assert again.trials == first.trials + 1
    assert again.value <= first.value
    with pytest.raises(local.TuningError, match="budget"):
        local.tune("placement", trials=1, budget="small", work=work, resume=True, mlflow=False)


def test_resume_of_a_file_without_the_study_is_an_error(tmp_path):
    path = local.study_path("placement", tmp_path)
    path.parent.mkdir(parents=True)
    path.touch()
    with pytest.raises(local.TuningError, match="no study"):
        local.tune("placement", trials=1, budget="tiny", work=tmp_path, resume=True, mlflow=False)


def test_without_resume_the_study_starts_over(tmp_path):
    work = tmp_path
    local.tune("placement", trials=1, budget="tiny", work=work, mlflow=False)
    fresh = local.tune("placement", trials=1, budget="tiny", work=work, mlflow=False)
    assert fresh.trials == 1 and fresh.best_trial == 0  # only the defaults' trial again


def test_cli_tune_writes_the_best_file(tmp_path, capsys):
    from cli import tune as tune_cmd

    parser = argparse.ArgumentParser(prog="hydatis")
    sub = parser.add_subparsers(dest="command", required=True)
    tune_cmd.add_parser(sub).set_defaults(func=tune_cmd.run)
    argv = ["tune", "placement", "--trials", "2", "--budget", "tiny", "--no-mlflow"]
    args = parser.parse_args([*argv, "--work-dir", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "placement_objective" in out and "best of 2 trials" in out
    assert local.load_best("placement", tmp_path)["trials"] == 2


def test_entry_point_as_a_process_prints_katib_metric_lines():
    sp = space("placement")
    defaults = sp.defaults()
    args = trial.trial_args(
        "placement", {p.name: p.text(defaults[p.name]) for p in sp.params}, budget="tiny"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "katib.trial", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = trial.parse_metrics(done.stdout)
    assert list(metrics) == sp.metrics
    assert done.stdout.count("\n") == len(sp.metrics)  # stdout holds the metric lines only


@needs_data
@pytest.mark.parametrize("model", ["load", "anomaly"])
def test_real_data_models_tune_with_a_tiny_budget(model, tmp_path):
    result = local.tune(model, trials=2, budget="tiny", work=tmp_path, mlflow=False)
    assert result.trials == 2 and result.failed == 0
    assert result.default_value is not None
    better = min if result.direction == "minimize" else max
    assert result.value == better(result.value, result.default_value)
    assert set(result.params) == set(space(model).parameters)
