"""The kfp wrapper of :func:`components.evaluate.core.evaluate_model`."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components._image import BASE_IMAGE

__all__ = ["evaluate_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_op(
    model_name: str,
    bundle: Input[Model],
    dataset: Input[Dataset],
    features: Input[Dataset],
    evaluated: Output[Model],
    report: Output[Markdown],
    metrics: Output[Metrics],
    valid_share: float = 0.25,
    seed: int = 0,
) -> str:
    """Score the trained model on the validation part beside the baselines; write the
    bundle with the validation figures folded in; return the figures as JSON."""
    import json
    import math
    from pathlib import Path

    from components.evaluate import apply_evaluation, evaluate_model
    from components.train import load_bundle, save_bundle

    result = load_bundle(bundle.path)
    ev = evaluate_model(
        model_name,
        result.model,
        dataset.path,
        features_dir=features.path,
        valid_share=valid_share,
        seed=seed,
    )
    result = apply_evaluation(result, ev, Path(evaluated.path) / "artifacts" / "training_table.csv")
    save_bundle(result, evaluated.path)
    Path(report.path).write_text(ev.report)
    finite = {k: float(v) for k, v in ev.metrics.items() if math.isfinite(v)}
    for key, value in finite.items():
        metrics.log_metric(key, value)
    # kfp.local reuses a task's outputs only when every output artifact exists as a file;
    # a Metrics artifact has none unless written.
    Path(metrics.path).write_text(json.dumps(metrics.metadata, default=str))
    evaluated.metadata["eval_data_id"] = ev.data_id
    return json.dumps(finite)
