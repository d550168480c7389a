"""The kfp wrapper of :func:`components.tune.core.tune_model`."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from components._image import BASE_IMAGE

__all__ = ["tune_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def tune_op(
    model_name: str,
    best: Output[Artifact],
    summary: Output[Metrics],
    trials: int = 20,
    budget: str = "small",
    seed: int = 0,
    data_dir: str = "",
) -> str:
    """Search ``model_name``'s hyperparameters; write the record as JSON to ``best`` and
    return the trainer's parameter values as a JSON object (empty: its defaults)."""
    import json
    import os

    from components.tune import tune_model

    if data_dir:
        os.environ["HYDATIS_DATA_DIR"] = data_dir
    record = tune_model(model_name, trials=trials, budget=budget, seed=seed)
    with open(best.path, "w") as fh:
        json.dump(record, fh, indent=2, default=str)
    best.metadata["source"] = record["source"]
    best.metadata["reason"] = record["reason"]
    for key in ("value", "default_value", "improvement_pct"):
        if record.get(key) is not None:
            summary.log_metric(key, float(record[key]))
    summary.log_metric("trials", float(record["trials"]))
    # kfp.local reuses a task's outputs only when every output artifact exists as a file;
    # a Metrics artifact has none unless written.
    with open(summary.path, "w") as fh:
        json.dump(summary.metadata, fh)
    return json.dumps(record["params"], default=str)
