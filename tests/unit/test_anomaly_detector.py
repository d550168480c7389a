"""The anomaly detector on synthetic data with planted anomalies, and the evaluation
metrics on hand-computed label/alarm sequences."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from hydatis.models.anomaly_detector import (
    AnomalyDetector,
    IForestBaseline,
    PCABaseline,
    ZScoreBaseline,
    persist,
)
from hydatis.models.anomaly_metrics import (
    alarm_precision,
    detection_delays,
    evaluate_series,
    event_recall,
    false_alarms_per_day,
    point_adjust,
    pointwise,
    runs,
)
from simulator.importers.anomaly_data import load_pickled_array

NAMES = ["cpu", "mem", "net", "disk", "load"]


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlated normal history; the test part has a spike on ``net`` (+10 sd) and
    ``disk`` (+5 sd) at rows 300-309."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(2600, 2))
    x = np.column_stack(
        [
            base[:, 0],
            base[:, 0] * 0.8 + base[:, 1] * 0.2,
            base[:, 1],
            rng.normal(size=2600),
            base[:, 0],
        ]
    )
    x[:, 4] = 0.5 * x[:, 0] + 0.1 * rng.normal(size=2600)
    train, test = x[:2000], x[2000:].copy()
    labels = np.zeros(len(test), dtype=np.int8)
    test[300:310, 2] += 10.0
    test[300:310, 3] += 5.0
    labels[300:310] = 1
    return train, test, labels


@pytest.fixture(scope="module")
def fitted() -> tuple[AnomalyDetector, np.ndarray, np.ndarray]:
    train, test, labels = _data()
    det = AnomalyDetector(n_forests=3, n_estimators=50, random_state=0).fit(train, NAMES)
    return det, test, labels


def test_scores_in_unit_interval_and_planted_anomaly_found(fitted):
    det, test, labels = fitted
    s = det.score(test)
    assert s.shape == (len(test),)
    assert np.all((s >= 0) & (s <= 1))
    assert s[labels == 1].min() > np.quantile(s[labels == 0], 0.99)
    flags = det.flag(test)
    assert flags[labels == 1].all()
    assert flags[labels == 0].mean() < 0.05


def test_explanation_names_planted_metric(fitted):
    det, test, _ = fitted
    (row,) = det.explain(test[305])
    assert row["top"][0]["feature"] == "net"
    assert row["flag"] is True
    assert row["top"][0]["robust_z"] > 5


def test_save_load_identical_scores(fitted, tmp_path):
    det, test, _ = fitted
    path = det.save(tmp_path / "model")
    again = AnomalyDetector.load(path)
    np.testing.assert_array_equal(again.score(test), det.score(test))
    assert again.threshold_ == det.threshold_
    assert (path / "anomaly_detector.json").exists()


def test_same_seed_same_scores():
    train, test, _ = _data()
    a = AnomalyDetector(n_forests=2, n_estimators=20, random_state=3).fit(train, NAMES)
    b = AnomalyDetector(n_forests=2, n_estimators=20, random_state=3).fit(train, NAMES)
    np.testing.assert_array_equal(a.score(test), b.score(test))


def test_nan_in_always_present_metric_is_anomalous():
    train, test, _ = _data()
    det = AnomalyDetector(n_forests=2, n_estimators=20).fit(train, NAMES)
    row = test[:1].copy()
    row[0, 0] = np.nan  # a silent exporter
    assert det.score(row)[0] > det.threshold_


def test_derived_columns_and_errors():
    train, test, _ = _data()
    det = AnomalyDetector(n_forests=2, n_estimators=20, derived=[("cpu", "load")])
    det.fit(train, NAMES)
    assert det.columns_[-1] == "cpu-load"
    assert det.score(test).shape == (len(test),)
    with pytest.raises(ValueError, match="expected 5 features"):
        det.score(test[:, :3])
    with pytest.raises(ValueError, match="unknown features"):
        AnomalyDetector(derived=[("cpu", "nope")]).fit(train, NAMES)


@pytest.mark.parametrize("cls", [ZScoreBaseline, PCABaseline, IForestBaseline])
def test_baselines_find_planted_anomaly(cls):
    train, test, labels = _data()
    model = cls().fit(train, NAMES)
    s = model.score(test)
    assert s[labels == 1].mean() > np.quantile(s[labels == 0], 0.95)
    assert model.flag(test, s)[labels == 1].any()


@pytest.mark.parametrize(
    ("flags", "k", "want"),
    [
        ([1, 1, 0, 1, 1, 1], 1, [1, 1, 0, 1, 1, 1]),
        ([1, 1, 0, 1, 1, 1], 2, [0, 1, 0, 0, 1, 1]),
        ([1, 1, 0, 1, 1, 1], 3, [0, 0, 0, 0, 0, 1]),
        ([], 2, []),
    ],
    ids=["k1-unchanged", "k2", "k3", "empty"],
)
def test_persist(flags, k, want):
    got = persist(k, np.array(flags, dtype=bool))
    assert got.astype(int).tolist() == want


# -- metrics on hand-computed sequences -------------------------------------------------------

#          0  1  2  3  4  5  6  7  8  9 10 11
LABELS = [0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0]  # events [1,4) and [7,9)
FLAGS = [0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0]  # alarms [2,3), [5,7), [10,11)


def test_runs():
    assert runs(np.array(LABELS)) == [(1, 4), (7, 9)]
    assert runs(np.array(FLAGS)) == [(2, 3), (5, 7), (10, 11)]
    assert runs(np.array([1, 1])) == [(0, 2)]
    assert runs(np.array([])) == []


def test_pointwise_hand_computed():
    r = pointwise(np.array(LABELS), np.array(FLAGS))
    # TP=1 (row 2), FP=3 (5, 6, 10), FN=4, TN=4
    assert r["precision"] == pytest.approx(1 / 4)
    assert r["recall"] == pytest.approx(1 / 5)
    assert r["fpr"] == pytest.approx(3 / 7)
    assert r["f1"] == pytest.approx(2 * 0.25 * 0.2 / 0.45)


def test_event_and_alarm_level():
    y, f = np.array(LABELS), np.array(FLAGS)
    assert event_recall(y, f) == pytest.approx(1 / 2)
    assert alarm_precision(y, f) == pytest.approx(1 / 3)
    # 12 samples of 1 h = 0.5 day, 2 false alarms
    assert false_alarms_per_day(y, f, 3600) == pytest.approx(4.0)
    assert detection_delays(y, f) == ([1], [7])


def test_point_adjust_and_pa_f1():
    y, f = np.array(LABELS), np.array(FLAGS)
    adj = point_adjust(y, f)
    assert adj.astype(int).tolist() == [0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0]
    r = evaluate_series(y, np.array(FLAGS, dtype=float), f, interval_s=60)
    # adjusted: TP=3, FP=3, FN=2 → P=0.5, R=0.6
    assert r["pa_f1"] == pytest.approx(2 * 0.5 * 0.6 / 1.1)
    assert r["events"] == 2 and r["detected"] == 1 and r["alarms"] == 3
    assert r["delay_median"] == 1.0 and r["undetected"] == [7]


@pytest.mark.parametrize(
    ("labels", "flags", "key", "want"),
    [
        ([0, 0, 0], [0, 1, 0], "event_recall", math.nan),
        ([0, 1, 0], [0, 0, 0], "alarm_precision", math.nan),
        ([0, 1, 0], [0, 0, 0], "f1", 0.0),
        ([0, 1, 0], [0, 0, 0], "auc_pr", 1 / 3),
        ([0, 0, 0], [0, 0, 0], "auc_pr", math.nan),
    ],
    ids=["no-events", "no-alarms", "no-alarms-f1", "auc-constant-score", "auc-no-positives"],
)
def test_metric_edge_cases(labels, flags, key, want):
    r = evaluate_series(
        np.array(labels), np.zeros(len(labels)), np.array(flags, dtype=bool), interval_s=60
    )
    if math.isnan(want):
        assert math.isnan(r[key])
    else:
        assert r[key] == pytest.approx(want)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="differ in length"):
        evaluate_series(np.zeros(3), np.zeros(2), np.zeros(3, bool), interval_s=1)


# -- the restricted unpickler ---------------------------------------------------------------


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_restricted_unpickler(tmp_path):
    ok = tmp_path / "ok.pkl"
    ok.write_bytes(pickle.dumps(np.arange(6, dtype=np.float32).reshape(2, 3), protocol=3))
    np.testing.assert_array_equal(load_pickled_array(ok), np.arange(6).reshape(2, 3))
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(_Evil()))
    from hydatis.errors import DataSourceError

    with pytest.raises(DataSourceError, match="refusing"):
        load_pickled_array(bad)
