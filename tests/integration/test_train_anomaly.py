"""A reduced anomaly training on the real labelled data (1 entity per dataset) and a
small cluster replay with injected anomalies. Skipped without the data directory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hydatis.config import data_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        data_dir() is None,
        reason="no trace data directory (set HYDATIS_DATA_DIR to the public traces)",
    ),
]


def test_reduced_train_anomaly(tmp_path):
    from components.train_anomaly import train_anomaly
    from hydatis.features import feature_names
    from hydatis.models.anomaly_detector import AnomalyDetector

    res = train_anomaly(max_entities=1, cluster_nodes=12, params={"n_estimators": 50})
    assert res.name == "anomaly" and res.primary == "anomaly_auc_pr_ratio_vs_pca"
    for key in (
        "anomaly_alarm_precision",
        "anomaly_fpr",
        "anomaly_event_recall",
        "anomaly_auc_pr_ratio_vs_pca",
        "anomaly_injected_delay_p95_s",
    ):
        assert key in res.metrics
    assert 0 <= res.metrics["anomaly_fpr"] <= 1
    assert not math.isnan(res.metrics["anomaly_auc_pr_ratio_vs_pca"])
    macro = res.table[res.table["entity"] == "macro"]
    assert set(macro["dataset"]) == {"smd", "asd", "nab"}
    assert set(macro["detector"]) >= {"ensemble", "zscore", "pca", "iforest"}
    assert "Reduced budget" in res.report and "## Protocol" in res.report
    # The registered model scores exactly the serving feature columns.
    assert res.features == feature_names()
    x = np.zeros((3, len(res.features)))
    path = res.model.save(tmp_path / "m")
    np.testing.assert_array_equal(AnomalyDetector.load(path).score(x), res.model.score(x))
