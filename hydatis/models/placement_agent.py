"""The placement agent: a DQN whose one Q-network scores one candidate node at a time.

The network maps a row of (node state, pod, cluster context) features to a scalar Q; a
decision scores every candidate row in one batched forward pass and picks the best, so
the same weights serve a cluster of any size. Pure torch + numpy: the simulator adapter
(:mod:`simulator.agent`) builds the rows, serving loads the same files.

Formulation (a contextual-bandit-like DQN over candidate sets):

- state: the candidate rows ``X`` (``[n_candidates, d]``) for the pod being placed;
- action: the index of the chosen row; ``Q(s, a) = net(X[a])``;
- next state: the next pod's candidate rows ``X'``;
- target: ``y = r + γ · (1 − done) · max_j Q_target(X'_j)``, Huber loss on ``Q(s, a) − y``.

Learning uses experience replay (a ring buffer, uniform sampling), a target network
synchronised every ``target_sync`` gradient steps, ε-greedy exploration with a linear
schedule over episodes, and checkpoints (:meth:`PlacementAgent.save` /
:meth:`PlacementAgent.load`, which restore the optimiser and counters to resume).
Everything random draws from ``random_state``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import nn

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_GAMMA",
    "DEFAULT_HIDDEN",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_NEXT_CANDIDATES",
    "DEFAULT_REPLAY_SIZE",
    "DEFAULT_TARGET_SYNC",
    "PlacementAgent",
    "QNetwork",
    "ReplayBuffer",
    "linear_epsilon",
]

DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_GAMMA = 0.5
DEFAULT_EPSILON_START = 1.0
DEFAULT_EPSILON_END = 0.05
DEFAULT_EPSILON_DECAY_EPISODES = 20
DEFAULT_HIDDEN = (64, 64)
DEFAULT_REPLAY_SIZE = 50_000
DEFAULT_BATCH_SIZE = 64
DEFAULT_TARGET_SYNC = 200
DEFAULT_NEXT_CANDIDATES = 16  # next-state rows kept per transition (a sample of X')

_WEIGHTS = "q_network.pt"
_PARAMS = "params.json"


def linear_epsilon(episode: int, start: float, end: float, decay_episodes: int) -> float:
    """ε of a linear schedule: ``start`` at episode 0, ``end`` from ``decay_episodes`` on.

    ``ε(e) = start + (end − start) · min(e / decay_episodes, 1)`` (``end`` when
    ``decay_episodes ≤ 0``).
    """
    if decay_episodes <= 0:
        return float(end)
    frac = min(max(episode, 0) / decay_episodes, 1.0)
    return float(start + (end - start) * frac)


class QNetwork(nn.Module):
    """An MLP scoring one candidate node: ``[..., d_in] → [...]``.

    Args:
        d_in: features per node row.
        hidden: widths of the hidden layers (ReLU between them).
    """

    def __init__(self, d_in: int, hidden: Sequence[int] = DEFAULT_HIDDEN) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = d_in
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Q of every row of ``x`` (the last axis is the feature axis)."""
        return self.body(x).squeeze(-1)


