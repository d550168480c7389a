"""The three models' pure definitions (fit, predict, save, load) and what a training
returns. No servers, no pipelines, no MLflow here.

- :mod:`hydatis.models.load_predictor`: ``LoadPredictor`` (XGBoost), each node's CPU and
  memory utilisation at t + h; baselines in :mod:`hydatis.models.forecast_baselines`.
- :mod:`hydatis.models.anomaly_detector`: ``AnomalyDetector`` (Isolation Forest ensemble
  + robust z-scores, voting, explanations); metrics in
  :mod:`hydatis.models.anomaly_metrics`.
- :mod:`hydatis.models.placement_agent`: ``PlacementAgent`` (DQN, PyTorch), one Q-network
  applied per candidate node.

The model modules are imported by name (torch and xgboost load slowly), not from here.
"""

from hydatis.models.base import ProgressFn, SavedModel, Target, TrainResult

__all__ = ["ProgressFn", "SavedModel", "Target", "TrainResult"]
