"""Pipeline step: tune one model's hyperparameters (the local Katib backend)."""

from components.tune.core import MODELS, NEEDS_DATA_DIR, tune_model

__all__ = ["MODELS", "NEEDS_DATA_DIR", "tune_model"]
