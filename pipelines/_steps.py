"""The steps the training and retraining pipelines share, per model and after them:
train → evaluate → register behind the gate, then the gate's summary and the deployment of
the champions. One definition, so the two pipelines cannot drift apart in how a model is
judged or shipped."""

# No "from __future__ import annotations": kfp reads annotations as types.

from typing import Any

from kfp import dsl

from components.deploy.component import deploy_op
from components.evaluate.component import evaluate_op
from components.gate.component import gate_op, register_op
from components.train.component import train_op

__all__ = ["gate_and_deploy", "train_evaluate_register"]


def train_evaluate_register(
    model: Any,
    *,
    dataset: Any,
    features: Any,
    params_json: Any,
    train_budget: Any,
    valid_share: Any,
    seed: Any,
) -> Any:
    """Inside a ``ParallelFor`` over the models: the three tasks of one model; returns
    the register task (its ``Output`` is the model's outcome)."""
    trained = train_op(
        model_name=model,
        dataset=dataset,
        features=features,
        params_json=params_json,
        budget=train_budget,
        valid_share=valid_share,
        seed=seed,
    ).set_display_name("train")
    evaluated = evaluate_op(
        model_name=model,
        bundle=trained.outputs["bundle"],
        dataset=dataset,
        features=features,
        valid_share=valid_share,
        seed=seed,
    ).set_display_name("evaluate")
    return (
        register_op(
            bundle=evaluated.outputs["evaluated"],
            dataset=dataset,
            features=features,
            valid_share=valid_share,
            seed=seed,
        )
        .set_caching_options(False)
        .set_display_name("register (gate)")
    )


def gate_and_deploy(registered: Any, *, deploy_target: Any, namespace: Any, storage_root: Any):
    """After the loop: collect the outcomes, and deploy when a model was promoted; returns
    the gate task (its ``outcomes`` artifact is the pipeline's output)."""
    gate = (
        gate_op(registered=dsl.Collected(registered.outputs["Output"]))
        .set_caching_options(False)
        .set_display_name("gate")
    )
    with dsl.If(gate.outputs["Output"] == True, name="promoted"):  # noqa: E712 (a kfp condition)
        deploy_op(
            target=deploy_target, namespace=namespace, storage_root=storage_root
        ).set_caching_options(False).set_display_name("deploy")
    return gate
