"""The demo's operations reports (cli/demo.py): the business report on its comparison,
the capacity forecast and the drift verdicts on its history dataset — each a section of
the report, a step that fails or lacks history reported with its reason, the rest going
on. Run on small synthetic datasets (the full demo is tests/integration/test_demo.py)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from cli import demo
from components.import_trace.core import replay_history, trace
from hydatis.dataset import save_dataset
from simulator.engine import SimConfig, simulate
from simulator.metrics import summarize
from simulator.report import series_for_report, write_results
from simulator.schedulers import make_scheduler
from simulator.workload import compile_workload
from tests.model_fixtures import fit_tiny_models

DAY = 86400.0
KNOBS = {"nodes": 6, "load_factor": 1.0, "usage_scale": 1.0, "seed": 0, "synthetic": True}


def _history(path: Path, horizon_s: float) -> Path:
    """A replayed synthetic trace written as the pipeline's import-history task does."""
    ds, _ = trace(
        nodes=6, load_factor=1.0, usage_scale=1.0, horizon_s=horizon_s, seed=0, synthetic=True
    )
    hist = replay_history(ds, seed=0)
    hist.meta.update({"history_s": horizon_s, "trace_knobs": {**KNOBS, "horizon_s": horizon_s}})
    return save_dataset(hist, path)


@pytest.fixture(scope="module")
def long_history(tmp_path_factory) -> Path:
    """Five days: enough for the 24 h forecast (4 d) and the drift calibration (2 d of
    reference), not for 7 d or 30 d."""
    return _history(tmp_path_factory.mktemp("hist") / "dataset", 5 * DAY)


@pytest.fixture(scope="module")
def short_history(tmp_path_factory) -> Path:
    """Sixteen hours, as the demo's default history."""
    return _history(tmp_path_factory.mktemp("hist16") / "dataset", 16 * 3600.0)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Path:
    """A comparison's results.json with ``ml`` (here the tlp baseline under that name)
    and ``default``."""
    out = tmp_path_factory.mktemp("sim")
    ds, _ = trace(nodes=4, horizon_s=1800.0, seed=0, synthetic=True)
    workload = compile_workload(ds)
    results, series = {}, {}
    for name, sched in (("ml", "tlp"), ("default", "default")):
        r = simulate(workload, make_scheduler(sched), seed=0, config=SimConfig())
        results[name], series[name] = summarize(r), series_for_report(r)
    write_results(out, results, {"dataset": {"nodes": 4}, "series": series})
    return out


