"""The kfp wrapper of :func:`components.train.core.train_model`."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components._image import BASE_IMAGE

__all__ = ["train_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_op(
    model_name: str,
    dataset: Input[Dataset],
    features: Input[Dataset],
    bundle: Output[Model],
    report: Output[Markdown],
    metrics: Output[Metrics],
    params_json: str = "",
    budget: str = "quick",
    valid_share: float = 0.25,
    seed: int = 0,
) -> str:
    """Train ``model_name`` on the training part of the dataset with ``params_json`` (empty:
    the last local search's best, else the defaults); write the bundle; return the
    parameters' source."""
    import json
    import math
    import tempfile
    from pathlib import Path

    from components.train import resolve_params, save_bundle, train_model

    params, source = resolve_params(model_name, params_json)
    with tempfile.TemporaryDirectory(prefix="hydatis-train-") as tmp:
        result = train_model(
            model_name,
            dataset.path,
            features_dir=features.path,
            params=params,
            budget_name=budget,
            valid_share=valid_share,
            seed=seed,
            out_dir=tmp,
        )
        result.params = {**result.params, "params_source": source}
        save_bundle(result, bundle.path)
    Path(report.path).write_text(result.report or "")
    for key, value in result.metrics.items():
        if isinstance(value, int | float) and math.isfinite(value):
            metrics.log_metric(key, float(value))
    # kfp.local reuses a task's outputs only when every output artifact exists as a file;
    # a Metrics artifact has none unless written.
    Path(metrics.path).write_text(json.dumps(metrics.metadata, default=str))
    bundle.metadata["model_kind"] = model_name
    bundle.metadata["params_source"] = source
    return source
