"""The MLflow pyfunc face of the three models: one wrapper that loads a model saved with
its own ``save()`` and answers ``predict`` with the batch call serving uses."""

from __future__ import annotations

import importlib
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

__all__ = ["KINDS", "HydatisPyfunc", "model_class"]

#: kind -> ("module:Class", the batch method serving calls on a feature matrix).
KINDS: dict[str, tuple[str, str]] = {
    "load": ("hydatis.models.load_predictor:LoadPredictor", "predict_array"),
    "anomaly": ("hydatis.models.anomaly_detector:AnomalyDetector", "score"),
    "placement": ("hydatis.models.placement_agent:PlacementAgent", "q_values"),
}


def model_class(kind: str) -> tuple[type, str]:
    """The model class and batch method of ``kind``."""
    try:
        target, method = KINDS[kind]
    except KeyError as exc:
        raise KeyError(f"unknown model kind {kind!r}; known: {sorted(KINDS)}") from exc
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name), method


class HydatisPyfunc(mlflow.pyfunc.PythonModel):
    """Loads the model directory logged as the ``model_dir`` artifact."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.model: Any = None

    def load_context(self, context: Any) -> None:
        cls, self._method = model_class(self.kind)
        self.model = cls.load(context.artifacts["model_dir"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        """The batch output for the rows of ``model_input`` (features as columns)."""
        x = np.asarray(model_input, dtype=np.float32)
        return np.asarray(getattr(self.model, self._method)(x))