def test_business_step_writes_the_report_and_sums_it_up(comparison: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    shutil.copytree(comparison, out)
    step = demo.business_step(out, out / "business")
    assert step.status == "ok" and step.link == "business/business.html"
    for name in ("business.html", "business.json", "business.prom"):
        assert (out / "business" / name).is_file()
    saved = json.loads((out / "business" / "business.json").read_text())
    assert saved["candidate"] == "ml" and saved["baseline"] == "default"
    assert step.lines[0].startswith("ml against default: nodes needed")
    assert "USD per year" in step.lines[1]


def test_forecast_step_forecasts_what_the_history_allows_and_names_the_rest(
    long_history: Path, tmp_path: Path
) -> None:
    step = demo.forecast_step(long_history, tmp_path / "forecast")
    assert step.status == "partial"
    assert [line.split(" cluster ")[0] for line in step.lines] == ["24h", "24h"]
    assert "cluster cpu" in step.lines[0] and "cluster mem" in step.lines[1]
    assert "7d: needs 16 d of history, this one has 4.96 d" in step.reason
    assert "30d: needs 62 d" in step.reason
    assert step.link == "forecast/forecast.html"
    assert (tmp_path / "forecast" / "forecast.html").is_file()


def test_forecast_step_on_too_short_a_history_says_so(short_history: Path, tmp_path: Path) -> None:
    step = demo.forecast_step(short_history, tmp_path / "forecast")
    assert step.status == "too short" and step.link is None and step.lines == []
    assert step.reason.startswith("history too short for 24h: needs 4 d of history")
    assert not (tmp_path / "forecast").exists()


def test_drift_step_gives_a_verdict_per_kind_with_the_load_model(
    long_history: Path, tmp_path: Path
) -> None:
    models = fit_tiny_models(tmp_path / "models")
    step = demo.drift_step(
        long_history, tmp_path / "drift", model_dir=models["load"], model_note="tiny model"
    )
    assert step.status == "ok", step.reason
    verdict = json.loads((tmp_path / "drift" / "verdict.json").read_text())
    kinds = list(verdict["kinds"])
    assert {"data", "prediction", "target"} <= set(kinds)
    assert [line.split(":")[0] for line in step.lines[:-1]] == kinds
    assert step.lines[-1].endswith("load predictor: tiny model")
    assert verdict["retraining"].get("started") is not True  # the demo never retrains
    assert (tmp_path / step.link).is_file()


def test_drift_step_on_too_short_a_history_says_so(short_history: Path, tmp_path: Path) -> None:
    step = demo.drift_step(short_history, tmp_path / "drift", model_dir=None, model_note="none")
    assert step.status == "too short"
    assert step.reason.startswith("history too short: the drift check's reference")
    assert "spans 1 calendar day(s)" in step.reason and "needs at least 2" in step.reason
    assert not (tmp_path / "drift").exists()  # told before any feature was computed


def test_the_early_answer_agrees_with_the_drift_check(short_history: Path, tmp_path: Path) -> None:
    """The drift check itself refuses the same history: the early answer only saves its
    work (the five-day history it lets through is checked in full above)."""
    from cli import drift as drift_cli
    from hydatis.errors import HydatisError

    parser = argparse.ArgumentParser(prog="hydatis")
    drift_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["drift", "check", "--dataset", str(short_history), "--out", str(tmp_path / "d")]
    with pytest.raises(HydatisError, match="calendar day"):
        drift_cli.run(parser.parse_args([*argv, "--no-retrain", "--no-report"]))


def _root_with(history: Path, root: Path, run: str) -> Path:
    dest = root / run / "import-history-op" / "dataset"
    shutil.copytree(history, dest)
    return dest


def test_history_dataset_is_the_runs_or_the_newest_matching(
    short_history: Path, tmp_path: Path
) -> None:
    root = tmp_path / "pipeline"
    args = {**KNOBS, "horizon_s": 16 * 3600.0, "history_s": 16 * 3600.0}
    older = _root_with(short_history, root, "run-1")
    assert demo.history_dataset(None, root, args) == older  # the run's task was cached
    mine = _root_with(short_history, root, "run-2")
    assert demo.history_dataset(root / "run-2", root, args) == mine
    with pytest.raises(demo.HydatisError, match=r"history dataset .* is not under"):
        demo.history_dataset(None, root, {**args, "nodes": 7})


def test_a_failing_step_is_reported_and_the_others_go_on(comparison: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    shutil.copytree(comparison, out)
    steps = demo.operations_steps(
        out,
        run_dir=None,
        root=tmp_path / "empty-root",
        arguments={**KNOBS, "horizon_s": DAY, "history_s": 16 * 3600.0},
        outcomes=[],
        baseline="default",
    )
    assert [(s.name, s.status) for s in steps] == [
        ("business", "ok"),
        ("forecast", "failed"),
        ("drift", "failed"),
    ]
    assert all("history dataset" in s.reason for s in steps[1:])
    assert all(s.seconds >= 0 for s in steps)


def test_the_report_gets_the_operations_section(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text("<html><body><h1>Scheduler comparison</h1></body></html>")
    steps = [
        demo.StepOutcome("business", "ok", 0.4, ["ml against default: <saved>"], "business/b.html"),
        demo.StepOutcome("forecast", "too short", 0.7, reason="history too short for 24h"),
        demo.StepOutcome("drift", "failed", 1.0, reason="DriftInputError: no rows"),
    ]
    demo._augment_html(
        page,
        info={
            "description": "t",
            "horizon_s": DAY,
            "history_s": 57600.0,
            "valid_share": 0.25,
            "seed": 0,
        },
        outcomes=[],
        reports={},
        results={},
        stack={"sources": {}},
        operations=steps,
    )
    text = page.read_text()
    assert "<h2>Operations reports</h2>" in text
    assert "<a href='business/b.html'>business/b.html</a>" in text
    assert "ml against default: &lt;saved&gt;" in text
    assert "<td>too short</td>" in text and "history too short for 24h" in text
    assert "DriftInputError: no rows" in text
    for title in ("Business report", "Capacity forecast", "Drift verdicts"):
        assert f"<h3>{title}</h3>" in text


def test_the_load_model_for_drift_is_the_runs(tmp_path: Path) -> None:
    assert demo.load_model_dir([], tmp_path) == (None, "no load predictor in this run's outcomes")
    model = tmp_path / "load"
    model.mkdir()
    outcomes = [{"kind": "anomaly", "uri": "models:/x/1"}, {"kind": "load", "uri": str(model)}]
    assert demo.load_model_dir(outcomes, tmp_path / "out") == (model, str(model))
