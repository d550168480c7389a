"""Validate a cluster dataset directory and summarise it.

The schema check is the core's (:func:`hydatis.dataset.validate`): a bad table, column or
row stops the pipeline with an error that names it, before features or models are built
on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydatis.dataset import load_dataset

__all__ = ["validate_dataset"]


def validate_dataset(dataset_dir: str | Path) -> dict[str, Any]:
    """Load and validate the dataset at ``dataset_dir``; return its summary.

    Raises:
        SchemaError: naming the table, the column and the first bad row.
    """
    ds = load_dataset(dataset_dir)
    nm = ds.node_metrics
    summary: dict[str, Any] = {
        "nodes": len(ds.nodes),
        "node_samples": len(nm),
        "pods": len(ds.pods),
        "pod_usage_rows": len(ds.pod_usage),
        "pods_with_node": int(ds.pods["node"].notna().sum()),
    }
    if len(nm):
        summary["first_sample"] = str(nm["ts"].min())
        summary["last_sample"] = str(nm["ts"].max())
        summary["span_hours"] = (nm["ts"].max() - nm["ts"].min()).total_seconds() / 3600
    return summary
