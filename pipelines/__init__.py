"""Kubeflow pipelines assembled from ``components/``: compile to IR YAML for a cluster,
run on this machine with ``kfp.local``.

- :func:`~pipelines.training.training_pipeline` (``hydatis-training``): history →
  validate → features → Feast → per model: tune → train → evaluate → register (gate) →
  deploy;
- :func:`~pipelines.retraining.retraining_pipeline` (``hydatis-retraining``): from an
  existing dataset and feature table: train → evaluate → register (gate) → deploy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.local import LocalRun, PipelineFailedError, run_local
from pipelines.retraining import retraining_pipeline
from pipelines.training import MODELS, training_pipeline

__all__ = [
    "MODELS",
    "PIPELINES",
    "LocalRun",
    "PipelineFailedError",
    "compile_all",
    "compile_pipeline",
    "read_outcomes_file",
    "retraining_pipeline",
    "run_local",
    "task_count",
    "training_pipeline",
]

#: Short name -> pipeline function.
PIPELINES: dict[str, Any] = {
    "training": training_pipeline,
    "retraining": retraining_pipeline,
}


def task_count(name: str, models: list[str] | None = None) -> int:
    """Tasks one run of pipeline ``name`` executes (for progress bars)."""
    from pipelines import retraining, training

    module = {"training": training, "retraining": retraining}[name]
    return module.task_count(models)


def compile_pipeline(name: str, out_dir: str | Path) -> Path:
    """Compile pipeline ``name`` to ``<out_dir>/<pipeline name>.yaml`` (the KFP IR YAML a
    Kubeflow Pipelines user uploads); return the path."""
    from kfp import compiler

    if name not in PIPELINES:
        raise KeyError(f"unknown pipeline {name!r}; known: {sorted(PIPELINES)}")
    func = PIPELINES[name]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{func.name}.yaml"
    compiler.Compiler().compile(func, str(path))
    return path


def compile_all(out_dir: str | Path) -> list[Path]:
    """Compile every pipeline into ``out_dir``; return the files."""
    return [compile_pipeline(name, out_dir) for name in PIPELINES]


def read_outcomes_file(path: str | Path) -> list[dict[str, Any]]:
    """The registration outcomes a run returned (the gate's ``outcomes`` artifact: one
    record per model — kind, version, ``models:/`` URI, alias, the gate's reason)."""
    import json

    return list(json.loads(Path(path).read_text()))
