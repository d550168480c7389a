"""The kfp wrapper of :func:`components.build_features.core.build_features`."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components._image import BASE_IMAGE

__all__ = ["build_features_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def build_features_op(
    dataset: Input[Dataset], features: Output[Dataset], horizon_s: float = 300.0
) -> int:
    """Compute the feature table and labels; return the number of feature rows."""
    from components.build_features.core import build_features

    info = build_features(dataset.path, features.path, horizon_s=horizon_s)
    features.metadata.update({k: v for k, v in info.items() if isinstance(v, int | float)})
    return int(info["rows"])
