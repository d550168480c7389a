"""The load predictor's live accuracy: its forecasts against what the nodes then did.

At every refresh the extender holds the load predictor's forecast for each node, made at
the rows' time ``t`` for ``t + horizon``. The first refresh whose rows' time is at or
after ``t + horizon`` carries the utilisation each node actually showed (the ``cpu_util``
and ``mem_util`` columns); each (forecast, observed) pair of the same node, both finite,
is one matched pair. A forecast whose first later refresh comes more than ``max_late_s``
(one horizon by default) after its due time is dropped unscored: the observation would
be of another time. Over the pairs matched in the last ``window_s`` (rows' clock)::

    accuracy = 1 − WAPE = 1 − Σ |forecast − observed| / Σ |observed|

the same definition the registry gate applies at training (``load_cpu_accuracy``,
``load_mem_accuracy``), so the live figure and the gate's target compare directly.

Pure bookkeeping on arrays, run once per refresh (never per request); no metrics here —
the service exports what :meth:`LiveAccuracy.observe` returns.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RESOURCES", "LiveAccuracy", "LiveFigures"]

#: Resource label values, and the observed column of the node rows each is scored on.
RESOURCES: dict[str, str] = {"cpu": "cpu_util", "memory": "mem_util"}


@dataclass(frozen=True)
class LiveFigures:
    """One resource's live accuracy over the window.

    Attributes:
        accuracy: 1 − WAPE over the window's pairs (NaN with no pairs, or when every
            observed value is 0 — WAPE is then undefined).
        pairs: matched (forecast, observed) pairs in the window.
    """

    accuracy: float
    pairs: int


@dataclass
class _Pending:
    """Forecasts made at one refresh, waiting for their horizon to pass."""

    made_at: float
    names: list[str]
    forecast: dict[str, np.ndarray]


@dataclass
class _Matched:
    """What one matching refresh adds to the window, per resource: Σ|error|, Σ|observed|
    and the number of pairs."""

    at: float
    abs_error: dict[str, float]
    abs_observed: dict[str, float]
    pairs: dict[str, int]


class LiveAccuracy:
    """Matches each refresh's forecasts with the observation ``horizon_s`` later.

    Args:
        horizon_s: the load predictor's horizon (its forecast at ``t`` is for
            ``t + horizon_s``).
        window_s: pairs matched longer ago than this (rows' clock) leave the figures.
        max_late_s: the most a matching refresh may come after the forecast's due time
            (None: one horizon).
    """

    def __init__(
        self, horizon_s: float = 300.0, window_s: float = 3600.0, max_late_s: float | None = None
    ) -> None:
        if not horizon_s > 0 or not window_s > 0:
            raise ValueError(f"horizon_s and window_s must be > 0, got {horizon_s}, {window_s}")
        self.horizon_s = horizon_s
        self.window_s = window_s
        self.max_late_s = horizon_s if max_late_s is None else max_late_s
        self._pending: deque[_Pending] = deque()
        self._matched: deque[_Matched] = deque()
        self._last_time = -math.inf

    def reset(self) -> None:
        """Forget every forecast and pair."""
        self._pending.clear()
        self._matched.clear()
        self._last_time = -math.inf

    def observe(
        self,
        time: float,
        names: Sequence[str],
        observed: dict[str, np.ndarray],
        forecast: dict[str, np.ndarray],
    ) -> dict[str, LiveFigures]:
        """Take in one refresh and return the figures per resource.

        Args:
            time: the rows' time of this refresh.
            names: the refresh's node names (their order indexes the arrays).
            observed: per resource (:data:`RESOURCES` keys), the utilisation each node
                shows now (NaN = not known).
            forecast: per resource, the forecast made now for ``time + horizon_s`` (NaN
                where the model gave none; a missing key = no forecast at all).

        A clock that goes backwards (a new replay on the same extender) starts afresh:
        forecasts from another timeline must not be scored against this one.
        """
        if time < self._last_time:
            self.reset()
        self._last_time = time
        position = {name: i for i, name in enumerate(names)}
        while self._pending and self._pending[0].made_at + self.horizon_s <= time:
            pending = self._pending.popleft()
            if time - (pending.made_at + self.horizon_s) <= self.max_late_s:
                self._matched.append(self._match(pending, time, position, observed))
        if any(np.isfinite(v).any() for v in forecast.values()):
            self._pending.append(
                _Pending(
                    time,
                    list(names),
                    {r: np.asarray(v, dtype=np.float64).copy() for r, v in forecast.items()},
                )
            )
        while self._matched and self._matched[0].at < time - self.window_s:
            self._matched.popleft()
        return {r: self.figures(r) for r in RESOURCES}

    @staticmethod
    def _match(
        pending: _Pending, time: float, position: dict[str, int], observed: dict[str, np.ndarray]
    ) -> _Matched:
        """Pairs of the nodes present both when the forecast was made and now."""
        then = np.array([i for i, n in enumerate(pending.names) if n in position], dtype=np.int64)
        now = np.array([position[pending.names[i]] for i in then], dtype=np.int64)
        err: dict[str, float] = {}
        obs: dict[str, float] = {}
        pairs: dict[str, int] = {}
        for r in RESOURCES:
            f = pending.forecast.get(r)
            o = observed.get(r)
            if f is None or o is None or then.size == 0:
                err[r], obs[r], pairs[r] = 0.0, 0.0, 0
                continue
            f, o = f[then], np.asarray(o, dtype=np.float64)[now]
            ok = np.isfinite(f) & np.isfinite(o)
            err[r] = float(np.abs(f[ok] - o[ok]).sum())
            obs[r] = float(np.abs(o[ok]).sum())
            pairs[r] = int(ok.sum())
        return _Matched(time, err, obs, pairs)

    def figures(self, resource: str) -> LiveFigures:
        """The current figures for ``resource`` (``cpu`` or ``memory``)."""
        pairs = sum(m.pairs[resource] for m in self._matched)
        denominator = sum(m.abs_observed[resource] for m in self._matched)
        if pairs == 0 or denominator <= 0:
            return LiveFigures(float("nan"), pairs)
        wape = sum(m.abs_error[resource] for m in self._matched) / denominator
        return LiveFigures(1.0 - wape, pairs)
