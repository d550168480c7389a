"""Pipeline step: train and evaluate the load predictor (CPU and memory at t + h)."""

from components.train_load.core import (
    bitbrains_dataset,
    evaluate_load,
    infer_latency_ms,
    real_datasets,
    time_split,
    train_load,
)

__all__ = [
    "bitbrains_dataset",
    "evaluate_load",
    "infer_latency_ms",
    "real_datasets",
    "time_split",
    "train_load",
]
