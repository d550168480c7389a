"""Round trip through a real Prometheus: simulate → export OpenMetrics → promtool backfill →
start Prometheus → extract → the dataset matches what was exported.

Like is compared with like: a counter's ``rate(...[1m])`` at ``t`` is compared with the
mean of the exported utilisation over the last minute (the samples at ``t - 30 s`` and
``t``), a gauge with the exported value at ``t``; pod lifetimes to within one step.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest

from cli.main import main
from components.extract import extract
from hydatis.dataset import load_dataset
from simulator.engine import simulate
from simulator.history import history_dataset
from simulator.openmetrics import write_openmetrics
from simulator.schedulers import make_scheduler
from simulator.synthetic import generate_synthetic
from simulator.workload import compile_workload
from tests.servers import backfill_openmetrics, prometheus_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("promtool") is None,
        reason="needs the prometheus and promtool binaries on PATH (Debian: apt-get install "
        "prometheus)",
    ),
]

NODES, DAYS, STEP = 30, 3, 30.0
TOL_RATE = 1e-5  # counters are written to the microsecond
TOL_GAUGE = 1e-8  # bytes are written as integers


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prom")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    src = generate_synthetic(nodes=NODES, horizon_s=DAYS * 86400, seed=1, load_factor=0.15)
    # Every fourth pod Guaranteed (limits = requests), so limits make the round trip too.
    guaranteed = np.arange(len(src.pods)) % 4 == 0
    for col in ("cpu", "mem"):
        src.pods[f"{col}_limit"] = src.pods[f"{col}_request"].where(guaranteed)
    src.pods["qos"] = np.where(guaranteed, "Guaranteed", "Burstable").astype(object)
    workload = compile_workload(src)
    result = simulate(workload, make_scheduler("default"), seed=0)
    history = history_dataset(
        workload, result, owners=dict(zip(src.pods.pod, src.pods.workload, strict=True))
    )
    timings["simulate"] = time.perf_counter() - t

    t = time.perf_counter()
    export = write_openmetrics(
        history, tmp / "history.om", end_before=4 * 3600, attribute_interval_s=120
    )
    timings["export"] = time.perf_counter() - t
    t = time.perf_counter()
    backfill_openmetrics(str(export.path), str(tmp / "data"))
    timings["backfill"] = time.perf_counter() - t
    export.path.unlink()

    with prometheus_server(tmp / "data") as server:
        t = time.perf_counter()
        ds = extract(
            server.url, start=export.first, end=export.last, step_s=STEP, out_dir=tmp / "out"
        )
        timings["extract"] = time.perf_counter() - t
        # A rerun finds every chunk on disk and asks Prometheus nothing.
        t = time.perf_counter()
        again = extract(
            "http://127.0.0.1:9/unused",
            start=export.first,
            end=export.last,
            step_s=STEP,
            out_dir=tmp / "out",
        )
        timings["resume"] = time.perf_counter() - t
        # The command line, over the last 6 hours of the same history.
        end_iso = pd.Timestamp(export.last, unit="s", tz="UTC").isoformat()
        cli_code = main(
            [
                "extract",
                "--prometheus",
                server.url,
                "--days",
                "0.25",
                "--end",
                end_iso,
                "--step",
                "30s",
                "--out",
                str(tmp / "cli"),
            ]
        )
    print(f"\nround trip: {export.samples:,} samples, timings {timings}")
    return {
        "history": history,
        "export": export,
        "ds": ds,
        "again": again,
        "out": tmp / "out",
        "timings": timings,
        "cli_code": cli_code,
        "cli_out": tmp / "cli",
    }


def _hist_seconds(ts: pd.Series, shift: float) -> np.ndarray:
    return (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy() - shift


def test_written_dataset_and_quality_report(roundtrip):
    out = roundtrip["out"]
    loaded = load_dataset(out)
    assert len(loaded.node_metrics) == len(roundtrip["ds"].node_metrics)
    report = (out / "quality.json").read_text()
    assert '"passed": true' in report
    assert (out / "quality.html").is_file()
    pd.testing.assert_frame_equal(roundtrip["again"].pods, roundtrip["ds"].pods)


def test_nodes_match(roundtrip):
    hist, ds = roundtrip["history"].nodes, roundtrip["ds"].nodes
    merged = hist.merge(ds, on="node", suffixes=("_h", "_x"), validate="one_to_one")
    assert len(merged) == len(hist) == NODES
    np.testing.assert_allclose(merged["cpu_cores_x"], merged["cpu_cores_h"], rtol=1e-9)
    np.testing.assert_allclose(merged["mem_gib_x"], merged["mem_gib_h"], rtol=1e-9)


def test_node_metrics_match(roundtrip):
    shift = roundtrip["export"].shift_s
    hist = roundtrip["history"].node_metrics.sort_values(["node", "ts"]).copy()
    hist["t"] = _hist_seconds(hist["ts"], 0.0)
    # rate over [1m] at t: the mean of the utilisation exported at t - 30 s and t.
    hist["cpu_1m"] = hist.groupby("node")["cpu_util"].transform(lambda s: s.rolling(2).mean())
    ext = roundtrip["ds"].node_metrics.copy()
    ext["t"] = _hist_seconds(ext["ts"], shift)
    m = hist.merge(ext, on=["node", "t"], suffixes=("_h", "_x"), validate="one_to_one")
    first = hist.groupby("node")["t"].transform("min")
    m = m[m["t"] >= first.min() + 2 * STEP]
    assert len(m) >= 0.99 * NODES * (DAYS * 86400 / STEP - 2)
    cpu_err = np.abs(m["cpu_util_x"] - m["cpu_1m"]).max()
    mem_err = np.abs(m["mem_util_x"] - m["mem_util_h"]).max()
    print(f"\nnode cpu_util max |diff| {cpu_err:.2e}, mem_util {mem_err:.2e}")
    assert cpu_err < TOL_RATE
    assert mem_err < TOL_GAUGE


def test_pods_match(roundtrip):
    shift, step = roundtrip["export"].shift_s, STEP
    last = roundtrip["export"].last - shift
    hist = roundtrip["history"].pods
    # Pods that were on a node at one scrape at least.
    start, end = _hist_seconds(hist["start_ts"], 0.0), _hist_seconds(hist["end_ts"], 0.0)
    on_grid = np.ceil(start / step) * step < np.nan_to_num(end, nan=np.inf)
    hist = hist[on_grid]
    ds = roundtrip["ds"].pods
    assert sorted(ds["pod"]) == sorted(hist["pod"])
    m = hist.merge(ds, on="pod", suffixes=("_h", "_x"), validate="one_to_one")
    assert (m["node_h"] == m["node_x"]).all()
    assert (m["workload_h"] == m["workload_x"]).all()
    assert (m["priority_h"] == m["priority_x"]).all()
    for col in ("cpu_request", "mem_request", "cpu_limit", "mem_limit"):
        assert col in ds.columns, col
        h, x = m[f"{col}_h"].to_numpy(float), m[f"{col}_x"].to_numpy(float)
        assert np.array_equal(np.isnan(h), np.isnan(x)), col
        np.testing.assert_allclose(x[~np.isnan(x)], h[~np.isnan(h)], rtol=1e-9, atol=1e-9)
    start_err = np.abs(
        _hist_seconds(m["start_ts_x"], shift)
        - np.ceil(_hist_seconds(m["start_ts_h"], 0) / step) * step
    )
    assert start_err.max() == 0
    h_end = _hist_seconds(m["end_ts_h"], 0.0)
    x_end = _hist_seconds(m["end_ts_x"], shift)
    running = np.isnan(h_end) | (h_end > last - step)
    assert np.isnan(x_end[np.isnan(h_end)]).all()
    ended = ~running
    # The last scrape of a pod is the last grid time before its end; the extracted end is
    # one step after that.
    diff = x_end[ended] - h_end[ended]
    assert (diff >= -1e-6).all() and (diff < step + 1e-6).all(), (diff.min(), diff.max())


def test_pod_usage_matches(roundtrip):
    shift = roundtrip["export"].shift_s
    hist = roundtrip["history"]
    use = hist.pod_usage.assign(t=_hist_seconds(hist.pod_usage["ts"], 0.0))
    ext = roundtrip["ds"].pod_usage
    ext = ext.assign(t=_hist_seconds(ext["ts"], shift)).sort_values(["t", "pod"])
    starts = hist.pods.set_index("pod")["start_ts"]
    ext = ext[ext["t"] >= _hist_seconds(starts.reindex(ext["pod"]), 0.0) + 2 * STEP]
    # The exported value at t is the latest usage sample at or before t (as simulated).
    asof = lambda times: pd.merge_asof(  # noqa: E731
        pd.DataFrame({"t": times, "pod": ext["pod"].to_numpy()}).sort_values("t"),
        use.sort_values("t")[["t", "pod", "cpu_used", "mem_used"]],
        on="t",
        by="pod",
    ).sort_index()
    now = asof(ext["t"].to_numpy())
    before = asof(ext["t"].to_numpy() - STEP)
    cpu_expect = (now["cpu_used"].to_numpy() + before["cpu_used"].to_numpy()) / 2
    cpu_err = np.nanmax(np.abs(ext["cpu_used"].to_numpy() - cpu_expect))
    mem_err = np.nanmax(np.abs(ext["mem_used"].to_numpy() - now["mem_used"].to_numpy()))
    print(f"\npod cpu_used max |diff| {cpu_err:.2e} cores, mem_used {mem_err:.2e} GiB")
    assert len(ext) > 0.9 * len(hist.pods) * 10
    assert cpu_err < TOL_RATE
    assert mem_err < 1e-8


def test_extract_command_line(roundtrip):
    assert roundtrip["cli_code"] == 0
    cli = load_dataset(roundtrip["cli_out"])
    full = roundtrip["ds"]
    assert set(cli.nodes["node"]) == set(full.nodes["node"])
    merged = cli.node_metrics.merge(full.node_metrics, on=["ts", "node"], suffixes=("", "_full"))
    assert len(merged) >= 0.95 * len(cli.node_metrics) > 0
    np.testing.assert_allclose(merged["cpu_util"], merged["cpu_util_full"], atol=1e-9)
