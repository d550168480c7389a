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
    progress(1, 1)
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
