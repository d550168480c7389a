"""Train and evaluate the placement agent (DQN) on a trace, against the baselines.

Protocol (every figure in the report comes from one call):

1. The trace: ``dataset`` or :func:`simulator.datasets.default_dataset` at a load level
   where hot nodes exist — 200 nodes, load factor 1.3, usage scale 1.5, 12 h, seed 0 (the
   real composite trace when the data directory exists, else the synthetic default).
2. The split, on its timeline: training sees only the first ``train_fraction`` (60 %):
   the pods that start before ``T = 0.6 · horizon`` and their usage samples before ``T``.
   Episodes replay ``n_slices`` windows of ``episode_s`` seconds inside ``[0, T)``; pods
   already running at a window's start arrive at its start with their remaining usage.
3. Evaluation: the whole trace is replayed by each scheduler (the agent greedy, no
   learning) with the same seed, and every metric is taken over ``[T, horizon]`` only
   (the simulator's warm-up is set to ``T``): the pods that arrive there and the usage
   they and the running pods show there were never part of an episode.
4. Figures: :func:`simulator.metrics.summarize` per scheduler; improvement over random on
   the placement objective, the agent's hot share over the default scheduler's, the
   episode at which the training reward converged, and the agent's decision latency for
   500 nodes (features + Q).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from hydatis.dataset import ClusterDataset
from hydatis.models.base import ProgressFn, Target, TrainResult
from hydatis.models.placement_agent import PlacementAgent
from simulator import agent as _agent_module
from simulator.agent import (
    FEATURES,
    AgentScheduler,
    convergence_episode,
    node_features,
    train_agent,
)
from simulator.datasets import default_dataset
from simulator.engine import SimConfig, simulate
from simulator.metrics import improvement, summarize
from simulator.schedulers import make_scheduler
from simulator.types import ClusterView, PodSpec
from simulator.workload import compile_workload

__all__ = [
    "DEFAULT_EPISODES",
    "DEFAULT_HORIZON_S",
    "DEFAULT_LOAD_FACTOR",
    "DEFAULT_NODES",
    "DEFAULT_PARAMS",
    "DEFAULT_USAGE_SCALE",
    "time_window",
    "train_placement",
]

log = logging.getLogger(__name__)

DEFAULT_NODES = 200
DEFAULT_LOAD_FACTOR = 1.3
DEFAULT_USAGE_SCALE = 1.5
DEFAULT_HORIZON_S = 12 * 3600.0
DEFAULT_EPISODES = 40
BASELINES = ("random", "default", "tlp")
PRIMARY = "placement_improvement_vs_random_pct"

#: Training knobs and the agent's parameters (``params`` overrides any of them).
DEFAULT_PARAMS: dict[str, Any] = {
    "train_fraction": 0.6,
    "episode_s": 2 * 3600.0,
    "n_slices": 6,
    "learn_every": 4,
    "convergence_window": None,  # None: n_slices (one pass over every window)
    "convergence_tol": 0.05,
    "learning_rate": 1e-3,
    "gamma": 0.5,
    "epsilon_start": 1.0,
    "epsilon_end": 0.05,
    "epsilon_decay_episodes": 15,
    "hidden": (64, 64),
    "replay_size": 50_000,
    "batch_size": 64,
    "target_sync": 200,
}
_AGENT_KEYS = (
    "learning_rate",
    "gamma",
    "epsilon_start",
    "epsilon_end",
    "epsilon_decay_episodes",
    "hidden",
    "replay_size",
    "batch_size",
    "target_sync",
)

TARGETS = [
    Target(PRIMARY, ">=", 34.0),
    Target("placement_hot_share_ratio_vs_default", "<", 1.0),
    Target("placement_converged_episode", "<=", 500.0),
    Target("placement_infer_500_nodes_ms", "<", 5.0),
]


def time_window(ds: ClusterDataset, lo_s: float, hi_s: float) -> ClusterDataset:
    """The part of ``ds`` inside ``[lo_s, hi_s)`` seconds of its timeline, as a trace of
    its own.

    Kept: pods alive in the window and their usage samples inside it. A pod running at
    ``lo_s`` starts at its first usage sample at or after ``lo_s`` (so it keeps reading
    its own samples by age); one with no sample left is dropped. Nothing at or after
    ``hi_s`` is kept, so a window ending at ``T`` reveals nothing of the trace after ``T``.
    The node series are dropped (the simulator produces them).
    """
    pods = ds.pods
    t0 = pods["start_ts"].min()
    lo, hi = t0 + pd.Timedelta(seconds=lo_s), t0 + pd.Timedelta(seconds=hi_s)
    alive = (pods["start_ts"] < hi) & (pods["end_ts"].isna() | (pods["end_ts"] > lo))
    pods = pods.loc[alive].copy()
    use = ds.pod_usage
    use = use.loc[use["pod"].isin(pods["pod"]) & (use["ts"] >= lo) & (use["ts"] < hi)]
    first = use.groupby("pod")["ts"].min()
    late = pods["start_ts"] < lo
    new_start = pods["pod"].map(first)
    pods.loc[late, "start_ts"] = new_start[late]
    pods = pods.loc[pods["start_ts"].notna()]
    pods = pods.loc[pods["end_ts"].isna() | (pods["end_ts"] > pods["start_ts"])]
    use = use.loc[use["pod"].isin(pods["pod"])]
    use = use.loc[use["ts"] >= use["pod"].map(pods.set_index("pod")["start_ts"])]
    meta = {**ds.meta, "horizon_s": float(hi_s - lo_s), "window_s": [float(lo_s), float(hi_s)]}
    meta.pop("ramp_s", None)
    return ClusterDataset(
        ds.nodes.copy(),
        ds.node_metrics.iloc[0:0].copy(),
        pods.reset_index(drop=True),
        use.reset_index(drop=True),
        meta,
    )


def _horizon_of(ds: ClusterDataset) -> float:
    h = ds.meta.get("horizon_s") or (ds.meta.get("knobs") or {}).get("horizon_s")
    if h:
        return float(h)
    span = ds.pods["end_ts"].max() - ds.pods["start_ts"].min()
    return float(span.total_seconds())


def infer_latency_ms(agent: PlacementAgent, n_nodes: int = 500, repeats: int = 200) -> float:
    """Median wall time (ms) of one decision's model work for ``n_nodes`` candidates:
    building the feature rows from a cluster view and the Q forward pass."""
    rng = np.random.default_rng(0)
    cap = rng.choice([32_000, 64_000, 96_000], size=n_nodes).astype(np.int64)
    view = ClusterView.empty(cap, cap * 4 * 1024**3 // 1000)
    view.req_cpu[:] = (cap * rng.uniform(0.3, 0.9, n_nodes)).astype(np.int64)
    for name in ("cpu_avg", "cpu_std", "mem_avg", "cpu_avg_5m", "cpu_max_1h", "cpu_max_1d"):
        getattr(view.metrics, name)[:] = rng.uniform(0, 1, n_nodes)
    view.metrics.cpu_used[:] = rng.uniform(0, 1, n_nodes) * cap
    view.metrics.window_end = 0.0
    pod = PodSpec("p", 2000, 4 * 1024**3)
    nodes = np.arange(n_nodes)
    agent.q_values(node_features(pod, view, nodes))  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        agent.q_values(node_features(pod, view, nodes))
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def _data_id(workload_arrays: list[np.ndarray], knobs: dict[str, Any]) -> str:
    h = hashlib.sha256(repr(sorted(knobs.items())).encode())
    for arr in workload_arrays:
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


EVAL_SEED_OFFSET = 1000  # the evaluation trace's seed is the training seed plus this


def train_placement(
    *,
    dataset: ClusterDataset | None = None,
    eval_dataset: ClusterDataset | None = None,
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    progress: ProgressFn | None = None,
    params: dict[str, Any] | None = None,
) -> TrainResult:
    """Train the placement agent and evaluate it beside random, default and TLP.

    Args:
        dataset: the training trace (default: :func:`default_dataset` with 200 nodes,
            load factor 1.3, usage scale 1.5, 12 h, ``seed``); episodes see only its first
            ``train_fraction`` of time.
        eval_dataset: the evaluation trace, scored over its time after
            ``train_fraction`` (default: the same source drawn with seed
            ``seed + EVAL_SEED_OFFSET`` — other nodes, other workload copies, other usage
            offsets — so neither training nor the choice of the reward's weights, made on
            the seed-0 trace, saw it; with ``dataset`` given, ``dataset`` itself).
        episodes: training episodes.
        seed: seeds the trace, the agent, the episodes and the evaluation runs.
        progress: called with the fraction done (training is 0–0.8, evaluation the rest)
            and what is being done.
        params: overrides of :data:`DEFAULT_PARAMS`.

    Returns:
        The :class:`TrainResult` (``name="placement"``; the model is the agent).
    """
    torch.set_num_threads(1)
    p = {**DEFAULT_PARAMS, **(params or {})}
    unknown = set(p) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"unknown placement params: {sorted(unknown)}")
    if dataset is None:
        knobs = {
            "nodes": DEFAULT_NODES,
            "load_factor": DEFAULT_LOAD_FACTOR,
            "usage_scale": DEFAULT_USAGE_SCALE,
            "horizon_s": DEFAULT_HORIZON_S,
        }
        dataset, source = default_dataset(**knobs, seed=seed)
        if eval_dataset is None:
            eval_dataset, _ = default_dataset(**knobs, seed=seed + EVAL_SEED_OFFSET)
            source += f"; evaluated on its seed-{seed + EVAL_SEED_OFFSET} sample"
    else:
        source = str(dataset.meta.get("source", "given dataset"))
    if eval_dataset is None:
        eval_dataset = dataset
    horizon = _horizon_of(dataset)
    split = float(p["train_fraction"]) * horizon
    ep_s = min(float(p["episode_s"]), split)
    n_slices = max(int(p["n_slices"]), 1)
    offsets = np.linspace(0.0, split - ep_s, n_slices) if n_slices > 1 else np.zeros(1)
    slices = [compile_workload(time_window(dataset, lo, lo + ep_s)) for lo in offsets]
    agent_params = {k: p[k] for k in _AGENT_KEYS}
    agent_params["hidden"] = tuple(agent_params["hidden"])
    agent_params["random_state"] = seed
    t_train = time.perf_counter()
    agent, history = train_agent(
        slices,
        episodes=episodes,
        agent_params=agent_params,
        config=SimConfig(warmup_s=0.0),
        seed=seed,
        learn_every=int(p["learn_every"]),
        progress=(lambda f: progress(0.8 * f, "training episodes")) if progress else None,
    )
    train_s = time.perf_counter() - t_train
    converged = convergence_episode(
        [h["mean_reward"] for h in history],
        window=int(p["convergence_window"] or n_slices),
        tol=float(p["convergence_tol"]),
    )

    eval_horizon = _horizon_of(eval_dataset)
    eval_split = float(p["train_fraction"]) * eval_horizon
    workload = compile_workload(eval_dataset, horizon_s=eval_horizon)
    cfg = SimConfig(warmup_s=eval_split, horizon_s=eval_horizon)
    rows: dict[str, dict[str, Any]] = {}
    schedulers = [("agent", AgentScheduler(agent))] + [(b, make_scheduler(b)) for b in BASELINES]
    for i, (name, sched) in enumerate(schedulers):
        rows[name] = summarize(simulate(workload, sched, seed=seed, config=cfg))
        if progress:
            progress(0.8 + 0.2 * (i + 1) / len(schedulers), f"evaluated {name}")
    obj_random = rows["random"]["objective"]
    for row in rows.values():
        row["improvement_vs_random_pct"] = 100.0 * improvement(row["objective"], obj_random)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "scheduler"
    table = table.reset_index()

    hot_default = rows["default"]["hot_share"]
    infer_ms = infer_latency_ms(agent)
    metrics = {
        PRIMARY: rows["agent"]["improvement_vs_random_pct"],
        "placement_hot_share_ratio_vs_default": rows["agent"]["hot_share"] / hot_default
        if hot_default > 0
        else float("nan"),
        "placement_converged_episode": float(converged) if converged else float("nan"),
        "placement_infer_500_nodes_ms": infer_ms,
        "placement_objective": rows["agent"]["objective"],
        "placement_hot_share": rows["agent"]["hot_share"],
        "placement_availability": rows["agent"]["availability"],
        "placement_train_s": train_s,
        "placement_episodes": float(len(history)),
    }
    for b in BASELINES:
        metrics[f"placement_improvement_vs_{b}_pct"] = 100.0 * improvement(
            rows["agent"]["objective"], rows[b]["objective"]
        )
    knobs = {
        "source": source,
        "horizon_s": horizon,
        "split_s": split,
        "seed": seed,
        "nodes": workload.n_nodes,
    }
    data_id = _data_id([workload.arrival, workload.req_cpu, workload.usage_cpu], knobs)
    all_params = {**p, "episodes": episodes, "seed": seed, "dataset": source}
    result = TrainResult(
        name="placement",
        model=agent,
        params=all_params,
        metrics=metrics,
        table=table,
        targets=list(TARGETS),
        primary=PRIMARY,
        higher_is_better=True,
        features=list(FEATURES),
        eval_data_id=data_id,
    )
    result.report = _report(result, rows, history, source, horizon, split, ep_s, offsets)
    result.artifacts = {}
    return result


def _fmt(x: float, spec: str = "{:.4f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else spec.format(x)


def _report(
    result: TrainResult,
    rows: dict[str, dict[str, Any]],
    history: list[dict[str, Any]],
    source: str,
    horizon: float,
    split: float,
    ep_s: float,
    offsets: np.ndarray,
) -> str:
    m = result.metrics
    reward_doc = (_agent_module.__doc__ or "").split("Reward of placing", 1)[-1]
    lines = [
        "# Placement agent (DQN) — training and evaluation",
        "",
        f"Trace: {source}; {rows['agent'].get('placements', 0)} placements in the "
        f"evaluation run; horizon {horizon / 3600:.1f} h.",
        "",
        "## Split",
        "",
        f"- Training: only the first {split / 3600:.2f} h (pods starting before it, their "
        f"usage before it). {len(offsets)} episode windows of {ep_s / 3600:.2f} h starting "
        f"at {', '.join(f'{o / 3600:.2f}' for o in offsets)} h, cycled.",
        "- Evaluation (held out): every scheduler replays the whole evaluation trace (by "
        "default another sample of the same source: other nodes, workload copies and usage "
        f"offsets) with seed {result.params['seed']}; metrics over its time after the same "
        f"{split / horizon:.0%} of its horizon only — neither the episodes nor the choice "
        "of the reward's weights saw it.",
        "",
        "## Reward (the agent's own affair; the yardstick is the placement objective)",
        "",
        "Reward of placing" + reward_doc.rstrip(),
        "",
        "## Evaluation",
        "",
        "| scheduler | objective | vs random | mean CPU | p95 CPU | hot (>0.85) | in band "
        "| spread | availability | never placed | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['objective']:.4f} | {r['improvement_vs_random_pct']:+.1f} % "
            f"| {r['mean_cpu']:.3f} | {r['p95_cpu']:.3f} | {r['hot_share']:.2%} "
            f"| {r['target_band_share']:.2%} | {r['spread']:.3f} | {r['availability']:.3%} "
            f"| {r['never_placed']} | {r['latency_p50_ms']:.3f} | {r['latency_p99_ms']:.3f} |"
        )
    lines += ["", "## Targets", "", "| target | value | met |", "|---|---|---|"]
    for t in result.targets:
        lines.append(f"| {t} | {_fmt(m.get(t.metric), '{:.3f}')} | {'yes' if t.met(m) else 'no'} |")
    lines += [
        "",
        "## Training",
        "",
        f"{len(history)} episodes in {m['placement_train_s']:.0f} s; convergence "
        f"(rolling mean, over one pass of the episode windows, of the episode's mean "
        f"reward within 5 % of its final value from then on; judged inside this run "
        f"only): episode {_fmt(m['placement_converged_episode'], '{:.0f}')}.",
        "",
        "| episode | ε | placements | mean reward | loss | objective (train slice) | hot |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in history:
        lines.append(
            f"| {h['episode']} | {h['epsilon']:.3f} | {h['placements']} "
            f"| {h['mean_reward']:.4f} | {_fmt(h['mean_loss'])} | {h['objective']:.4f} "
            f"| {h['hot_share']:.2%} |"
        )
    lines += [
        "",
        f"Decision latency for 500 nodes (features + Q, median): "
        f"{m['placement_infer_500_nodes_ms']:.3f} ms.",
    ]
    return "\n".join(lines) + "\n"
