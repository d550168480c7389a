"""How the extender turns model outputs into a filter decision and a 0..10 score.

Pure numpy over the candidate nodes; nothing here does I/O. Every part is in [0, 1]:

- load part, from the predicted CPU utilisation ``u`` after placing the pod (the load
  predictor's forecast + the pods this extender placed since the node's last sample + the
  pod), with the ``headroom`` curve (default)::

      load(u) = 1 − u / hot                             u < hot
              = 0                                       u ≥ hot

  the more room is left below the hot threshold, the better: the hot end of the node-CPU
  distribution is what this scheduler exists to cool, and the placement objective counts
  every point above the target, so packing a node toward the target only moves it closer
  to the threshold its bursts then cross. The ``target`` curve (kept to measure against)::

      load(u) = 0.5 + 0.5 · u / target                  u ≤ target
              = (hot − u) / (hot − target)              target < u < hot
              = 0                                       u ≥ hot

  ``load_curve.svg`` in this folder plots both (:func:`load_curve_svg`). Either is
  multiplied by a memory factor that falls from 1 to 0 over the last 0.10 below
  ``mem_hot``. With ``normalise_load`` the extender then stretches the part over the
  candidates (:func:`stretch`): the score is an integer 0..10, and on a cluster whose
  nodes sit between 0.3 and 0.6 the raw part would put most of them on the same two or
  three values, leaving the choice to kube-scheduler's request-based plugins;
- agent part: the placement agent's Q-values min–max normalised over the candidates
  (all equal → 0.5);
- anomaly part: 1 − anomaly score.

``score = round(10 · (w_l · load + w_a · agent + w_n · anomaly) / (w_l + w_a + w_n))``.
A part that is unknown (model down, node not in the state) is 0.5 — neutral among the
candidates. Filtering: a node predicted past ``hot`` CPU or ``mem_hot`` memory after the
pod, or flagged anomalous, fails with a reason — unless that would fail every candidate,
in which case all pass (a pod with nowhere to go is worse than a warm node; counted).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NEUTRAL",
    "agent_part",
    "combine",
    "filter_reasons",
    "load_curve_svg",
    "load_part",
    "stretch",
]

NEUTRAL = 0.5
_MEM_RAMP = 0.10


def load_part(
    cpu_after: np.ndarray,
    mem_after: np.ndarray,
    *,
    target: float = 0.65,
    hot: float = 0.85,
    mem_hot: float = 0.95,
    curve: str = "headroom",
) -> np.ndarray:
    """The load part of each node (formulas in the module docstring); NaN input → 0.5."""
    u = np.asarray(cpu_after, dtype=np.float64)
    if curve == "headroom":
        part = np.clip(1.0 - np.clip(u, 0.0, None) / hot, 0.0, 1.0)
    elif curve == "target":
        below = 0.5 + 0.5 * np.clip(u, 0.0, None) / target
        above = (hot - u) / (hot - target)
        part = np.clip(np.where(u <= target, below, above), 0.0, 1.0)
    else:
        raise ValueError(f"load curve must be 'headroom' or 'target', got {curve!r}")
    m = np.asarray(mem_after, dtype=np.float64)
    mem_factor = np.clip((mem_hot - m) / _MEM_RAMP, 0.0, 1.0)
    part = part * np.where(np.isnan(m), 1.0, mem_factor)
    return np.where(np.isnan(u), NEUTRAL, part)


def stretch(part: np.ndarray) -> np.ndarray:
    """``part`` min–max stretched to [0, 1] over the candidates (all equal or none finite
    → unchanged): only the order and the relative gaps between candidates matter to the
    choice, and the stretch lets them survive the rounding to an integer score."""
    part = np.asarray(part, dtype=np.float64)
    finite = np.isfinite(part)
    if not finite.any():
        return part
    lo, hi = float(part[finite].min()), float(part[finite].max())
    if hi - lo <= 1e-9:
        return part
    return np.where(finite, (part - lo) / (hi - lo), part)


def agent_part(q: np.ndarray | None, n: int) -> np.ndarray:
    """Q-values min–max normalised over the candidates; all equal, absent or NaN → 0.5."""
    if q is None:
        return np.full(n, NEUTRAL)
    q = np.asarray(q, dtype=np.float64)
    finite = np.isfinite(q)
    if not finite.any():
        return np.full(n, NEUTRAL)
    lo, hi = float(q[finite].min()), float(q[finite].max())
    if hi - lo <= 1e-12:
        return np.full(n, NEUTRAL)
    return np.where(finite, (q - lo) / (hi - lo), NEUTRAL)


def combine(
    load: np.ndarray, agent: np.ndarray, anomaly: np.ndarray, weights: tuple[float, float, float]
) -> np.ndarray:
    """Integer scores 0..10 from the three parts and their weights (load, agent, anomaly)."""
    wl, wa, wn = weights
    total = wl + wa + wn
    s = (wl * load + wa * agent + wn * anomaly) / total
    return np.clip(np.rint(10.0 * s), 0, 10).astype(np.int64)


def filter_reasons(
    cpu_after: np.ndarray,
    mem_after: np.ndarray,
    anomaly_score: np.ndarray,
    anomaly_flag: np.ndarray,
    *,
    hot: float,
    mem_hot: float,
    filter_hot: bool = True,
    filter_anomalous: bool = True,
    soft_target: float | None = None,
) -> list[str | None]:
    """Why each node should fail (None = keep). NaN predictions never fail a node.

    With ``soft_target``, a node predicted past it after the pod also fails, but only
    while at least one other candidate stays at or below it: Koordinator's usage
    threshold without its cost, the pods (the largest first) left pending when every
    node is past the threshold.
    """
    reasons: list[str | None] = [None] * len(cpu_after)
    with np.errstate(invalid="ignore"):
        hot_cpu = (cpu_after > hot) if filter_hot else np.zeros(len(cpu_after), bool)
        if soft_target is not None and filter_hot:
            warm = cpu_after > soft_target
            if (cpu_after <= soft_target).any():
                hot_cpu = hot_cpu | warm
        hot_mem = (mem_after > mem_hot) if filter_hot else np.zeros(len(cpu_after), bool)
    anomalous = np.asarray(anomaly_flag, dtype=bool) if filter_anomalous else None
    for i in np.flatnonzero(hot_cpu | hot_mem | (anomalous if anomalous is not None else False)):
        if hot_cpu[i]:
            limit, what = (hot, "hot threshold") if cpu_after[i] > hot else (soft_target, "target")
            reasons[i] = (
                f"predicted CPU utilisation {cpu_after[i]:.2f} after placement exceeds the "
                f"{what} {limit:.2f}"
            )
        elif hot_mem[i]:
            reasons[i] = (
                f"predicted memory utilisation {mem_after[i]:.2f} after placement exceeds "
                f"{mem_hot:.2f}"
            )
        else:
            reasons[i] = f"node flagged anomalous (anomaly score {anomaly_score[i]:.2f})"
    return reasons


def load_curve_svg(target: float = 0.65, hot: float = 0.85, width: int = 480) -> str:
    """An SVG plot of :func:`load_part`'s two curves against CPU utilisation after
    placement: ``headroom`` (solid, the default) and ``target`` (dashed). For the README;
    regenerate with ``python -m scheduler_shim.scoring > load_curve.svg``."""
    height, pad = width // 2, 40
    u = np.linspace(0.0, 1.0, 201)
    px = pad + u * (width - 2 * pad)

    def polyline(curve: str, style: str) -> str:
        y = load_part(u, np.zeros_like(u), target=target, hot=hot, curve=curve)
        py = height - pad - y * (height - 2 * pad)
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
        return (
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" {style} points="{points}"/>'
        )

    curves = polyline("headroom", "") + polyline("target", 'stroke-dasharray="6 4"')

    def x_of(v: float) -> float:
        return pad + v * (width - 2 * pad)

    marks = "".join(
        f'<line x1="{x_of(v):.1f}" y1="{pad}" x2="{x_of(v):.1f}" y2="{height - pad}" '
        f'stroke="#bbb" stroke-dasharray="4"/>'
        f'<text x="{x_of(v):.1f}" y="{pad - 6}" font-size="11" text-anchor="middle">'
        f"{label} {v:.2f}</text>"
        for v, label in ((target, "target"), (hot, "hot"))
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif">'
        f'<rect width="{width}" height="{height}" fill="white"/>{marks}'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
        f'stroke="black"/>'
        f"{curves}"
        f'<text x="{width / 2}" y="{height - 8}" font-size="12" text-anchor="middle">'
        f"predicted CPU utilisation after placement</text>"
        f'<text x="12" y="{height / 2}" font-size="12" transform="rotate(-90 12 {height / 2})"'
        f' text-anchor="middle">load part</text></svg>\n'
    )


if __name__ == "__main__":  # pragma: no cover - documentation helper
    import sys

    sys.stdout.write(load_curve_svg())
