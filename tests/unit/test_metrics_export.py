"""The replay metrics export: what it writes agrees with the run it came from.

Small replays (8 nodes, 1 h, a load that causes pending pods and evictions); the file is
read back with a small parser of our own (OpenMetrics text: family headers, one sample a
line), and its counts are checked against the engine's own records. The scrape path runs
against a real ``prometheus_client`` HTTP server on loopback.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from hydatis.errors import ConfigError
from simulator.datasets import default_dataset
from simulator.engine import SimConfig, simulate
from simulator.metrics import HOT_THRESHOLD
from simulator.metrics_export import (
    CPU_BUCKETS,
    EXTENDER_JOB,
    MODEL_SERVER_JOB,
    RecordingScheduler,
    ReplayRecorder,
    ScrapeTarget,
    ml_stack_targets,
    pending_intervals,
)
from simulator.schedulers import DefaultScheduler, make_scheduler
from simulator.workload import compile_workload
from tests.servers import free_port

HORIZON = 3600.0
LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+) (\S+)$")


@pytest.fixture(scope="module")
def runs():
    ds, _ = default_dataset(
        nodes=8, horizon_s=HORIZON, seed=0, synthetic=True, load_factor=2.5, usage_scale=1.5
    )
    workload = compile_workload(ds)
    config = SimConfig(horizon_s=HORIZON)
    rec = ReplayRecorder()
    out = {}
    for name in ("default", "random"):
        result = simulate(workload, rec.wrap(name, make_scheduler(name)), seed=0, config=config)
        rec.add(name, workload, result)
        out[name] = result
    return workload, out, rec


def _read(path: Path) -> tuple[dict[str, str], dict[tuple[str, str], list[tuple[float, float]]]]:
    """(family -> type, (sample name, labels) -> [(t, value)]) of an OpenMetrics file."""
    types: dict[str, str] = {}
    series: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    lines = path.read_text().splitlines()
    assert lines[-1] == "# EOF"
    for line in lines[:-1]:
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"family {name} written twice"
            types[name] = kind
        elif not line.startswith("#"):
            m = LINE.match(line)
            assert m, line
            series[(m[1], m[2] or "")].append((float(m[4]), float(m[3])))
    return types, series


def _points(series, name: str, **labels: str) -> list[tuple[float, float]]:
    """The one series ``name`` whose labels include ``labels``."""
    want = {f'{k}="{v}"' for k, v in labels.items()}
    hits = [
        pts for (n, lab), pts in series.items() if n == name and want <= set(lab[1:-1].split(","))
    ]
    assert len(hits) == 1, (name, labels, len(hits))
    return hits[0]


def _last(series, name: str, **labels: str) -> float:
    return _points(series, name, **labels)[-1][1]


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    _, _, rec = runs
    path = tmp_path_factory.mktemp("om") / "replay.om"
    export = rec.write(path, now=2_000_000_000.0)
    return export, *_read(path)


def test_pending_spells_give_the_engines_pending_count_at_every_step(runs) -> None:
    workload, results, _ = runs
    for result in results.values():
        counts = np.zeros(result.times.size)
        for _, start, end in pending_intervals(workload, result):
            counts += (result.times >= start - 1e-6) & (result.times < end - 1e-6)
        assert result.pending.sum() > 0  # the load makes pods wait
        np.testing.assert_array_equal(counts, result.pending)


def test_counters_end_at_the_engines_totals(runs, exported) -> None:
    _, results, _ = runs
    _, _, series = exported
    for name, result in results.items():
        assert _last(series, "hydatis_sim_placements_total", scheduler=name) == result.placements
        assert _last(series, "hydatis_sim_evictions_total", scheduler=name) == result.evictions
    assert sum(r.evictions for r in results.values()) > 0


def test_node_cpu_histogram_counts_every_node_at_every_step(runs, exported) -> None:
    _, results, _ = runs
    _, _, series = exported
    fam = "hydatis_sim_node_cpu_utilization_ratio"
    for name, r in results.items():
        cpu = r.node_cpu.astype("float64")
        assert _last(series, f"{fam}_count", scheduler=name) == cpu.size
        assert _last(series, f"{fam}_sum", scheduler=name) == pytest.approx(cpu.sum(), rel=1e-8)
        below = _last(series, f"{fam}_bucket", scheduler=name, le="0.85")
        assert below == (cpu <= HOT_THRESHOLD).sum()
        # the hot-node gauge is the same count, step by step
        hot = [v for _, v in series[("hydatis_sim_hot_nodes", f'{{scheduler="{name}"}}')]]
        assert hot == (cpu > HOT_THRESHOLD).sum(axis=1).tolist()


def test_kube_scheduler_attempts_match_the_decisions(runs, exported) -> None:
    _, results, _ = runs
    export, _, series = exported
    assert export.subject == "default"  # no ml run: the first run is the cluster
    r = results["default"]
    scheduled = _last(
        series, "scheduler_schedule_attempts_total", profile="default-scheduler", result="scheduled"
    )
    failed = _last(
        series,
        "scheduler_schedule_attempts_total",
        profile="default-scheduler",
        result="unschedulable",
    )
    assert scheduled == r.placements
    assert scheduled + failed == r.latencies_s.size  # every select call is one attempt


def test_raw_names_and_types(exported) -> None:
    _, types, series = exported
    for family, kind in {
        "node_cpu_seconds": "counter",
        "kube_pod_info": "gauge",
        "kube_pod_status_phase": "gauge",
        "kube_pod_created": "gauge",
        "kube_pod_status_reason": "gauge",
        "kube_node_status_allocatable": "gauge",
        "scheduler_pending_pods": "gauge",
        "scheduler_scheduling_attempt_duration_seconds": "histogram",
        "hydatis_sim_node_cpu_utilization_ratio": "histogram",
    }.items():
        assert types[family] == kind, family
    phases = {lab for (n, lab) in series if n == "kube_pod_status_phase"}
    assert phases and all('phase="Pending"' in lab for lab in phases)


def test_series_are_in_time_order_and_end_before_now(exported) -> None:
    export, _, series = exported
    for key, pts in series.items():
        ts = [t for t, _ in pts]
        assert ts == sorted(ts) and len(set(ts)) == len(ts), key
    assert export.last <= 2_000_000_000.0 - 4 * 3600
    assert export.last > 2_000_000_000.0 - 4 * 3600 - export.step_s


def test_ml_is_the_subject_when_it_ran(runs) -> None:
    workload, results, _ = runs
    rec = ReplayRecorder()
    rec.add("default", workload, results["default"])
    rec.add("ml", workload, results["random"])  # any run named ml
    rec.add("tlp", workload, results["random"])
    assert rec._takes_subject("ml") is False  # already the subject
    assert next(iter(rec._raw)) == "ml"


def test_bad_input_is_named(runs, tmp_path) -> None:
    workload, results, _ = runs
    with pytest.raises(ConfigError, match="no run to export"):
        ReplayRecorder().write(tmp_path / "x.om")
    with pytest.raises(ConfigError, match="scrape_interval_s"):
        ReplayRecorder(scrape_interval_s=0)
    rec = ReplayRecorder(subject="ml")
    rec.add("default", workload, results["default"])
    with pytest.raises(ConfigError, match="subject 'ml'"):
        rec.write(tmp_path / "x.om")


def test_recording_scheduler_defers_to_the_scheduler_it_wraps() -> None:
    inner = make_scheduler("tlp")
    wrapped = RecordingScheduler(inner)
    assert wrapped.name == "tlp"
    assert wrapped.target_utilization == inner.target_utilization


def test_job_names_are_the_ones_the_rules_use() -> None:
    spec = pytest.importorskip("monitoring.alerts.spec")
    assert EXTENDER_JOB == spec.EXTENDER_JOB
    assert MODEL_SERVER_JOB == spec.MODEL_SERVER_JOB
    targets = ml_stack_targets("http://127.0.0.1:8888", {"load": "http://127.0.0.1:8091"})
    assert [(t.job, t.instance) for t in targets] == [
        (EXTENDER_JOB, "127.0.0.1:8888"),
        (MODEL_SERVER_JOB, "127.0.0.1:8091"),
    ]


def test_scrapes_a_real_metrics_endpoint_at_simulated_times(runs, tmp_path) -> None:
    workload, _, _ = runs
    registry = CollectorRegistry()
    calls = Counter("demo_calls", "Calls.", ["verb"], registry=registry)
    latency = Histogram("demo_seconds", "Latency.", registry=registry, buckets=(0.1, 1.0))
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    dead = free_port()  # nothing listens there: up = 0
    try:

        class Counting(DefaultScheduler):
            """The default scheduler, instrumented as a service would be."""

            def select(self, pod, view):
                calls.labels("filter").inc()
                latency.observe(0.5)
                return super().select(pod, view)

        rec = ReplayRecorder(
            targets={
                "default": [
                    ScrapeTarget("demo", f"http://127.0.0.1:{port}"),
                    ScrapeTarget("gone", f"http://127.0.0.1:{dead}"),
                ]
            },
            scrape_interval_s=300.0,
        )
        config = SimConfig(horizon_s=HORIZON)
        result = simulate(workload, rec.wrap("default", Counting()), seed=0, config=config)
        rec.add("default", workload, result)
        export = rec.write(tmp_path / "scraped.om", now=2_000_000_000.0)
    finally:
        server.shutdown()
        thread.join(timeout=5)
    types, series = _read(export.path)
    assert set(export.scraped_jobs) == {"demo", "gone"}
    up_demo = _points(series, "up", job="demo", instance=f"127.0.0.1:{port}")
    up_gone = _points(series, "up", job="gone", instance=f"127.0.0.1:{dead}")
    scrapes = math.floor(HORIZON / 300.0) + 1
    assert [v for _, v in up_demo] == [1.0] * scrapes
    assert [v for _, v in up_gone] == [0.0] * scrapes
    # scraped at simulated times, 300 s apart, on the export's time line
    ts = [t for t, _ in up_demo]
    assert np.allclose(np.diff(ts), 300.0) and ts[-1] <= export.last
    assert types["demo_calls"] == "counter" and types["demo_seconds"] == "histogram"
    points = _points(series, "demo_calls_total", verb="filter", job="demo")
    values = [v for _, v in points]
    assert values == sorted(values) and values[-1] > 0  # the service's own counter
    scraped = {n for n, _ in series if n.startswith("demo_")}
    assert scraped == {
        "demo_calls_total",
        "demo_seconds_bucket",
        "demo_seconds_sum",
        "demo_seconds_count",
    }


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="needs promtool (apt-get install prometheus)"
)
def test_promtool_backfills_the_file(exported, tmp_path) -> None:
    export, _, _ = exported
    proc = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(export.path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(tmp_path.iterdir())


def test_cpu_buckets_hold_the_target_band_and_the_hot_line() -> None:
    assert {0.6, 0.7, 0.85} <= set(CPU_BUCKETS)
