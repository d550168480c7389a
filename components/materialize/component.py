"""The kfp wrapper of :func:`components.materialize.core.materialize`."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components._image import BASE_IMAGE

__all__ = ["materialize_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def materialize_op(
    features: Input[Dataset],
    summary: Output[Metrics],
    repo_path: str = "feature_repo",
    redis_url: str = "",
) -> int:
    """Apply the Feast repo, write the offline table and materialise it online (Redis
    when ``redis_url`` is set, else the repo's SQLite store); return the rows loaded."""
    from pathlib import Path

    import pandas as pd

    from components.build_features.core import FEATURES_FILE
    from components.materialize import materialize

    table = pd.read_parquet(Path(features.path) / FEATURES_FILE)
    info = materialize(table, repo_path, redis_url=redis_url or None)
    for key, value in info.items():
        if isinstance(value, int | float):
            summary.log_metric(key, value)
    return len(table)
