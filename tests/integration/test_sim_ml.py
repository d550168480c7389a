"""The ML scheduler in the simulator against the real processes: three model servers
(``serving.launch``) and the extender (``python -m scheduler_shim``), started by
``cli.ml_stack.ml_stack`` on loopback with tiny models, then a short replay beside the
default scheduler that must place pods through the extender and give the report an
``ml`` row."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from cli.ml_stack import ml_stack
from simulator.datasets import default_dataset
from simulator.engine import SimConfig, simulate
from simulator.extender import ExtenderScheduler
from simulator.metrics import summarize
from simulator.node_state import scheduler_context
from simulator.report import render_table, series_for_report, write_html, write_results
from simulator.schedulers import make_scheduler
from simulator.workload import compile_workload
from tests.model_fixtures import fit_tiny_models

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("cache_capable", [True, False], ids=["node-names", "whole-nodes"])
def test_ml_scheduler_places_pods_through_the_real_extender(
    tmp_path: Path, cache_capable: bool
) -> None:
    tiny = fit_tiny_models(tmp_path / "models")
    models = {"load": tiny["load"], "anomaly": tiny["anomaly"], "placement": tiny["agent"]}
    ds, _ = default_dataset(nodes=30, horizon_s=1800.0, seed=0, synthetic=True)
    workload = compile_workload(ds)
    config = SimConfig(horizon_s=1800.0, warmup_s=0.0)
    results, series = {}, {}
    with ml_stack(models=models, use_registry=False, out_dir=tmp_path / "stack") as stack:
        assert stack.origin == dict.fromkeys(("load", "anomaly", "placement"), "given")
        ml = ExtenderScheduler(
            url=stack.url, node_cache_capable=cache_capable, **scheduler_context(ds)
        )
        for name, sched in (("default", make_scheduler("default")), ("ml", ml)):
            result = simulate(workload, sched, seed=0, config=config)
            results[name], series[name] = summarize(result), series_for_report(result)
        state = httpx.get(f"{stack.url}/v1/state", timeout=5.0).json()
        metrics = httpx.get(f"{stack.url}/metrics", timeout=5.0).text
    # the extender saw the cluster: every node in its state, its models scoring it
    assert state["nodes"] == workload.n_nodes and state["degraded"] == []
    assert "hydatis_" in metrics
    stats = ml.stats()
    assert stats["pushes"] >= 20 and stats.get("push_errors", 0) == 0
    assert stats["filter_calls"] > 0 and stats["prioritize_calls"] > 0
    assert stats.get("filter_errors", 0) == 0 and stats.get("prioritize_errors", 0) == 0
    assert results["ml"]["placements"] > 0
    assert results["ml"]["placements"] >= 0.9 * results["default"]["placements"]
    # the report carries an ml row beside the baselines
    run = {"seed": 0, "dataset": {"nodes": workload.n_nodes, "pods": workload.n_pods}}
    res_path, _ = write_results(tmp_path / "out", results, run)
    html = write_html(tmp_path / "out", results, series, run).read_text()
    assert list(json.loads(res_path.read_text())) == ["default", "ml"]
    assert "<tr><th>ml</th>" in html
    assert [row for row in render_table(results).columns[0].cells] == ["default", "ml"]
