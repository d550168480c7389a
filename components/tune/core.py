"""Pipeline step: search one model's hyperparameters with the local Katib backend.

The search itself is :func:`katib.local.tune` (Optuna's TPE over the spaces in
``katib/spaces.yaml``, the same trial entry point Katib runs on a cluster); this step only
decides whether a search can run and returns the record the training step reads:

- ``trials <= 0`` — no search: the trainer's defaults;
- the load and anomaly searches read the public traces (Alibaba v2018 and Bitbrains
  node series; SMD and ASD labelled server metrics), so without a data directory they
  fall back to the defaults, with the reason;
- otherwise the search runs ``trials`` trials on its validation split (never on the data
  the pipeline validates on) and its best parameters are returned; the search starts
  with the defaults, so its best is never worse than them on that split.

What each search reads: ``katib.objectives`` (load: the first 80 % of each public
source's timeline; anomaly: the labelled entities' training parts and the first half of
their test parts; placement: the first 60 % of its own 8-hour samples of the trace).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydatis.config import data_dir
from hydatis.errors import ConfigError

__all__ = ["MODELS", "NEEDS_DATA_DIR", "tune_model"]

MODELS = ("load", "anomaly", "placement")
#: The searches that read the public traces.
NEEDS_DATA_DIR = ("load", "anomaly")


def _defaults(model: str, reason: str) -> dict[str, Any]:
    return {
        "model": model,
        "source": "defaults",
        "reason": reason,
        "params": {},
        "metric": "",
        "value": None,
        "default_value": None,
        "improvement_pct": None,
        "trials": 0,
        "budget": "",
    }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def tune_model(
    model: str,
    *,
    trials: int,
    budget: str = "small",
    seed: int = 0,
    work: str | Path | None = None,
    mlflow: bool = True,
    on_trial: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Search ``model``'s hyperparameters for ``trials`` trials, or say why not.

    Args:
        model: ``load``, ``anomaly`` or ``placement``.
        trials: trials to run (the defaults' trial counts as one); 0 = no search.
        budget: the trial budget (``tiny``, ``small``, ``full``; ``katib.objectives``).
        seed: seeds the sampler and every trial.
        work: the work directory the study and its best-parameters file go to.
        mlflow: log the search to MLflow (experiment ``hydatis-tuning``).
        on_trial: called after each trial with its number and a summary.

    Returns:
        ``model``, ``source`` (``search`` or ``defaults``), ``reason``, ``params`` (the
        trainer's parameter values; empty = its defaults), ``metric``, ``value`` and
        ``default_value`` (on the search's validation split), ``improvement_pct``,
        ``trials``, ``budget``.
    """
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")
    if trials <= 0:
        return _defaults(model, "no search asked for (0 trials): the trainer's defaults")
    if model in NEEDS_DATA_DIR and data_dir() is None:
        return _defaults(
            model,
            f"the {model} search reads the public traces and there is no data directory: "
            "the trainer's defaults",
        )
    from katib.local import tune

    result = tune(
        model,
        trials=trials,
        budget=budget,
        seed=seed,
        work=work,
        mlflow=mlflow,
        on_trial=on_trial,
    )
    return {
        "model": model,
        "source": "search",
        "reason": f"best of {result.trials} completed trials (budget {budget}, "
        f"{result.failed} failed) on {result.metric}, validation split of the search",
        "params": result.params,
        "metric": result.metric,
        "direction": result.direction,
        "value": _finite(result.value),
        "default_value": _finite(result.default_value),
        "improvement_pct": _finite(result.improvement_pct),
        "trials": result.trials,
        "budget": budget,
        "best_path": str(result.best_path),
    }
