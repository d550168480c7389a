"""Injected changes touch only what they say, only from the change time on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.drift.inject import freeze_metric, scale_load, swap_workload
from monitoring.drift.synthetic import synthetic_history

AT = pd.Timestamp("2024-01-02T06:00:00Z")


@pytest.fixture(scope="module")
def ds():
    return synthetic_history(nodes=4, days=3, step_s=600, seed=3)


def _split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return df[df["ts"] < AT], df[df["ts"] >= AT]


def test_scale_load_multiplies_after_the_change_only(ds):
    out = scale_load(ds, AT, 1.2)
    b0, a0 = _split(ds.node_metrics)
    b1, a1 = _split(out.node_metrics)
    assert b1.equals(b0)
    assert np.allclose(a1["cpu_util"], np.clip(a0["cpu_util"] * 1.2, 0, 1))
    assert np.array_equal(a1["mem_util"], a0["mem_util"])
    assert out.meta["injected"]


def test_freeze_metric_freezes_a_share_of_nodes(ds):
    out = freeze_metric(ds, AT, 0.5, seed=0)
    b1, a1 = _split(out.node_metrics)
    assert b1.equals(_split(ds.node_metrics)[0])
    frozen = [n for n, g in a1.groupby("node") if g["cpu_util"].nunique() == 1]
    assert len(frozen) == 2
    for node in frozen:
        last = b1[b1["node"] == node].sort_values("ts")["cpu_util"].iloc[-1]
        assert (a1[a1["node"] == node]["cpu_util"] == last).all()


def test_swap_workload_reads_the_donor_at_the_same_time_of_day(ds):
    donor = synthetic_history(nodes=2, days=3, step_s=300, seed=9, start="2023-06-01")
    donor.node_metrics["cpu_util"] = 0.99  # unmistakable
    out = swap_workload(ds, AT, donor, 0.5, seed=1)
    b1, a1 = _split(out.node_metrics)
    assert b1.equals(_split(ds.node_metrics)[0])
    swapped = sorted(n for n, g in a1.groupby("node") if (g["cpu_util"] == 0.99).all())
    assert len(swapped) == 2
    with pytest.raises(ValueError, match="donor covers"):
        swap_workload(ds, AT, synthetic_history(nodes=1, days=0.5, seed=2), 0.5)
    with pytest.raises(ValueError, match="share"):
        freeze_metric(ds, AT, 0.0)
