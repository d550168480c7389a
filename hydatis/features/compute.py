"""Node features from a window of node history: one code path for training and serving.

:func:`node_features` without ``at`` builds the offline table (every node at every grid
step); with ``at`` it builds the online vector (one row per node) from the data at or
before ``at`` only. Both run the same functions; the offline path evaluates them at every
row of the node grid, the online path at the last row of a grid that covers only the
longest window before ``at``. Exact (bit-identical) agreement is by construction:

- sums (means, standard deviations, slopes, pod requests) are taken over integers: the
  values are quantised to a power-of-two resolution first (2^-20 or finer for
  utilisation, see ``_k_mean``/``_k_std``/``_k_slope``) so a window sum is exact and
  does not depend on where the series starts, unlike a running floating-point sum;
- max, min and the 95th percentile select values (percentile: pandas' linear rule,
  replicated for the online path), so they are exact anyway;
- the EWMA is a finite weighted sum over the last hour, accumulated in the same order on
  both paths.

The grid: each node's ``node_metrics`` are resampled onto the grid points
``k * step`` (ns since the Unix epoch); a grid point takes the latest sample at or before
it when that sample is at most ``MAX_CARRY_STEPS * step`` old, else NaN. The default
``step`` is the median gap between a node's consecutive samples in the data used (pass
``step_s`` for serving so both paths use the same grid).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from hydatis.dataset import ClusterDataset
from hydatis.features.specs import (
    EWMA_SPAN_S,
    EWMA_WINDOW_S,
    FEATURES,
    LAGS,
    MAX_CARRY_STEPS,
    MIN_COVERAGE,
    OPTIONAL_SOURCES,
    SLOPE_WINDOWS,
    WINDOWS,
)

__all__ = ["WindowSums", "node_features"]

_NS = 1_000_000_000
_NO_TS = np.iinfo(np.int64).min
_K_REQ = 24  # requests/limits quantised to 2^-24 cores or GiB
_K_OPT = 20  # optional (unbounded) columns quantised to 2^-20 of their unit
_UTIL = ("cpu", "mem")
_STATS = ("mean", "max", "min", "std", "p95")
_LONGEST_S = max(max(WINDOWS.values()), EWMA_WINDOW_S, max(SLOPE_WINDOWS.values()))


@dataclass
class _Metrics:
    """node_metrics rows as arrays, nodes coded by their position in ``names``."""

    names: np.ndarray  # node names, sorted; code = position
    codes: np.ndarray  # int64 per row
    ts: np.ndarray  # int64 ns per row
    cols: dict[str, np.ndarray]  # float64 per row: cpu, mem and optional sources

    def subset(self, mask: np.ndarray | None = None) -> _Metrics:
        """The rows under ``mask``, sorted by (node, ts) as :func:`_resample` needs."""
        codes, ts = (self.codes, self.ts) if mask is None else (self.codes[mask], self.ts[mask])
        dc, dt = np.diff(codes), np.diff(ts)
        if np.all((dc > 0) | ((dc == 0) & (dt >= 0))):  # already in order (the usual case)
            order = None if mask is None else mask
        else:
            order = np.lexsort((ts, codes))
            if mask is not None:
                order = np.flatnonzero(mask)[order]
        if order is None:
            return self
        cols = {k: v[order] for k, v in self.cols.items()}
        return _Metrics(self.names, self.codes[order], self.ts[order], cols)


def _ts_ns(values: pd.Series | pd.Index) -> np.ndarray:
    """UTC timestamps as int64 ns since the epoch (NaT -> _NO_TS)."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    return idx.as_unit("ns").asi8.copy()


def _at_ns(at: pd.Timestamp) -> int:
    stamp = pd.Timestamp(at)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.tz_convert("UTC").as_unit("ns").value)


def _metrics(ds: ClusterDataset, names: np.ndarray) -> _Metrics:
    """node_metrics as arrays (rows of nodes outside ``names`` dropped), not sorted."""
    nm = ds.node_metrics
    codes = pd.Index(names).get_indexer(nm["node"].to_numpy(dtype=object)).astype(np.int64)
    ok = codes >= 0
    every = bool(ok.all())

    def pick(a: np.ndarray) -> np.ndarray:
        return a if every else a[ok]

    cols = {
        "cpu": pick(np.clip(nm["cpu_util"].to_numpy(dtype=np.float64), 0.0, 1.0)),
        "mem": pick(np.clip(nm["mem_util"].to_numpy(dtype=np.float64), 0.0, 1.0)),
    }
    for col in OPTIONAL_SOURCES:
        if col in nm.columns:
            cols[col] = pick(nm[col].to_numpy(dtype=np.float64, na_value=np.nan))
    return _Metrics(names, pick(codes), pick(_ts_ns(nm["ts"])), cols)


