"""Pipeline step: train the three models on the training part of the pipeline's dataset
(see README.md); a training travels between steps as a bundle directory."""

from components.train.core import (
    ANOMALY_TARGETS,
    BUDGETS,
    DEFAULT_VALID_SHARE,
    KINDS,
    TrainBudget,
    load_bundle,
    load_model,
    resolve_params,
    save_bundle,
    split_time,
    train_model,
    training_part,
)

__all__ = [
    "ANOMALY_TARGETS",
    "BUDGETS",
    "DEFAULT_VALID_SHARE",
    "KINDS",
    "TrainBudget",
    "load_bundle",
    "load_model",
    "resolve_params",
    "save_bundle",
    "split_time",
    "train_model",
    "training_part",
]
