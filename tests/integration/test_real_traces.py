"""Importers, the composite trace and the calibration figures on the real public traces.

Skipped when no data directory is configured (``HYDATIS_DATA_DIR`` or ``../shared/data``).
"""

from __future__ import annotations

import math

import pytest

from hydatis.config import data_dir
from simulator import calibration as cal

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        data_dir() is None,
        reason="no trace data directory (set HYDATIS_DATA_DIR to the public traces)",
    ),
]


def _close(a, b, path="") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    else:
        assert math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-9), f"{path}: {a} != {b}"


def _listed(base, name: str, pattern: str):
    """The default file, or (on another slice) the first file matching ``pattern``."""
    path = base / "alibaba-openb" / name
    return path if path.exists() else sorted((base / "alibaba-openb").glob(pattern))[0]


def _data_lines(path) -> int:
    with open(path) as fh:
        return sum(1 for line in fh if line.strip()) - 1  # minus the header


def test_importers_on_real_files():
    """Structural checks that hold on any slice of the same sources."""
    from simulator.importers import (
        diurnal_profile,
        load_alibaba_v2018,
        load_openb,
        read_bitbrains_vm,
    )
    from simulator.importers.openb import DEFAULT_NODE_LIST, DEFAULT_POD_LIST

    base = data_dir()
    nodes, pods = load_openb()
    assert len(nodes) == _data_lines(_listed(base, DEFAULT_NODE_LIST, "openb_node_list_*.csv"))
    assert len(pods) == _data_lines(_listed(base, DEFAULT_POD_LIST, "openb_pod_list_*.csv"))
    assert (nodes["cpu_cores"] > 0).all() and (pods["cpu_request"] >= 0).all()
    first_vm = sorted(base.glob("bitbrains-rnd/*/*.csv"))[0]  # any month
    vm = read_bitbrains_vm(first_vm)
    assert vm.step_s == 300 and len(vm) > 0 and 0 <= vm.cpu_frac.min() <= vm.cpu_frac.max() <= 1
    ds = load_alibaba_v2018()
    ds.validate()
    assert 0 < ds.node_metrics["cpu_util"].mean() < 1
    assert diurnal_profile("google2019").mean() == pytest.approx(1.0)


def test_calibration_figures_match_the_data():
    """The committed figures are what the source slice gives (other slices differ)."""
    from simulator.calibrate import recompute, source_fingerprint

    if source_fingerprint() != cal.SOURCE_FINGERPRINT:
        pytest.skip("the data directory holds another slice than the calibration source")
    figures = recompute()
    for name, value in figures.items():
        _close(value, getattr(cal, name), name)


@pytest.mark.parametrize("mode", ["services", "trace"])
def test_composite_small(mode):
    from simulator.composite import build_composite
    from simulator.importers import load_openb

    ds = build_composite(nodes=100, horizon_s=6 * 3600, mode=mode, seed=1)
    ds.validate()
    assert len(ds.nodes) == 100 and len(ds.pods) > 0
    m = ds.meta
    if mode == "services":
        nodes, pods = load_openb()
        list_share = pods["cpu_request"].sum() / nodes["cpu_cores"].sum()
        assert m["requested_cpu_share"] == pytest.approx(list_share, rel=0.15)
        want = m["calibration"]["target_cpu_use_per_request"] * m["requested_cpu_share"]
        assert m["used_cpu_share"] == pytest.approx(want, rel=0.2)
    else:
        assert m["requested_cpu_share"] < 0.05  # the trace's own timing: a nearly idle cluster
    pods = ds.pods.set_index("pod")
    age = (ds.pod_usage["ts"] - ds.pod_usage["pod"].map(pods["start_ts"])).dt.total_seconds()
    assert (age % 300 == 0).all()


def test_composite_deterministic():
    from simulator.composite import build_composite

    a = build_composite(nodes=30, horizon_s=3600, seed=5)
    b = build_composite(nodes=30, horizon_s=3600, seed=5)
    assert a.pod_usage.equals(b.pod_usage) and a.pods.equals(b.pods)


def test_default_dataset_uses_the_composite():
    from simulator.datasets import default_dataset

    ds, what = default_dataset(nodes=20, horizon_s=1800)
    assert what.startswith("real composite trace (Alibaba OpenB + Bitbrains) from ")
    assert len(ds.nodes) == 20


def test_composite_replicates_nodes_beyond_the_list():
    from simulator.composite import build_composite
    from simulator.importers import load_openb

    listed = len(load_openb()[0])
    ds = build_composite(nodes=listed + 7, horizon_s=1800, ramp_s=600, seed=3)
    ds.validate()  # node names stay unique
    assert len(ds.nodes) == listed + 7
    assert ds.nodes["node"].str.endswith("-c1").sum() == 7


def test_replaying_node_series_reproduces_their_load():
    """A dataset of node series and no pods replays as non-pod load on each node."""
    from simulator.engine import SimConfig, simulate
    from simulator.importers import load_alibaba_v2018
    from simulator.metrics import summarize
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    ds = load_alibaba_v2018()
    result = simulate(compile_workload(ds), make_scheduler("default"), config=SimConfig(step_s=60))
    # Nodes hold their last sample between samples and 0 before their first one.
    measured = ds.node_metrics["cpu_util"].mean()
    assert summarize(result)["mean_cpu"] == pytest.approx(measured, abs=0.03)
