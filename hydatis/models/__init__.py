"""The three models' pure definitions (fit, predict, save, load) and what a training
returns. No servers, no pipelines, no MLflow here."""

from hydatis.models.base import SavedModel, Target, TrainResult

__all__ = ["SavedModel", "Target", "TrainResult"]