def _default_step_ns(m: _Metrics) -> int:
    """Median gap between consecutive samples of the same node (30 s when unknown)."""
    if m.ts.size < 2:
        return 30 * _NS
    gaps = np.diff(m.ts)[np.diff(m.codes) == 0]
    gaps = gaps[gaps > 0]
    return int(np.median(gaps)) if gaps.size else 30 * _NS


def _step_ns(step_s: float | None, m: _Metrics) -> int:
    if step_s is None:
        return _default_step_ns(m)
    if not step_s > 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    return round(step_s * _NS)


def _resample(
    m: _Metrics, times: np.ndarray, carry_ns: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Values at sorted ``times`` (T,) for every node: the latest sample at or before each
    time, if at most ``carry_ns`` old. ``m`` must be sorted by (node, ts).

    Returns:
        (column -> (N, T) float64 with NaN where missing, (N, T) int64 time of the sample
        used or _NO_TS).
    """
    n, t = len(m.names), len(times)
    slot = np.searchsorted(times, m.ts, side="left")  # first time >= sample
    rows = np.flatnonzero(slot < t)  # samples after the last time are never read
    slot, codes = slot[rows], m.codes[rows]
    # several samples in one slot: the latest wins (rows are sorted by code, ts)
    last = np.ones(rows.size, dtype=bool)
    last[:-1] = (codes[1:] != codes[:-1]) | (slot[1:] != slot[:-1])
    rows, slot, codes = rows[last], slot[last], codes[last]
    src = np.full((n, t), -1, dtype=np.int64)
    src[codes, slot] = rows
    pos = np.where(src >= 0, np.arange(t, dtype=np.int64)[None, :], -1)
    np.maximum.accumulate(pos, axis=1, out=pos)
    has = pos >= 0
    row = np.where(has, np.take_along_axis(src, np.maximum(pos, 0), axis=1), 0)
    sample_ts = np.where(has, m.ts[row] if m.ts.size else 0, _NO_TS)
    fresh = has & (times[None, :] - sample_ts <= carry_ns)
    sample_ts = np.where(fresh, sample_ts, _NO_TS)
    out = {}
    for col, values in m.cols.items():
        vals = values[row] if values.size else np.zeros(row.shape)
        out[col] = np.where(fresh, vals, np.nan)
    return out, sample_ts


# --------------------------------------------------------------------------- windows
# Arrays are (N nodes, R grid rows); a window statistic is evaluated for the windows ending
# at rows e0..e1-1. The offline path asks for every row, the online path for the last one.

_FEW = 8  # up to this many ends: direct per-window reductions instead of rolling kernels


def _steps(span_s: float, step_ns: int) -> int:
    """Number of grid points in a window of ``span_s`` seconds: ceil(span / step)."""
    return max(1, -(-round(span_s * _NS) // step_ns))


def _min_count(w: int, least: int = 1) -> int:
    return max(least, math.ceil(MIN_COVERAGE * w))


def _k_mean(w: int) -> int:
    return min(40, int(52 - math.log2(w)))


def _k_std(w: int) -> int:
    # n * S2 - S1^2 <= n^2 * 2^(2k) / 4 must fit in int64
    return min(30, int(32.5 - math.log2(w)) - 1)


def _k_slope(w: int) -> int:
    # n * Sxy and Sx * Sy are bounded by ~ w^3 * 2^k
    return min(32, int(62 - 3 * math.log2(w)) - 1)


def _trim(x: np.ndarray, e0: int, e1: int, w: int) -> tuple[np.ndarray, int, int]:
    """Only the columns the windows ending at e0..e1-1 read."""
    lo = max(e0 - w + 1, 0)
    return x[:, lo:e1], e0 - lo, e1 - lo


def _wsum(a: np.ndarray, e0: int, e1: int, w: int) -> np.ndarray:
    """Integer window sums of ``a`` for the windows ending at e0..e1-1.

    Integer sums are exact (int64 wraps modulo 2^64 and the true sums fit), so the
    cumulative-sum form and the direct form give the same numbers.
    """
    if e1 - e0 <= _FEW:
        return np.stack(
            [a[:, max(e - w + 1, 0) : e + 1].sum(axis=1) for e in range(e0, e1)], axis=1
        )
    c = np.zeros((a.shape[0], a.shape[1] + 1), dtype=np.int64)
    np.cumsum(a, axis=1, out=c[:, 1:])
    res = c[:, e0 + 1 : e1 + 1].copy()
    i0 = max(0, w - 1 - e0)
    if i0 < e1 - e0:
        res[:, i0:] -= c[:, e0 + i0 + 1 - w : e1 + 1 - w]
    return res


def _quantise(x: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
    """round(x * 2^k) as int64, 0 where missing."""
    scaled = (x if valid.all() else np.where(valid, x, 0.0)) * float(2**k)
    return np.rint(scaled, out=scaled).astype(np.int64)


def _mean_of(n: np.ndarray, s: np.ndarray, w: int, k: int) -> np.ndarray:
    """The window mean from its count ``n`` and quantised sum ``s`` (NaN below coverage)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s.astype(np.float64) / n * (2.0**-k)
    return np.where(n >= _min_count(w), out, np.nan)


def _std_of(n: np.ndarray, s1: np.ndarray, s2: np.ndarray, w: int, k: int) -> np.ndarray:
    """The window's sample standard deviation from its count and quantised sums."""
    d = n * s2 - s1 * s1  # exact: the true value fits in int64, intermediates may wrap
    with np.errstate(invalid="ignore", divide="ignore"):
        var = d.astype(np.float64) / (n * (n - 1)).astype(np.float64) * (2.0 ** (-2 * k))
    return np.where(n >= _min_count(w, 2), np.sqrt(np.maximum(var, 0.0)), np.nan)


def _mean(x: np.ndarray, e0: int, e1: int, w: int, k: int) -> np.ndarray:
    x, e0, e1 = _trim(x, e0, e1, w)
    valid = ~np.isnan(x)
    n = _wsum(valid.astype(np.int64), e0, e1, w)
    s = _wsum(_quantise(x, valid, k), e0, e1, w)
    return _mean_of(n, s, w, k)


def _std(x: np.ndarray, e0: int, e1: int, w: int) -> np.ndarray:
    x, e0, e1 = _trim(x, e0, e1, w)
    valid = ~np.isnan(x)
    k = _k_std(w)
    q = _quantise(x, valid, k)
    n = _wsum(valid.astype(np.int64), e0, e1, w)
    s1 = _wsum(q, e0, e1, w)
    s2 = _wsum(q * q, e0, e1, w)
    return _std_of(n, s1, s2, w, k)


class WindowSums:
    """Running sums behind one window's mean and standard deviation, one grid row at a time.

    The incremental form of the mean and std kernels above, for a consumer that sees the
    grid grow a row at a time (:mod:`hydatis.features.stream`): the same quantisation and
    the same final arithmetic, with the integer sums updated by adding the row entering
    the window and subtracting the row leaving it. Integer addition is exact (int64 wraps
    modulo 2^64 and the true sums fit), so the results equal the batch kernels' bit for
    bit, at O(nodes) per row instead of O(nodes x window) per evaluation.

    Args:
        n_nodes: length of each row.
        w: the window in grid steps.
    """

    def __init__(self, n_nodes: int, w: int) -> None:
        self.w = w
        self.k_mean = _k_mean(w)
        self.k_std = _k_std(w)
        self.count = np.zeros(n_nodes, dtype=np.int64)
        self.total = np.zeros(n_nodes, dtype=np.int64)  # quantised at k_mean
        self.s1 = np.zeros(n_nodes, dtype=np.int64)  # quantised at k_std
        self.s2 = np.zeros(n_nodes, dtype=np.int64)

    def copy(self) -> WindowSums:
        """An independent copy (to evaluate with rows that may still change)."""
        other = WindowSums.__new__(WindowSums)
        other.w, other.k_mean, other.k_std = self.w, self.k_mean, self.k_std
        for name in ("count", "total", "s1", "s2"):
            setattr(other, name, getattr(self, name).copy())
        return other

    def _add(self, x: np.ndarray, sign: int) -> None:
        valid = ~np.isnan(x)
        if not valid.any():
            return
        q = _quantise(x, valid, self.k_std)
        self.count += sign * valid
        self.total += sign * _quantise(x, valid, self.k_mean)
        self.s1 += sign * q
        self.s2 += sign * (q * q)

    def push(self, entering: np.ndarray, leaving: np.ndarray | None = None) -> None:
        """Slide the window by one row: add ``entering``, subtract ``leaving`` (the row
        ``w`` rows before ``entering``; None or all-NaN when there is none)."""
        self._add(np.asarray(entering, dtype=np.float64), 1)
        if leaving is not None:
            self._add(np.asarray(leaving, dtype=np.float64), -1)

    def mean(self) -> np.ndarray:
        """Per node, the window mean (NaN below ``MIN_COVERAGE``)."""
        return _mean_of(self.count, self.total, self.w, self.k_mean)

    def std(self) -> np.ndarray:
        """Per node, the window's sample standard deviation (NaN below coverage)."""
        return _std_of(self.count, self.s1, self.s2, self.w, self.k_std)


def _slope(x: np.ndarray, e0: int, e1: int, w: int, step_ns: int) -> np.ndarray:
    """Least-squares slope in units per hour; x-axis = row index relative to the end row."""
    x, e0, e1 = _trim(x, e0, e1, w)
    valid = ~np.isnan(x)
    k = _k_slope(w)
    q = _quantise(x, valid, k)
    v = valid.astype(np.int64)
    j = np.arange(x.shape[1], dtype=np.int64)[None, :]
    e = np.arange(e0, e1, dtype=np.int64)[None, :]
    n = _wsum(v, e0, e1, w)
    sq = _wsum(q, e0, e1, w)
    sjq = _wsum(j * q, e0, e1, w)
    sjv = _wsum(j * v, e0, e1, w)
    sj2v = _wsum(j * j * v, e0, e1, w)
    sx = sjv - e * n  # sums of (j - e), exact integers whatever the row origin
    sxx = sj2v - 2 * e * sjv + e * e * n
    sxy = sjq - e * sq
    num = n * sxy - sx * sq
    den = n * sxx - sx * sx
    with np.errstate(invalid="ignore", divide="ignore"):
        per_step = num.astype(np.float64) / den.astype(np.float64) * (2.0**-k)
    per_hour = per_step * (3600.0 * _NS / step_ns)
    return np.where((n >= _min_count(w, 2)) & (den > 0), per_hour, np.nan)


def _ewma(x: np.ndarray, e0: int, e1: int, step_ns: int) -> np.ndarray:
    """Finite-window EWMA over integers: sum_i W_i q[e - i] / sum_i W_i v[e - i].

    Values and weights are quantised to 2^-k (weights W_i = round(decay^i * 2^k)), so
    the weighted sums are exact integers on every path.
    """
    w = _steps(EWMA_WINDOW_S, step_ns)
    x, e0, e1 = _trim(x, e0, e1, w)
    valid = ~np.isnan(x)
    span = max(1.0, EWMA_SPAN_S * _NS / step_ns)
    decay = 1.0 - 2.0 / (span + 1.0)
    k = min(28, int((62 - math.log2(w)) / 2))
    weights = np.rint(decay ** np.arange(w) * float(2**k)).astype(np.int64)
    q = _quantise(x, valid, k)
    v = valid.astype(np.int64)
    if e1 - e0 <= _FEW:
        num = np.empty((x.shape[0], e1 - e0), dtype=np.int64)
        den = np.empty_like(num)
        for r, end in enumerate(range(e0, e1)):
            lo = max(end - w + 1, 0)
            wt = weights[: end + 1 - lo][::-1]
            num[:, r] = (q[:, lo : end + 1] * wt).sum(axis=1)
            den[:, r] = (v[:, lo : end + 1] * wt).sum(axis=1)
    else:
        num = np.stack([np.convolve(row, weights)[e0:e1] for row in q])
        den = np.stack([np.convolve(row, weights)[e0:e1] for row in v])
    cnt = _wsum(v, e0, e1, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num.astype(np.float64) / den.astype(np.float64) * (2.0**-k)
    return np.where(cnt >= _min_count(w), out, np.nan)


def _rolling_extreme(x: np.ndarray, w: int, stat: str) -> np.ndarray:
    """Rolling max/min of every window ending at each column (van Herk/Gil-Werman: block
    prefix and suffix extremes), NaN ignored; a window with no value gives +-inf."""
    fn = np.maximum if stat == "max" else np.minimum
    fill = -np.inf if stat == "max" else np.inf
    n, r = x.shape
    xf = np.where(np.isnan(x), fill, x)
    out = np.empty((n, r))
    head = min(w - 1, r)
    out[:, :head] = fn.accumulate(xf[:, :head], axis=1)
    if r >= w:
        pad = (-r) % w
        blocks = np.concatenate([xf, np.full((n, pad), fill)], axis=1).reshape(n, -1, w)
        pre = fn.accumulate(blocks, axis=2).reshape(n, -1)
        suf = fn.accumulate(blocks[:, :, ::-1], axis=2)[:, :, ::-1].reshape(n, -1)
        out[:, w - 1 :] = fn(suf[:, : r - w + 1], pre[:, w - 1 : r])
    return out


def _p95_last_axis(win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95th percentile along the last axis, NaN ignored, with pandas' linear rule.

    Returns:
        (percentile, number of values used).
    """
    s = np.sort(win, axis=-1)  # NaN sorts last
    n = np.count_nonzero(~np.isnan(win), axis=-1)
    frac = 0.95 * (np.maximum(n, 1) - 1).astype(np.float64)
    idx = frac.astype(np.int64)
    vlow = np.take_along_axis(s, idx[..., None], axis=-1)[..., 0]
    vhigh = np.take_along_axis(s, np.minimum(idx + 1, s.shape[-1] - 1)[..., None], axis=-1)
    vhigh = vhigh[..., 0]
    return _p95_of(vlow, vhigh, frac, idx), n


def _p95_of(vlow: np.ndarray, vhigh: np.ndarray, frac: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The 95th percentile from the order statistics at ``idx`` and ``idx + 1`` (0-based,
    ascending) with ``frac = 0.95 * (n - 1)``, ``idx = int(frac)``: the same expression as
    pandas.core.window's roll_quantile (linear interpolation)."""
    return np.where(idx == frac, vlow, vlow + (vhigh - vlow) * (frac - idx))


def _select(x: np.ndarray, e0: int, e1: int, w: int, stat: str) -> np.ndarray:
    """max / min / p95 over the windows ending at e0..e1-1 (NaN ignored)."""
    x, e0, e1 = _trim(x, e0, e1, w)
    m = _min_count(w)
    if stat == "p95" and w <= 32:  # short windows: sort every window (faster than pandas)
        out = np.empty((x.shape[0], e1 - e0))
        xp = np.concatenate([np.full((x.shape[0], w - 1), np.nan), x], axis=1)
        for c in range(0, x.shape[0], 64):
            wins = sliding_window_view(xp[c : c + 64, e0 : e1 + w - 1], w, axis=1)
            val, n = _p95_last_axis(wins)
            out[c : c + 64] = np.where(n >= m, val, np.nan)
        return out
    if e1 - e0 > _FEW and stat != "p95":  # many ends (offline)
        n = _wsum((~np.isnan(x)).astype(np.int64), e0, e1, w)
        val = _rolling_extreme(x, w, stat)[:, e0:e1]
        return np.where(n >= m, val, np.nan)
    if e1 - e0 > _FEW:  # pandas' rolling quantile (skip list) on each node
        roll = pd.DataFrame(x.T).rolling(w, min_periods=m).quantile(0.95)
        return roll.to_numpy(dtype=np.float64).T[:, e0:]
    out = np.full((x.shape[0], e1 - e0), np.nan)
    for r, end in enumerate(range(e0, e1)):
        win = x[:, max(end - w + 1, 0) : end + 1]
        n = np.count_nonzero(~np.isnan(win), axis=1)
        if stat in ("max", "min"):  # fmax/fmin skip NaN without copying the window
            val = (np.fmax if stat == "max" else np.fmin).reduce(win, axis=1)
        elif np.all(n == win.shape[1]):  # every window full: two order statistics suffice
            frac = 0.95 * (win.shape[1] - 1)
            idx = int(frac)
            part = np.partition(win, [idx, min(idx + 1, win.shape[1] - 1)], axis=1)
            vlow, vhigh = part[:, idx], part[:, min(idx + 1, win.shape[1] - 1)]
            val = _p95_of(vlow, vhigh, frac, idx)
        else:
            val, n = _p95_last_axis(win)
        out[:, r] = np.where(n >= m, val, np.nan)
    return out


# --------------------------------------------------------------------------- pods


def _pod_features(
    ds: ClusterDataset, names: np.ndarray, times: np.ndarray, sample_ts: np.ndarray
) -> dict[str, np.ndarray]:
    """Requested/limit ratios, pod counts and pods bound since the last sample at each of
    the sorted ``times`` (T,) for every node: arrays (N, T).

    Counts and quantised requests are integers, so the same numbers come out whichever
    times are asked for.
    """
    t, n = len(times), len(names)
    pods = ds.pods
    codes = pd.Index(names).get_indexer(pods["node"].to_numpy(dtype=object))
    on = codes >= 0  # pods with a recorded node we know
    codes = codes[on].astype(np.int64)
    start = _ts_ns(pods["start_ts"])[on]
    end = _ts_ns(pods["end_ts"])[on]
    s_slot = np.searchsorted(times, start, side="left")  # first time >= start
    e_slot = np.where(end == _NO_TS, t, np.searchsorted(times, end, side="left"))

    def running(weights: np.ndarray) -> np.ndarray:
        # sum over pods with start <= time minus those with end <= time: start <= t < end.
        # integer-valued float64 bins stay far below 2^53, so the sums are exact.
        size = n * (t + 1)
        hs = np.bincount(codes * (t + 1) + s_slot, weights=weights, minlength=size)
        he = np.bincount(codes * (t + 1) + e_slot, weights=weights, minlength=size)
        hs = hs.reshape(n, t + 1)[:, :t].astype(np.int64)
        he = he.reshape(n, t + 1)[:, :t].astype(np.int64)
        return np.cumsum(hs, axis=1) - np.cumsum(he, axis=1)

    out: dict[str, np.ndarray] = {}
    caps = ds.nodes.set_index("node").reindex(names)
    cap = {"cpu": caps["cpu_cores"].to_numpy(np.float64), "mem": caps["mem_gib"].to_numpy()}
    for kind, what in (("requested", "request"), ("limit", "limit")):
        for res in _UTIL:
            col = f"{res}_{what}"
            if col not in pods.columns:
                out[f"{res}_{kind}_ratio"] = np.full((n, t), np.nan)
                continue
            v = pods[col].to_numpy(dtype=np.float64, na_value=np.nan)[on]
            q = np.rint(np.nan_to_num(v, nan=0.0) * 2.0**_K_REQ)  # unset counts 0
            total = running(q) * (2.0**-_K_REQ)
            out[f"{res}_{kind}_ratio"] = total / cap[res][:, None]
    out["pod_count"] = running(np.ones(codes.size)).astype(np.float64)
    # pods bound in (last sample, time]: the sample is at most MAX_CARRY_STEPS old, so a
    # pod can only count at the first few times at or after its start.
    bound = np.zeros((n, t), dtype=np.int64)
    for k in range(MAX_CARRY_STEPS + 2):
        j = s_slot + k
        ok = j < t
        jj, cc, ss = j[ok], codes[ok], start[ok]
        last = sample_ts[cc, jj]
        hit = (last != _NO_TS) & (last < ss) & (times[jj] >= ss)
        np.add.at(bound, (cc[hit], jj[hit]), 1)
    out["pods_bound_since_sample"] = np.where(sample_ts == _NO_TS, np.nan, bound)
    return out


# --------------------------------------------------------------------------- assembly


def _time_features(times: np.ndarray) -> dict[str, np.ndarray]:
    sec = times // _NS
    day_s = (sec % 86400).astype(np.float64) + (times % _NS) / _NS
    hour = day_s / 3600.0
    dow = ((sec // 86400 + 3) % 7).astype(np.float64) + day_s / 86400.0  # 1970-01-01: Thu
    return {
        "hour_sin": np.sin(2 * np.pi * hour / 24.0),
        "hour_cos": np.cos(2 * np.pi * hour / 24.0),
        "dow_sin": np.sin(2 * np.pi * dow / 7.0),
        "dow_cos": np.cos(2 * np.pi * dow / 7.0),
    }


_Put = Callable[[str, np.ndarray], None]


def _grid_features(
    grid: dict[str, np.ndarray],
    lagged: dict[str, dict[str, np.ndarray]],
    e0: int,
    e1: int,
    step_ns: int,
    put: _Put,
    windows: Collection[str] | None = None,
) -> None:
    """Window, EWMA, slope and lag features at grid rows e0..e1-1; ``put(name, (N, rows))``.

    ``windows`` limits the rolling-window statistics to those names of ``WINDOWS`` (None:
    all); the stream builder computes the long ones from running sums instead.
    """
    for res in _UTIL:
        x = grid[res]
        for win, span in WINDOWS.items():
            if windows is not None and win not in windows:
                continue
            w = _steps(span, step_ns)
            put(f"{res}_mean_{win}", _mean(x, e0, e1, w, _k_mean(w)))
            put(f"{res}_max_{win}", _select(x, e0, e1, w, "max"))
            put(f"{res}_min_{win}", _select(x, e0, e1, w, "min"))
            put(f"{res}_std_{win}", _std(x, e0, e1, w))
            put(f"{res}_p95_{win}", _select(x, e0, e1, w, "p95"))
    for res in _UTIL:
        put(f"{res}_ewma_10m", _ewma(grid[res], e0, e1, step_ns))
    for res in _UTIL:
        for win, span in SLOPE_WINDOWS.items():
            put(f"{res}_slope_{win}", _slope(grid[res], e0, e1, _steps(span, step_ns), step_ns))
    for res in _UTIL:
        for lag in LAGS:
            put(f"{res}_lag_{lag}", lagged[lag][res])
    for col, prefix in OPTIONAL_SOURCES.items():
        if col not in grid:
            continue
        x = grid[col]
        w5, w60 = _steps(300, step_ns), _steps(3600, step_ns)
        put(f"{prefix}_mean_5m", _mean(x, e0, e1, w5, _K_OPT))
        put(f"{prefix}_mean_1h", _mean(x, e0, e1, w60, _K_OPT))
        put(f"{prefix}_max_1h", _select(x, e0, e1, w60, "max"))


def _point_features(
    ds: ClusterDataset,
    names: np.ndarray,
    times: np.ndarray,
    point: dict[str, np.ndarray],
    sample_ts: np.ndarray,
    put: _Put,
) -> None:
    """Features read at the times themselves: latest sample, time of day, capacity, pods."""
    shape = (len(names), len(times))
    put("cpu_util", point["cpu"])
    put("mem_util", point["mem"])
    age = np.where(sample_ts == _NO_TS, np.nan, (times[None, :] - sample_ts) / _NS)
    put("metric_age_s", age)
    for name, arr in _time_features(times).items():
        put(name, np.broadcast_to(arr[None, :], shape))
    caps = ds.nodes.set_index("node").reindex(names)
    for name, col in (("cpu_capacity_cores", "cpu_cores"), ("mem_capacity_gib", "mem_gib")):
        put(name, np.broadcast_to(caps[col].to_numpy(np.float64)[:, None], shape))
    for name, arr in _pod_features(ds, names, times, sample_ts).items():
        put(name, arr)


def _lag_steps(lag_s: int, step_ns: int) -> int:
    return -(-lag_s * _NS // step_ns)


def _columns(present: set[str]) -> list[str]:
    optional = {f"{p}_" for c, p in OPTIONAL_SOURCES.items() if c in present}
    return [
        f.name
        for f in FEATURES
        if not f.optional or any(f.name.startswith(prefix) for prefix in optional)
    ]


def node_features(
    ds: ClusterDataset, *, at: pd.Timestamp | None = None, step_s: float | None = None
) -> pd.DataFrame:
    """Node features, offline (every node at every grid step) or online (one instant).

    Args:
        ds: the cluster dataset; ``node_metrics`` gives the series, ``nodes`` the
            capacities, ``pods`` (rows with a recorded node) the requests and counts.
        at: None for the offline table; a time for the online vector, built from data at
            or before ``at`` only. Window, EWMA, slope and lag features use the latest
            grid point at or before ``at``; the point features (``cpu_util``,
            ``mem_util``, ``metric_age_s``, time of day, pod features) use ``at`` itself,
            which may fall between samples (then ``pods_bound_since_sample`` counts the
            pods bound since the latest sample). On a grid point the online row equals
            the offline row exactly.
        step_s: grid step in seconds; default the median gap between a node's samples in
            the data used (offline: all of it; online: the last 24 h before ``at``).

    Returns:
        Columns ``node_id, event_timestamp`` then the features in :data:`FEATURES` order
        (the optional ones only when ``node_metrics`` has their column), float32.
        Offline: rows sorted by node then time, one per grid point from the node's first
        to its last sample. Online: one row per node of ``ds.nodes`` (sorted by name),
        ``event_timestamp == at``. Missing history gives NaN (see FEATURES.md).

    Raises:
        ValueError: ``step_s`` is not positive.
    """
    present = {c for c in OPTIONAL_SOURCES if c in ds.node_metrics.columns}
    columns = _columns(present)
    if at is None:
        return _offline(ds, step_s, columns)
    return _online(ds, _at_ns(at), step_s, columns)


def _assemble(
    names: np.ndarray, times: np.ndarray, out: np.ndarray, columns: list[str]
) -> pd.DataFrame:
    """The frame: node-major rows (each node's times in order), float32 features."""
    df = pd.DataFrame(out, columns=columns, copy=False)
    stamps = pd.DatetimeIndex(np.tile(times, len(names)).view("datetime64[ns]"), tz="UTC")
    df.insert(0, "event_timestamp", stamps)
    df.insert(0, "node_id", np.repeat(names.astype(object), len(times)))
    return df


def _writer(rows: int, columns: list[str]) -> tuple[np.ndarray, _Put]:
    out = np.empty((rows, len(columns)), dtype=np.float32, order="F")
    index = {c: i for i, c in enumerate(columns)}

    def put(name: str, arr: np.ndarray) -> None:
        out[:, index[name]] = np.asarray(arr).ravel()  # (N, T) -> node-major rows

    return out, put


@dataclass
class _OfflineGrid:
    """The offline grid shared by the feature table and the labels."""

    names: np.ndarray
    step_ns: int
    times: np.ndarray  # (T,) int64 ns
    grid: dict[str, np.ndarray]  # column -> (N, T)
    sample_ts: np.ndarray  # (N, T)
    keep: np.ndarray  # (N * T,) rows inside each node's own span, node-major


def _offline_grid(ds: ClusterDataset, step_s: float | None) -> _OfflineGrid:
    names = np.array(sorted(ds.node_metrics["node"].unique()), dtype=object)
    m = _metrics(ds, names).subset()
    step_ns = _step_ns(step_s, m)
    if m.ts.size == 0:
        times = np.empty(0, np.int64)
    else:
        first = int(m.ts.min()) // step_ns * step_ns
        last = int(m.ts.max()) // step_ns * step_ns
        times = np.arange(first, last + 1, step_ns, dtype=np.int64)
    grid, sample_ts = _resample(m, times, MAX_CARRY_STEPS * step_ns)
    n = len(names)
    starts = np.full(n, np.iinfo(np.int64).max)
    ends = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(starts, m.codes, m.ts)
    np.maximum.at(ends, m.codes, m.ts)
    keep = (times[None, :] >= starts[:, None]) & (times[None, :] <= ends[:, None])
    return _OfflineGrid(names, step_ns, times, grid, sample_ts, keep.ravel())


def _offline(ds: ClusterDataset, step_s: float | None, columns: list[str]) -> pd.DataFrame:
    og = _offline_grid(ds, step_s)
    names, times, grid, step_ns = og.names, og.times, og.grid, og.step_ns
    n, t = len(names), len(times)
    out, put = _writer(n * t, columns)
    if t:
        lagged = {}
        for lag, lag_s in LAGS.items():
            k = min(_lag_steps(lag_s, step_ns), t)
            lagged[lag] = {
                res: np.hstack([np.full((n, k), np.nan), grid[res][:, : t - k]]) for res in _UTIL
            }
        _point_features(ds, names, times, grid, og.sample_ts, put)
        _grid_features(grid, lagged, 0, t, step_ns, put)
    df = _assemble(names, times, out, columns)
    if not og.keep.all():  # keep each node's own span: first to last sample
        df = df.loc[og.keep].reset_index(drop=True)
    return df


def _online(
    ds: ClusterDataset, at_ns: int, step_s: float | None, columns: list[str]
) -> pd.DataFrame:
    names = np.array(sorted(ds.nodes["node"].unique()), dtype=object)
    raw = _metrics(ds, names)
    if step_s is None:
        recent = (raw.ts > at_ns - _LONGEST_S * _NS) & (raw.ts <= at_ns)
        step_ns = _step_ns(None, raw.subset(recent))
    else:
        step_ns = _step_ns(step_s, raw)
    carry = MAX_CARRY_STEPS * step_ns
    g = at_ns // step_ns * step_ns  # the latest grid point at or before ``at``
    w = _steps(_LONGEST_S, step_ns)
    times = g - step_ns * np.arange(w - 1, -1, -1, dtype=np.int64)
    m = raw.subset((raw.ts >= times[0] - carry) & (raw.ts <= at_ns))
    grid, _ = _resample(m, times, carry)
    lagged = {}
    for lag, lag_s in LAGS.items():
        gl = g - _lag_steps(lag_s, step_ns) * step_ns
        ml = raw.subset((raw.ts >= gl - carry) & (raw.ts <= gl))
        lagged[lag] = _resample(ml, np.array([gl], dtype=np.int64), carry)[0]
    at_times = np.array([at_ns], dtype=np.int64)
    point, sample_ts = _resample(m.subset(m.ts >= at_ns - carry), at_times, carry)
    out, put = _writer(len(names), columns)
    _point_features(ds, names, at_times, point, sample_ts, put)
    _grid_features(grid, lagged, w - 1, w, step_ns, put)
    return _assemble(names, at_times, out, columns)
