"""The training pipeline: history → validate → features → Feast → per model (in parallel):
tune → train → evaluate → register behind the gate → deploy the champions.

::

    import_history ─ validate ─ build_features ─ materialize ─┐
                                                              ▼
        ParallelFor(models): tune → train → evaluate → register (gate)
                                                              ▼
                         gate (any promoted?) ── yes ──► deploy

- ``import_history``: a replayed trace cut at ``history_s`` (the default), a dataset
  directory, or ``days`` of a cluster's Prometheus (``source``).
- The models train on the first ``1 − valid_share`` of the history and are scored on
  the rest, beside the baselines (the simulator comparison for the placement agent);
  tuning searches on its own validation split (``components.tune``).
- ``register``: a new MLflow version per model, ``champion`` only through its gate.
- ``deploy`` runs only when a model was promoted: it renders the InferenceServices of the
  champions and, by ``deploy_target``, applies them to the cluster or restarts the local
  model servers.

Compiled with ``kfp.compiler`` it is the IR YAML a Kubeflow Pipelines user uploads; every
step runs the project image of this package version.
"""

# No "from __future__ import annotations": kfp reads the pipeline's annotations as types.

from kfp import dsl
from kfp.dsl import Artifact

from components.build_features.component import build_features_op
from components.import_trace.component import import_history_op
from components.materialize.component import materialize_op
from components.tune.component import tune_op
from components.validate.component import validate
from pipelines._steps import gate_and_deploy, train_evaluate_register

__all__ = ["MODELS", "PIPELINE_NAME", "task_count", "training_pipeline"]

PIPELINE_NAME = "hydatis-training"
#: A local run takes two at a time, in this order: the two longest first, the quick
#: anomaly detector after whichever ends first.
MODELS = ["placement", "load", "anomaly"]


def task_count(models: list[str] | None = None) -> int:
    """How many tasks one run executes (deploy included), for progress reporting."""
    return 4 + 4 * len(models or MODELS) + 2


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="HYDATIS: cluster history to features, tuned and trained models, a gated "
    "registry and deployed champions.",
)
def training_pipeline(
    source: str = "trace",
    dataset_uri: str = "",
    prometheus_url: str = "",
    days: float = 30.0,
    nodes: int = 200,
    load_factor: float = 1.3,
    usage_scale: float = 1.5,
    horizon_s: float = 86400.0,
    history_s: float = 57600.0,
    synthetic: bool = False,
    data_dir: str = "",
    seed: int = 0,
    feature_repo: str = "feature_repo",
    redis_url: str = "",
    models: list = MODELS,
    tune_trials: int = 20,
    tune_budget: str = "small",
    train_budget: str = "full",
    valid_share: float = 0.25,
    deploy_target: str = "render",
    namespace: str = "hydatis-system",
    storage_root: str = "pvc://hydatis-models",
) -> Artifact:
    """Run the whole training flow; return the registration outcomes (JSON)."""
    history = import_history_op(
        source=source,
        dataset_uri=dataset_uri,
        prometheus_url=prometheus_url,
        days=days,
        nodes=nodes,
        load_factor=load_factor,
        usage_scale=usage_scale,
        horizon_s=horizon_s,
        history_s=history_s,
        synthetic=synthetic,
        data_dir=data_dir,
        seed=seed,
    ).set_display_name("import history")
    dataset = history.outputs["dataset"]
    checked = validate(dataset=dataset).set_display_name("validate")
    features = build_features_op(dataset=dataset).after(checked).set_display_name("build features")
    stored = materialize_op(
        features=features.outputs["features"], repo_path=feature_repo, redis_url=redis_url
    ).set_display_name("materialise into Feast")
    with dsl.ParallelFor(items=models, parallelism=3, name="per-model") as model:
        tuned = (
            tune_op(
                model_name=model,
                trials=tune_trials,
                budget=tune_budget,
                seed=seed,
                data_dir=data_dir,
            )
            .after(stored)
            .set_display_name("tune")
        )
        registered = train_evaluate_register(
            model,
            dataset=dataset,
            features=features.outputs["features"],
            params_json=tuned.outputs["Output"],
            train_budget=train_budget,
            valid_share=valid_share,
            seed=seed,
        )
    gate = gate_and_deploy(
        registered, deploy_target=deploy_target, namespace=namespace, storage_root=storage_root
    )
    return gate.outputs["outcomes"]
