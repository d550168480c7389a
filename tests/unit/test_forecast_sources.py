"""Demand series from a cluster dataset, the PromQL file, and the command line
(``hydatis forecast``) on datasets; Prometheus unreachable is named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli.forecast import main as forecast_main
from hydatis.dataset import ClusterDataset, empty_table, save_dataset
from hydatis.errors import ConfigError
from hydatis.prometheus import PrometheusClient, PrometheusUnavailableError
from monitoring.forecast import dataset_demand, load_forecast_queries, prometheus_demand
from monitoring.forecast.errors import ForecastInputError
from monitoring.forecast.sources import DEFAULT_QUERIES_PATH, _label_name, _promql_regex
from tests.servers import free_port

T0 = pd.Timestamp("2024-03-04", tz="UTC")


def cluster(days: float, step_s: float = 300.0, *, seed: int = 0) -> ClusterDataset:
    """Three nodes, two shapes (4c/16Gi ×2, 8c/32Gi), a ``pool`` label, daily CPU cycles."""
    nodes = pd.DataFrame(
        {
            "node": ["n1", "n2", "big.1"],
            "cpu_cores": [4.0, 4.0, 8.0],
            "mem_gib": [16.0, 16.0, 32.0],
            "pool": ["a", "a", "b"],
        }
    )
    ts = T0 + pd.to_timedelta(np.arange(int(days * 86400 / step_s)) * step_s, unit="s")
    rng = np.random.default_rng(seed)
    rows = []
    for i, node in enumerate(nodes["node"]):
        phase = 2 * np.pi * (ts.hour * 3600 + ts.minute * 60) / 86400
        cpu = np.clip(0.4 + 0.2 * np.sin(phase + i) + rng.normal(0, 0.02, ts.size), 0, 1)
        mem = np.clip(0.5 + 0.1 * np.cos(phase) + rng.normal(0, 0.01, ts.size), 0, 1)
        rows.append(pd.DataFrame({"ts": ts, "node": node, "cpu_util": cpu, "mem_util": mem}))
    return ClusterDataset(
        nodes=nodes,
        node_metrics=pd.concat(rows, ignore_index=True),
        pods=empty_table("pods"),
        pod_usage=empty_table("pod_usage"),
    )


def test_dataset_demand_sums_nodes_into_cluster_and_shape_pools():
    ds = cluster(0.5, step_s=60)
    series = {s.name: s for s in dataset_demand(ds, step_s=300)}
    assert set(series) == {
        "cluster cpu",
        "shape=4c/16Gi cpu",
        "shape=8c/32Gi cpu",
        "cluster mem",
        "shape=4c/16Gi mem",
        "shape=8c/32Gi mem",
    }
    nm = ds.node_metrics.merge(ds.nodes, on="node")
    nm["cores"] = nm["cpu_util"] * nm["cpu_cores"]
    per_bin = nm.groupby([nm["ts"].dt.floor("300s"), "node"])["cores"].mean().groupby(level=0).sum()
    np.testing.assert_allclose(series["cluster cpu"].values, per_bin.to_numpy())
    big = series["shape=8c/32Gi cpu"]
    assert (big.capacity, big.nodes, big.node_capacity) == (8.0, 1, 8.0)
    c = series["cluster mem"]
    assert (c.capacity, c.nodes, c.node_capacity, c.unit) == (64.0, 3, 16.0, "GiB")
    assert c.start == T0 and c.step_s == 300


def test_dataset_demand_by_label_and_carrying_a_missing_sample():
    ds = cluster(0.25)
    ds.node_metrics = ds.node_metrics.drop(index=[5])  # n1 misses one sample
    series = {s.name: s for s in dataset_demand(ds, resources=("cpu",), pool_label="pool")}
    assert set(series) == {"cluster cpu", "pool=a cpu", "pool=b cpu"}
    a = series["pool=a cpu"].values
    n1 = ds.node_metrics.query("node == 'n1'").set_index("ts")["cpu_util"] * 4
    n2 = ds.node_metrics.query("node == 'n2'").set_index("ts")["cpu_util"] * 4
    assert a[5] == pytest.approx(n1.iloc[4] + n2.iloc[5])  # n1's last value carried over


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"pool_label": "zone"}, "nodes has no column 'zone'"), ({"resources": ("gpu",)}, "gpu")],
    ids=["missing-label", "unknown-resource"],
)
def test_dataset_demand_rejects(kwargs, match):
    with pytest.raises(ForecastInputError, match=match):
        dataset_demand(cluster(0.1), **kwargs)


def test_dataset_demand_needs_node_series():
    ds = cluster(0.1)
    ds.node_metrics = empty_table("node_metrics")
    with pytest.raises(ForecastInputError, match="node_metrics is empty"):
        dataset_demand(ds)


def test_queries_file_loads_and_names_bad_keys(tmp_path):
    q = load_forecast_queries()
    assert q.path == DEFAULT_QUERIES_PATH and "$NODES" in q.queries["cpu_demand"]
    raw = DEFAULT_QUERIES_PATH.read_text()
    bad = tmp_path / "q.yaml"
    bad.write_text(raw.replace("cpu_demand:", "cpu_demand_x:"))
    with pytest.raises(ConfigError, match="'cpu_demand' must be a PromQL string"):
        load_forecast_queries(bad)
    bad.write_text(
        "cpu_demand: 'sum(x)'\nmem_demand: 'sum(y{$NODES})'\ncpu_capacity: a\n"
        "mem_capacity: b\nnode_labels: c\n"
    )
    with pytest.raises(ConfigError, match="'cpu_demand' must use \\$NODES"):
        load_forecast_queries(bad)
    bad.write_text("cpu_demand: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_forecast_queries(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_forecast_queries(tmp_path / "missing.yaml")


def test_promql_names_are_escaped():
    assert _promql_regex(["n1", "big.1"]) == "big\\\\.1|n1"
    assert _label_name("cloud.google.com/gke-nodepool") == "label_cloud_google_com_gke_nodepool"


def test_prometheus_unreachable_is_a_named_error():
    url = f"http://127.0.0.1:{free_port()}"
    client = PrometheusClient(url, max_retries=1, backoff_s=0.01)
    with pytest.raises(PrometheusUnavailableError, match=f"Prometheus at {url} did not answer"):
        prometheus_demand(client, start=0, end=3600)


def test_cli_needs_one_source(capsys, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    assert forecast_main(["--horizon", "24h"]) == 2
    assert "name one history source" in capsys.readouterr().err


def test_cli_too_short_history_names_the_minimum(tmp_path, capsys):
    save_dataset(cluster(2.0), tmp_path / "ds")
    code = forecast_main(["--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "cluster cpu: a 1 d forecast needs at least 4 d of history" in err
    assert "got 2 d" in err


def test_cli_unreachable_prometheus(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code = forecast_main(["--prometheus", url, "--retries", "0", "--out", str(tmp_path)])
    assert code == 2
    assert f"Prometheus at {url} did not answer" in capsys.readouterr().err


def test_cli_forecasts_a_dataset(tmp_path, capsys):
    save_dataset(cluster(5.0, seed=1), tmp_path / "ds")
    out = tmp_path / "out"
    code = forecast_main(
        [
            "--dataset",
            str(tmp_path / "ds"),
            "--resources",
            "cpu",
            "--out",
            str(out),
            "--windows",
            "4",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "shape=8c/32Gi cpu" in printed and "nodes needed" in printed
    summary = json.loads((out / "summary.json").read_text())
    names = [s["name"] for s in summary["series"]]
    assert names == ["cluster cpu", "shape=4c/16Gi cpu", "shape=8c/32Gi cpu"]
    cl = summary["series"][0]
    assert cl["nodes_now"] == 3 and isinstance(cl["nodes_needed"]["point"], int)
    assert cl["nodes_needed"]["point"] <= cl["nodes_needed"]["hi95"]
    steps = pd.read_csv(out / "forecast.csv")
    assert len(steps) == 3 * 288 and {"lo80", "hi80", "lo95", "hi95"} <= set(steps.columns)
    page = (out / "forecast.html").read_text()
    assert page.count("plotly") > 3 and "cluster cpu" in page
