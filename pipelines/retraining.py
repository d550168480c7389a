"""The retraining pipeline: from an existing dataset and feature table, per model (in
parallel): train → evaluate → register behind the gate → deploy the champions.

What a drift alert starts (``hydatis pipeline run retraining``, or this pipeline submitted
to Kubeflow): no extraction, no search — the hyperparameters are the last search's best
(``<work dir>/tuning/<model>_best.json``) where there is one, else the trainers'
defaults. The split, the evaluation and the gate are the training pipeline's.
"""

# No "from __future__ import annotations": kfp reads the pipeline's annotations as types.

from kfp import dsl
from kfp.dsl import Artifact, Dataset

from pipelines._steps import gate_and_deploy, train_evaluate_register
from pipelines.training import MODELS

__all__ = ["PIPELINE_NAME", "retraining_pipeline", "task_count"]

PIPELINE_NAME = "hydatis-retraining"


def task_count(models: list[str] | None = None) -> int:
    """How many tasks one run executes (importers and deploy included)."""
    return 2 + 3 * len(models or MODELS) + 2


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="HYDATIS: retrain, gate and deploy the three models from an existing "
    "dataset and feature table (drift response).",
)
def retraining_pipeline(
    dataset_uri: str,
    features_uri: str,
    models: list = MODELS,
    train_budget: str = "full",
    valid_share: float = 0.25,
    seed: int = 0,
    deploy_target: str = "render",
    namespace: str = "hydatis-system",
    storage_root: str = "pvc://hydatis-models",
) -> Artifact:
    """Retrain, evaluate, register and deploy; return the registration outcomes (JSON)."""
    dataset = dsl.importer(
        artifact_uri=dataset_uri, artifact_class=Dataset, reimport=False
    ).set_display_name("dataset")
    features = dsl.importer(
        artifact_uri=features_uri, artifact_class=Dataset, reimport=False
    ).set_display_name("features")
    with dsl.ParallelFor(items=models, parallelism=3, name="per-model") as model:
        registered = train_evaluate_register(
            model,
            dataset=dataset.output,
            features=features.output,
            params_json="",
            train_budget=train_budget,
            valid_share=valid_share,
            seed=seed,
        )
    gate = gate_and_deploy(
        registered, deploy_target=deploy_target, namespace=namespace, storage_root=storage_root
    )
    return gate.outputs["outcomes"]
