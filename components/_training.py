"""What the three training components share: train, save, report, register."""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any

__all__ = ["TRAINERS", "run_training"]

TRAINERS = {
    "load": ("components.train_load", "train_load"),
    "anomaly": ("components.train_anomaly", "train_anomaly"),
    "placement": ("components.train_placement", "train_placement"),
}


def run_training(
    kind: str,
    *,
    seed: int,
    model_path: str,
    report_path: str,
    metrics: Any,
    register_model: bool,
) -> str:
    """Train ``kind``, save the model and the report to the given artifact paths, log the
    headline figures to the kfp ``metrics`` artifact, and register it (gate included).

    Returns:
        The alias the version got (``champion`` / ``challenger``), or ``not-registered``.
    """
    module, name = TRAINERS[kind]
    result = getattr(importlib.import_module(module), name)(seed=seed)
    result.model.save(model_path)
    Path(report_path).write_text(result.report or "")
    for key, value in result.metrics.items():
        if isinstance(value, int | float) and math.isfinite(value):
            metrics.log_metric(key, float(value))
    if not register_model:
        return "not-registered"
    from components.register import register

    return register(result).alias
