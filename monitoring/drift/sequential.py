"""The sequential test on the load predictor's error stream (performance drift).

Page-Hinkley for an increase of the mean, with the mean under no change fixed to the
validation error rather than re-estimated from the stream:

    z_t = (e_t - mu) / sigma                 (e_t: mean absolute error at step t;
                                              mu, sigma: the validation errors' at the
                                              same time of day)
    g_t = max(0, g_{t-1} + z_t - delta),  g_0 = 0

``g_t`` is Page-Hinkley's ``m_t - min_{s<=t} m_s`` with ``m_t = sum (z_s - delta)``, i.e.
the one-sided CUSUM: it stays near 0 while errors look like validation errors and climbs
by about ``(shift - delta)`` per step once they are ``shift`` standard deviations worse.
The alarm level is not a constant: it is calibrated on the validation stream itself
(:mod:`monitoring.drift.calibrate`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["page_hinkley"]


def page_hinkley(
    z: np.ndarray, delta: float, start: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Run the statistic over a standardised stream.

    Args:
        z: (steps,) or (steps, streams) standardised errors; NaN (no error known at that
            step) leaves the statistic unchanged.
        delta: the drift allowance (in standard deviations), >= 0.
        start: the statistic before the first step (a previous run's last value), per
            stream.

    Returns:
        ``(g, last)``: the statistic after each step (same shape as ``z``) and its last
        value per stream (``start`` when ``z`` is empty).

    Raises:
        ValueError: a negative ``delta``.
    """
    if delta < 0:
        raise ValueError(f"delta must be >= 0, got {delta}")
    arr = np.asarray(z, dtype=np.float64)
    two_d = arr.ndim == 2
    mat = arr if two_d else arr.reshape(-1, 1)
    g = np.empty_like(mat)
    cur = np.broadcast_to(np.asarray(start, dtype=np.float64), (mat.shape[1],)).copy()
    for t in range(mat.shape[0]):
        row = mat[t]
        step = np.maximum(0.0, cur + row - delta)
        cur = np.where(np.isnan(row), cur, step)
        g[t] = cur
    return (g if two_d else g[:, 0]), cur
