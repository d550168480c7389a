"""The placement agent (DQN): Q over any number of nodes, persistence, the ε schedule,
replay and target-network mechanics, determinism; and the simulator adapter's features
and reward. No timed assertions (latency is a benchmark figure, not a test)."""

import numpy as np
import pytest
import torch

from hydatis.models.placement_agent import PlacementAgent, QNetwork, ReplayBuffer, linear_epsilon
from simulator.agent import (
    FEATURES,
    AgentScheduler,
    convergence_episode,
    node_features,
    placement_reward,
    visible_availability,
)
from simulator.types import ClusterView, PodSpec

torch.set_num_threads(1)
D = 6


def _agent(**kw):
    params = {"batch_size": 8, "replay_size": 64, "target_sync": 3, "random_state": 1, **kw}
    return PlacementAgent(**params).build(D)


def _rows(n, seed=0):
    return np.random.default_rng(seed).random((n, D), dtype=np.float32)


@pytest.mark.parametrize("n", [0, 1, 7, 500], ids=["empty", "one", "seven", "500"])
def test_q_values_over_any_number_of_nodes(n):
    agent = _agent()
    q = agent.q_values(_rows(n))
    assert q.shape == (n,)
    assert np.isfinite(q).all()


def test_q_of_a_row_does_not_depend_on_the_other_candidates():
    agent, X = _agent(), _rows(10)
    np.testing.assert_allclose(agent.q_values(X)[3:5], agent.q_values(X[3:5]), rtol=1e-5)


def test_wrong_feature_count_is_rejected():
    with pytest.raises(ValueError, match="features"):
        _agent().q_values(np.zeros((3, D + 1), dtype=np.float32))


def test_constructor_does_no_work():
    agent = PlacementAgent(random_state=3)
    assert not agent.built and agent.get_params()["random_state"] == 3


def test_q_network_is_batched_over_leading_axes():
    net = QNetwork(D, (8,))
    assert net(torch.zeros(4, 5, D)).shape == (4, 5)


def test_save_load_gives_identical_q_and_counters(tmp_path):
    agent = _agent()
    for i in range(20):
        agent.remember(_rows(1, i)[0], float(i % 3), _rows(4, i + 100))
    for _ in range(5):
        agent.learn()
    agent.end_episode()
    X = _rows(50, 9)
    agent.save(tmp_path / "ckpt")
    loaded = PlacementAgent.load(tmp_path / "ckpt")
    np.testing.assert_array_equal(agent.q_values(X), loaded.q_values(X))
    assert loaded.episodes_done_ == 1 and loaded.grad_steps_ == 5
    assert loaded.get_params() == agent.get_params()
    # resuming: the optimiser state comes back too
    steps = [v["step"] for v in loaded.optimizer_.state_dict()["state"].values()]
    assert steps and all(int(x) == 5 for x in steps)


def test_save_before_any_feature_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="nothing to save"):
        PlacementAgent().save(tmp_path)


@pytest.mark.parametrize(
    ("episode", "expected"),
    [(0, 1.0), (5, 0.55), (10, 0.1), (50, 0.1), (-3, 1.0)],
    ids=["start", "halfway", "end", "after-end", "negative"],
)
def test_linear_epsilon_schedule(episode, expected):
    assert linear_epsilon(episode, 1.0, 0.1, 10) == pytest.approx(expected)


def test_epsilon_follows_completed_episodes():
    agent = _agent(epsilon_start=1.0, epsilon_end=0.0, epsilon_decay_episodes=4)
    seen = []
    for _ in range(6):
        seen.append(agent.epsilon())
        agent.end_episode()
    assert seen == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0])
    assert linear_epsilon(3, 1.0, 0.2, 0) == 0.2  # no decay: the end value


@pytest.mark.parametrize(("eps", "greedy"), [(0.0, True), (1.0, False)], ids=["greedy", "random"])
def test_act_is_epsilon_greedy(eps, greedy):
    agent, X = _agent(), _rows(20)
    best = int(np.argmax(agent.q_values(X)))
    picks = [agent.act(X, np.random.default_rng(i), eps) for i in range(40)]
    if greedy:
        assert set(picks) == {best}
    else:
        assert len(set(picks)) > 5


def test_replay_buffer_wraps_and_masks_next_rows():
    buf, rng = ReplayBuffer(capacity=3, d=D, k=4), np.random.default_rng(0)
    for i in range(5):
        buf.add(np.full(D, i, np.float32), float(i), _rows(2 + i), i == 4, rng)
    assert len(buf) == 3 and buf.pos == 2
    assert sorted(buf.r.tolist()) == [2.0, 3.0, 4.0]
    j4 = int(np.flatnonzero(buf.r == 4.0)[0])
    assert buf.done[j4] == 1.0 and not buf.nmask[j4].any()
    j2 = int(np.flatnonzero(buf.r == 2.0)[0])
    assert buf.nmask[j2].sum() == 4  # 4 rows kept of 4; 3 → 5 next rows sampled down to 4
    sample = buf.sample(7, rng)
    assert sample["nx"].shape == (7, 4, D)


