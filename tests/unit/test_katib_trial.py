"""The trial entry point and the objectives, in-process and without the real traces:
metric lines Katib's StdOut collector reads, the command-line contract, and the
validation / held-out splits kept apart (on small synthetic series and entities)."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
import pytest

from hydatis.dataset import ClusterDataset, empty_table
from katib import objectives, trial
from katib.spaces import MODELS, space
from simulator.importers.anomaly_data import Entity

# --------------------------------------------------------------------------- metric lines


@pytest.mark.parametrize(
    "value",
    [0.1234, 1e-7, 123456.5, -3.25, 0.0, 36.6769],
    ids=["fraction", "tiny", "large", "negative", "zero", "percent"],
)
def test_metric_line_reads_back_through_katibs_filter(value):
    (line,) = trial.format_metrics({"m_x": value}, ["m_x"])
    assert "e" not in line.split("=")[1].lower()  # Katib's default filter reads no exponent
    assert trial.parse_metrics(line) == {"m_x": pytest.approx(value, abs=1e-8)}
    # the same regex, as Katib's Go collector applies it (group 1 name, group 2 value)
    name, number = re.search(trial.METRICS_FORMAT, line).group(1, 2)
    assert (name, float(number)) == ("m_x", pytest.approx(value, abs=1e-8))


def test_non_finite_metrics_are_not_printed_and_order_is_kept():
    lines = trial.format_metrics({"a": 1.0, "b": math.nan, "c": math.inf, "d": 2.0}, "dcba")
    assert [ln.split("=")[0] for ln in lines] == ["d", "a"]


def test_parse_metrics_ignores_log_noise_and_keeps_the_last_value():
    text = "INFO epoch 1 loss: 0.3\nobjective=0.5\nobjective=0.25 other_x=-1.5\nbudget=full\n"
    assert trial.parse_metrics(text) == {"objective": 0.25, "other_x": -1.5}


@pytest.mark.parametrize("model", MODELS)
def test_trial_args_name_every_parameter_once(model):
    sp = space(model)
    texts = {p.name: p.text(v) for p, v in zip(sp.params, sp.defaults().values(), strict=True)}
    args = trial.trial_args(model, texts, budget="tiny", seed=3)
    assert args[:3] == [model, "--budget=tiny", "--seed=3"]
    assert sorted(a.split("=")[0][2:] for a in args[3:]) == sorted(sp.parameters)
    with pytest.raises(ValueError):
        trial.trial_args(model, {**texts, "nope": "1"})


# --------------------------------------------------------------------------- main()


@pytest.fixture
def fake_evaluate(monkeypatch):
    calls = []

    def fake(model, params, **kwargs):
        calls.append((model, params, kwargs))
        sp = space(model)
        return {name: 0.5 + i for i, name in enumerate(sp.metrics)} | {"noise_metric": 9.0}

    monkeypatch.setattr(trial, "evaluate", fake)
    return calls


def _default_args(model, **extra):
    sp = space(model)
    texts = {p.name: p.text(v) for p, v in zip(sp.params, sp.defaults().values(), strict=True)}
    texts.update(extra)
    return trial.trial_args(model, texts, budget="tiny", seed=1)


@pytest.mark.parametrize("model", MODELS)
def test_main_prints_the_space_metrics_and_passes_trainer_params(model, fake_evaluate):
    out = io.StringIO()
    assert trial.main(_default_args(model), out=out) == 0
    printed = trial.parse_metrics(out.getvalue())
    assert list(printed) == space(model).metrics  # only the declared ones, objective first
    (called_model, params, kwargs) = fake_evaluate[0]
    assert called_model == model and kwargs["split"] == "valid"
    assert kwargs["budget"] == "tiny" and kwargs["seed"] == 1
    sp = space(model)
    assert params == sp.to_trainer(sp.defaults())


def test_main_decodes_layers_for_the_trainer(fake_evaluate):
    assert trial.main(_default_args("placement", hidden="128x64"), out=io.StringIO()) == 0
    assert fake_evaluate[0][1]["hidden"] == [128, 64]


@pytest.mark.parametrize(
    "argv",
    [
        ["scheduler", "--x=1"],
        ["load", "--max_depth=6"],
        _default_args("load", max_depth="99"),
        [*_default_args("load"), "--eta=0.1"],
        [*_default_args("load"), "--budget=huge"],
    ],
    ids=["unknown-model", "missing-params", "out-of-range", "unknown-param", "bad-budget"],
)
def test_main_rejects_a_bad_command_line(argv, fake_evaluate, capsys):
    assert trial.main(argv, out=io.StringIO()) == 2
    assert not fake_evaluate


def test_main_fails_without_output_on_a_nan_objective(monkeypatch):
    monkeypatch.setattr(trial, "evaluate", lambda *a, **k: {"load_cpu_wape": math.nan})
    out = io.StringIO()
    assert trial.main(_default_args("load"), out=out) == 1
    assert out.getvalue() == ""


# --------------------------------------------------------------------------- load split


def _node_series(days: float = 4.0, step_s: float = 300.0, nodes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = int(days * 86400 / step_s)
    t = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n) * step_s, unit="s")
    frames = []
    for i in range(nodes):
        phase = np.sin(np.arange(n) * 2 * np.pi * step_s / 86400 + i)
        cpu = np.clip(0.5 + 0.2 * phase + rng.normal(0, 0.03, n), 0, 1)
        mem = np.clip(0.4 + 0.1 * phase + rng.normal(0, 0.01, n), 0, 1)
        frames.append(pd.DataFrame({"ts": t, "node": f"n{i}", "cpu_util": cpu, "mem_util": mem}))
    node_df = pd.DataFrame(
        {"node": [f"n{i}" for i in range(nodes)], "cpu_cores": 8.0, "mem_gib": 32.0}
    )
    return ClusterDataset(
        node_df,
        pd.concat(frames, ignore_index=True),
        empty_table("pods"),
        empty_table("pod_usage"),
        {"source": "synthetic test series"},
    )


def test_load_validation_data_stops_before_the_trainers_test_part():
    from components.train_load import time_split
    from hydatis.features import node_features

    ds = _node_series()
    cut_ds = objectives.training_period(ds)
    _, test, cut = time_split(node_features(ds)["event_timestamp"], test_share=0.2)
    assert test.any()
    assert cut_ds.node_metrics["ts"].max() < cut  # nothing of the test period is read
    assert len(cut_ds.node_metrics) >= 0.75 * len(ds.node_metrics)


def test_load_objective_runs_on_given_series_and_splits_differ():
    data = {"a": _node_series(seed=0), "b": _node_series(seed=1)}
    params = {"n_estimators": 20, "max_depth": 3}
    valid = objectives.evaluate(
        "load",
        params,
        budget="tiny",
        split="valid",
        data={k: objectives.training_period(v) for k, v in data.items()},
    )
    test = objectives.evaluate("load", params, budget="tiny", split="test", data=data)
    for m in (valid, test):
        assert 0 < m["load_cpu_wape"] < 1
        assert m["load_cpu_wape"] == pytest.approx(1 - m["load_cpu_accuracy"])
        assert m["load_cpu_mae_pp"] > 0
    assert valid["load_cpu_wape"] != test["load_cpu_wape"]


# --------------------------------------------------------------------------- anomaly split


def _entity(dataset: str, seed: int, events: list[tuple[int, int]]) -> Entity:
    rng = np.random.default_rng(seed)
    train = rng.normal(0, 1, (600, 4)).astype(np.float32)
    test = rng.normal(0, 1, (400, 4)).astype(np.float32)
    labels = np.zeros(400, dtype=np.int8)
    for a, b in events:
        test[a:b] += 8.0
        labels[a:b] = 1
    return Entity(dataset, f"{dataset}-{seed}", train, test, labels, 60.0, list("abcd"))


def test_anomaly_valid_reads_the_first_half_and_test_the_second():
    # events only in the first half: the validation part finds them, the test part has none
    early = [_entity("smd", 0, [(50, 60), (120, 130)]), _entity("asd", 1, [(30, 40)])]
    params = {"n_forests": 2, "n_estimators": 20}
    valid = objectives.evaluate("anomaly", params, split="valid", data=early)
    test = objectives.evaluate("anomaly", params, split="test", data=early)
    assert valid["anomaly_event_recall"] == 1.0 and valid["anomaly_event_f1"] > 0.5
    assert math.isnan(test["anomaly_event_recall"]) and math.isnan(test["anomaly_event_f1"])
    late = [_entity("smd", 0, [(250, 260)]), _entity("asd", 1, [(300, 310)])]
    assert objectives.evaluate("anomaly", params, split="test", data=late)[
        "anomaly_event_recall"
    ] == pytest.approx(1.0)


def test_anomaly_objective_reports_the_worst_dataset():
    ents = [_entity("smd", 0, [(50, 60)]), _entity("asd", 1, [(30, 31)])]
    m = objectives.evaluate("anomaly", {"n_forests": 2, "n_estimators": 20}, data=ents)
    assert m["anomaly_event_f1"] == min(m["anomaly_smd_event_f1"], m["anomaly_asd_event_f1"])


def test_anomaly_rejects_unknown_params():
    with pytest.raises(ValueError, match="unknown"):
        objectives.evaluate("anomaly", {"trees": 3}, data=[_entity("smd", 0, [(1, 2)])])


# --------------------------------------------------------------------------- improvement


@pytest.mark.parametrize(
    ("value", "baseline", "direction", "expected"),
    [
        (0.8, 1.0, "minimize", 20.0),
        (1.2, 1.0, "minimize", -20.0),
        (0.3, 0.25, "maximize", 20.0),
        (0.2, 0.25, "maximize", -20.0),
        (0.5, 0.0, "maximize", math.nan),
        (math.nan, 1.0, "minimize", math.nan),
    ],
    ids=["lower-is-better", "worse-min", "higher-is-better", "worse-max", "zero-baseline", "nan"],
)
def test_improvement_pct(value, baseline, direction, expected):
    from katib.local import improvement_pct

    got = improvement_pct(value, baseline, direction)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)
