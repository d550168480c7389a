"""From a trace to served features: replay, the feature table, Feast offline and online.

Runs on the real composite trace (skipped without the data directory) and, through the
CLI, on the embedded synthetic default.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli.main import main
from components.materialize import clear_cache, historical_features, materialize, online_features
from hydatis.config import data_dir
from hydatis.features import feature_names, node_features

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2] / "feature_repo"


def _repo_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "feature_repo"
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns("data", "__pycache__"))
    return dest


@pytest.mark.skipif(data_dir() is None, reason="no trace data directory (HYDATIS_DATA_DIR)")
def test_composite_trace_features_offline_and_online(tmp_path):
    from simulator.composite import build_composite
    from simulator.engine import simulate
    from simulator.history import history_dataset
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    ds = build_composite(nodes=24, horizon_s=4 * 3600, ramp_s=1800, seed=1)
    workload = compile_workload(ds)
    history = history_dataset(workload, simulate(workload, make_scheduler("default")))
    table = node_features(history)
    repo = _repo_copy(tmp_path)
    try:
        info = materialize(table, repo)
        assert info["rows"] == len(table)
        # Offline: Feast's point-in-time join returns the table's rows at their own times.
        sample = table.groupby("node_id").tail(3)
        entity = sample[["node_id", "event_timestamp"]].reset_index(drop=True)
        got = historical_features(entity, repo)
        names = [n for n in feature_names() if n in got.columns]
        assert len(names) >= 50
        want = sample.reset_index(drop=True)[names].to_numpy(dtype=float)
        np.testing.assert_allclose(got[names].to_numpy(dtype=float), want, rtol=1e-6)
        # Online: the latest row of every node.
        nodes = sorted(table["node_id"].unique())
        online = online_features(nodes, repo).set_index("node_id").loc[nodes]
        latest = table.groupby("node_id").tail(1).set_index("node_id").loc[nodes]
        np.testing.assert_allclose(
            online[names].to_numpy(dtype=float), latest[names].to_numpy(dtype=float), rtol=1e-6
        )
    finally:
        clear_cache()


def test_cli_lists_builds_and_materializes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HYDATIS_DATA_DIR", "")
    assert main(["features", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(feature_names(include_optional=True)) >= 50
    assert lines[0].split()[0] == feature_names(include_optional=True)[0]

    replay = tmp_path / "replay"
    assert (
        main(
            [
                "dataset",
                "build",
                "--nodes",
                "12",
                "--horizon",
                "7200",
                "--replay",
                "default",
                "--out",
                str(replay),
            ]
        )
        == 0
    )
    assert (
        main(["features", "build", "--dataset", str(replay), "--out", str(tmp_path / "features")])
        == 0
    )
    table = pd.read_parquet(tmp_path / "features" / "features.parquet")
    labels = pd.read_parquet(tmp_path / "features" / "labels.parquet")
    assert len(table) == len(labels) > 0
    repo = _repo_copy(tmp_path)
    try:
        assert (
            main(
                [
                    "features",
                    "materialize",
                    "--features",
                    str(tmp_path / "features"),
                    "--repo",
                    str(repo),
                ]
            )
            == 0
        )
        assert "materialised" in capsys.readouterr().out
    finally:
        clear_cache()


def test_features_of_a_dataset_without_node_series_is_a_clear_error(tmp_path, capsys):
    from hydatis.dataset import save_dataset
    from tests.factories import make_dataset

    path = save_dataset(make_dataset([(4, 8)], [{"cpu": 1}]), tmp_path / "ds")
    assert main(["features", "build", "--dataset", str(path), "--out", str(tmp_path / "f")]) == 2
    assert "node_metrics" in capsys.readouterr().out
