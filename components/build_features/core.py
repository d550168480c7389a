"""Build the offline feature table and its labels from a cluster dataset.

The features come from the one feature function (:func:`hydatis.features.node_features`)
that serving also uses, so training and serving compute them alike.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydatis.dataset import load_dataset
from hydatis.errors import SchemaError
from hydatis.features import node_features, node_labels

__all__ = ["FEATURES_FILE", "LABELS_FILE", "build_features"]

FEATURES_FILE = "features.parquet"
LABELS_FILE = "labels.parquet"
DEFAULT_HORIZON_S = 300.0


def build_features(
    dataset_dir: str | Path, out_dir: str | Path, *, horizon_s: float = DEFAULT_HORIZON_S
) -> dict[str, Any]:
    """Write ``features.parquet`` (every node at every step) and ``labels.parquet`` (CPU
    and memory utilisation ``horizon_s`` later) into ``out_dir``.

    Raises:
        SchemaError: the dataset is invalid, or it has no node series to compute from.
    """
    ds = load_dataset(dataset_dir)
    if not len(ds.node_metrics):
        raise SchemaError(
            "node_metrics",
            None,
            None,
            "empty: features need node history (extract it from Prometheus, or build a "
            "replay with `hydatis dataset build --replay default`)",
        )
    t0 = time.perf_counter()
    features = node_features(ds)
    labels = node_labels(ds, horizon_s=horizon_s)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    features.to_parquet(out / FEATURES_FILE, index=False)
    labels.to_parquet(out / LABELS_FILE, index=False)
    return {
        "rows": len(features),
        "nodes": int(features["node_id"].nunique()),
        "features": len(features.columns) - 2,
        "horizon_s": horizon_s,
        "seconds": time.perf_counter() - t0,
    }
