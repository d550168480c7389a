"""The load predictor, its naive baselines, the metrics and the time-ordered split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.train_load import evaluate_load, time_split, train_load
from hydatis.dataset import ClusterDataset, empty_table
from hydatis.features import feature_names, node_features, node_labels
from hydatis.models.base import TrainResult
from hydatis.models.forecast_baselines import (
    accuracy_1_minus_wape,
    ewma,
    mae_pp,
    persistence,
    rmse,
    seasonal_naive,
)
from hydatis.models.load_predictor import LoadPredictor, infer_latency_ms

_SMALL = {"n_estimators": 20, "max_depth": 3, "early_stopping_rounds": 5}


def _series_dataset(n_nodes: int = 3, days: float = 2.0, seed: int = 0) -> ClusterDataset:
    """Nodes with a daily CPU cycle plus an AR(1) wander and slowly moving memory, 5-min."""
    rng = np.random.default_rng(seed)
    step = 300
    n = int(days * 86400 / step)
    t = np.arange(n) * step
    t0 = pd.Timestamp("2024-01-01T00:00:00Z")
    frames = []
    for i in range(n_nodes):
        ar = np.zeros(n)
        for k in range(1, n):
            ar[k] = 0.9 * ar[k - 1] + rng.normal(0, 0.02)
        cpu = 0.4 + 0.15 * np.sin(2 * np.pi * t / 86400 + i) + ar
        mem = 0.6 + 0.05 * np.sin(2 * np.pi * t / 86400 / 3 + i) + 0.3 * ar
        frames.append(
            pd.DataFrame(
                {
                    "ts": t0 + pd.to_timedelta(t, unit="s"),
                    "node": f"n{i}",
                    "cpu_util": np.clip(cpu, 0, 1),
                    "mem_util": np.clip(mem, 0, 1),
                }
            )
        )
    nodes = pd.DataFrame(
        {"node": [f"n{i}" for i in range(n_nodes)], "cpu_cores": 8.0, "mem_gib": 32.0}
    )
    pods, usage = empty_table("pods"), empty_table("pod_usage")
    return ClusterDataset(nodes, pd.concat(frames, ignore_index=True), pods, usage).validate()


@pytest.fixture(scope="module")
def table() -> tuple[ClusterDataset, pd.DataFrame, pd.DataFrame]:
    ds = _series_dataset()
    return ds, node_features(ds), node_labels(ds, horizon_s=300)


@pytest.fixture(scope="module")
def fitted(table) -> LoadPredictor:
    _, feats, labels = table
    return LoadPredictor(**_SMALL).fit(feats, labels)


def test_fit_predict_shape_range_and_beats_nothing_worse_than_clipping(table, fitted):
    _, feats, labels = table
    pred = fitted.predict(feats)
    assert list(pred.columns) == ["node_id", "event_timestamp", "cpu_util_pred", "mem_util_pred"]
    assert len(pred) == len(feats)
    assert pred[["cpu_util_pred", "mem_util_pred"]].notna().all().all()
    assert pred["cpu_util_pred"].between(0, 1).all() and pred["mem_util_pred"].between(0, 1).all()
    # in-sample the change model must be no worse than persistence (its starting point)
    y = labels["cpu_util_target"].to_numpy()
    assert mae_pp(y, pred["cpu_util_pred"]) <= mae_pp(y, persistence(feats)["cpu_util_pred"])
    assert fitted.feature_names_ == feature_names()


def test_save_load_round_trip_gives_identical_predictions(table, fitted, tmp_path):
    _, feats, _ = table
    fitted.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "cpu.json",
        "mem.json",
        "load_predictor.json",
    }
    back = LoadPredictor.load(tmp_path / "m")
    assert back.get_params() == fitted.get_params()
    pd.testing.assert_frame_equal(back.predict(feats), fitted.predict(feats))
    x = feats[fitted.feature_names_].to_numpy(np.float32)[:50]
    np.testing.assert_array_equal(back.predict_array(x), fitted.predict_array(x))


def test_same_seed_same_model(table):
    _, feats, labels = table
    a = LoadPredictor(**_SMALL, random_state=3).fit(feats, labels).predict(feats)
    b = LoadPredictor(**_SMALL, random_state=3).fit(feats, labels).predict(feats)
    pd.testing.assert_frame_equal(a, b)


def test_constructor_stores_params_unchanged():
    m = LoadPredictor(horizon_s=900, n_estimators=7, learning_rate=0.3)
    assert (m.horizon_s, m.n_estimators, m.learning_rate) == (900, 7, 0.3)
    assert not hasattr(m, "boosters_")
    with pytest.raises(RuntimeError, match="not fitted"):
        m.predict_array(np.zeros((1, 75), np.float32))


def test_predict_array_checks_shape_and_handles_empty(fitted):
    with pytest.raises(ValueError, match="expected an"):
        fitted.predict_array(np.zeros((2, 3), np.float32))
    assert fitted.predict_array(np.zeros((0, 75), np.float32)).shape == (0, 2)


def test_feature_importance_and_latency(fitted):
    imp = fitted.feature_importance()
    assert list(imp.columns) == ["feature", "cpu_gain", "mem_gain", "gain"]
    assert len(imp) == 75
    assert imp["cpu_gain"].sum() == pytest.approx(1.0)
    assert imp["gain"].is_monotonic_decreasing
    assert infer_latency_ms(fitted, n_nodes=100, repeats=2) > 0


# --------------------------------------------------------------------------- baselines


def _frame(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    ts = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame({"node_id": "a", "event_timestamp": ts, **cols})


def test_baselines_on_hand_values():
    f = _frame(
        cpu_util=[0.2, 0.4, np.nan],
        mem_util=[0.5, 0.5, 0.6],
        cpu_lag_1d=[np.nan, 0.1, 0.3],
        mem_lag_1d=[0.7, np.nan, 0.2],
        cpu_ewma_10m=[0.25, np.nan, 0.35],
        mem_ewma_10m=[0.5, 0.55, 0.6],
    )
    p = persistence(f)
    np.testing.assert_allclose(p["cpu_util_pred"], [0.2, 0.4, np.nan])
    s = seasonal_naive(f)  # from the lag features, persistence where the lag is missing
    np.testing.assert_allclose(s["cpu_util_pred"], [0.2, 0.1, 0.3])
    np.testing.assert_allclose(s["mem_util_pred"], [0.7, 0.5, 0.2])
    e = ewma(f)
    np.testing.assert_allclose(e["cpu_util_pred"], [0.25, 0.4, 0.35])


def test_seasonal_naive_reads_the_label_a_day_back():
    ts = pd.to_datetime(["2024-01-01 00:00", "2024-01-02 00:00"], utc=True)
    feats = pd.DataFrame(
        {"node_id": ["a", "a"], "event_timestamp": ts, "cpu_util": 0.5, "mem_util": 0.5}
    )
    labels = feats[["node_id", "event_timestamp"]].assign(
        cpu_util_target=[0.9, 0.1], mem_util_target=[0.8, 0.2]
    )
    s = seasonal_naive(feats, labels)
    # row 2 forecasts y(t + h) with the label of the row a day earlier: y(t + h - 1 d)
    np.testing.assert_allclose(s["cpu_util_pred"], [0.5, 0.9])
    np.testing.assert_allclose(s["mem_util_pred"], [0.5, 0.8])


@pytest.mark.parametrize(
    ("y", "p", "mae", "rms", "acc"),
    [
        ([0.5, 0.5], [0.5, 0.5], 0.0, 0.0, 1.0),
        ([0.2, 0.4], [0.3, 0.2], 15.0, np.sqrt((0.01 + 0.04) / 2), 1 - 0.3 / 0.6),
        ([0.2, np.nan, 0.4], [0.3, 0.9, 0.2], 15.0, np.sqrt(0.025), 0.5),
        ([0.0, 0.0], [0.1, 0.1], 10.0, 0.1, np.nan),
        ([], [], np.nan, np.nan, np.nan),
    ],
    ids=["perfect", "hand-computed", "nan-pair-ignored", "zero-actual", "empty"],
)
def test_metrics(y, p, mae, rms, acc):
    np.testing.assert_allclose(mae_pp(y, p), mae, atol=1e-12)
    np.testing.assert_allclose(rmse(y, p), rms, atol=1e-12)
    np.testing.assert_allclose(accuracy_1_minus_wape(y, p), acc, atol=1e-12)


def test_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError):
        mae_pp([0.1, 0.2], [0.1])


# --------------------------------------------------------------------------- split


@pytest.mark.parametrize("purge_s", [0.0, 600.0], ids=["no-purge", "purge-two-steps"])
@pytest.mark.parametrize("test_share", [0.2, 0.5], ids=["last-20pct", "last-half"])
def test_time_split_never_puts_test_before_train(purge_s, test_share):
    rng = np.random.default_rng(1)
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        rng.permutation(np.arange(0, 86400 * 3, 300)), unit="s"
    )
    train, test, cut = time_split(pd.Series(ts), test_share=test_share, purge_s=purge_s)
    assert train.any() and test.any() and not (train & test).any()
    assert ts[train].max() < ts[test].min()
    assert ts[train].max() + pd.Timedelta(seconds=purge_s) < cut <= ts[test].min()
    span = ts.max() - ts.min()
    assert (ts.max() - cut) == pytest.approx(test_share * span, abs=pd.Timedelta(seconds=1))


def test_time_split_rejects_bad_share():
    with pytest.raises(ValueError):
        time_split(pd.Series(pd.to_datetime(["2024-01-01"], utc=True)), test_share=0.0)


# --------------------------------------------------------------------------- component


def test_train_load_on_synthetic_sources(tmp_path):
    datasets = {"a": _series_dataset(2, 2.0, seed=1), "b": _series_dataset(2, 2.0, seed=2)}
    res = train_load(
        datasets=datasets, horizons=(300, 900), params=_SMALL, max_train_rows=None, out_dir=tmp_path
    )
    assert isinstance(res, TrainResult) and res.name == "load"
    t = res.table
    assert set(t["model"]) == {"model", "persistence", "seasonal_naive", "ewma"}
    assert set(t["source"]) == {"a", "b"} and set(t["horizon_s"]) == {300, 900}
    assert len(t) == 2 * 2 * 2 * 4
    for key in (
        "load_cpu_accuracy",
        "load_mem_accuracy",
        "load_cpu_mae_ratio_vs_best_baseline",
        "load_mem_mae_ratio_vs_best_baseline",
        "load_cpu_accuracy_a",
        "load_mem_accuracy_b",
    ):
        assert key in res.metrics
    worst = t[(t.horizon_s == 300) & (t.target == "cpu") & (t.model == "model")]["accuracy"].min()
    assert res.metrics["load_cpu_accuracy"] == pytest.approx(worst)
    assert res.artifacts["feature_importance"].is_file()
    assert len(res.eval_data_id) == 64 and "1 − WAPE" in res.report
    assert res.model.horizon_s == 300
    again = train_load(
        datasets=datasets, horizons=(300, 900), params=_SMALL, max_train_rows=None, out_dir=tmp_path
    )
    assert again.eval_data_id == res.eval_data_id
    assert again.metrics["load_cpu_accuracy"] == res.metrics["load_cpu_accuracy"]
    ev = evaluate_load(res.model, datasets["a"], source="a")
    pd.testing.assert_frame_equal(
        ev, t[(t.source == "a") & (t.horizon_s == 300)].reset_index(drop=True)
    )
