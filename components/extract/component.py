"""The kfp wrapper of :func:`components.extract.core.extract`."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import HTML, Dataset, Metrics, Output

from components._image import BASE_IMAGE

__all__ = ["extract_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def extract_op(
    prometheus_url: str,
    dataset: Output[Dataset],
    quality: Output[HTML],
    summary: Output[Metrics],
    days: float = 30.0,
    step_s: float = 30.0,
    end: str = "",
    min_completeness: float = 0.95,
) -> int:
    """Extract ``days`` of history ending at ``end`` (ISO 8601 UTC; empty = now) into a
    dataset; publish the quality report; return the number of nodes."""
    import shutil
    from pathlib import Path

    import pandas as pd

    from components.extract import extract

    stop = pd.Timestamp(end) if end else pd.Timestamp.now(tz="UTC").floor("min")
    if stop.tzinfo is None:
        stop = stop.tz_localize("UTC")
    ds = extract(
        prometheus_url,
        start=stop - pd.Timedelta(days=days),
        end=stop,
        step_s=step_s,
        out_dir=dataset.path,
        min_completeness=min_completeness,
    )
    report = Path(dataset.path) / "quality.html"
    if report.is_file():
        shutil.copyfile(report, quality.path)
    summary.log_metric("nodes", len(ds.nodes))
    summary.log_metric("node_samples", len(ds.node_metrics))
    summary.log_metric("pods", len(ds.pods))
    return len(ds.nodes)
