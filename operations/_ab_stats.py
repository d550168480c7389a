"""The A/B test's statistics, pure: per-arm placement objective, matched windows, and an
always-valid sequential test that decides whether the challenger is better.

The yardstick is the DESIGN's placement objective (CPU above the 0.65 target, lower is
better), attributed to the arm that placed each pod: a placement's *outcome* is the mean
of ``max(0, cpu − target)`` on its node over the ``horizon_s`` after it. Both arms place
pods into the same cluster at the same time, so the comparison is paired: time is cut
into windows, and a window with enough placements of both arms gives one difference,
``d = champion − challenger`` (positive: the challenger's pods land where there is less
CPU above the target). Load that rises and falls over the day moves both arms together
and cancels in ``d``.

The test is a mixture sequential probability ratio test (mSPRT, Johari et al. 2017,
"Always valid inference"): with ``V = s²/n`` (the windows' variance over their count)
and a normal mixture of scale ``τ`` over the effect, the likelihood ratio against
"no difference" is ``Λ = sqrt(V / (V + τ²)) · exp(d̄² τ² / (2 V (V + τ²)))``; its
``1 − α`` always-valid confidence interval is ``d̄ ± sqrt(V (V + τ²) / τ² ·
(2 ln(1/α) + ln((V + τ²) / V)))``. The interval stays valid however often it is looked
at, so ``hydatis ab status`` may run every hour and stop the test the first time it is
decisive. ``s`` is estimated from the windows (plug-in), which is why a minimum number
of windows is required before anything is decided.

Decisions: ``promote`` only when the whole interval is above 0 (the challenger better at
the stated confidence) — never on a point estimate; ``keep`` when it is below 0 (the
champion better), or when the planned number of windows passed without evidence either
way; ``undecided`` otherwise (too few windows, or still inconclusive).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hydatis.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_HORIZON_S",
    "DEFAULT_MIN_PER_ARM",
    "DEFAULT_MIN_WINDOWS",
    "DEFAULT_WINDOW_S",
    "TARGET",
    "Verdict",
    "decide",
    "matched_windows",
    "msprt_interval",
    "placement_outcomes",
]

TARGET = 0.65  # the DESIGN's placement objective's target (simulator.metrics.TARGET)
DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_WINDOWS = 8
DEFAULT_WINDOW_S = 1200.0
DEFAULT_MIN_PER_ARM = 3
DEFAULT_HORIZON_S = 1800.0
_TINY = 1e-18


def placement_outcomes(
    times: np.ndarray,
    node_cpu: np.ndarray,
    placed_at: np.ndarray,
    node_index: np.ndarray,
    *,
    horizon_s: float = DEFAULT_HORIZON_S,
    target: float = TARGET,
) -> np.ndarray:
    """Each placement's outcome: the mean over the samples in ``(t, t + horizon_s]`` of
    ``max(0, cpu − target)`` on its node (NaN when no sample falls there).

    Args:
        times: sample times, increasing (seconds), shape (T,).
        node_cpu: CPU utilisation per sample and node, shape (T, N).
        placed_at: placement times, shape (P,).
        node_index: the node (column of ``node_cpu``) of each placement, shape (P,).
        horizon_s: how long after a placement its node is watched.
        target: the objective's target utilisation.

    Raises:
        ConfigError: shapes that do not agree, or a node index out of range.
    """
    times = np.asarray(times, dtype=np.float64)
    cpu = np.asarray(node_cpu, dtype=np.float64)
    placed_at = np.asarray(placed_at, dtype=np.float64)
    node_index = np.asarray(node_index, dtype=np.int64)
    if cpu.ndim != 2 or cpu.shape[0] != times.size:
        raise ConfigError(f"node_cpu has shape {cpu.shape}, expected ({times.size}, nodes)")
    if placed_at.shape != node_index.shape:
        raise ConfigError("placed_at and node_index differ in length")
    if node_index.size and (node_index.min() < 0 or node_index.max() >= cpu.shape[1]):
        raise ConfigError(f"a node index is outside 0..{cpu.shape[1] - 1}")
    if horizon_s <= 0:
        raise ConfigError(f"horizon_s must be > 0, got {horizon_s}")
    excess = np.maximum(cpu - target, 0.0)
    excess = np.where(np.isfinite(excess), excess, 0.0)
    valid = np.isfinite(cpu).astype(np.float64)
    # cumulative sums per node make each placement's window mean O(1)
    csum = np.vstack([np.zeros((1, cpu.shape[1])), np.cumsum(excess, axis=0)])
    ccnt = np.vstack([np.zeros((1, cpu.shape[1])), np.cumsum(valid, axis=0)])
    lo = np.searchsorted(times, placed_at, side="right")
    hi = np.searchsorted(times, placed_at + horizon_s, side="right")
    total = csum[hi, node_index] - csum[lo, node_index]
    count = ccnt[hi, node_index] - ccnt[lo, node_index]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def matched_windows(
    placed_at: np.ndarray,
    outcome: np.ndarray,
    is_challenger: np.ndarray,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    min_per_arm: int = DEFAULT_MIN_PER_ARM,
    start: float | None = None,
) -> dict[str, np.ndarray]:
    """Per time window with at least ``min_per_arm`` scored placements in each arm: the
    window's start, each arm's mean outcome and placement count.

    Returns:
        ``start``, ``champion``, ``challenger`` (mean outcomes), ``n_champion``,
        ``n_challenger`` — arrays of one entry per matched window, in time order.
    """
    if window_s <= 0:
        raise ConfigError(f"window_s must be > 0, got {window_s}")
    placed_at = np.asarray(placed_at, dtype=np.float64)
    outcome = np.asarray(outcome, dtype=np.float64)
    chal = np.asarray(is_challenger, dtype=bool)
    ok = np.isfinite(outcome) & np.isfinite(placed_at)
    empty = {k: np.zeros(0) for k in ("start", "champion", "challenger")}
    empty |= {"n_champion": np.zeros(0, int), "n_challenger": np.zeros(0, int)}
    if not ok.any():
        return empty
    t0 = float(placed_at[ok].min()) if start is None else float(start)
    w = np.floor((placed_at[ok] - t0) / window_s).astype(np.int64)
    keep = w >= 0
    w, y, c = w[keep], outcome[ok][keep], chal[ok][keep]
    if w.size == 0:
        return empty
    size = int(w.max()) + 1
    n = [np.bincount(w[c == arm], minlength=size) for arm in (False, True)]
    s = [np.bincount(w[c == arm], weights=y[c == arm], minlength=size) for arm in (False, True)]
    both = (n[0] >= min_per_arm) & (n[1] >= min_per_arm)
    idx = np.flatnonzero(both)
    return {
        "start": t0 + idx * window_s,
        "champion": s[0][idx] / n[0][idx],
        "challenger": s[1][idx] / n[1][idx],
        "n_champion": n[0][idx],
        "n_challenger": n[1][idx],
    }


def msprt_interval(
    diffs: np.ndarray, *, confidence: float = DEFAULT_CONFIDENCE, tau: float | None = None
) -> tuple[float, float, float]:
    """(mean, low, high): the always-valid ``confidence`` interval of the mean of
    ``diffs`` (module docstring); ``tau`` defaults to the diffs' own standard deviation
    (a unit effect size per window as the mixture's scale)."""
    d = np.asarray(diffs, dtype=np.float64)
    n = d.size
    if n < 2:
        return (float(d.mean()) if n else math.nan), -math.inf, math.inf
    mean = float(d.mean())
    var = max(float(d.var(ddof=1)), _TINY)
    t2 = (float(tau) if tau is not None else math.sqrt(var)) ** 2
    v = var / n
    alpha = 1.0 - confidence
    half = math.sqrt(v * (v + t2) / t2 * (2.0 * math.log(1.0 / alpha) + math.log((v + t2) / v)))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Verdict:
    """The test's state.

    Attributes:
        decision: ``promote``, ``keep`` or ``undecided``.
        reason: one line for people.
        windows: matched windows so far.
        mean_diff: mean of champion − challenger objective per window (> 0: challenger
            better).
        low, high: the always-valid interval of ``mean_diff``.
        confidence: the interval's confidence.
        champion_objective, challenger_objective: each arm's mean over the windows.
        improvement: 1 − challenger / champion objective (DESIGN's improvement).
    """

    decision: str
    reason: str
    windows: int
    mean_diff: float
    low: float
    high: float
    confidence: float
    champion_objective: float
    challenger_objective: float
    improvement: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (infinities and NaN as None)."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def decide(
    champion: np.ndarray,
    challenger: np.ndarray,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    min_windows: int = DEFAULT_MIN_WINDOWS,
    max_windows: int | None = None,
    tau: float | None = None,
) -> Verdict:
    """Decide from per-window objectives of the two arms (paired by window).

    Args:
        champion, challenger: each arm's objective per matched window (lower is better).
        confidence: the interval's confidence (0.95: a worse or equal challenger is
            promoted at most 5 % of the time, however often this is called).
        min_windows: fewer matched windows than this → ``undecided``.
        max_windows: the planned length; past it an inconclusive test ends in ``keep``.
        tau: the mixture scale (default: the windows' standard deviation).

    Raises:
        ConfigError: arrays of different lengths, or a confidence outside (0, 1).
    """
    a = np.asarray(champion, dtype=np.float64)
    b = np.asarray(challenger, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ConfigError(f"champion and challenger windows differ: {a.shape} vs {b.shape}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if min_windows < 2:
        raise ConfigError(f"min_windows must be >= 2, got {min_windows}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(a.size)
    obj_a = float(a.mean()) if n else math.nan
    obj_b = float(b.mean()) if n else math.nan
    improvement = 1.0 - obj_b / obj_a if n and obj_a > 0 else math.nan
    mean, low, high = msprt_interval(a - b, confidence=confidence, tau=tau)
    pct = f"{confidence:.0%}"

    def verdict(decision: str, reason: str) -> Verdict:
        return Verdict(decision, reason, n, mean, low, high, confidence, obj_a, obj_b, improvement)

    if n < min_windows:
        return verdict("undecided", f"too few matched windows: {n} of at least {min_windows}")
    if low > 0:
        return verdict(
            "promote",
            f"the challenger's objective is lower: champion − challenger in "
            f"[{low:.5f}, {high:.5f}] at {pct} (always valid) over {n} windows",
        )
    if high < 0:
        return verdict(
            "keep",
            f"the champion's objective is lower: champion − challenger in "
            f"[{low:.5f}, {high:.5f}] at {pct} over {n} windows",
        )
    if max_windows is not None and n >= max_windows:
        return verdict(
            "keep",
            f"no difference shown after the planned {max_windows} windows "
            f"([{low:.5f}, {high:.5f}] at {pct} contains 0): the champion stays",
        )
    return verdict("undecided", f"inconclusive so far: [{low:.5f}, {high:.5f}] at {pct} contains 0")
