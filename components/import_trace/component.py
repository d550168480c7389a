"""The kfp wrapper of :func:`components.import_trace.core.import_history`."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components._image import BASE_IMAGE

__all__ = ["import_history_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def import_history_op(
    dataset: Output[Dataset],
    summary: Output[Metrics],
    source: str = "trace",
    dataset_uri: str = "",
    prometheus_url: str = "",
    nodes: int = 200,
    load_factor: float = 1.3,
    usage_scale: float = 1.5,
    horizon_s: float = 86400.0,
    history_s: float = 57600.0,
    seed: int = 0,
    synthetic: bool = False,
    data_dir: str = "",
    days: float = 30.0,
) -> str:
    """Write the cluster's history (a replayed trace, a dataset directory or a Prometheus
    extraction) as the dataset artifact; return its description.

    ``data_dir`` names the trace directory (empty: the configured one); it is also part
    of the cache key, so a run on other data never reuses this one's output."""
    import json
    import os
    from pathlib import Path

    from components.import_trace import import_history

    if data_dir:
        os.environ["HYDATIS_DATA_DIR"] = data_dir
    info = import_history(
        dataset.path,
        source=source,
        dataset_uri=dataset_uri,
        prometheus_url=prometheus_url,
        nodes=nodes,
        load_factor=load_factor,
        usage_scale=usage_scale,
        horizon_s=horizon_s,
        history_s=history_s,
        seed=seed,
        synthetic=synthetic,
        days=days,
    )
    for key, value in info.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            summary.log_metric(key, value)
            dataset.metadata[key] = value
    dataset.metadata["description"] = info["description"]
    # kfp.local reuses a task's outputs only when every output artifact exists as a file;
    # a Metrics artifact has none unless written.
    Path(summary.path).write_text(json.dumps(summary.metadata, default=str))
    return str(info["description"])
