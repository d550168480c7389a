"""Tiny real models for tests that need the three model servers: fitted in a second or
two on synthetic feature rows, saved with each model's own ``save()``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hydatis.features import feature_names

__all__ = ["MODEL_NAMES", "SERVER_MODULES", "feature_rows", "fit_tiny_models"]

MODEL_NAMES = {
    "load": "hydatis-load-predictor",
    "anomaly": "hydatis-anomaly-detector",
    "agent": "hydatis-placement-agent",
}
SERVER_MODULES = {
    "load": "serving.load_predictor",
    "anomaly": "serving.anomaly_detector",
    "agent": "serving.placement_agent",
}


def feature_rows(n: int, seed: int = 0) -> np.ndarray:
    """``n`` plausible rows of the 75 node features (utilisations in [0, 1], 32 cores,
    128 GiB, a few pods)."""
    cols = feature_names()
    rng = np.random.default_rng(seed)
    x = np.clip(rng.beta(2, 4, size=(n, len(cols))), 0, 1)
    x[:, cols.index("cpu_capacity_cores")] = 32.0
    x[:, cols.index("mem_capacity_gib")] = 128.0
    x[:, cols.index("pod_count")] = rng.integers(0, 40, n)
    return x


def fit_tiny_models(out: Path, seed: int = 0) -> dict[str, Path]:
    """Fit and save a small load predictor (persistence + a few trees), anomaly detector
    and placement agent; returns kind → model directory."""
    from hydatis.models.anomaly_detector import AnomalyDetector
    from hydatis.models.load_predictor import LoadPredictor
    from hydatis.models.placement_agent import PlacementAgent
    from hydatis.models.placement_features import FEATURES

    cols = feature_names()
    x = feature_rows(800, seed)
    rng = np.random.default_rng(seed)
    feats = pd.DataFrame(x, columns=cols)
    feats.insert(
        0, "event_timestamp", pd.date_range("2024-01-01", periods=len(x), freq="30s", tz="UTC")
    )
    feats.insert(0, "node_id", "n0")
    labels = feats[["node_id", "event_timestamp"]].copy()
    labels["cpu_util_target"] = np.clip(
        x[:, cols.index("cpu_util")] + rng.normal(0, 0.02, len(x)), 0, 1
    )
    labels["mem_util_target"] = np.clip(
        x[:, cols.index("mem_util")] + rng.normal(0, 0.02, len(x)), 0, 1
    )
    paths = {kind: out / kind for kind in MODEL_NAMES}
    LoadPredictor(horizon_s=300, n_estimators=20, max_depth=3, random_state=seed, n_jobs=1).fit(
        feats, labels
    ).save(paths["load"])
    AnomalyDetector(n_forests=2, n_estimators=20, random_state=seed).fit(x, cols).save(
        paths["anomaly"]
    )
    PlacementAgent(hidden=(16,), random_state=seed).build(len(FEATURES)).save(paths["agent"])
    return paths
