"""A simulator run as a dataset (history_dataset) and that dataset as OpenMetrics text
(write_openmetrics): stays, suffixes, usage by age, and the text's contract."""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from hydatis.dataset import validate
from hydatis.errors import ConfigError
from simulator.engine import SimConfig, simulate
from simulator.history import history_dataset
from simulator.openmetrics import write_openmetrics
from simulator.types import ClusterView, FrameworkScheduler, PodSpec
from simulator.workload import compile_workload
from tests.factories import T0, make_dataset

LINE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?P<labels>\{.*\})? (?P<value>\S+) (?P<ts>\S+)$")


class FirstFit(FrameworkScheduler):
    """Lowest feasible node index."""

    name = "first-fit"

    def score(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        return -nodes


def _eviction_run():
    """Pod p1 is evicted for memory after 300 s and placed again (on node n1)."""
    pods = [
        {"cpu": 1, "mem": 4, "priority": 10, "use": [(1, 4)], "workload": "db"},
        {"cpu": 1, "mem": 4, "priority": 0, "use": [(0.5, 4), (1.5, 7)], "end": 1500},
    ]
    ds = make_dataset([(8, 10), (8, 10)], pods, horizon_s=1800)
    wl = compile_workload(ds)
    res = simulate(wl, FirstFit(), seed=0, config=SimConfig())
    return ds, wl, res


@pytest.fixture(scope="module")
def history():
    ds, wl, res = _eviction_run()
    owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
    return history_dataset(wl, res, owners=owners), res


def test_history_has_one_row_per_stay_with_suffixes(history):
    h, res = history
    validate(h)
    assert res.evictions >= 1
    names = h.pods["pod"].tolist()
    assert names[:2] == ["p0", "p1"] and "p1-e1" in names
    again = h.pods.set_index("pod").loc["p1-e1"]
    first = h.pods.set_index("pod").loc["p1"]
    assert first["end_ts"] <= again["start_ts"]
    assert first["node"] == "n0" and first["workload"] == "p1"
    assert h.pods.set_index("pod").loc["p0", "workload"] == "db"
    assert pd.isna(h.pods.set_index("pod").loc["p0", "end_ts"])  # still running at the end
    assert h.pods.set_index("pod").loc["p0", "priority"] == 10
    assert h.pods.set_index("pod").loc["p0", "cpu_request"] == 1.0


def test_history_node_metrics_are_every_step_and_node(history):
    h, res = history
    assert len(h.node_metrics) == res.times.size * 2
    n0 = h.node_metrics[h.node_metrics["node"] == "n0"]
    np.testing.assert_allclose(n0["cpu_util"], res.node_cpu[:, 0], rtol=1e-6)
    assert n0["ts"].iloc[0] == T0 and (n0["ts"].diff().dropna() == pd.Timedelta(30, "s")).all()


def test_history_usage_restarts_the_profile_in_each_stay(history):
    h, _ = history
    use = h.pod_usage.set_index("pod")
    stays = h.pods.set_index("pod")
    for pod in ("p1", "p1-e1"):
        rows = use.loc[[pod]].sort_values("ts")
        # The first sample of every stay is the profile's first (age 0).
        assert rows["cpu_used"].iloc[0] == 0.5
        assert rows["ts"].iloc[0] == stays.loc[pod, "start_ts"]
        end = stays.loc[pod, "end_ts"]
        assert (rows["ts"] < end).all()
        stay_s = (end - stays.loc[pod, "start_ts"]).total_seconds()
        assert len(rows) == np.ceil(stay_s / 300)


def test_history_of_a_synthetic_run_is_vectorised_and_valid():
    from simulator.schedulers import make_scheduler
    from simulator.synthetic import generate_synthetic

    src = generate_synthetic(nodes=20, horizon_s=6 * 3600, seed=3)
    wl = compile_workload(src)
    res = simulate(wl, make_scheduler("default"), seed=0)
    h = history_dataset(wl, res, epoch="2025-06-01T00:00:00Z")
    validate(h)
    assert h.node_metrics["ts"].min() == pd.Timestamp("2025-06-01", tz="UTC")
    assert len(h.pods) == len(res.segments)


# -- OpenMetrics ---------------------------------------------------------------------------
def _parse(path):
    """(families in order, {(name, labels): [(ts, value)]}, lines) of an OpenMetrics file."""
    families, series, lines = [], defaultdict(list), path.read_text().splitlines()
    for line in lines:
        if line.startswith("# TYPE "):
            families.append(line.split()[2])
        elif not line.startswith("#"):
            m = LINE.match(line)
            assert m, line
            key = (m["name"], m["labels"] or "")
            series[key].append((float(m["ts"]), float(m["value"])))
    return families, series, lines


@pytest.fixture(scope="module")
def exported(history, tmp_path_factory):
    h = dataclasses.replace(
        history[0], node_metrics=history[0].node_metrics.assign(net_rx_bytes_s=1000.0)
    )
    path = tmp_path_factory.mktemp("om") / "h.om"
    info = write_openmetrics(h, path, cpus_per_node=2)
    return h, info, *_parse(path)


def test_openmetrics_file_contract(exported):
    _, info, families, series, lines = exported
    assert lines[-1] == "# EOF"
    assert info.samples == sum(len(v) for v in series.values())
    assert len(families) == len(set(families))
    # Each family's lines are contiguous.
    seen, current = [], None
    for line in lines[:-1]:
        name = line.split()[2] if line.startswith("# TYPE") else None
        if name and name != current:
            assert name not in seen
            seen.append(name)
            current = name
    for (name, _), points in series.items():
        ts = [t for t, _ in points]
        assert ts == sorted(set(ts)), f"{name}: timestamps not increasing"
    assert {
        "node_cpu_seconds",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_network_receive_bytes",
        "kube_node_status_capacity",
        "kube_pod_info",
        "kube_pod_container_resource_requests",
        "kube_pod_container_resource_limits",
        "container_cpu_usage_seconds",
        "container_memory_working_set_bytes",
    } <= set(families)


def _rate(points):
    ts, vals = np.array(points).T
    return np.diff(vals) / np.diff(ts)


def test_counters_give_back_the_exported_rates(exported):
    h, _, _, series, _ = exported
    n0 = h.node_metrics[h.node_metrics["node"] == "n0"]
    for cpu in ("0", "1"):
        idle = series[("node_cpu_seconds_total", f'{{node="n0",cpu="{cpu}",mode="idle"}}')]
        np.testing.assert_allclose(_rate(idle), 1 - n0["cpu_util"].to_numpy()[1:], atol=1e-6)
    rx = series[("node_network_receive_bytes_total", '{node="n0",device="eth0"}')]
    np.testing.assert_allclose(_rate(rx), 1000.0, atol=1e-3)
    avail = np.array(series[("node_memory_MemAvailable_bytes", '{node="n0"}')])[:, 1]
    np.testing.assert_allclose(1 - avail / (10 * 2**30), n0["mem_util"], atol=1e-9)
    cpu = [v for k, v in series.items() if k[0] == "container_cpu_usage_seconds_total"]
    key = next(
        k for k in series if k[0] == "container_cpu_usage_seconds_total" and 'pod="p1-e1"' in k[1]
    )
    # p1 is evicted when its profile reaches 1.5 cores, so each stay runs at 0.5.
    np.testing.assert_allclose(_rate(series[key]), 0.5, rtol=1e-9)
    key = next(
        k for k in series if k[0] == "container_cpu_usage_seconds_total" and 'pod="p0"' in k[1]
    )
    np.testing.assert_allclose(_rate(series[key]), 1.0, rtol=1e-9)
    assert len(cpu) == len(h.pods)


def test_pod_series_exist_only_while_the_pod_is_on_its_node(exported):
    h, _, _, series, _ = exported
    stays = h.pods.set_index("pod")
    for (name, labels), points in series.items():
        if name != "kube_pod_info":
            continue
        pod = re.search(r'pod="([^"]+)"', labels)[1]
        assert f'node="{stays.loc[pod, "node"]}"' in labels
        start = stays.loc[pod, "start_ts"].timestamp()
        end = stays.loc[pod, "end_ts"]
        ts = np.array([t for t, _ in points])
        assert ts[0] == start
        if not pd.isna(end):
            assert ts[-1] < end.timestamp() <= ts[-1] + 30


def test_limits_written_only_when_set(exported):
    h, _, _, series, _ = exported
    limits = [k for k in series if k[0] == "kube_pod_container_resource_limits"]
    assert limits == []  # make_dataset sets no limits
    requests = [k for k in series if k[0] == "kube_pod_container_resource_requests"]
    assert len(requests) == 2 * len(h.pods)
    mem = next(v for k, v in series.items() if k[0] == "kube_pod_container_resource_requests"
               and 'resource="memory"' in k[1])  # fmt: skip
    assert mem[0][1] == 4 * 2**30


def test_end_before_shifts_to_whole_steps_before_now(history, tmp_path):
    h, _ = history
    now = 2_000_000_000.0
    info = write_openmetrics(h, tmp_path / "x.om", end_before=4 * 3600, now=now, step_s=30)
    assert now - 4 * 3600 - 30 < info.last <= now - 4 * 3600
    assert info.shift_s % 30 == 0
    _, series, _ = _parse(tmp_path / "x.om")
    assert max(t for v in series.values() for t, _ in v) == info.last


def test_attribute_interval_thins_static_families(history, tmp_path):
    h, _ = history
    info = write_openmetrics(h, tmp_path / "x.om", attribute_interval_s=120)
    _, series, _ = _parse(tmp_path / "x.om")
    cap = series[("kube_node_status_capacity", '{node="n0",resource="cpu",unit="core"}')]
    assert np.diff([t for t, _ in cap]).min() == 120
    assert info.samples < write_openmetrics(h, tmp_path / "y.om").samples


def test_bad_arguments(history, tmp_path):
    with pytest.raises(ConfigError, match="cpus_per_node"):
        write_openmetrics(history[0], tmp_path / "x.om", cpus_per_node=0)
