"""What every model training returns, so registration, the CLI and the benchmark treat
the three models alike.

A training produces a fitted model (saved to and loaded from a directory), the figures of
its evaluation on data it never saw, the baselines computed in the same run, and the
absolute targets its registration gate checks.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self

import pandas as pd

__all__ = ["ProgressFn", "SavedModel", "Target", "TrainResult"]

#: How a training reports progress: the fraction done in [0, 1] and what it is doing.
ProgressFn = Callable[[float, str], None]

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


class SavedModel(Protocol):
    """A model that round-trips through a directory (what MLflow stores as artifacts)."""

    def save(self, path: str | Path) -> Path:
        """Write the model's files into ``path``; return it."""
        ...

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`."""
        ...


@dataclass(frozen=True)
class Target:
    """An absolute target a model must meet to be promoted, e.g. ``cpu_accuracy >= 0.89``."""

    metric: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"target op must be one of {sorted(_OPS)}, got {self.op!r}")

    def met(self, metrics: dict[str, float]) -> bool:
        """Whether ``metrics`` meets the target (a missing or NaN figure does not)."""
        value = metrics.get(self.metric)
        if value is None or value != value:  # NaN
            return False
        return bool(_OPS[self.op](value, self.value))

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass
class TrainResult:
    """One training and its evaluation.

    Attributes:
        name: ``load``, ``anomaly`` or ``placement``.
        model: the fitted model (a :class:`SavedModel`).
        params: the hyperparameters used (logged as MLflow params).
        metrics: headline figures on held-out data, flat ``name -> float`` (logged as
            MLflow metrics; the names the benchmark prints where they exist).
        table: the evaluation table, one row per model/baseline (and per source or
            dataset where the evaluation has several).
        targets: the absolute targets of the registration gate.
        primary: the metric a new version must beat the champion on.
        higher_is_better: the direction of ``primary``.
        report: Markdown: the definitions, the protocol, the tables, where it stands.
        features: the input features, in order.
        artifacts: extra files to log (feature importance, plots, per-entity tables).
        eval_data_id: identifies the evaluation data (a hash), so versions are compared
            only on the same data.
    """

    name: str
    model: Any
    params: dict[str, Any]
    metrics: dict[str, float]
    table: pd.DataFrame
    targets: list[Target]
    primary: str
    higher_is_better: bool
    report: str = ""
    features: list[str] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)
    eval_data_id: str = ""

    def failed_targets(self) -> list[Target]:
        """The targets this training misses."""
        return [t for t in self.targets if not t.met(self.metrics)]
