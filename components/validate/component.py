"""The kfp wrapper of :func:`components.validate.core.validate_dataset`."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components._image import BASE_IMAGE

__all__ = ["validate"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate(dataset: Input[Dataset], summary: Output[Metrics]) -> int:
    """Validate the cluster dataset; log its size; return the number of nodes."""
    from components.validate.core import validate_dataset

    info = validate_dataset(dataset.path)
    for key, value in info.items():
        if isinstance(value, int | float):
            summary.log_metric(key, value)
    return int(info["nodes"])
