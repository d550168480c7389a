"""Online node features one grid step at a time: the incremental form of
``node_features(ds, at=...)`` for a feature producer that sees node samples as they come.

:func:`hydatis.features.node_features` with ``at`` rebuilds a day of grid from the raw
samples on every call (about 1.4 s for 1,500 nodes with 24 h of 30 s history), which is
fine for one snapshot and too slow for a producer refreshing every minute (the simulator
pushing node state to the extender, a live feature job). :class:`FeatureStream` keeps the
grid instead: a ring of the last 24 h of grid rows per node, filled as samples arrive,
and running integer sums for the long windows. A snapshot then costs a few array passes.

One code path: the short windows, the EWMA, the slopes and the max / min / p95 of the
long windows are the window kernels of :mod:`hydatis.features.compute`, called on the
ring; the long windows' means and standard deviations are its
:class:`~hydatis.features.compute.WindowSums`, the same quantised arithmetic kept
incrementally. So :meth:`FeatureStream.features` equals ``node_features(ds, at=at,
step_s=step)`` on the same samples, bit for bit (the unit tests check it), including the
pod features when the caller hands in what the pods on each node add up to
(:class:`PodTotals`).

Rules the stream relies on: samples arrive in time order (each :meth:`append` at a time
no earlier than the last), and a snapshot is asked for no earlier than the last sample.
Grid rows at or after the latest sample may still change (a later sample at the same
grid point wins), so a snapshot evaluates them on a scratch copy of the state and leaves
the stream as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hydatis.features.compute import (
    _LONGEST_S,
    _NO_TS,
    _NS,
    WindowSums,
    _columns,
    _grid_features,
    _lag_steps,
    _min_count,
    _p95_of,
    _select,
    _steps,
    _time_features,
    _writer,
)
from hydatis.features.specs import (
    EWMA_WINDOW_S,
    LAGS,
    MAX_CARRY_STEPS,
    SLOPE_WINDOWS,
    WINDOWS,
)

__all__ = ["LONG_WINDOW_S", "FeatureStream", "PodTotals"]

#: Windows longer than this are kept as running sums (their batch cost grows with length).
LONG_WINDOW_S = 3600
_RES = ("cpu", "mem")
_LONG = tuple(win for win, span in WINDOWS.items() if span > LONG_WINDOW_S)
_SHORT = tuple(win for win in WINDOWS if win not in _LONG)
_RECENT_S = max(max(WINDOWS[w] for w in _SHORT), EWMA_WINDOW_S, max(SLOPE_WINDOWS.values()))


@dataclass(frozen=True)
class PodTotals:
    """What the pods on each node add up to at the snapshot time: the pod features' inputs.

    A feature producer with the pod list (the simulator, a kube-state-metrics reader) knows
    these exactly; ``node_features`` derives them from ``ds.pods``. Arrays are per node,
    in the stream's node order.

    Attributes:
        cpu_requested: sum of the CPU requests of the pods running on the node (cores;
            an unset request counts 0).
        mem_requested: the same for memory (GiB).
        pod_count: pods running on the node.
        bound_since_sample: pods bound to the node after its latest metric sample (up to
            the snapshot time): placements its metrics do not show yet.
        cpu_limit, mem_limit: sums of the limits (unset = 0), or None when unknown (the
            limit ratios are then NaN, as for a dataset without limit columns).
    """

    cpu_requested: np.ndarray
    mem_requested: np.ndarray
    pod_count: np.ndarray
    bound_since_sample: np.ndarray
    cpu_limit: np.ndarray | None = None
    mem_limit: np.ndarray | None = None


class _Scratch:
    """What evaluating rows that may still change overwrote in the ring, to undo it: the
    overwritten columns, or whole copies of the ring after a long outage restarted it."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, int, np.ndarray, np.ndarray]] = []
        self.full: dict[str, np.ndarray] | None = None


