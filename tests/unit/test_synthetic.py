"""The embedded synthetic default: valid, deterministic, and at the calibrated load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hydatis.dataset import validate
from simulator import calibration as cal
from simulator.datasets import default_dataset
from simulator.synthetic import generate_synthetic


@pytest.fixture(scope="module")
def small():
    return generate_synthetic(nodes=60, horizon_s=6 * 3600, seed=3)


def test_valid_and_structured(small):
    validate(small)
    pods, usage = small.pods, small.pod_usage
    assert small.node_metrics.empty and len(small.nodes) == 60
    assert pods["pod"].str.fullmatch(r"svc-\d{5}-r\d+").all()
    # each workload is a chain: the next instance starts when the previous ends
    chain = pods.sort_values(["workload", "start_ts"])
    same = chain["workload"].eq(chain["workload"].shift())
    assert (chain["start_ts"][same].to_numpy() == chain["end_ts"].shift()[same].to_numpy()).all()
    # usage rows at start + k * 300 s
    start = usage["pod"].map(pods.set_index("pod")["start_ts"])
    age = (usage["ts"] - start).dt.total_seconds().to_numpy()
    assert (age % 300 == 0).all() and age.min() == 0
    # clipped at the limit (Guaranteed) or BURST_CAP x request
    req = usage["pod"].map(pods.set_index("pod")["cpu_request"])
    assert (usage["cpu_used"] <= cal.BURST_CAP * req + 1e-9).all()


def test_deterministic():
    a = generate_synthetic(nodes=20, horizon_s=3 * 3600, seed=7)
    b = generate_synthetic(nodes=20, horizon_s=3 * 3600, seed=7)
    c = generate_synthetic(nodes=20, horizon_s=3 * 3600, seed=8)
    for name in ("nodes", "pods", "pod_usage"):
        pd.testing.assert_frame_equal(a.table(name), b.table(name))
    assert not a.pod_usage["cpu_used"].equals(c.pod_usage["cpu_used"])


def test_requested_and_used_share_match_calibration():
    ds = generate_synthetic(nodes=300, horizon_s=6 * 3600, seed=0)
    m = ds.meta
    assert m["requested_cpu_share"] == pytest.approx(cal.REQUESTED_CPU_SHARE, abs=0.03)
    assert m["requested_mem_share"] == pytest.approx(cal.REQUESTED_MEM_SHARE, abs=0.08)
    want = cal.TARGET_CPU_USE_PER_REQUEST * m["requested_cpu_share"]
    assert m["used_cpu_share"] == pytest.approx(want, rel=0.1)


def test_load_factor_scales_requests():
    lo = generate_synthetic(nodes=100, horizon_s=3 * 3600, seed=1, load_factor=0.5)
    hi = generate_synthetic(nodes=100, horizon_s=3 * 3600, seed=1, load_factor=1.2)
    assert lo.meta["requested_cpu_share"] == pytest.approx(0.5 * cal.REQUESTED_CPU_SHARE, abs=0.03)
    assert hi.meta["requested_cpu_share"] == pytest.approx(1.2 * cal.REQUESTED_CPU_SHARE, abs=0.03)


def test_node_types_follow_openb_shares():
    ds = generate_synthetic(nodes=1000, horizon_s=1800, seed=0)
    big = ds.nodes.query("cpu_cores == 96 and mem_gib == 384")
    assert len(big) / 1000 == pytest.approx(0.3913, abs=0.002)


def test_default_dataset_without_data(monkeypatch):
    monkeypatch.setenv("HYDATIS_DATA_DIR", "")
    ds, what = default_dataset(nodes=10, horizon_s=1800)
    assert what == "embedded synthetic default (no data directory)"
    assert len(ds.nodes) == 10
    assert np.isfinite(ds.pod_usage["cpu_used"]).all()
