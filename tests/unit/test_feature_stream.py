"""The streaming feature builder equals ``node_features(ds, at=...)`` on the same samples.

Each case feeds a small dataset's samples to :class:`FeatureStream` in time order and,
at chosen instants (on and off the grid, early with partial windows, after a day for the
1-day lag, after an outage), compares every feature with the batch online path, exactly.
Pod totals come from the dataset's pods with dyadic requests (multiples of 1/8 core and
1/4 GiB), so the batch path's quantised sums and the totals are the same numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hydatis.dataset import ClusterDataset
from hydatis.features import feature_names, node_features
from hydatis.features.stream import FeatureStream, PodTotals
from tests.factories import make_dataset

T0 = pd.Timestamp("2024-01-01", tz="UTC")
NS = 1_000_000_000


def _dataset(
    seed: int,
    *,
    n_nodes: int,
    step: float,
    steps: int,
    jitter: bool,
    outage: tuple[int, int] | None = None,
    drop: float = 0.05,
) -> ClusterDataset:
    rng = np.random.default_rng(seed)
    nodes = [(float(rng.choice([4, 8, 16])), float(rng.choice([16, 32]))) for _ in range(n_nodes)]
    horizon = steps * step
    pods = []
    for _ in range(12 * n_nodes):
        start = float(rng.uniform(0, horizon))
        end = None if rng.random() < 0.3 else start + float(rng.uniform(60, horizon / 2))
        pods.append(
            {
                "start": start,
                "end": end,
                "cpu": None if rng.random() < 0.1 else float(rng.integers(1, 16)) / 8,
                "mem": float(rng.integers(1, 16)) / 4,
            }
        )
    ds = make_dataset(nodes, pods)
    ds.pods["node"] = rng.choice([f"n{i}" for i in range(n_nodes)], len(pods))
    ds.pods["cpu_limit"] = ds.pods["cpu_request"] * 2
    rows = []
    for i in range(n_nodes):
        level = rng.uniform(0.2, 0.7)
        for k in range(steps):
            if rng.random() < drop or (outage and outage[0] <= k < outage[1] and i % 2 == 0):
                continue
            t = k * step + (float(rng.uniform(0, step * 0.9)) if jitter else 0.0)
            c = float(np.clip(level + 0.2 * np.sin(k / 40) + rng.normal(0, 0.05), 0, 1))
            m = float(np.clip(level * 0.8 + rng.normal(0, 0.02), 0, 1))
            rows.append((t, f"n{i}", c, m))
    rows.sort()
    ds.node_metrics = pd.DataFrame(
        {
            "ts": T0 + pd.to_timedelta([r[0] for r in rows], unit="s"),
            "node": pd.Series([r[1] for r in rows], dtype=object),
            "cpu_util": [r[2] for r in rows],
            "mem_util": [r[3] for r in rows],
        }
    )
    return ds


def _ns(stamps: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(stamps).as_unit("ns").asi8


def _pod_totals(ds: ClusterDataset, names: list[str], at: pd.Timestamp, last_ns: np.ndarray):
    """What the pods on each node add up to at ``at`` (the caller's side of the stream)."""
    pods = ds.pods
    running = (pods["start_ts"] <= at) & ~(pods["end_ts"] <= at)
    code = pd.Index(names).get_indexer(pods["node"])
    n = len(names)

    def total(col: str, mask: pd.Series) -> np.ndarray:
        values = pods[col].fillna(0.0).to_numpy(dtype=float)
        return np.bincount(code[mask.to_numpy()], values[mask.to_numpy()], minlength=n)

    start_ns = _ns(pods["start_ts"])
    after = start_ns > last_ns[code]
    bound = np.bincount(code[(after & (pods["start_ts"] <= at)).to_numpy()], minlength=n)
    return PodTotals(
        cpu_requested=total("cpu_request", running),
        mem_requested=total("mem_request", running),
        pod_count=np.bincount(code[running.to_numpy()], minlength=n),
        bound_since_sample=bound,
        cpu_limit=total("cpu_limit", running),
        mem_limit=None,
    )


def _replay_and_compare(ds: ClusterDataset, step: float, ats: list[pd.Timestamp]) -> int:
    """Feed the samples in time order, compare at each ``at``; return the values checked."""
    nodes = ds.nodes.sort_values("node").reset_index(drop=True)
    names = nodes["node"].tolist()
    stream = FeatureStream(nodes["cpu_cores"], nodes["mem_gib"], step_s=step)
    nm = ds.node_metrics
    ts_ns = _ns(nm["ts"])
    code = pd.Index(names).get_indexer(nm["node"])
    times = np.unique(ts_ns)
    pos, checked = 0, 0
    for at in sorted(ats):
        at_ns = int(at.value)
        while pos < times.size and times[pos] <= at_ns:
            sel = ts_ns == times[pos]
            cpu = np.full(len(names), np.nan)
            mem = np.full(len(names), np.nan)
            cpu[code[sel]] = nm["cpu_util"].to_numpy()[sel]
            mem[code[sel]] = nm["mem_util"].to_numpy()[sel]
            stream.append(int(times[pos]), cpu, mem)
            pos += 1
        pods = _pod_totals(ds, names, at, stream.latest_sample_ns)
        got = stream.features(at_ns, pods)
        exp = node_features(ds, at=at, step_s=step)
        assert exp["node_id"].tolist() == names
        exp_values = exp[feature_names()].to_numpy()
        exp_values[:, feature_names().index("mem_limit_ratio")] = np.nan  # unknown limits
        for j, name in enumerate(feature_names()):
            np.testing.assert_array_equal(got[:, j], exp_values[:, j], err_msg=f"{name} at {at}")
        checked += int(np.isfinite(got).sum())
        # asking twice gives the same answer: evaluating provisional rows leaves no trace
        np.testing.assert_array_equal(stream.features(at_ns, pods), got)
    return checked


@pytest.mark.parametrize(
    ("seed", "step", "steps", "jitter", "outage"),
    [
        (0, 60.0, 1600, False, None),
        (1, 60.0, 1600, True, None),
        (2, 60.0, 1600, False, (700, 900)),
        (3, 600.0, 1250, True, None),
    ],
    ids=["aligned-1m", "jittered-1m", "outage-1m", "8-days-10m-lag-7d"],
)
def test_stream_equals_node_features_online(
    seed: int, step: float, steps: int, jitter: bool, outage: tuple[int, int] | None
) -> None:
    ds = _dataset(seed, n_nodes=5, step=step, steps=steps, jitter=jitter, outage=outage)
    rng = np.random.default_rng(seed)
    last = steps * step
    fixed = [0.5 * step, 40 * step, 0.3 * last, 0.95 * last, last - 1]
    if outage:
        fixed += [outage[0] * step + 3 * step, outage[1] * step + step / 2]
    random = list(rng.uniform(step, last, 6))
    ats = [T0 + pd.Timedelta(seconds=round(float(s), 3)) for s in fixed + random]
    ats += [T0 + pd.Timedelta(seconds=float(int(s // step) * step)) for s in random[:3]]
    checked = _replay_and_compare(ds, step, ats)
    assert checked > 0


def test_long_windows_lags_and_pods_are_exercised() -> None:
    """The late snapshot has the 24 h window, the 1-day (and on 10 min, the 7-day) lag
    and every pod feature filled, so the equality above covers them."""
    ds = _dataset(3, n_nodes=3, step=600.0, steps=1250, jitter=False, drop=0.0)
    nodes = ds.nodes.sort_values("node")
    stream = FeatureStream(nodes["cpu_cores"], nodes["mem_gib"], step_s=600.0)
    nm = ds.node_metrics
    for t, group in nm.groupby("ts", sort=True):
        cpu = group.set_index("node")["cpu_util"].reindex(nodes["node"]).to_numpy()
        mem = group.set_index("node")["mem_util"].reindex(nodes["node"]).to_numpy()
        stream.append(int(t.value), cpu, mem)
    at = nm["ts"].max()
    pods = _pod_totals(ds, nodes["node"].tolist(), at, stream.latest_sample_ns)
    row = pd.DataFrame(stream.features(int(at.value), pods), columns=feature_names())
    wanted = ["cpu_p95_24h", "mem_std_24h", "cpu_lag_1d", "cpu_lag_7d", "cpu_slope_1h"]
    wanted += ["cpu_requested_ratio", "pod_count", "pods_bound_since_sample"]
    assert row[wanted].notna().all().all()


@pytest.mark.parametrize(
    ("case", "message"),
    [("backwards", "time order"), ("before-sample", "before the latest"), ("shape", "per node")],
    ids=["sample-out-of-order", "snapshot-before-sample", "wrong-length"],
)
def test_misuse_is_refused(case: str, message: str) -> None:
    stream = FeatureStream(np.array([4.0, 8.0]), np.array([16.0, 32.0]), step_s=60.0)
    stream.append(120 * NS, np.array([0.5, 0.2]), np.array([0.3, 0.1]))
    with pytest.raises(ValueError, match=message):
        if case == "backwards":
            stream.append(60 * NS, np.array([0.5, 0.2]), np.array([0.3, 0.1]))
        elif case == "before-sample":
            stream.features(60 * NS)
        else:
            stream.append(180 * NS, np.array([0.5]), np.array([0.3]))


def test_no_samples_gives_nan_windows_and_known_point_features() -> None:
    stream = FeatureStream(np.array([4.0]), np.array([16.0]), step_s=30.0)
    row = dict(zip(feature_names(), stream.features(3600 * NS)[0], strict=True))
    assert np.isnan(row["cpu_util"]) and np.isnan(row["cpu_mean_24h"])
    assert row["cpu_capacity_cores"] == 4.0 and np.isfinite(row["hour_sin"])
    assert np.isnan(row["pod_count"])  # no pod totals given
