"""The placement training component end to end on a small synthetic trace: a few short
episodes, then the evaluation beside random, default and TLP on the held-out slice."""

import math

import pandas as pd
import pytest

from components.train_placement import train_placement
from components.train_placement.core import time_window
from hydatis.models.base import TrainResult
from hydatis.models.placement_agent import PlacementAgent
from simulator.agent import FEATURES, train_agent
from simulator.synthetic import generate_synthetic
from simulator.workload import compile_workload

pytestmark = pytest.mark.integration

HORIZON = 4 * 3600.0


@pytest.fixture(scope="module")
def tiny_trace():
    return generate_synthetic(nodes=12, load_factor=1.3, usage_scale=1.5, horizon_s=HORIZON)


@pytest.fixture(scope="module")
def result(tiny_trace):
    params = {"episode_s": 1800.0, "n_slices": 2, "epsilon_decay_episodes": 2}
    return train_placement(dataset=tiny_trace, episodes=4, seed=0, params=params)


def test_returns_a_train_result_with_the_four_schedulers(result):
    assert isinstance(result, TrainResult) and result.name == "placement"
    assert set(result.table["scheduler"]) == {"agent", "random", "default", "tlp"}
    assert result.primary == "placement_improvement_vs_random_pct" and result.higher_is_better
    for key in (
        "placement_improvement_vs_random_pct",
        "placement_hot_share_ratio_vs_default",
        "placement_converged_episode",
        "placement_infer_500_nodes_ms",
    ):
        assert key in result.metrics
    assert math.isfinite(result.metrics["placement_improvement_vs_random_pct"])
    assert result.features == list(FEATURES) and result.eval_data_id
    assert "## Split" in result.report and "W_BALANCE" in result.report
    assert {str(t) for t in result.targets} >= {"placement_improvement_vs_random_pct >= 34"}


def test_model_round_trips(result, tmp_path):
    loaded = PlacementAgent.load(result.model.save(tmp_path / "agent"))
    assert loaded.d_in_ == len(FEATURES)


def test_training_window_reveals_nothing_after_its_end(tiny_trace):
    part = time_window(tiny_trace, 0.0, 0.6 * HORIZON)
    t0 = tiny_trace.pods["start_ts"].min()
    cut = t0 + pd.Timedelta(seconds=0.6 * HORIZON)
    assert (part.pods["start_ts"] < cut).all() and (part.pod_usage["ts"] < cut).all()
    late = time_window(tiny_trace, 1800.0, 3600.0)
    starts = late.pods.set_index("pod")["start_ts"]
    first = late.pod_usage.groupby("pod")["ts"].min()
    assert (first.reindex(starts.index) >= starts).all()


def test_checkpoint_and_resume(tiny_trace, tmp_path):
    work = compile_workload(time_window(tiny_trace, 0.0, 1800.0))
    params = {"batch_size": 16, "epsilon_decay_episodes": 2}
    _, hist = train_agent(
        work, episodes=2, agent_params=params, checkpoint_dir=tmp_path, checkpoint_every=1
    )
    assert (tmp_path / "latest" / "params.json").exists() and len(hist) == 2
    again, more = train_agent(work, episodes=3, checkpoint_dir=tmp_path, resume=True)
    assert [h["episode"] for h in more] == [3] and again.episodes_done_ == 3
