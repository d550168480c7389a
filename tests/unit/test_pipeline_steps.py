"""The pipeline steps' plain functions, in-process: the time split, the training part,
bundles, where the hyperparameters come from, when tuning runs, the gate's summary, and
how a local run's log becomes task events."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.gate import gate_summary
from components.train import (
    BUDGETS,
    load_bundle,
    resolve_params,
    save_bundle,
    split_time,
    training_part,
)
from components.tune import tune_model
from hydatis.dataset import ClusterDataset
from hydatis.errors import ConfigError
from hydatis.models.base import Target, TrainResult
from pipelines.local import _TaskLog
from tests.factories import make_dataset, ts


def _history(hours: float = 4.0, step: float = 60.0) -> ClusterDataset:
    """Two nodes with node series every ``step`` s, and three pods: one before the cut,
    one across it, one after it."""
    times = np.arange(0.0, hours * 3600 + 1, step)
    ds = make_dataset(
        [(8, 32), (16, 64)],
        [
            {"start": 0, "end": 3600, "cpu": 1, "use": [(0.5, 1)] * 12},
            {"start": 7200, "end": 12600, "cpu": 2, "use": [(1.0, 2)] * 18},
            {"start": 13000, "end": None, "cpu": 1, "use": [(0.2, 1)] * 4},
        ],
        horizon_s=times[-1],
    )
    ds.pods["node"] = ["n0", "n1", "n0"]
    rng = np.random.default_rng(0)
    ds.node_metrics = pd.DataFrame(
        {
            "ts": ts(np.concatenate([times, times])),
            "node": ["n0"] * times.size + ["n1"] * times.size,
            "cpu_util": rng.uniform(0.1, 0.9, 2 * times.size),
            "mem_util": rng.uniform(0.2, 0.6, 2 * times.size),
        }
    )
    return ds


@pytest.mark.parametrize(
    ("share", "hours"),
    [(0.25, 3.0), (0.5, 2.0), (0.1, 3.6)],
    ids=["quarter", "half", "tenth"],
)
def test_split_time_cuts_the_node_series_timeline(share: float, hours: float) -> None:
    assert split_time(_history(), share) == ts(hours * 3600)


@pytest.mark.parametrize("share", [0.0, 1.0, -0.2, 1.5], ids=["zero", "one", "negative", "over"])
def test_split_time_rejects_a_share_outside_zero_one(share: float) -> None:
    with pytest.raises(ConfigError, match="valid_share"):
        split_time(_history(), share)


def test_split_time_needs_node_series() -> None:
    ds = _history()
    ds.node_metrics = ds.node_metrics.iloc[0:0]
    with pytest.raises(ConfigError, match="no node series"):
        split_time(ds)


def test_the_training_part_reveals_nothing_after_the_cut() -> None:
    ds = _history()
    cut = split_time(ds, 0.25)
    part = training_part(ds, 0.25)
    assert part.node_metrics["ts"].max() < cut
    assert part.pod_usage["ts"].max() < cut
    assert set(part.pods["pod"]) == {"p0", "p1"}  # p2 starts after the cut
    running = part.pods.set_index("pod")["end_ts"]
    assert running["p0"] == ts(3600)  # ended before the cut: its end is known
    assert pd.isna(running["p1"])  # still running at the cut: its end is not revealed
    assert part.meta["horizon_s"] == pytest.approx(3 * 3600)
    assert "ramp_s" not in part.meta


def _result(model) -> TrainResult:
    return TrainResult(
        name="anomaly",
        model=model,
        params={"n_forests": 2, "nested": {"a": 1}, "tuple": (1, 2)},
        metrics={"anomaly_injected_fpr": 0.01, "undefined": float("nan")},
        table=pd.DataFrame({"detector": ["model"], "fpr": [0.01]}),
        targets=[Target("anomaly_injected_fpr", "<=", 0.08)],
        primary="anomaly_injected_fpr",
        higher_is_better=False,
        report="# report\n",
        features=["a", "b"],
        eval_data_id="abc",
    )


def test_a_bundle_round_trips_the_training(tmp_path: Path) -> None:
    from hydatis.models.anomaly_detector import AnomalyDetector

    x = np.random.default_rng(0).normal(size=(300, 2))
    model = AnomalyDetector(n_forests=2, n_estimators=10, random_state=0).fit(x, ["a", "b"])
    extra = tmp_path / "importance.csv"
    extra.write_text("x\n1\n")
    result = _result(model)
    result.artifacts = {"importance": extra}
    save_bundle(result, tmp_path / "bundle")
    back = load_bundle(tmp_path / "bundle")
    assert back.name == "anomaly" and back.primary == "anomaly_injected_fpr"
    assert not back.higher_is_better and back.eval_data_id == "abc"
    assert back.targets == result.targets
    assert back.metrics["anomaly_injected_fpr"] == 0.01
    assert np.isnan(back.metrics["undefined"])
    assert back.params["tuple"] == [1, 2] and back.params["nested"] == {"a": 1}
    assert back.report == "# report\n" and back.features == ["a", "b"]
    assert back.artifacts["importance"].read_text() == "x\n1\n"
    np.testing.assert_allclose(back.model.score(x[:10]), model.score(x[:10]))


@pytest.mark.parametrize(
    ("text", "params", "source"),
    [
        ('{"max_depth": 4}', {"max_depth": 4}, "given"),
        ("{}", {}, "defaults"),
        ("", {}, "defaults"),
    ],
    ids=["tuned", "empty-object", "nothing"],
)
def test_resolve_params(monkeypatch, tmp_path, text, params, source) -> None:
    monkeypatch.setenv("HYDATIS_WORK_DIR", str(tmp_path))  # no earlier search here
    assert resolve_params("load", text) == (params, source)


def test_resolve_params_falls_back_to_the_last_search(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HYDATIS_WORK_DIR", str(tmp_path))
    (tmp_path / "tuning").mkdir()
    record = {"model": "load", "params": {"max_depth": 3}, "created": "2026-01-01"}
    (tmp_path / "tuning" / "load_best.json").write_text(json.dumps(record))
    params, source = resolve_params("load", "")
    assert params == {"max_depth": 3} and source.startswith("last search")


@pytest.mark.parametrize("text", ["[1, 2]", "not json"], ids=["a-list", "garbage"])
def test_resolve_params_rejects_what_is_not_an_object(text: str) -> None:
    with pytest.raises(ConfigError):
        resolve_params("load", text)


def test_no_trials_means_the_trainers_defaults() -> None:
    record = tune_model("placement", trials=0)
    assert record["source"] == "defaults" and record["params"] == {}
    assert "0 trials" in record["reason"]


@pytest.mark.parametrize("model", ["load", "anomaly"])
def test_searches_on_the_public_traces_need_the_data_directory(monkeypatch, model) -> None:
    monkeypatch.setenv("HYDATIS_DATA_DIR", "")
    record = tune_model(model, trials=5)
    assert record["source"] == "defaults" and "no data directory" in record["reason"]


def test_tune_rejects_an_unknown_model() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        tune_model("lstm", trials=1)


def test_the_budgets_grow_from_tiny_to_full() -> None:
    tiny, quick, full = BUDGETS["tiny"], BUDGETS["quick"], BUDGETS["full"]
    assert tiny.placement_episodes < quick.placement_episodes < full.placement_episodes
    assert tiny.load_max_train_rows < quick.load_max_train_rows < full.load_max_train_rows


def _outcome(kind: str, promoted: bool, value: float | None = 0.5) -> dict:
    return {
        "kind": kind,
        "name": f"hydatis-{kind}",
        "version": "3",
        "alias": "champion" if promoted else "challenger",
        "promoted": promoted,
        "reason": "ok" if promoted else "misses target x | y",
        "primary": "m",
        "value": value,
    }


@pytest.mark.parametrize(
    ("flags", "expected"),
    [((True, False), True), ((False, False), False), ((), False)],
    ids=["one-promoted", "none-promoted", "no-models"],
)
def test_gate_summary_deploys_when_any_model_was_promoted(flags, expected) -> None:
    outcomes = [_outcome(f"m{i}", flag) for i, flag in enumerate(flags)]
    promoted, text = gate_summary(outcomes)
    assert promoted is expected
    assert f"{sum(flags)} of {len(flags)} promoted" in text
    assert "x / y" in text or not any(not f for f in flags)  # a pipe would break the table


def test_gate_summary_shows_a_missing_figure_as_a_dash() -> None:
    _, text = gate_summary([_outcome("load", False, value=None)])
    assert "| – |" in text


def test_the_task_log_turns_kfp_lines_into_events() -> None:
    events: list[tuple[str, str]] = []
    sink = io.StringIO()
    log = _TaskLog(sink, lambda e, t: events.append((e, t)))
    log.write("12:00:00.000 - INFO - Executing task \x1b[96m'train-op'\x1b[0m\n")
    log.write("    some output of the task\n12:00:01.000 - INFO - Task \x1b[96m'train-op'")
    log.write("\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m\n")
    log.write("INFO Task tune-op cache hit (key=abc123); using cached outputs\n")
    log.write("Task 'gate-op' finished with status \x1b[91mFAILURE\x1b[0m\n")
    assert events == [
        ("start", "train-op"),
        ("done", "train-op"),
        ("cached", "tune-op"),
        ("failed", "gate-op"),
    ]
    assert log.cached == 1 and log.failed == "gate-op"
    assert "some output of the task" in sink.getvalue()


@pytest.mark.parametrize("step", [60.0, 120.0], ids=["serving-grid", "coarser"])
def test_a_replayed_history_has_node_series_on_the_metrics_grid(step: float) -> None:
    from components.import_trace import replay_history
    from simulator.datasets import default_dataset

    trace, _ = default_dataset(nodes=4, horizon_s=1800.0, seed=0, synthetic=True)
    hist = replay_history(trace, metrics_step_s=step)
    gaps = hist.node_metrics.groupby("node")["ts"].diff().dropna().dt.total_seconds()
    assert set(gaps) == {step}
    assert hist.node_metrics["node"].nunique() == 4 and hist.meta["metrics_step_s"] == step


def test_the_future_part_starts_at_the_cut_and_keeps_nothing_before_it() -> None:
    from components.import_trace import future_part
    from simulator.datasets import default_dataset

    trace, _ = default_dataset(nodes=4, horizon_s=4 * 3600.0, seed=0, synthetic=True)
    cut = trace.pods["start_ts"].min() + pd.Timedelta(hours=3)
    part = future_part(trace, 3 * 3600.0)
    assert part.pods["start_ts"].min() >= cut
    assert part.pod_usage["ts"].min() >= cut
    assert part.meta["horizon_s"] == pytest.approx(3600.0)
