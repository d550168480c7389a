"""The kfp wrappers of :mod:`components.gate.core`: ``register_op`` (one model) and
``gate_op`` (the three outcomes)."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components._image import BASE_IMAGE

__all__ = ["gate_op", "register_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_op(
    bundle: Input[Model],
    dataset: Input[Dataset],
    features: Input[Dataset],
    valid_share: float = 0.25,
    seed: int = 0,
) -> str:
    """Register the validated model in MLflow behind its gate; return the outcome as
    JSON (version, alias, reason)."""
    import json

    from components.gate import register_bundle

    outcome = register_bundle(
        bundle.path,
        dataset_dir=dataset.path,
        features_dir=features.path,
        valid_share=valid_share,
        seed=seed,
    )
    return json.dumps(outcome, default=str)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def gate_op(registered: list, summary: Output[Markdown], outcomes: Output[Artifact]) -> bool:
    """Write the gate's table and the outcomes (a JSON list); return whether any model was
    promoted (deploy then)."""
    import json
    from pathlib import Path

    from components.gate import gate_summary

    records = [json.loads(o) for o in registered]
    promoted, text = gate_summary(records)
    Path(summary.path).write_text(text)
    Path(outcomes.path).write_text(json.dumps(records, indent=2))
    outcomes.metadata["promoted"] = [r["kind"] for r in records if r.get("promoted")]
    return promoted
