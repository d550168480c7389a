"""Registration in a real (local) MLflow: a model that misses its gate is not promoted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.register import core as reg
from components.register import pyfunc
from hydatis.models.base import Target, TrainResult

pytestmark = pytest.mark.integration


class TinyModel:
    """A linear scorer that saves itself as JSON."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = weights

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float) @ np.asarray(self.weights)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "weights.json").write_text(json.dumps(self.weights))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TinyModel:
        return cls(json.loads((Path(path) / "weights.json").read_text()))


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setitem(pyfunc.KINDS, "tiny", (f"{__name__}:TinyModel", "predict"))
    monkeypatch.setitem(reg.MODEL_NAMES, "tiny", "hydatis-test-tiny")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def result(score: float, *, weights=(1.0, 2.0), data="eval-a") -> TrainResult:
    return TrainResult(
        name="tiny",
        model=TinyModel(list(weights)),
        params={"weights": list(weights)},
        metrics={"score": score},
        table=pd.DataFrame({"model": ["tiny"], "score": [score]}),
        targets=[Target("score", ">=", 0.5)],
        primary="score",
        higher_is_better=True,
        report="# tiny\n",
        features=["a", "b"],
        eval_data_id=data,
    )


def test_gate_promotes_only_what_passes_and_beats_the_champion(registry):
    first = reg.register(result(0.7), uri=registry)
    assert first.promoted and first.alias == "champion" and first.previous_champion is None
    model = reg.load_champion("tiny", uri=registry)
    assert model.predict(np.array([[1.0, 1.0]])).tolist() == [3.0]

    missed = reg.register(result(0.4, weights=(9, 9)), uri=registry)
    assert not missed.promoted and missed.alias == "challenger"
    assert "misses target score >= 0.5" in missed.reason

    worse = reg.register(result(0.6, weights=(5, 5)), uri=registry)
    assert not worse.promoted and "does not beat champion version 1" in worse.reason

    better = reg.register(result(0.9, weights=(0.0, 1.0)), uri=registry)
    assert better.promoted and better.previous_champion == "1"
    assert reg.load_champion("tiny", uri=registry).weights == [0.0, 1.0]

    client = reg._use(registry)
    tags = client.get_model_version("hydatis-test-tiny", missed.version).tags
    assert tags["gate"] == "failed" and "misses target" in tags["gate_reason"]
    assert str(client.get_model_version_by_alias("hydatis-test-tiny", "champion").version) == "4"


def test_champion_on_other_data_is_reevaluated_or_not_replaced(registry):
    reg.register(result(0.7, data="eval-a"), uri=registry)
    blind = reg.register(result(0.95, data="eval-b"), uri=registry)
    assert not blind.promoted and "evaluated on other data" in blind.reason

    def evaluate(model: TinyModel) -> dict[str, float]:
        return {"score": 0.8}  # the champion re-scored on eval-b

    fair = reg.register(result(0.95, data="eval-b"), uri=registry, evaluate_champion=evaluate)
    assert fair.promoted and fair.previous_champion == "1"


def test_run_carries_report_table_features_and_signature(registry):
    import mlflow

    out = reg.register(result(0.7), uri=registry)
    run = mlflow.get_run(out.run_id)
    assert run.data.metrics["score"] == 0.7 and run.data.tags["eval_data_id"] == "eval-a"
    local = Path(mlflow.artifacts.download_artifacts(run_id=out.run_id))
    assert (local / "report.md").is_file() and (local / "evaluation.csv").is_file()
    assert json.loads((local / "features.json").read_text())["features"] == ["a", "b"]
    info = mlflow.models.get_model_info(f"models:/hydatis-test-tiny/{out.version}")
    assert [c.name for c in info.signature.inputs.inputs] == ["a", "b"]
