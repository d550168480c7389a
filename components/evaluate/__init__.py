"""Pipeline step: score a trained model on the validation part of the history, beside
the baselines (the simulator comparison for the placement agent)."""

from components.evaluate.core import (
    PLACEMENT_BASELINES,
    Evaluation,
    apply_evaluation,
    champion_evaluator,
    evaluate_model,
)

__all__ = [
    "PLACEMENT_BASELINES",
    "Evaluation",
    "apply_evaluation",
    "champion_evaluator",
    "evaluate_model",
]
