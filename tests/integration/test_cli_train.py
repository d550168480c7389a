"""`hydatis train`: the table, the targets, the report files and the registration."""

from __future__ import annotations

import pytest

from cli.main import main
from components import _training
from components.register import core as reg
from components.register import pyfunc
from tests.integration.test_register import result

pytestmark = pytest.mark.integration


def tiny_train(*, seed: int, progress) -> object:
    progress(0.5, "fitting")
    progress(1.0, "done")
    return result(0.3 if seed else 0.8)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setitem(
        pyfunc.KINDS, "tiny", ("tests.integration.test_register:TinyModel", "predict")
    )
    monkeypatch.setitem(reg.MODEL_NAMES, "tiny", "hydatis-test-tiny")
    monkeypatch.setitem(_training.TRAINERS, "load", (__name__, "tiny_train"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def test_train_prints_registers_and_gates(tiny, capsys):
    assert main(["train", "load", "--out", str(tiny / "models")]) == 0
    out = capsys.readouterr().out
    assert "model vs baselines" in out and "met  score >= 0.5" in out
    assert "as champion" in out
    assert (tiny / "models" / "load" / "report.md").read_text().startswith("# tiny")
    assert (tiny / "models" / "load" / "evaluation.csv").is_file()
    # A training that misses its target is evaluated and registered, but not promoted.
    assert main(["train", "load", "--seed", "1", "--out", str(tiny / "models")]) == 0
    out = capsys.readouterr().out
    assert "MISSED  score >= 0.5" in out and "as challenger" in out


def test_no_register_only_evaluates(tiny, capsys):
    assert main(["train", "load", "--no-register", "--out", str(tiny / "m")]) == 0
    assert "Registered" not in capsys.readouterr().out


def test_evaluate_load_on_any_dataset(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    from hydatis.dataset import save_dataset
    from hydatis.features import node_features, node_labels
    from hydatis.models.load_predictor import LoadPredictor
    from tests.factories import make_dataset, ts

    times = np.arange(0, 6 * 3600, 60.0)
    rng = np.random.default_rng(3)
    ds = make_dataset([(8, 32), (8, 32)], [{"cpu": 1}], horizon_s=times[-1])
    wave = 0.4 + 0.2 * np.sin(times / 3600.0)
    ds.node_metrics = pd.DataFrame(
        {
            "ts": ts(np.concatenate([times, times])),
            "node": ["n0"] * times.size + ["n1"] * times.size,
            "cpu_util": np.clip(
                np.concatenate([wave, wave[::-1]]) + rng.normal(0, 0.02, 2 * times.size), 0, 1
            ),
            "mem_util": np.full(2 * times.size, 0.5),
        }
    )
    model = LoadPredictor(n_estimators=20, n_jobs=1).fit(node_features(ds), node_labels(ds))
    model.save(tmp_path / "model")
    path = save_dataset(ds, tmp_path / "ds")
    code = main(
        ["evaluate", "load", "--dataset", str(path), "--model-dir", str(tmp_path / "model")]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "persistence" in out and "seasonal_naive" in out and "ewma" in out
