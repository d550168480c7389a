"""The kfp wrapper of the load training (``components.train_load``)."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Model, Output

from components._image import BASE_IMAGE

__all__ = ["train_load_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_load_op(
    model: Output[Model],
    report: Output[Markdown],
    metrics: Output[Metrics],
    seed: int = 0,
    register_model: bool = True,
) -> str:
    """Train and evaluate; register behind the gate; return the alias it got."""
    from components._training import run_training

    return run_training(
        "load",
        seed=seed,
        model_path=model.path,
        report_path=report.path,
        metrics=metrics,
        register_model=register_model,
    )
