"""Log a training to MLflow, register its model, and promote it only through its gate.

A new version becomes ``champion`` only when it meets every absolute target of its
training *and* beats the current champion on the same evaluation data (the primary
metric, in its direction). Otherwise it is ``challenger`` and the reason is written on
the version (tag ``gate_reason``), so nobody has to guess why a model was not deployed.

Tracking and registry are local by default (SQLite and file artifacts under the work
directory, ``out/mlflow``); ``MLFLOW_TRACKING_URI`` (or ``uri=``) selects a server.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from components._image import DISTRIBUTION, package_version
from components.register.pyfunc import HydatisPyfunc, model_class
from hydatis.config import work_dir
from hydatis.models.base import TrainResult

__all__ = ["CHALLENGER", "CHAMPION", "MODEL_NAMES", "Outcome", "load_champion", "register"]

MODEL_NAMES = {
    "load": "hydatis-load-predictor",
    "placement": "hydatis-placement-agent",
    "anomaly": "hydatis-anomaly-detector",
}
CHAMPION, CHALLENGER = "champion", "challenger"
EXPERIMENT = "hydatis-training"


@dataclass
class Outcome:
    """What registration did with a training."""

    name: str
    version: str
    run_id: str
    promoted: bool
    alias: str
    reasons: list[str] = field(default_factory=list)
    previous_champion: str | None = None

    @property
    def reason(self) -> str:
        """One line for people: why it was or was not promoted."""
        return "; ".join(self.reasons) or "meets every target and beats the champion"


def tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else a SQLite store in the work directory."""
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    db = (work_dir() / "mlflow" / "mlflow.db").resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def _use(uri: str | None) -> MlflowClient:
    resolved = tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        location = None
        if resolved.startswith("sqlite:///"):  # keep artifacts beside the local store
            location = (Path(resolved.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
        mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    return MlflowClient(resolved, resolved)


def _flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flat_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:500]
    return out


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[key] = number
    return out


def _signature(result: TrainResult):
    if not result.features:
        return None, None
    example = pd.DataFrame(
        np.zeros((2, len(result.features)), dtype=np.float32), columns=result.features
    )
    _, method = model_class(result.name)
    output = np.asarray(getattr(result.model, method)(example.to_numpy(np.float32)))
    return infer_signature(example, output), example


def _champion(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _gate(
    client: MlflowClient,
    result: TrainResult,
    name: str,
    version: str,
    evaluate_champion: Callable[[Any], dict[str, float]] | None,
) -> tuple[list[str], str | None]:
    reasons = [
        f"misses target {t} (got {result.metrics.get(t.metric, float('nan')):.4g})"
        for t in result.failed_targets()
    ]
    champion = _champion(client, name)
    if champion is None or str(champion.version) == version:
        return reasons, None
    value = result.metrics.get(result.primary, float("nan"))
    run = client.get_run(champion.run_id).data
    champion_value = None
    if result.eval_data_id and run.tags.get("eval_data_id") == result.eval_data_id:
        champion_value = run.metrics.get(result.primary)
    elif evaluate_champion is not None:
        champion_value = evaluate_champion(load_champion(result.name)).get(result.primary)
    if champion_value is None:
        reasons.append(
            f"cannot compare with champion version {champion.version}: it was evaluated on "
            "other data and no re-evaluation was given"
        )
    else:
        better = value > champion_value if result.higher_is_better else value < champion_value
        if not better:
            reasons.append(
                f"{result.primary} {value:.4g} does not beat champion version "
                f"{champion.version} ({champion_value:.4g}) on the same evaluation data"
            )
    return reasons, str(champion.version)


def register(
    result: TrainResult,
    *,
    uri: str | None = None,
    evaluate_champion: Callable[[Any], dict[str, float]] | None = None,
) -> Outcome:
    """Log ``result`` as an MLflow run, register its model, and apply the gate.

    Args:
        result: the training (model, metrics, targets, report, table, features).
        uri: tracking/registry URI (default: :func:`tracking_uri`).
        evaluate_champion: re-evaluates the current champion's model on this training's
            evaluation data when the champion was evaluated on other data.

    Returns:
        The version, its alias (``champion`` or ``challenger``) and the gate's reasons.
    """
    if result.name not in MODEL_NAMES:
        raise KeyError(f"unknown model kind {result.name!r}; known: {sorted(MODEL_NAMES)}")
    name = MODEL_NAMES[result.name]
    client = _use(uri)
    with tempfile.TemporaryDirectory(prefix="hydatis-model-") as tmp:
        model_dir = Path(result.model.save(Path(tmp) / "model"))
        signature, example = _signature(result)
        with mlflow.start_run(run_name=f"train-{result.name}") as run:
            mlflow.log_params(_flat_params(result.params))
            mlflow.log_metrics(_finite(result.metrics))
            mlflow.set_tags(
                {
                    "model_kind": result.name,
                    "eval_data_id": result.eval_data_id,
                    "primary_metric": result.primary,
                    "targets": "; ".join(str(t) for t in result.targets),
                }
            )
            mlflow.log_text(result.report or "", "report.md")
            mlflow.log_text(result.table.to_csv(index=False), "evaluation.csv")
            mlflow.log_dict({"features": list(result.features)}, "features.json")
            for key, path in result.artifacts.items():
                if Path(path).is_dir():
                    mlflow.log_artifacts(str(path), f"artifacts/{key}")
                else:
                    mlflow.log_artifact(str(path), "artifacts")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=HydatisPyfunc(result.name),
                artifacts={"model_dir": str(model_dir)},
                signature=signature,
                input_example=example,
                registered_model_name=name,
                pip_requirements=[f"{DISTRIBUTION}=={package_version()}"],
            )
    version = str(info.registered_model_version)
    reasons, previous = _gate(client, result, name, version, evaluate_champion)
    promoted = not reasons
    alias = CHAMPION if promoted else CHALLENGER
    client.set_registered_model_alias(name, alias, version)
    outcome = Outcome(name, version, run.info.run_id, promoted, alias, reasons, previous)
    client.set_model_version_tag(name, version, "gate", "passed" if promoted else "failed")
    client.set_model_version_tag(name, version, "gate_reason", outcome.reason[:5000])
    return outcome


def load_champion(kind: str, *, uri: str | None = None, alias: str = CHAMPION) -> Any:
    """The native model of ``models:/<name>@champion`` (or another alias)."""
    _use(uri)
    name = MODEL_NAMES.get(kind, kind)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
    return loaded.unwrap_python_model().model
