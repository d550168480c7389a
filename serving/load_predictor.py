"""KServe predictor of the load predictor: node features -> CPU and memory utilisation at t + h.

Input: the 75 node features (:func:`hydatis.features.feature_names` order, or named
columns). Output per row: ``cpu_util_pred`` and ``mem_util_pred`` in [0, 1]
(v1: ``[[cpu, mem], ...]``). One :meth:`LoadPredictor.predict_array` call per request.

Run::

    python -m serving.load_predictor --model_source models:/hydatis-load-predictor@champion \
        --http_port 8091 --host 127.0.0.1
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hydatis.features import feature_names
from hydatis.models.load_predictor import LoadPredictor
from serving._base import HydatisModel
from serving._server import main

__all__ = ["LoadPredictorModel"]


class LoadPredictorModel(HydatisModel):
    """Serves the load predictor (XGBoost): predicted CPU and memory utilisation per node."""

    kind = "load"
    OUTPUTS = (("cpu_util_pred", "FP32"), ("mem_util_pred", "FP32"))

    @classmethod
    def default_columns(cls) -> list[str]:
        """The 75 node features, in catalogue order."""
        return feature_names()

    def load_model(self, path: Path) -> LoadPredictor:
        """Read the boosters and metadata ``LoadPredictor.save`` wrote; set their threads."""
        model = LoadPredictor.load(path)
        model.n_jobs = self.threads
        for booster in model.boosters_.values():
            booster.set_param({"nthread": self.threads})
        return model

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One ``predict_array`` call: ``(n, 2)`` -> two columns."""
        pred = self.model.predict_array(x)
        return {
            "cpu_util_pred": np.ascontiguousarray(pred[:, 0]),
            "mem_util_pred": np.ascontiguousarray(pred[:, 1]),
        }

    def v1_predictions(self, outputs: dict[str, np.ndarray]) -> list:
        """``[[cpu, mem], ...]``."""
        return np.column_stack((outputs["cpu_util_pred"], outputs["mem_util_pred"])).tolist()


if __name__ == "__main__":
    sys.exit(main(LoadPredictorModel))
