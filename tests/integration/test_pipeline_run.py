"""The pipelines run end to end with ``kfp.local`` (SubprocessRunner, the installed
project, no install per task) on a small synthetic trace, registering into a temporary
MLflow store; the retraining pipeline then runs from the first run's dataset and feature
table. The full run on the real composite trace is in ``test_demo.py`` (slow)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipelines import (
    LocalRun,
    read_outcomes_file,
    retraining_pipeline,
    run_local,
    training_pipeline,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

#: 12 synthetic nodes, 4 h of trace of which 3 h are history (2.25 h train, 0.75 h
#: validation); only the anomaly detector (the quickest to train), no search.
TINY = {
    "nodes": 12,
    "horizon_s": 4 * 3600.0,
    "history_s": 3 * 3600.0,
    "synthetic": True,
    "models": ["anomaly"],
    "tune_trials": 0,
    "train_budget": "tiny",
    "valid_share": 0.25,
    "deploy_target": "render",
}


@dataclass
class TinyRun:
    workdir: Path
    run: LocalRun
    events: list[tuple[str, str]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyRun]:
    """One tiny training run in a private work directory (MLflow store, tuning) with a
    copy of the Feast repo; the task processes inherit the environment."""
    workdir = tmp_path_factory.mktemp("pipeline")
    repo = workdir / "feature_repo"
    shutil.copytree(
        ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    events: list[tuple[str, str]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYDATIS_WORK_DIR", str(workdir / "work"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        run = run_local(
            training_pipeline,
            {**TINY, "feature_repo": str(repo)},
            pipeline_root=workdir / "root",
            on_task=lambda e, t: events.append((e, t)),
        )
        yield TinyRun(workdir, run, events)


def test_training_pipeline_runs_locally_end_to_end(tiny: TinyRun) -> None:
    run, workdir, events = tiny.run, tiny.workdir, tiny.events
    outcomes = read_outcomes_file(run.output.path)
    assert [o["kind"] for o in outcomes] == ["anomaly"]
    outcome = outcomes[0]
    assert outcome["uri"] == f"models:/hydatis-anomaly-detector/{outcome['version']}"
    assert outcome["alias"] in ("champion", "challenger") and outcome["reason"]

    uri = f"sqlite:///{workdir / 'work' / 'mlflow' / 'mlflow.db'}"
    mv = MlflowClient(uri, uri).get_model_version("hydatis-anomaly-detector", outcome["version"])
    assert mv.tags["gate"] in ("passed", "failed")
    run_data = MlflowClient(uri, uri).get_run(outcome["run_id"]).data
    assert "anomaly_injected_auc_pr" in run_data.metrics  # the validation figures
    assert run_data.tags["eval_data_id"]

    started = [t for e, t in events if e == "start"]
    assert started[:4] == ["import-history-op", "validate", "build-features-op", "materialize-op"]
    assert {"tune-op", "train-op", "evaluate-op", "register-op", "gate-op"} <= set(started)
    assert not [t for e, t in events if e == "failed"]
    assert (workdir / "feature_repo" / "data" / "registry.db").is_file()  # Feast applied
    assert run.run_dir is not None and "hydatis-training" in run.run_dir.name
    log = run.log_path.read_text()
    assert "finished with status" in log and "Traceback" not in log


def test_retraining_pipeline_runs_from_the_dataset_and_features(tiny: TinyRun) -> None:
    first = read_outcomes_file(tiny.run.output.path)[0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYDATIS_WORK_DIR", str(tiny.workdir / "work"))
        retrain = run_local(
            retraining_pipeline,
            {
                "dataset_uri": str(tiny.run.run_dir / "import-history-op" / "dataset"),
                "features_uri": str(tiny.run.run_dir / "build-features-op" / "features"),
                "models": ["anomaly"],
                "train_budget": "tiny",
                "valid_share": 0.25,
            },
            pipeline_root=tiny.workdir / "root",
        )
    again = read_outcomes_file(retrain.output.path)[0]
    assert again["kind"] == "anomaly"
    assert int(again["version"]) == int(first["version"]) + 1
    # the same data and seed give the same model, which cannot beat itself: whichever
    # version is champion stays so
    assert not again["promoted"]


def test_a_rerun_takes_the_unchanged_steps_from_the_cache(tiny: TinyRun) -> None:
    """What makes a failed run resumable: tasks whose inputs did not change are not run
    again; registration and the gate, which act on the registry, always are."""
    events: list[tuple[str, str]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYDATIS_WORK_DIR", str(tiny.workdir / "work"))
        again = run_local(
            training_pipeline,
            {**TINY, "feature_repo": str(tiny.workdir / "feature_repo")},
            pipeline_root=tiny.workdir / "root",
            on_task=lambda e, t: events.append((e, t)),
        )
    reused = {"import-history-op", "build-features-op", "tune-op", "train-op", "evaluate-op"}
    cached = {t for e, t in events if e == "cached"}
    assert reused <= cached
    assert again.cached == len([e for e, _ in events if e == "cached"])
    ran = {t for e, t in events if e == "start"}
    assert {"register-op", "gate-op"} <= ran
    assert not ran & reused
