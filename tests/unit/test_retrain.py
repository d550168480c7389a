"""Scheduled retraining: the KFP recurring runs (compiled packages, cron expressions,
parameters the pipelines take, exactly what the kfp SDK sends for them), the cron
parser, the drift decision and the ``hydatis retrain`` command's input errors."""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

import pytest
import yaml

from cli.main import main
from cli.retrain import decide, pipeline_arguments
from hydatis.errors import ConfigError
from pipelines import PIPELINES
from pipelines.schedules import (
    DAILY_CRON,
    WEEKLY_CRON,
    apply_schedules,
    create_recurring_run_kwargs,
    default_schedules,
    parse_cron,
    write_schedules,
)
from tests.kube_api import ApiRecorder

URIS = {
    "dataset_uri": "minio://mlpipeline/hydatis/dataset",
    "features_uri": "minio://mlpipeline/hydatis/features",
    "prometheus_url": "http://prometheus.monitoring.svc:9090",
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("schedules")
    write_schedules(out, default_schedules(**URIS), experiment_id="exp-1")
    return out


def test_schedules_compile_and_carry_their_cron_expressions(written):
    names = sorted(p.name for p in written.iterdir())
    assert names == [
        "hydatis-retrain-daily.create_recurring_run.json",
        "hydatis-retrain-daily.recurring_run.json",
        "hydatis-retrain-weekly.create_recurring_run.json",
        "hydatis-retrain-weekly.recurring_run.json",
        "hydatis-retraining.yaml",
        "hydatis-training.yaml",
    ]
    for name, cron, package in (
        ("hydatis-retrain-daily", DAILY_CRON, "hydatis-retraining"),
        ("hydatis-retrain-weekly", WEEKLY_CRON, "hydatis-training"),
    ):
        kwargs = json.loads((written / f"{name}.create_recurring_run.json").read_text())
        body = json.loads((written / f"{name}.recurring_run.json").read_text())
        assert kwargs["cron_expression"] == cron
        assert body["trigger"] == {"cron_schedule": {"cron": cron}}
        assert kwargs["pipeline_package_path"] == f"{package}.yaml"
        spec = yaml.safe_load((written / f"{package}.yaml").read_text())
        assert spec["pipelineInfo"]["name"] == package
        assert body["pipeline_spec"] == spec
        assert body["display_name"] == kwargs["job_name"] == name
        assert body["mode"] == "ENABLE" and body["max_concurrency"] == 1
        assert body["no_catchup"] is True and body["experiment_id"] == "exp-1"
        assert body["runtime_config"]["parameters"] == kwargs["params"]
        # the keyword arguments are exactly what the installed SDK accepts
        from kfp import Client

        inspect.signature(Client.create_recurring_run).bind(None, **kwargs)


def test_daily_is_incremental_and_weekly_is_full(written):
    daily = json.loads((written / "hydatis-retrain-daily.create_recurring_run.json").read_text())
    weekly = json.loads((written / "hydatis-retrain-weekly.create_recurring_run.json").read_text())
    assert daily["params"] == {
        "dataset_uri": URIS["dataset_uri"],
        "features_uri": URIS["features_uri"],
        "deploy_target": "cluster",
    }
    assert weekly["params"]["source"] == "prometheus"
    assert weekly["params"]["prometheus_url"] == URIS["prometheus_url"]
    assert weekly["params"]["tune_trials"] == 20 and weekly["params"]["days"] == 30.0


def test_daily_and_weekly_never_fire_together():
    daily, weekly = parse_cron(DAILY_CRON), parse_cron(WEEKLY_CRON)
    assert daily[5] == {1, 2, 3, 4, 5, 6} and weekly[5] == {0}
    assert daily[:5] == weekly[:5]  # same time of day, disjoint days


def test_the_sdk_sends_exactly_the_written_recurring_runs(written):
    """``kfp.Client.create_recurring_run`` with the saved arguments POSTs, byte for byte
    as JSON, the ``RecurringRun`` body written beside them."""
    created: list[dict] = []

    def create(seen):
        created.append(seen.body)
        return 200, {**seen.body, "recurring_run_id": f"rr-{len(created)}"}

    routes = {
        ("GET", "/apis/v2beta1/healthz"): (200, {"multi_user": False}),
        ("POST", "/apis/v2beta1/recurringruns"): create,
    }
    with ApiRecorder(routes) as api:
        ids = apply_schedules(api.url, written)
    assert ids == ["rr-1", "rr-2"]
    posts = [(s.method, s.path) for s in api.writes()]
    assert posts == [("POST", "/apis/v2beta1/recurringruns")] * 2
    for body, name in zip(
        created, ("hydatis-retrain-daily", "hydatis-retrain-weekly"), strict=True
    ):
        assert body == json.loads((written / f"{name}.recurring_run.json").read_text())


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 2 * * *", "6 fields"),
        ("0 0 24 * * *", "hour '24' outside 0..23"),
        ("0 0 2 * * 7", "day of week '7' outside 0..6"),
        ("0 0 2 * * MON", "is not a value"),
        ("0 0 5-2 * * *", "outside"),
    ],
    ids=["five-fields", "hour-24", "dow-7", "names", "reversed-range"],
)
def test_bad_cron_names_the_field(expr, message):
    with pytest.raises(ConfigError, match=message):
        parse_cron(expr)


