"""The capacity forecast against a real Prometheus: a cluster's node series written as
OpenMetrics under the names a cluster has (the simulator's export, plus kube-state-metrics'
``kube_node_labels``), backfilled with ``promtool``, read back as cluster and node-pool
demand, forecast through ``hydatis forecast``; a too-short history names its minimum.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from cli.forecast import main as forecast_main
from hydatis.dataset import ClusterDataset, empty_table
from hydatis.prometheus import PrometheusClient
from monitoring.forecast import forecast_series, prometheus_demand
from simulator.openmetrics import write_openmetrics
from tests.servers import backfill_openmetrics, prometheus_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("promtool") is None,
        reason="needs the prometheus and promtool binaries on PATH (Debian: apt-get install "
        "prometheus)",
    ),
]

DAYS, STEP = 5, 60.0
NODES = pd.DataFrame(
    {
        "node": ["n1", "n2", "big-1", "big-2"],
        "cpu_cores": [4.0, 4.0, 16.0, 16.0],
        "mem_gib": [16.0, 16.0, 64.0, 64.0],
        "pool": ["small", "small", "large", "large"],
    }
)


def _dataset() -> ClusterDataset:
    ts = pd.Timestamp("2024-05-06", tz="UTC") + pd.to_timedelta(
        np.arange(int(DAYS * 86400 / STEP)) * STEP, unit="s"
    )
    rng = np.random.default_rng(7)
    day = 2 * np.pi * (ts.hour * 3600 + ts.minute * 60).to_numpy() / 86400
    rows = [
        pd.DataFrame(
            {
                "ts": ts,
                "node": node,
                "cpu_util": np.clip(
                    0.45 + 0.25 * np.sin(day + i) + rng.normal(0, 0.03, ts.size), 0, 1
                ),
                "mem_util": np.clip(0.55 + 0.1 * np.cos(day) + rng.normal(0, 0.01, ts.size), 0, 1),
            }
        )
        for i, node in enumerate(NODES["node"])
    ]
    return ClusterDataset(
        nodes=NODES,
        node_metrics=pd.concat(rows, ignore_index=True),
        pods=empty_table("pods"),
        pod_usage=empty_table("pod_usage"),
    )


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forecast-prom")
    ds = _dataset()
    export = write_openmetrics(
        ds, tmp / "history.om", end_before=4 * 3600, attribute_interval_s=240
    )
    # kube-state-metrics' node labels, which the simulator does not write.
    text = export.path.read_text().removesuffix("# EOF\n")
    stamps = np.arange(export.first, export.last + 1, 240.0)
    lines = [
        "# HELP kube_node_labels Kubernetes labels converted to Prometheus labels.",
        "# TYPE kube_node_labels gauge",
    ]
    for node, pool in zip(NODES["node"], NODES["pool"], strict=True):
        lines += [
            f'kube_node_labels{{node="{node}",label_pool="{pool}"}} 1 {int(t)}' for t in stamps
        ]
    export.path.write_text(text + "\n".join(lines) + "\n# EOF\n")
    backfill_openmetrics(str(export.path), str(tmp / "data"))
    export.path.unlink()
    with prometheus_server(tmp / "data") as server:
        yield {"url": server.url, "export": export, "ds": ds, "tmp": tmp}


def test_demand_read_back_matches_the_cluster(prom):
    export, ds = prom["export"], prom["ds"]
    with PrometheusClient(prom["url"]) as client:
        series = {
            s.name: s
            for s in prometheus_demand(client, start=export.first, end=export.last, step_s=300)
        }
    assert set(series) == {
        "cluster cpu",
        "cluster mem",
        "shape=4c/16Gi cpu",
        "shape=4c/16Gi mem",
        "shape=16c/64Gi cpu",
        "shape=16c/64Gi mem",
    }
    cpu = series["cluster cpu"]
    assert (cpu.capacity, cpu.nodes, cpu.node_capacity) == (40.0, 4, 10.0)
    # Truth at each evaluation time t: rate(...[5m]) averages the steps between the counter
    # samples in [t - 5m, t] (Prometheus 2 includes both ends), i.e. the utilisation
    # samples at t-240 s ... t.
    nm = ds.node_metrics.merge(NODES, on="node")
    nm["cores"] = nm["cpu_util"] * nm["cpu_cores"]
    nm["gib"] = nm["mem_util"] * nm["mem_gib"]
    per_t = nm.groupby("ts")[["cores", "gib"]].sum()
    per_t.index = (per_t.index.astype("int64") // 10**9 + export.shift_s).astype(float)
    times = cpu.times().astype("int64") // 10**9
    got, want = [], []
    for i, t in enumerate(times):
        window = per_t.loc[t - 300 : t]
        if len(window) == 6:
            got.append(cpu.values[i])
            want.append(window["cores"].iloc[1:].mean())
    assert len(got) > 1000
    np.testing.assert_allclose(got, want, rtol=1e-4)
    # A gauge is read as its latest sample: the memory in use at t exactly.
    mem = series["cluster mem"]
    mem_t = (mem.times().astype("int64") // 10**9).astype(float)
    np.testing.assert_allclose(mem.values, per_t.loc[mem_t, "gib"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        series["shape=4c/16Gi cpu"].values + series["shape=16c/64Gi cpu"].values,
        cpu.values,
        rtol=1e-9,
    )
    fc = forecast_series(cpu, 86400)
    assert fc.result.mean.size == 288 and fc.times[0] == cpu.end


def test_pools_by_node_label(prom):
    export = prom["export"]
    with PrometheusClient(prom["url"]) as client:
        series = prometheus_demand(
            client,
            start=export.last - 86400,
            end=export.last,
            resources=("cpu",),
            pool_label="pool",
        )
    by = {s.name: s for s in series}
    assert set(by) == {"cluster cpu", "pool=small cpu", "pool=large cpu"}
    assert by["pool=large cpu"].capacity == 32.0 and by["pool=large cpu"].nodes == 2
    np.testing.assert_allclose(
        by["pool=small cpu"].values + by["pool=large cpu"].values, by["cluster cpu"].values
    )


def test_cli_forecast_from_prometheus(prom, capsys):
    export, out = prom["export"], prom["tmp"] / "cli"
    end = pd.Timestamp(export.last, unit="s", tz="UTC").isoformat()
    code = forecast_main(
        [
            "--prometheus",
            prom["url"],
            "--end",
            end,
            "--days",
            "4.9",
            "--horizon",
            "24h",
            "--windows",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "cluster cpu" in printed and "shape=16c/64Gi mem" in printed
    summary = json.loads((out / "summary.json").read_text())
    cluster = summary["series"][0]
    assert cluster["name"] == "cluster cpu" and cluster["nodes_now"] == 4
    assert 1 <= cluster["nodes_needed"]["point"] <= cluster["nodes_needed"]["hi95"]
    assert (out / "forecast.html").stat().st_size > 100_000


def test_cli_too_short_history_from_prometheus(prom, capsys):
    end = pd.Timestamp(prom["export"].last, unit="s", tz="UTC").isoformat()
    code = forecast_main(
        [
            "--prometheus",
            prom["url"],
            "--end",
            end,
            "--days",
            "4.9",
            "--horizon",
            "7d",
            "--no-pools",
            "--resources",
            "cpu",
            "--out",
            str(prom["tmp"] / "short"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "cluster cpu: a 7 d forecast needs at least 16 d of history" in err
