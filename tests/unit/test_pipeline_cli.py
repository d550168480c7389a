"""``hydatis pipeline`` and ``hydatis demo``: their options, the pipeline arguments they
make, ``pipeline compile``, and the demo report's own sections."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from cli import demo, pipeline
from hydatis.errors import HydatisError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hydatis")
    sub = parser.add_subparsers(dest="command", required=True)
    pipeline.add_parser(sub).set_defaults(func=pipeline.run)
    demo.add_parser(sub).set_defaults(func=demo.run)
    return parser


def test_pipeline_compile_writes_one_yaml_per_pipeline(tmp_path: Path, capsys) -> None:
    args = _parser().parse_args(["pipeline", "compile", "--out", str(tmp_path)])
    assert args.func(args) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["hydatis-retraining.yaml", "hydatis-training.yaml"]
    for path in tmp_path.iterdir():
        assert yaml.safe_load(path.read_text())["pipelineInfo"]["name"] == path.stem
    assert "wrote" in capsys.readouterr().out


def test_training_arguments_from_the_options(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HYDATIS_DATA_DIR", str(tmp_path))
    args = _parser().parse_args(
        ["pipeline", "run", "--nodes", "50", "--trials", "0", "--models", "anomaly,load"]
    )
    got = pipeline.training_arguments(args, deploy="local")
    assert got["nodes"] == 50 and got["tune_trials"] == 0
    assert got["models"] == ["anomaly", "load"]
    assert got["data_dir"] == str(tmp_path) and got["synthetic"] is False
    assert got["deploy_target"] == "local" and got["train_budget"] == "full"
    assert Path(got["feature_repo"]).is_absolute()


def test_without_a_data_directory_no_trace_directory_is_passed(monkeypatch) -> None:
    monkeypatch.setenv("HYDATIS_DATA_DIR", "")
    args = _parser().parse_args(["demo", "--out", "x"])
    got = pipeline.training_arguments(args)
    assert got["data_dir"] == ""  # the import step then falls back to the synthetic default
    forced = pipeline.training_arguments(_parser().parse_args(["demo", "--synthetic"]))
    assert forced["synthetic"] is True and forced["data_dir"] == ""


def test_the_demo_defaults_are_small_budgets_on_the_held_out_split() -> None:
    args = _parser().parse_args(["demo", "--out", "x"])
    assert (args.trials, args.tune_budget, args.budget) == (3, "tiny", "quick")
    assert (args.horizon, args.history, args.valid_share) == (86400.0, 57600.0, 0.25)
    assert args.schedulers.split(",") == list(demo.BASELINES)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pipeline", "run", "--models", "lstm"], "--models"),
        (["pipeline", "run", "--source", "dataset"], "--dataset"),
        (["pipeline", "run", "--source", "prometheus"], "--prometheus"),
    ],
    ids=["unknown-model", "dataset-without-path", "prometheus-without-url"],
)
def test_bad_options_are_refused_with_the_option_named(argv, message) -> None:
    args = _parser().parse_args(argv)
    with pytest.raises(HydatisError, match=message):
        pipeline.training_arguments(args)


def test_retraining_needs_its_dataset_and_features() -> None:
    args = _parser().parse_args(["pipeline", "run", "retraining"])
    with pytest.raises(HydatisError, match="--features"):
        args.func(args)


INFO = {
    "description": "a trace",
    "horizon_s": 86400.0,
    "history_s": 57600.0,
    "valid_share": 0.25,
    "seed": 0,
}


def test_the_split_is_named_in_trace_hours() -> None:
    rows = {part: span for part, span, _ in demo._split_rows(INFO)}
    assert rows == {
        "training": "[0 h, 12 h)",
        "validation": "[12 h, 16 h)",
        "warm-up": "[15 h, 16 h)",
        "held-out": "[16 h, 24 h)",
    }


def _results(ml_objective: float) -> dict[str, dict[str, float]]:
    base = {"hot_share": 0.05, "availability": 0.98}
    return {
        "ml": {**base, "objective": ml_objective, "hot_share": 0.03, "availability": 0.99},
        "default": {**base, "objective": 0.04},
        "random": {**base, "objective": 0.05, "availability": 0.95},
    }


@pytest.mark.parametrize(
    ("ml_objective", "verdict"),
    [(0.03, "(better)"), (0.045, "(not better)")],
    ids=["ml-best", "baseline-best"],
)
def test_the_summary_compares_ml_with_the_best_baseline(ml_objective, verdict) -> None:
    lines = demo._summary_lines(_results(ml_objective))
    assert lines[0].startswith("placement objective: ml") and lines[0].endswith(verdict)
    assert "best baseline default" in lines[0]
    assert lines[1].endswith("(better)")  # hot share 0.03 < 0.05
    assert lines[-1].startswith("improvement over random")


def test_no_summary_without_the_ml_row() -> None:
    assert demo._summary_lines({"default": _results(0.1)["default"]}) == []


def test_the_report_gets_the_demo_sections(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text("<html><body><h1>Scheduler comparison</h1></body></html>")
    outcomes = [
        {
            "kind": "load",
            "name": "hydatis-load-predictor",
            "version": "2",
            "alias": "challenger",
            "reason": "misses target load_cpu_accuracy >= 0.89 (got 0.88)",
        }
    ]
    reports = {
        "load": {
            "report.md": "# Load\n\ntraining text\n\n## Validation: load predictor\n\n"
            "| target | accuracy |\n|---|---|\n| cpu | 0.88 |\n"
        }
    }
    stack = {"sources": {"load": "models:/hydatis-load-predictor/2"}, "origin": {}}
    demo._augment_html(
        page, info=INFO, outcomes=outcomes, reports=reports, results=_results(0.03), stack=stack
    )
    text = page.read_text()
    for heading in (
        "How this run was made",
        "The ML scheduler",
        "Summary",
        "The models' evaluation",
        "What each number means",
    ):
        assert heading in text
    assert "[16 h, 24 h)" in text and "models:/hydatis-load-predictor/2" in text
    assert "<table>" in text and "<td>0.88</td>" in text  # the Markdown table, rendered
    assert "training text" not in text  # only the validation section
    assert text.rstrip().endswith("</body></html>")