def test_cron_steps_and_lists():
    assert parse_cron("0 */15 1,13 * * ?")[1] == {0, 15, 30, 45}
    assert parse_cron("0 */15 1,13 * * ?")[2] == {1, 13}


def test_missing_uri_is_named():
    with pytest.raises(ConfigError, match="features_uri is empty"):
        default_schedules(**{**URIS, "features_uri": ""})


def test_a_parameter_the_pipeline_lacks_is_refused():
    (daily, _) = default_schedules(**URIS)
    bad = type(daily)(**{**daily.__dict__, "params": {**daily.params, "epochs": 3}})
    with pytest.raises(ConfigError, match="epochs not parameters of retraining"):
        create_recurring_run_kwargs(bad, "x.yaml")


# --------------------------------------------------------------------------- retrain


@pytest.mark.parametrize(
    ("verdict", "retrain", "reason"),
    [
        (
            {"windows_checked": 24, "kinds": {"data": {"drift": True}, "target": {"drift": False}}},
            True,
            "in drift: data",
        ),
        (
            {"windows_checked": 24, "kinds": {"data": {"drift": False, "status": "ok"}}},
            False,
            "no kind in drift over 24 new window(s) (data ok)",
        ),
        (
            {"windows_checked": 0, "kinds": {"data": {"drift": False}}},
            False,
            "no new complete window",
        ),
    ],
    ids=["drift", "no-drift", "nothing-new"],
)
def test_decision_from_the_verdict(verdict, retrain, reason):
    got, why, _ = decide(verdict)
    assert got is retrain and reason in why


def _ns(**kw) -> argparse.Namespace:
    base = {
        "full": False,
        "models": "anomaly,load",
        "budget": "tiny",
        "trials": 0,
        "tune_budget": "tiny",
        "valid_share": 0.25,
        "seed": 0,
        "deploy": "render",
        "feature_repo": "feature_repo",
        "redis_url": "",
    }
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize("full", [False, True], ids=["retraining", "training"])
def test_run_arguments_are_parameters_of_the_pipeline(full, tmp_path):
    name, arguments = pipeline_arguments(_ns(full=full), tmp_path / "ds", tmp_path / "f")
    assert name == ("training" if full else "retraining")
    accepted = set(inspect.signature(PIPELINES[name].pipeline_func).parameters)
    assert set(arguments) <= accepted
    assert arguments["models"] == ["anomaly", "load"]
    assert arguments["dataset_uri"] == str((tmp_path / "ds").resolve())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retrain", "--dataset", "x"], "--if-drift (only on drift) or --force"),
        (["retrain", "--force"], "needs --dataset"),
        (["retrain", "--force", "--dataset", "x", "--current", "y"], "use it with --if-drift"),
        (["retrain", "--force", "--dataset", "x", "--models", "gpt"], "--models"),
        (["retrain", "schedules", "--out", "{tmp}"], "dataset_uri is empty"),
    ],
    ids=["no-mode", "no-dataset", "force-with-current", "bad-model", "schedules-without-uris"],
)
def test_command_input_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HYDATIS_WORK_DIR", str(tmp_path / "work"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--models" in argv:  # the dataset must exist for the run to reach the models
        from hydatis.dataset import save_dataset
        from monitoring.drift.synthetic import synthetic_history

        save_dataset(synthetic_history(nodes=2, days=0.1), tmp_path / "x")
        argv[argv.index("x")] = str(tmp_path / "x")
        argv += ["--features", str(tmp_path)]
    assert main(argv) == 2
    assert message in capsys.readouterr().out.replace("\n", "")


def test_command_writes_the_schedules(tmp_path, capsys):
    argv = ["retrain", "schedules", "--out", str(tmp_path)]
    for key, value in URIS.items():
        argv += [f"--{key.replace('_', '-')}", value]
    assert main([*argv, "--daily-cron", "0 30 1 * * 1-6"]) == 0
    kwargs = json.loads((tmp_path / "hydatis-retrain-daily.create_recurring_run.json").read_text())
    assert kwargs["cron_expression"] == "0 30 1 * * 1-6"
    assert "hydatis-retrain-weekly" in capsys.readouterr().out
