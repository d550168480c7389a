"""The load predictor's training on the real traces, with a reduced budget.

Skipped when no data directory is configured (``HYDATIS_DATA_DIR`` or ``../shared/data``).
The full run (all Bitbrains VMs, both horizons, default parameters) is
``train_load()``; its figures are in the component's README.
"""

from __future__ import annotations

import math

import pytest

from hydatis.config import data_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        data_dir() is None,
        reason="no trace data directory (set HYDATIS_DATA_DIR to the public traces)",
    ),
]


def test_train_load_reduced_budget_on_real_sources(tmp_path):
    from components.train_load import evaluate_load, real_datasets, train_load

    datasets = real_datasets(data_dir(), max_vms=8)
    res = train_load(
        datasets=datasets,
        horizons=(300,),
        params={"n_estimators": 40, "max_depth": 5, "early_stopping_rounds": 10},
        max_train_rows=40_000,
        out_dir=tmp_path,
    )
    t = res.table
    assert set(t["source"]) == {"alibaba-v2018", "bitbrains"}
    assert set(t["model"]) == {"model", "persistence", "seasonal_naive", "ewma"}
    assert set(t["target"]) == {"cpu", "mem"}
    assert (t["n_rows"] > 0).all()
    for key in ("load_cpu_accuracy", "load_mem_accuracy", "load_cpu_accuracy_alibaba_v2018"):
        assert math.isfinite(res.metrics[key])
    assert res.artifacts["feature_importance"].is_file()
    assert {str(t) for t in res.targets} == {  # the gate checks the targets
        "load_cpu_accuracy >= 0.89",
        "load_mem_accuracy >= 0.86",
        "load_cpu_mae_ratio_vs_best_baseline < 1",
        "load_mem_mae_ratio_vs_best_baseline < 1",
    }
    # even this small model must not be worse than persistence on the real Alibaba CPU
    ali = t[(t.source == "alibaba-v2018") & (t.target == "cpu")].set_index("model")
    assert ali.loc["model", "mae_pp"] < ali.loc["persistence", "mae_pp"]
    # the evaluation runs on a dataset by itself and reproduces the table's rows
    ev = evaluate_load(res.model, datasets["alibaba-v2018"], source="alibaba-v2018")
    assert ev.set_index(["target", "model"])["mae_pp"].to_dict() == pytest.approx(
        t[t.source == "alibaba-v2018"].set_index(["target", "model"])["mae_pp"].to_dict()
    )