class ReplayBuffer:
    """A ring buffer of transitions ``(x_sa, reward, next rows, next mask, done)``.

    ``x_sa`` is the chosen candidate's row; the next state is kept as at most ``k`` rows of
    the next pod's candidates (a uniform sample when there are more), with a mask for
    fewer. Arrays are preallocated, so memory is fixed: ``capacity · (k + 1) · d`` floats.
    """

    def __init__(self, capacity: int, d: int, k: int) -> None:
        self.capacity, self.d, self.k = int(capacity), int(d), int(k)
        self.x = np.zeros((self.capacity, d), dtype=np.float32)
        self.r = np.zeros(self.capacity, dtype=np.float32)
        self.nx = np.zeros((self.capacity, k, d), dtype=np.float32)
        self.nmask = np.zeros((self.capacity, k), dtype=bool)
        self.done = np.zeros(self.capacity, dtype=np.float32)
        self.size = 0
        self.pos = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        x_sa: np.ndarray,
        reward: float,
        next_rows: np.ndarray | None,
        done: bool,
        rng: np.random.Generator,
    ) -> None:
        """Store one transition (``next_rows`` None or empty: terminal)."""
        i = self.pos
        self.x[i] = x_sa
        self.r[i] = reward
        self.nmask[i] = False
        if next_rows is not None and len(next_rows) and not done:
            rows = next_rows
            if rows.shape[0] > self.k:
                rows = rows[rng.choice(rows.shape[0], self.k, replace=False)]
            self.nx[i, : rows.shape[0]] = rows
            self.nmask[i, : rows.shape[0]] = True
            self.done[i] = 0.0
        else:
            self.done[i] = 1.0
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A uniform sample (with replacement) of ``batch`` transitions."""
        idx = rng.integers(self.size, size=batch)
        return {
            "x": self.x[idx],
            "r": self.r[idx],
            "nx": self.nx[idx],
            "nmask": self.nmask[idx],
            "done": self.done[idx],
        }


@dataclass
class _Pending:
    """The last decision, waiting for its next state."""

    x_sa: np.ndarray
    reward: float


class PlacementAgent:
    """A DQN placement agent (see the module docstring for the formulation).

    Parameters are stored unchanged; learned state carries a trailing ``_`` and is built
    on the first call that sees features (:meth:`build`), so the constructor does no work.

    Args:
        learning_rate: Adam's step size.
        gamma: discount of the next pod's best Q (small: placements are nearly bandit-like).
        epsilon_start, epsilon_end, epsilon_decay_episodes: the linear ε schedule.
        hidden: hidden widths of the Q-network.
        replay_size: transitions the replay buffer holds.
        batch_size: transitions per gradient step.
        target_sync: gradient steps between copies of the online net into the target net.
        next_candidates: next-state rows kept per transition.
        grad_clip: max gradient norm.
        random_state: seeds weights, replay sampling and exploration.
    """

    def __init__(
        self,
        *,
        learning_rate: float = DEFAULT_LEARNING_RATE,
        gamma: float = DEFAULT_GAMMA,
        epsilon_start: float = DEFAULT_EPSILON_START,
        epsilon_end: float = DEFAULT_EPSILON_END,
        epsilon_decay_episodes: int = DEFAULT_EPSILON_DECAY_EPISODES,
        hidden: Sequence[int] = DEFAULT_HIDDEN,
        replay_size: int = DEFAULT_REPLAY_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        target_sync: int = DEFAULT_TARGET_SYNC,
        next_candidates: int = DEFAULT_NEXT_CANDIDATES,
        grad_clip: float = 10.0,
        random_state: int = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.gamma = gamma
        self.epsilon_start = epsilon_start
        self.epsilon_end = epsilon_end
        self.epsilon_decay_episodes = epsilon_decay_episodes
        self.hidden = hidden
        self.replay_size = replay_size
        self.batch_size = batch_size
        self.target_sync = target_sync
        self.next_candidates = next_candidates
        self.grad_clip = grad_clip
        self.random_state = random_state
        self.d_in_: int | None = None

    # -- construction -------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters (JSON-ready)."""
        return {
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "epsilon_start": self.epsilon_start,
            "epsilon_end": self.epsilon_end,
            "epsilon_decay_episodes": self.epsilon_decay_episodes,
            "hidden": [int(h) for h in self.hidden],
            "replay_size": self.replay_size,
            "batch_size": self.batch_size,
            "target_sync": self.target_sync,
            "next_candidates": self.next_candidates,
            "grad_clip": self.grad_clip,
            "random_state": self.random_state,
        }

    @property
    def built(self) -> bool:
        """Whether the networks exist (after :meth:`build` or :meth:`load`)."""
        return self.d_in_ is not None

    def build(self, d_in: int) -> Self:
        """Create the networks, optimiser, replay buffer and generators for ``d_in``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            self.q_net_ = QNetwork(d_in, self.hidden)
        self.target_net_ = QNetwork(d_in, self.hidden)
        self.target_net_.load_state_dict(self.q_net_.state_dict())
        self.target_net_.eval()
        self.optimizer_ = torch.optim.Adam(self.q_net_.parameters(), lr=self.learning_rate)
        self.replay_ = ReplayBuffer(self.replay_size, d_in, self.next_candidates)
        self.rng_ = np.random.default_rng(self.random_state)
        self.d_in_ = int(d_in)
        self.episodes_done_ = 0
        self.grad_steps_ = 0
        self.transitions_ = 0
        self._pending: _Pending | None = None
        return self

    def _require(self, d: int) -> None:
        if not self.built:
            self.build(d)
        elif d != self.d_in_:
            raise ValueError(f"agent expects {self.d_in_} features per node, got {d}")

    # -- acting -------------------------------------------------------------------------

    def epsilon(self, episode: int | None = None) -> float:
        """ε for ``episode`` (default: the episodes completed so far)."""
        e = getattr(self, "episodes_done_", 0) if episode is None else episode
        return linear_epsilon(e, self.epsilon_start, self.epsilon_end, self.epsilon_decay_episodes)

    def q_values(self, X: np.ndarray) -> np.ndarray:
        """Q of each candidate row of ``X`` (``[n, d] → [n]``), without gradients.

        One batched forward pass in inference mode (no autograd bookkeeping); on one CPU
        thread about a millisecond for 500 nodes. (Plain numpy matmuls were an order of
        magnitude slower here: its BLAS threads contend on a shared machine.)
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"X must be [n_nodes, d], got shape {X.shape}")
        self._require(X.shape[1])
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            return self.q_net_(torch.from_numpy(X)).numpy()

    def act(self, X: np.ndarray, rng: np.random.Generator, epsilon: float) -> int:
        """ε-greedy choice of a row of ``X``: uniform with probability ``epsilon``, else the
        best Q (ties broken uniformly by ``rng``)."""
        n = len(X)
        if n == 0:
            raise ValueError("no candidate to act on")
        if epsilon > 0 and rng.random() < epsilon:
            return int(rng.integers(n))
        q = self.q_values(X)
        best = np.flatnonzero(q == q.max())
        return int(best[0] if best.size == 1 else best[rng.integers(best.size)])

    # -- learning -----------------------------------------------------------------------

    def remember(
        self,
        x_sa: np.ndarray,
        reward: float,
        next_rows: np.ndarray | None = None,
        done: bool = False,
    ) -> None:
        """Store one transition: the chosen row, its reward and the next candidate rows."""
        x_sa = np.asarray(x_sa, dtype=np.float32)
        self._require(x_sa.shape[-1])
        nxt = None if next_rows is None else np.asarray(next_rows, dtype=np.float32)
        self.replay_.add(x_sa, float(reward), nxt, done, self.rng_)
        self.transitions_ += 1

    def observe(self, X: np.ndarray, action: int, reward: float) -> None:
        """Record a decision made online: the previous decision's transition is completed
        with ``X`` as its next state, and this one waits for the next call (or
        :meth:`end_episode`)."""
        X = np.asarray(X, dtype=np.float32)
        self._require(X.shape[1])
        if self._pending is not None:
            self.remember(self._pending.x_sa, self._pending.reward, X, done=False)
        self._pending = _Pending(X[action].copy(), float(reward))

    def end_episode(self) -> None:
        """Close the episode: the last decision becomes terminal; ε moves one step."""
        if self.built and self._pending is not None:
            self.remember(self._pending.x_sa, self._pending.reward, None, done=True)
        if self.built:
            self._pending = None
            self.episodes_done_ += 1

    def learn(self) -> float | None:
        """One gradient step on a replay sample; the loss, or None while the buffer holds
        fewer than ``batch_size`` transitions."""
        if not self.built or len(self.replay_) < self.batch_size:
            return None
        b = self.replay_.sample(self.batch_size, self.rng_)
        x = torch.from_numpy(b["x"])
        with torch.no_grad():
            qn = self.target_net_(torch.from_numpy(b["nx"]))
            mask = torch.from_numpy(b["nmask"])
            qn = torch.where(mask, qn, torch.full_like(qn, -torch.inf)).max(dim=1).values
            qn = torch.where(torch.isfinite(qn), qn, torch.zeros_like(qn))
            y = torch.from_numpy(b["r"]) + self.gamma * (1 - torch.from_numpy(b["done"])) * qn
        q = self.q_net_(x)
        loss = nn.functional.smooth_l1_loss(q, y)
        self.optimizer_.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_net_.parameters(), self.grad_clip)
        self.optimizer_.step()
        self.grad_steps_ += 1
        if self.grad_steps_ % self.target_sync == 0:
            self.sync_target()
        return float(loss.detach())

    def sync_target(self) -> None:
        """Copy the online network's weights into the target network."""
        self.target_net_.load_state_dict(self.q_net_.state_dict())

    # -- persistence --------------------------------------------------------------------

    def save(self, path: str | Path, *, optimizer: bool = True) -> Path:
        """Write the weights (online, target, optimiser) and a JSON of params and counters.

        Args:
            path: a directory (created).
            optimizer: also save the optimiser state (to resume training).

        Returns:
            ``path``.
        """
        if not self.built:
            raise ValueError("nothing to save: the agent has not seen any features yet")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {"q_net": self.q_net_.state_dict(), "target_net": self.target_net_.state_dict()}
        if optimizer:
            state["optimizer"] = self.optimizer_.state_dict()
        torch.save(state, path / _WEIGHTS)
        meta = {
            "params": self.get_params(),
            "d_in": self.d_in_,
            "episodes_done": self.episodes_done_,
            "grad_steps": self.grad_steps_,
            "transitions": self.transitions_,
        }
        (path / _PARAMS).write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read an agent written by :meth:`save` (counters and optimiser restored; the
        replay buffer starts empty)."""
        path = Path(path)
        meta = json.loads((path / _PARAMS).read_text())
        params = dict(meta["params"])
        params["hidden"] = tuple(params["hidden"])
        agent = cls(**params)
        agent.build(int(meta["d_in"]))
        state = torch.load(path / _WEIGHTS, map_location="cpu", weights_only=True)
        agent.q_net_.load_state_dict(state["q_net"])
        agent.target_net_.load_state_dict(state["target_net"])
        if "optimizer" in state:
            agent.optimizer_.load_state_dict(state["optimizer"])
        agent.episodes_done_ = int(meta.get("episodes_done", 0))
        agent.grad_steps_ = int(meta.get("grad_steps", 0))
        agent.transitions_ = int(meta.get("transitions", 0))
        # A resumed run must not replay the same draws as the first episodes.
        agent.rng_ = np.random.default_rng([agent.random_state, agent.episodes_done_])
        return agent
