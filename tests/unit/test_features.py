"""Tests for hydatis.features: the catalogue, hand-computed values, offline/online exact
agreement, point-in-time correctness (no feature at t reads data after t) and labels."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hydatis.dataset import ClusterDataset
from hydatis.features import (
    FEATURES,
    FeatureSpec,
    feature_lines,
    feature_names,
    features_markdown,
    node_features,
    node_labels,
)
from tests.factories import make_dataset

T0 = pd.Timestamp("2024-01-01", tz="UTC")  # a Monday, 00:00 UTC
FEATURES_MD = Path(__file__).resolve().parents[2] / "hydatis" / "features" / "FEATURES.md"


def _metrics(rows: list[tuple[float, str, float, float]], **extra: list[float]) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "ts": T0 + pd.to_timedelta([r[0] for r in rows], unit="s"),
            "node": pd.Series([r[1] for r in rows], dtype=object),
            "cpu_util": [r[2] for r in rows],
            "mem_util": [r[3] for r in rows],
        }
    )
    for col, values in extra.items():
        df[col] = values
    return df


def _no_pods(nodes: list[tuple[float, float]]) -> ClusterDataset:
    """A dataset whose only pod was never bound (make_dataset needs one pod)."""
    return make_dataset(nodes, [{"start": 0.0, "cpu": 0.1}])


def _series_ds(
    cpu: list[float], mem: list[float] | None = None, *, step: float = 60.0, node: str = "n0"
) -> ClusterDataset:
    mem = mem if mem is not None else [0.5] * len(cpu)
    ds = _no_pods([(4.0, 16.0)])
    ds.nodes["node"] = [node]
    ds.node_metrics = _metrics(
        [(i * step, node, c, m) for i, (c, m) in enumerate(zip(cpu, mem, strict=True))]
    )
    return ds


def _random_ds(
    seed: int,
    *,
    n_nodes: int = 4,
    steps: int = 600,
    step: float = 300.0,
    drop: float = 0.05,
    jitter: bool = False,
    n_pods: int = 60,
) -> ClusterDataset:
    """A few nodes over ~2 days at 5 min, with missing samples and pods on the nodes."""
    rng = np.random.default_rng(seed)
    nodes = [
        (float(rng.choice([4, 8, 16])), float(rng.choice([16, 32, 64]))) for _ in range(n_nodes)
    ]
    pods = []
    horizon = steps * step
    for _ in range(n_pods):
        start = float(rng.uniform(0, horizon))
        end = None if rng.random() < 0.2 else start + float(rng.uniform(60, horizon / 3))
        pods.append(
            {
                "start": start,
                "end": end,
                "cpu": None if rng.random() < 0.1 else float(rng.uniform(0.1, 2)),
                "mem": float(rng.uniform(0.1, 4)),
            }
        )
    ds = make_dataset(nodes, pods)
    ds.pods["node"] = rng.choice([f"n{i}" for i in range(n_nodes)] + [None], len(pods))
    ds.pods["cpu_limit"] = ds.pods["cpu_request"] * 2
    rows = []
    for i in range(n_nodes):
        level = rng.uniform(0.2, 0.7)
        for k in range(steps):
            if rng.random() < drop:
                continue
            t = k * step + (float(rng.uniform(0, step * 0.9)) if jitter else 0.0)
            c = float(np.clip(level + 0.2 * np.sin(k / 40) + rng.normal(0, 0.05), 0, 1))
            m = float(np.clip(level * 0.8 + rng.normal(0, 0.02), 0, 1))
            rows.append((t, f"n{i}", c, m))
    ds.node_metrics = _metrics(rows)
    return ds


def _offline_row(off: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    return off[off["event_timestamp"] == at].reset_index(drop=True)


# --------------------------------------------------------------------------- catalogue


def test_at_least_50_required_features_with_unique_snake_case_names() -> None:
    names = feature_names(include_optional=True)
    assert len(feature_names()) >= 50
    assert len(names) == len(set(names)) == len(FEATURES)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)
    assert set(feature_names()) < set(names)
    assert all(isinstance(f, FeatureSpec) and f.description and f.window for f in FEATURES)


def test_contract_names_present() -> None:
    expected = {
        "cpu_mean_5m",
        "mem_p95_1h",
        "cpu_ewma_10m",
        "cpu_slope_1h",
        "cpu_lag_1d",
        "cpu_lag_7d",
        "hour_sin",
        "dow_cos",
        "cpu_capacity_cores",
        "cpu_requested_ratio",
        "cpu_limit_ratio",
        "pod_count",
        "pods_bound_since_sample",
    }
    assert expected <= set(feature_names())


def test_feature_lines_name_then_description() -> None:
    lines = feature_lines()
    assert len(lines) == len(FEATURES)
    for line, spec in zip(lines, FEATURES, strict=True):
        assert line == f"{spec.name}  {spec.description}"


def test_features_md_matches_generated_text() -> None:
    assert FEATURES_MD.read_text() == features_markdown()


# --------------------------------------------------------------------------- hand-computed


def test_window_statistics_by_hand() -> None:
    cpu = [0.1, 0.4, 0.2, 0.8, 0.5, 0.3, 0.9, 0.6]
    ds = _series_ds(cpu, step=60.0)
    off = node_features(ds, step_s=60.0)
    assert list(off.columns) == ["node_id", "event_timestamp", *feature_names()]
    assert (off.dtypes[feature_names()] == np.float32).all()
    row = off.iloc[6]  # window 5m = grid points 2..6
    win = np.array(cpu[2:7])
    assert row["cpu_util"] == pytest.approx(0.9)
    assert row["cpu_mean_5m"] == pytest.approx(win.mean(), abs=1e-6)
    assert row["cpu_max_5m"] == pytest.approx(win.max())
    assert row["cpu_min_5m"] == pytest.approx(win.min())
    assert row["cpu_std_5m"] == pytest.approx(win.std(ddof=1), abs=1e-6)
    assert row["cpu_p95_5m"] == pytest.approx(np.percentile(win, 95), abs=1e-6)
    # 15m window at 60 s: 15 points, at least 8 present -> row 7 has 8
    assert np.isnan(off.iloc[6]["cpu_mean_15m"])
    assert off.iloc[7]["cpu_mean_15m"] == pytest.approx(np.mean(cpu), abs=1e-6)
    assert row["mem_mean_5m"] == pytest.approx(0.5, abs=1e-6)
    assert row["mem_std_5m"] == pytest.approx(0.0, abs=1e-6)
    assert row["metric_age_s"] == 0.0
    assert np.isnan(row["cpu_lag_1d"]) and np.isnan(row["cpu_mean_24h"])


def test_slope_ewma_and_time_features_by_hand() -> None:
    cpu = [0.01 * i for i in range(60)]  # +0.01 per minute = +0.6 per hour
    ds = _series_ds(cpu, step=60.0)
    off = node_features(ds, step_s=60.0)
    last = off.iloc[-1]
    assert last["cpu_slope_15m"] == pytest.approx(0.6, abs=1e-5)
    assert last["cpu_slope_1h"] == pytest.approx(0.6, abs=1e-5)
    assert last["mem_slope_1h"] == pytest.approx(0.0, abs=1e-6)
    assert last["mem_ewma_10m"] == pytest.approx(0.5, abs=1e-6)
    # EWMA span 10 steps over the last 60 points of a ramp
    alpha = 2 / 11
    wts = (1 - alpha) ** np.arange(60)
    expected = float(np.sum(wts * np.array(cpu[::-1])) / wts.sum())
    assert last["cpu_ewma_10m"] == pytest.approx(expected, abs=1e-6)
    first = off.iloc[0]  # Monday 00:00 UTC
    assert first["hour_sin"] == pytest.approx(0.0, abs=1e-6)
    assert first["hour_cos"] == pytest.approx(1.0)
    assert first["dow_sin"] == pytest.approx(0.0, abs=1e-6)
    six = node_features(ds, at=T0 + pd.Timedelta(hours=6), step_s=60.0).iloc[0]
    assert six["hour_sin"] == pytest.approx(1.0)
    assert six["dow_sin"] == pytest.approx(np.sin(2 * np.pi * 0.25 / 7), abs=1e-6)


def test_lag_features_read_same_time_yesterday() -> None:
    step = 600.0
    n = int(2 * 86400 / step) + 1
    cpu = [(i % 7) / 10 for i in range(n)]
    off = node_features(_series_ds(cpu, step=step), step_s=step)
    day = int(86400 / step)
    assert off["cpu_lag_1d"].iloc[day:].to_numpy() == pytest.approx(
        np.array(cpu[: n - day], dtype=np.float32)
    )
    assert off["cpu_lag_1d"].iloc[:day].isna().all()
    assert off["cpu_lag_7d"].isna().all()


# --------------------------------------------------------------------------- pods


def test_requested_limit_ratios_and_pod_count_from_pods() -> None:
    ds = make_dataset(
        [(4.0, 16.0), (8.0, 32.0)],
        [
            {"start": 0, "end": 600, "cpu": 1.0, "mem": 2.0},
            {"start": 300, "end": None, "cpu": 0.5, "mem": None},
            {"start": 0, "end": None, "cpu": 3.0, "mem": 3.0},  # unscheduled
            {"start": 120, "end": None, "cpu": 2.0, "mem": 8.0},
        ],
    )
    ds.pods["node"] = ["n0", "n0", None, "n1"]
    ds.node_metrics = _metrics([(t, n, 0.5, 0.5) for t in range(0, 901, 60) for n in ("n0", "n1")])
    off = node_features(ds, step_s=60.0).set_index(["node_id", "event_timestamp"])
    at = {s: T0 + pd.Timedelta(seconds=s) for s in (0, 300, 600)}
    n0 = off.loc["n0"]
    assert n0.loc[at[0], "cpu_requested_ratio"] == pytest.approx(0.25)
    assert n0.loc[at[0], "pod_count"] == 1
    assert n0.loc[at[300], "cpu_requested_ratio"] == pytest.approx(1.5 / 4)
    assert n0.loc[at[300], "mem_requested_ratio"] == pytest.approx(2 / 16)
    assert n0.loc[at[300], "pod_count"] == 2
    assert n0.loc[at[600], "cpu_requested_ratio"] == pytest.approx(0.5 / 4)  # end is exclusive
    assert n0.loc[at[600], "mem_requested_ratio"] == 0.0  # unset request counts 0
    assert n0.loc[at[600], "pod_count"] == 1
    assert off.loc[("n1", at[0]), "pod_count"] == 0
    assert off.loc[("n1", at[300]), "cpu_requested_ratio"] == pytest.approx(2 / 8)
    assert off["cpu_capacity_cores"].loc["n1"].iloc[0] == 8.0
    assert off["cpu_limit_ratio"].isna().all()  # no cpu_limit column
    assert (off["pods_bound_since_sample"] == 0).all()  # grid aligned with the samples
    ds.pods["cpu_limit"] = [2.0, np.nan, 1.0, 4.0]
    lim = node_features(ds, step_s=60.0).set_index(["node_id", "event_timestamp"])
    assert lim.loc[("n0", at[300]), "cpu_limit_ratio"] == pytest.approx(0.5)
    assert lim.loc[("n1", at[300]), "cpu_limit_ratio"] == pytest.approx(0.5)


def test_pods_bound_since_last_sample_between_samples() -> None:
    ds = make_dataset(
        [(4.0, 16.0)],
        [{"start": 600, "cpu": 1.0}, {"start": 610, "cpu": 1.0}, {"start": 625, "cpu": 1.0}],
    )
    ds.pods["node"] = "n0"
    ds.node_metrics = _metrics([(t, "n0", 0.3, 0.3) for t in range(0, 601, 60)])
    row = node_features(ds, at=T0 + pd.Timedelta(seconds=620), step_s=60.0).iloc[0]
    assert row["pods_bound_since_sample"] == 1  # start 610 in (600, 620]
    assert row["pod_count"] == 2
    assert row["metric_age_s"] == 20.0
    assert row["cpu_util"] == pytest.approx(0.3)
    stale = node_features(ds, at=T0 + pd.Timedelta(seconds=800), step_s=60.0).iloc[0]
    assert np.isnan(stale["cpu_util"]) and np.isnan(stale["pods_bound_since_sample"])


# --------------------------------------------------------------------------- NaN handling


def test_nan_for_missing_history_and_long_gaps() -> None:
    rows = [(t, "n0", 0.4, 0.4) for t in range(0, 1200, 60)]
    rows += [(t, "n0", 0.6, 0.6) for t in range(1800, 3000, 60)]  # 10 min gap
    ds = _no_pods([(4.0, 16.0)])
    ds.node_metrics = _metrics(rows)
    off = node_features(ds, step_s=60.0).set_index("event_timestamp")
    assert len(off) == 50  # every grid step from the first to the last sample
    at = T0 + pd.Timedelta(seconds=1140 + 120)  # carried forward two steps
    assert off.loc[at, "cpu_util"] == pytest.approx(0.4)
    assert off.loc[at, "metric_age_s"] == 120.0
    gap = T0 + pd.Timedelta(seconds=1140 + 180)
    assert np.isnan(off.loc[gap, "cpu_util"]) and np.isnan(off.loc[gap, "metric_age_s"])
    assert off.loc[gap, "cpu_mean_5m"] == pytest.approx(0.4)  # 4 of 5 points (2 carried)
    later = T0 + pd.Timedelta(seconds=1140 + 300)
    assert np.isnan(off.loc[later, "cpu_mean_5m"])  # 5m window: 2 of 5 present < half
    assert off.loc[gap, "cpu_mean_15m"] == pytest.approx(0.4, abs=1e-6)
    assert np.isnan(off.loc[T0, "cpu_std_5m"])  # start of the series
    assert off.loc[T0 + pd.Timedelta(seconds=120), "cpu_mean_5m"] == pytest.approx(0.4)


def test_empty_metrics_and_bad_step() -> None:
    ds = _no_pods([(4.0, 16.0)])
    off = node_features(ds)
    assert off.empty and list(off.columns) == ["node_id", "event_timestamp", *feature_names()]
    with pytest.raises(ValueError, match="step_s"):
        node_features(_series_ds([0.1, 0.2]), step_s=0)


def test_optional_network_disk_columns_only_when_present() -> None:
    rows = [(t, "n0", 0.2, 0.3) for t in range(0, 2400, 60)]
    ds = _no_pods([(4.0, 16.0)])
    ds.node_metrics = _metrics(rows, net_in=[float(i) for i in range(40)])
    off = node_features(ds, step_s=60.0)
    optional = [c for c in off.columns if c.startswith(("net_", "disk_"))]
    assert optional == ["net_in_mean_5m", "net_in_mean_1h", "net_in_max_1h"]
    assert off["net_in_mean_5m"].iloc[-1] == pytest.approx(37.0)
    assert off["net_in_mean_1h"].iloc[-1] == pytest.approx(19.5)
    assert off["net_in_max_1h"].iloc[-1] == 39.0
    assert np.isnan(off["net_in_max_1h"].iloc[20])  # 21 of 60 points: under half
    names = [c for c in off.columns[2:] if c not in optional]
    assert names == feature_names()


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize(
    ("seed", "jitter"),
    [(0, False), (1, True), (2, False)],
    ids=["aligned", "jittered-samples", "other-seed"],
)
def test_online_equals_offline_exactly(seed: int, jitter: bool) -> None:
    ds = _random_ds(seed, jitter=jitter)
    off = node_features(ds, step_s=300.0)
    rng = np.random.default_rng(seed)
    grid = off["event_timestamp"].unique()
    picks = [grid[-1], grid[300], *rng.choice(grid, 3, replace=False)]
    for at in picks:
        on = node_features(ds, at=pd.Timestamp(at), step_s=300.0)
        exp = _offline_row(off, pd.Timestamp(at))
        on = on[on["node_id"].isin(exp["node_id"])].reset_index(drop=True)
        pd.testing.assert_frame_equal(on, exp, check_exact=True)
    # the late rows have every window, lag 1d and the pods features filled
    last = _offline_row(off, pd.Timestamp(grid[-1]))
    assert last[["cpu_p95_24h", "mem_std_6h", "cpu_lag_1d", "cpu_ewma_10m"]].notna().all().all()


# --------------------------------------------------------------------------- leakage


def _perturb_after(ds: ClusterDataset, cut: pd.Timestamp, seed: int) -> ClusterDataset:
    """Scramble everything recorded after ``cut``: later samples (values and some rows
    dropped), later pods (node, requests), the end times of pods still running."""
    rng = np.random.default_rng(seed)
    nm = ds.node_metrics.copy()
    late = (nm["ts"] > cut).to_numpy()
    nm.loc[late, "cpu_util"] = rng.random(late.sum())
    nm.loc[late, "mem_util"] = rng.random(late.sum())
    nm = nm.loc[~late | (rng.random(len(nm)) < 0.7)].reset_index(drop=True)
    pods = ds.pods.copy()
    future = (pods["start_ts"] > cut).to_numpy()
    pods.loc[future, "node"] = rng.choice(["n0", "n1", "n2", "n3"], future.sum())
    pods.loc[future, "cpu_request"] = rng.uniform(0, 9, future.sum())
    running = ((pods["start_ts"] <= cut) & ~(pods["end_ts"] <= cut)).to_numpy()
    new_end = cut + pd.to_timedelta(rng.uniform(1, 1e5, running.sum()), unit="s")
    pods.loc[running, "end_ts"] = new_end.where(rng.random(running.sum()) < 0.5, pd.NaT)
    return ClusterDataset(ds.nodes, nm, pods, ds.pod_usage, ds.meta)


@pytest.mark.parametrize("seed", [3, 4])
def test_no_feature_reads_data_after_t(seed: int) -> None:
    ds = _random_ds(seed, n_pods=80, jitter=seed == 4)
    off = node_features(ds, step_s=300.0)
    grid = np.sort(off["event_timestamp"].unique())
    rng = np.random.default_rng(seed)
    for cut in [pd.Timestamp(c) for c in rng.choice(grid[:-1], 4, replace=False)]:
        cut = cut + pd.Timedelta(seconds=int(rng.integers(0, 2)) * 150)  # on or off grid
        other = _perturb_after(ds, cut, seed)
        off2 = node_features(other, step_s=300.0)
        before = off[off["event_timestamp"] <= cut].reset_index(drop=True)
        before2 = off2[off2["event_timestamp"] <= cut].reset_index(drop=True)
        pd.testing.assert_frame_equal(before, before2, check_exact=True)
        on1 = node_features(ds, at=cut, step_s=300.0)
        on2 = node_features(other, at=cut, step_s=300.0)
        pd.testing.assert_frame_equal(on1, on2, check_exact=True)


# --------------------------------------------------------------------------- labels


def test_labels_are_utilisation_h_ahead_on_the_feature_rows() -> None:
    ds = _random_ds(5, n_nodes=2, steps=100, drop=0.1)
    off = node_features(ds, step_s=300.0)
    lab = node_labels(ds, step_s=300.0)  # default horizon 5 min = one step
    assert list(lab.columns) == ["node_id", "event_timestamp", "cpu_util_target", "mem_util_target"]
    pd.testing.assert_frame_equal(
        lab[["node_id", "event_timestamp"]], off[["node_id", "event_timestamp"]]
    )
    for node, grp in off.groupby("node_id"):
        tgt = lab[lab["node_id"] == node]
        np.testing.assert_array_equal(
            tgt["cpu_util_target"].to_numpy()[:-1], grp["cpu_util"].to_numpy()[1:]
        )
        assert np.isnan(tgt["cpu_util_target"].iloc[-1])
    far = node_labels(ds, horizon_s=1000.0, step_s=300.0)  # rounds up to 4 steps
    grp = off[off["node_id"] == "n0"]["mem_util"].to_numpy()
    np.testing.assert_array_equal(
        far[far["node_id"] == "n0"]["mem_util_target"].to_numpy()[:-4], grp[4:]
    )
    with pytest.raises(ValueError, match="horizon_s"):
        node_labels(ds, horizon_s=0)
