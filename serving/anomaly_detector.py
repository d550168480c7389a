"""KServe predictor of the anomaly detector: node features -> anomaly score and flag.

Input: the 75 node features (:func:`hydatis.features.feature_names` order, or named
columns); NaN (JSON null) is meaningful here (an exporter gone silent scores 1). Output
per row: ``anomaly_score`` in [0, 1] and ``anomaly_flag`` = score >= the model's
``threshold_`` (each row is judged alone: the detector's ``min_run`` persistence needs a
node's history, which a batch of nodes is not). v1: ``[score, ...]``. One
:meth:`AnomalyDetector.score` call per request.

Run::

    python -m serving.anomaly_detector --model_source models:/hydatis-anomaly-detector@champion \
        --http_port 8092 --host 127.0.0.1
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hydatis.features import feature_names
from hydatis.models.anomaly_detector import AnomalyDetector
from serving._base import HydatisModel
from serving._server import main

__all__ = ["AnomalyDetectorModel"]


class AnomalyDetectorModel(HydatisModel):
    """Serves the anomaly detector (Isolation Forests + robust z): a score and a flag per node."""

    kind = "anomaly"
    OUTPUTS = (("anomaly_score", "FP32"), ("anomaly_flag", "BOOL"))

    @classmethod
    def default_columns(cls) -> list[str]:
        """The 75 node features, in catalogue order."""
        return feature_names()

    def load_model(self, path: Path) -> AnomalyDetector:
        """Read the detector ``AnomalyDetector.save`` wrote (our own pickle); set threads."""
        model = AnomalyDetector.load(path)
        model.n_jobs = self.threads
        for forest in model.forests_:
            forest.n_jobs = self.threads
        return model

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One ``score`` call; the flag compares the float64 score with ``threshold_``."""
        score = self.model.score(x)
        return {
            "anomaly_score": score.astype(np.float32),
            "anomaly_flag": score >= self.model.threshold_,
        }

    def v1_predictions(self, outputs: dict[str, np.ndarray]) -> list:
        """``[score, ...]``."""
        return outputs["anomaly_score"].tolist()


if __name__ == "__main__":
    sys.exit(main(AnomalyDetectorModel))