def test_learn_waits_for_a_batch_then_syncs_target_every_n_steps():
    agent = _agent(batch_size=8, target_sync=3)
    agent.remember(_rows(1)[0], 1.0)
    assert agent.learn() is None
    for i in range(10):
        agent.remember(_rows(1, i)[0], 1.0, _rows(3, i))
    target0 = [p.clone() for p in agent.target_net_.parameters()]
    agent.learn()
    agent.learn()
    same = [torch.equal(a, b) for a, b in zip(target0, agent.target_net_.parameters(), strict=True)]
    assert all(same)  # two steps: target untouched
    agent.learn()  # third step: synced
    for a, b in zip(agent.q_net_.parameters(), agent.target_net_.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not all(
        torch.equal(a, b) for a, b in zip(target0, agent.target_net_.parameters(), strict=True)
    )


def test_learning_fits_a_bandit_reward():
    # Reward = first feature: after training, Q ranks rows by it.
    agent = _agent(batch_size=32, replay_size=2000, gamma=0.0, learning_rate=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(600):
        x = rng.random(D, dtype=np.float32)
        agent.remember(x, float(x[0]), None, done=True)
    for _ in range(300):
        agent.learn()
    X = _rows(200, 1)
    q = agent.q_values(X)
    assert np.corrcoef(q, X[:, 0])[0, 1] > 0.9


def test_observe_chains_transitions_and_end_episode_closes_them():
    agent = _agent()
    agent.observe(_rows(5, 1), 2, 0.5)
    assert len(agent.replay_) == 0
    agent.observe(_rows(3, 2), 0, 0.1)
    assert len(agent.replay_) == 1 and agent.replay_.done[0] == 0.0
    np.testing.assert_array_equal(agent.replay_.x[0], _rows(5, 1)[2])
    agent.end_episode()
    assert len(agent.replay_) == 2 and agent.replay_.done[1] == 1.0
    assert agent.episodes_done_ == 1


def _train_a_bit(seed):
    agent = _agent(random_state=seed)
    rng = np.random.default_rng(7)
    for i in range(30):
        X = _rows(6, i)
        a = agent.act(X, rng, 0.3)
        agent.observe(X, a, float(X[a, 0]))
        agent.learn()
    return agent.q_values(_rows(10, 99))


def test_same_seed_same_numbers():
    np.testing.assert_array_equal(_train_a_bit(4), _train_a_bit(4))
    assert not np.array_equal(_train_a_bit(4), _train_a_bit(5))


# -- the simulator adapter ---------------------------------------------------------------


def _view(n=4):
    cap = np.array([4000, 8000, 16000, 32000][:n], dtype=np.int64)
    return ClusterView.empty(cap, cap * 4 * 1024**2)


def test_node_features_without_metrics_are_finite_and_shaped():
    view = _view()
    X = node_features(PodSpec("p", 1000, 1024**3), view, np.arange(4))
    assert X.shape == (4, len(FEATURES)) and X.dtype == np.float32
    assert np.isfinite(X).all()
    proj = X[:, FEATURES.index("proj_cpu")]
    np.testing.assert_allclose(proj, 1000 / view.cap_cpu, rtol=1e-6)  # only the pod


@pytest.mark.parametrize("nodes", [[], [2], [3, 0]], ids=["empty", "one", "reordered"])
def test_node_features_follow_the_candidate_list(nodes):
    view = _view()
    view.metrics.cpu_used[:] = [400, 4000, 8000, 0]
    view.metrics.cpu_avg[:] = [0.1, np.nan, 0.5, 0.0]
    X = node_features(PodSpec("p", 0, 0), view, np.array(nodes, dtype=np.int64))
    assert X.shape == (len(nodes), len(FEATURES))
    full = node_features(PodSpec("p", 0, 0), view, np.arange(4))
    np.testing.assert_array_equal(X, full[nodes])


def test_recent_bindings_count_in_the_projection():
    view = _view()
    view.metrics.cpu_used[:] = 0.0
    view.metrics.window_end = 100.0
    view.now = 200.0
    view.bind(PodSpec("a", 2000, 0), 0)
    X = node_features(PodSpec("p", 0, 0), view, np.arange(4))
    assert X[0, FEATURES.index("recent_cpu")] == pytest.approx(0.5)
    assert X[1, FEATURES.index("recent_cpu")] == 0.0


@pytest.mark.parametrize(
    ("proj", "peak", "worse_proj", "worse_peak"),
    [(0.3, 0.4, 0.6, 0.7), (0.6, 0.7, 0.9, 0.95), (0.7, 0.8, 0.7, 1.1)],
    ids=["cooler-better", "above-target", "hot-peak"],
)
def test_reward_prefers_headroom(proj, peak, worse_proj, worse_peak):
    assert placement_reward(proj, peak, 0.5, 1.0) > placement_reward(
        worse_proj, worse_peak, 0.5, 1.0
    )


def test_reward_availability_bonus():
    assert placement_reward(0.5, 0.5, 0.5, 0.999) > placement_reward(0.5, 0.5, 0.5, 0.99)


def test_visible_availability_counts_pods_on_full_nodes():
    view = _view()
    assert visible_availability(view) == 1.0
    view.pod_count[:] = [1, 1, 1, 1]
    view.metrics.cpu_used[:] = [4000, 0, 0, np.nan]
    assert visible_availability(view) == pytest.approx(0.75)


def test_agent_scheduler_scores_by_q_and_explores():
    agent = PlacementAgent(random_state=0, batch_size=2, replay_size=16)
    view = _view()
    sched = AgentScheduler(agent)
    sched.reset(0)
    assert sched.select(PodSpec("p", 100, 100), view) in range(4)
    trainer = AgentScheduler(agent, explore=True, epsilon=1.0, learn_every=1)
    trainer.reset(0)
    for i in range(5):
        node = trainer.select(PodSpec(f"p{i}", 100, 100), view)
        view.bind(PodSpec(f"p{i}", 100, 100), node)
    assert len(trainer.rewards) == 5 and len(agent.replay_) == 4
    assert trainer.losses  # learned once the batch was there


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0] * 5 + [1.0] * 15, 10),
        ([1.0] * 20, 5),
        ([1.0] * 5, None),
        (list(np.linspace(0, 1, 20)), 20),
    ],
    ids=["step", "flat", "too-short", "still-rising"],
)
def test_convergence_episode(values, expected):
    assert convergence_episode(values, window=5, tol=0.05) == expected