class FeatureStream:
    """The required node features (``hydatis.features.feature_names()``) of every node at
    any instant, kept up to date one sample at a time.

    Args:
        cpu_cores: each node's CPU capacity in cores (``nodes.cpu_cores``).
        mem_gib: each node's memory capacity in GiB (``nodes.mem_gib``).
        step_s: the grid step (``node_features``' ``step_s``); use the sampling interval.
        keep_lags: keep the grid rows the 1-day and 7-day lag features read (up to 7 days
            of CPU and memory rows, float32); False leaves those features NaN.
    """

    def __init__(
        self,
        cpu_cores: np.ndarray,
        mem_gib: np.ndarray,
        *,
        step_s: float = 60.0,
        keep_lags: bool = True,
    ) -> None:
        if not step_s > 0:
            raise ValueError(f"step_s must be positive, got {step_s}")
        self.cpu_cores = np.asarray(cpu_cores, dtype=np.float64)
        self.mem_gib = np.asarray(mem_gib, dtype=np.float64)
        if self.cpu_cores.shape != self.mem_gib.shape or self.cpu_cores.ndim != 1:
            raise ValueError("cpu_cores and mem_gib must be 1-D arrays of the same length")
        self.n_nodes = int(self.cpu_cores.size)
        self.step_ns = round(step_s * _NS)
        self.carry_ns = MAX_CARRY_STEPS * self.step_ns
        self.keep_lags = keep_lags
        self.columns = _columns(set())
        n, step = self.n_nodes, self.step_ns
        self._w = _steps(_LONGEST_S, step)  # ring length: the online grid's width
        self._recent = _steps(_RECENT_S, step)
        self._long_w = {win: _steps(WINDOWS[win], step) for win in _LONG}
        self._lag_rows = {lag: _lag_steps(lag_s, step) for lag, lag_s in LAGS.items()}
        self._max_lag = max(self._lag_rows.values())
        # Each row is written at slot r % W and r % W + W, so any window is one slice.
        self._buf = {res: np.full((n, 2 * self._w), np.nan) for res in _RES}
        self._sums = {
            (res, win): WindowSums(n, w) for res in _RES for win, w in self._long_w.items()
        }
        self._lags: dict[int, dict[str, np.ndarray]] = {}
        self._last_ts = np.full(n, _NO_TS, dtype=np.int64)
        self._last_val = {res: np.full(n, np.nan) for res in _RES}
        self._latest = _NO_TS  # time of the latest append
        # Per long window, a value per node below which the p95 cannot lie (a hint kept
        # from the previous snapshot; -inf: none) and the grid row it was taken at.
        self._tau: dict[tuple[str, str], tuple[np.ndarray, int]] = {}
        self._committed: int | None = None  # last grid row that can no longer change

    # ------------------------------------------------------------------ input

    def append(self, t_ns: int, cpu: np.ndarray, mem: np.ndarray) -> None:
        """Record the samples taken at ``t_ns`` (ns since the Unix epoch).

        Args:
            t_ns: the samples' time; not earlier than the previous append's.
            cpu, mem: utilisation per node (fractions, clipped to [0, 1]); a node with
                both NaN has no sample at this time.

        Raises:
            ValueError: ``t_ns`` is earlier than the previous append, or a shape is wrong.
        """
        t_ns = int(t_ns)
        if t_ns < self._latest:
            raise ValueError(
                f"samples must arrive in time order: {t_ns} is before the last ({self._latest})"
            )
        cpu = np.clip(np.asarray(cpu, dtype=np.float64), 0.0, 1.0)
        mem = np.clip(np.asarray(mem, dtype=np.float64), 0.0, 1.0)
        if cpu.shape != (self.n_nodes,) or mem.shape != (self.n_nodes,):
            raise ValueError(f"cpu and mem must have one value per node ({self.n_nodes})")
        first_row = -(-t_ns // self.step_ns)  # the first grid point at or after t
        if self._committed is None:
            self._committed = first_row - 1
        else:  # rows before t are final: no later sample can reach them
            self._advance(first_row - 1, self._sums, None)
        has = ~(np.isnan(cpu) & np.isnan(mem))
        self._last_ts[has] = t_ns
        self._last_val["cpu"][has] = cpu[has]
        self._last_val["mem"][has] = mem[has]
        self._latest = t_ns

    @property
    def latest_sample_ns(self) -> np.ndarray:
        """Per node, the time of its latest sample (ns; ``numpy.iinfo(int64).min`` if none)."""
        return self._last_ts.copy()

    # ------------------------------------------------------------------ grid

    def _row_values(self, r: int) -> dict[str, np.ndarray]:
        """Grid row ``r`` from the latest samples: carried forward at most the carry."""
        fresh = (self._last_ts != _NO_TS) & (r * self.step_ns - self._last_ts <= self.carry_ns)
        return {res: np.where(fresh, self._last_val[res], np.nan) for res in _RES}

    def _commit(
        self,
        r: int,
        values: dict[str, np.ndarray],
        sums: dict[tuple[str, str], WindowSums],
        scratch: _Scratch | None,
    ) -> None:
        w = self._w
        slot = r % w
        for res in _RES:
            buf = self._buf[res]
            for win, lw in self._long_w.items():
                leaving = buf[:, (r - lw) % w]  # before the write: row r - W for lw == W
                sums[res, win].push(values[res], leaving)
            if scratch is not None:
                scratch.saved.append((res, slot, buf[:, slot].copy(), buf[:, slot + w].copy()))
            buf[:, slot] = values[res]
            buf[:, slot + w] = values[res]
        if scratch is None and self.keep_lags:
            if not (np.isnan(values["cpu"]).all() and np.isnan(values["mem"]).all()):
                self._lags[r] = {res: values[res].astype(np.float32) for res in _RES}
            for old in [k for k in self._lags if k < r - self._max_lag]:
                del self._lags[old]

    def _advance(
        self, target: int, sums: dict[tuple[str, str], WindowSums], scratch: _Scratch | None
    ) -> None:
        """Write grid rows up to ``target`` (in ``scratch`` mode: undoably)."""
        r = self._committed + 1
        while r <= target:
            values = self._row_values(r)
            empty = np.isnan(values["cpu"]).all() and np.isnan(values["mem"]).all()
            if empty and target - r >= self._w:
                # A long outage: every row up to target - W is empty, and nothing in the
                # ring outlives it, so restart the ring rather than stepping through it.
                if scratch is not None and scratch.full is None:
                    scratch.full = {res: self._buf[res].copy() for res in _RES}
                for res in _RES:
                    self._buf[res].fill(np.nan)
                for key, s in sums.items():
                    sums[key] = WindowSums(self.n_nodes, s.w)
                r = target - self._w + 1
                continue
            self._commit(r, values, sums, scratch)
            r += 1
        if scratch is None:
            self._committed = max(self._committed, target)

    def _undo(self, scratch: _Scratch) -> None:
        if scratch.full is not None:
            for res in _RES:
                self._buf[res][...] = scratch.full[res]
            return
        w = self._w
        for res, slot, lo, hi in reversed(scratch.saved):
            self._buf[res][:, slot] = lo
            self._buf[res][:, slot + w] = hi

    # ------------------------------------------------------------------ output

    def features(self, at_ns: int, pods: PodTotals | None = None) -> np.ndarray:
        """Every node's features at ``at_ns``: ``[n_nodes, len(columns)]`` float32, columns
        in :attr:`columns` order (``feature_names()``), NaN where history is missing.

        Args:
            at_ns: the snapshot time (ns since the Unix epoch), not before the last sample.
            pods: the pod totals per node at ``at_ns``; None leaves the pod features NaN.

        Raises:
            ValueError: ``at_ns`` is before the latest sample.
        """
        at_ns = int(at_ns)
        if at_ns < self._latest:
            raise ValueError(f"snapshot at {at_ns} is before the latest sample ({self._latest})")
        n, step = self.n_nodes, self.step_ns
        out, put = _writer(n, self.columns)
        g = at_ns // step  # the latest grid point at or before ``at``
        scratch = _Scratch()
        sums = {key: s.copy() for key, s in self._sums.items()}
        try:
            if self._committed is not None:
                self._advance(g, sums, scratch)
            self._window_features(g, sums, put)
        finally:
            self._undo(scratch)
        self._point_features(at_ns, pods, put)
        return np.ascontiguousarray(out)  # row-major: one node's features together

    def _window_features(self, g: int, sums: dict[tuple[str, str], WindowSums], put) -> None:
        end = g % self._w + self._w + 1  # slice end of row g
        recent = {res: self._buf[res][:, end - self._recent : end] for res in _RES}
        lagged = {}
        for lag, rows in self._lag_rows.items():
            row = None
            if self.keep_lags and self._committed is not None:
                # a row after the last committed one (no sample for a day) is carried
                late = g - rows > self._committed
                row = self._row_values(g - rows) if late else self._lags.get(g - rows)
            lagged[lag] = {
                res: (row[res] if row is not None else np.full(self.n_nodes, np.nan))[:, None]
                for res in _RES
            }
        r = self._recent
        _grid_features(recent, lagged, r - 1, r, self.step_ns, put, windows=_SHORT)
        for res in _RES:
            for win, lw in self._long_w.items():
                s = sums[res, win]
                put(f"{res}_mean_{win}", s.mean())
                put(f"{res}_std_{win}", s.std())
                x = self._buf[res][:, end - lw : end]
                for stat in ("max", "min"):
                    put(f"{res}_{stat}_{win}", _select(x, lw - 1, lw, lw, stat))
                put(f"{res}_p95_{win}", self._p95(x, s.count, (res, win), g))

    def _point_features(self, at_ns: int, pods: PodTotals | None, put) -> None:
        n = self.n_nodes
        fresh = (self._last_ts != _NO_TS) & (at_ns - self._last_ts <= self.carry_ns)
        put("cpu_util", np.where(fresh, self._last_val["cpu"], np.nan))
        put("mem_util", np.where(fresh, self._last_val["mem"], np.nan))
        put("metric_age_s", np.where(fresh, (at_ns - self._last_ts) / _NS, np.nan))
        for name, arr in _time_features(np.array([at_ns], dtype=np.int64)).items():
            put(name, np.broadcast_to(arr, (n,)))
        put("cpu_capacity_cores", self.cpu_cores)
        put("mem_capacity_gib", self.mem_gib)
        nan = np.full(n, np.nan)
        if pods is None:
            for name in (
                "cpu_requested_ratio",
                "mem_requested_ratio",
                "cpu_limit_ratio",
                "mem_limit_ratio",
                "pod_count",
                "pods_bound_since_sample",
            ):
                put(name, nan)
            return
        cap = {"cpu": self.cpu_cores, "mem": self.mem_gib}
        req = {"cpu": pods.cpu_requested, "mem": pods.mem_requested}
        lim = {"cpu": pods.cpu_limit, "mem": pods.mem_limit}
        for res in _RES:
            put(f"{res}_requested_ratio", np.asarray(req[res], dtype=np.float64) / cap[res])
            limit = lim[res]
            put(
                f"{res}_limit_ratio",
                nan if limit is None else np.asarray(limit, dtype=np.float64) / cap[res],
            )
        put("pod_count", np.asarray(pods.pod_count, dtype=np.float64))
        bound = np.asarray(pods.bound_since_sample, dtype=np.float64)
        put("pods_bound_since_sample", np.where(fresh, bound, np.nan))

    def _p95(self, x: np.ndarray, m: np.ndarray, key: tuple[str, str], g: int) -> np.ndarray:
        """The window's 95th percentile per node, equal to the kernel's, from the values
        above a per-node threshold only.

        The percentile interpolates between the order statistics ``idx`` and ``idx + 1``
        (``idx = int(0.95 (m - 1))`` of ``m`` values), which lie among the ``m - idx``
        largest values. A threshold ``tau`` below which at least that many values lie
        above is kept from the previous snapshot (the window moved by a few rows), so
        only the values ``>= tau`` are sorted: about 5 % of a long window instead of all
        of it. Rows where the hint does not hold are sorted whole; either way the order
        statistics, and so the result, are exact.
        """
        lw = x.shape[1]
        frac = 0.95 * (np.maximum(m, 1) - 1).astype(np.float64)
        idx = frac.astype(np.int64)
        need = m - idx  # the largest values down to order statistic idx
        tau, g_prev = self._tau.get(key, (np.full(self.n_nodes, -np.inf), g))
        keep = x >= tau[:, None]  # NaN compares False
        count = keep.sum(axis=1)
        full = (count < need) | np.isneginf(tau)
        if full.any():
            keep[full] = ~np.isnan(x[full])
            count[full] = m[full]
        vlow = np.full(self.n_nodes, np.nan)
        vhigh = np.full(self.n_nodes, np.nan)
        slack = 16 + 2 * max(g - g_prev, 0)
        next_tau = np.full(self.n_nodes, -np.inf)
        for rows in (np.flatnonzero(~full), np.flatnonzero(full)):
            if rows.size == 0:
                continue
            c = count[rows]
            width = max(int(c.max()), 2)
            top = np.full((rows.size, width), np.inf)
            owner = np.repeat(np.arange(rows.size), c)
            start = np.cumsum(c) - c
            top[owner, np.arange(owner.size) - start[owner]] = x[rows][keep[rows]]
            top.sort(axis=1)  # ascending; the values below tau are the m - c not kept
            lo = np.clip(idx[rows] - (m[rows] - c), 0, width - 1)
            hi = np.clip(lo + 1, 0, width - 1)
            pick = np.arange(rows.size)
            vlow[rows], vhigh[rows] = top[pick, lo], top[pick, hi]
            deep = np.clip(c - need[rows] - slack, 0, width - 1)
            next_tau[rows] = np.where(c > 0, top[pick, deep], -np.inf)
        self._tau[key] = (next_tau, g)
        with np.errstate(invalid="ignore"):
            val = _p95_of(vlow, vhigh, frac, idx)
        return np.where(m >= _min_count(lw), val, np.nan)
