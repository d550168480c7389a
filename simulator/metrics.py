"""The evaluation metrics, defined once (DESIGN: "Evaluation metrics").

Over node-time (every node at every step after the warm-up): mean and p95 node CPU
utilisation, the share above the hot threshold (0.85), the share inside the target band
(0.65 ± 0.05), the spread across nodes (standard deviation across nodes, averaged over
time) and the placement objective, the mean of ``max(0, cpu − 0.65)``.

Over pod-time: availability = 1 − impacted / alive pod-steps, where a pod is impacted while
it is pending past the grace period, runs on a node whose CPU demand exceeds capacity, or
was evicted for memory and has not run again.

Per decision: the scheduler's latency p50 / p99.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.engine import SimResult

__all__ = [
    "HOT_THRESHOLD",
    "METRIC_LABELS",
    "TARGET",
    "TARGET_BAND",
    "hot_share_series",
    "improvement",
    "placement_objective",
    "summarize",
]

HOT_THRESHOLD = 0.85
TARGET = 0.65
TARGET_BAND = 0.05

#: column -> (label, format) for tables and reports, in display order.
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "mean_cpu": ("mean CPU", "{:.3f}"),
    "p95_cpu": ("p95 CPU", "{:.3f}"),
    "hot_share": ("hot share (>0.85)", "{:.2%}"),
    "target_band_share": ("in band 0.65±0.05", "{:.2%}"),
    "spread": ("spread (std)", "{:.3f}"),
    "objective": ("objective", "{:.4f}"),
    "availability": ("availability", "{:.4%}"),
    "impacted_pending": ("impact: pending", "{:.3%}"),
    "impacted_cpu": ("impact: CPU over", "{:.3%}"),
    "impacted_oom": ("impact: OOM", "{:.3%}"),
    "pending_p95_s": ("pending p95 (s)", "{:.0f}"),
    "evictions": ("OOM evictions", "{:d}"),
    "never_placed": ("never placed", "{:d}"),
    "latency_p50_ms": ("latency p50 (ms)", "{:.3f}"),
    "latency_p99_ms": ("latency p99 (ms)", "{:.3f}"),
}


def _after_warmup(result: SimResult) -> np.ndarray:
    keep = result.times >= result.warmup_s
    if not keep.any():  # a run shorter than its warm-up: use everything
        keep[:] = True
    return keep


def placement_objective(node_cpu: np.ndarray, target: float = TARGET) -> float:
    """Mean over node-time of ``max(0, cpu − target)``: the CPU above the target (lower is
    better)."""
    if node_cpu.size == 0:
        return float("nan")
    return float(np.maximum(node_cpu - target, 0.0).mean())


def improvement(objective_a: float, objective_b: float) -> float:
    """Improvement of A over B: ``1 − objective(A) / objective(B)`` (NaN when B is 0)."""
    if objective_b <= 0:
        return float("nan")
    return 1.0 - objective_a / objective_b


def hot_share_series(result: SimResult, threshold: float = HOT_THRESHOLD) -> np.ndarray:
    """Share of nodes above ``threshold`` at each step."""
    return (result.node_cpu > threshold).mean(axis=1)


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float("nan")


def summarize(result: SimResult) -> dict[str, Any]:
    """All the figures of one run, as plain Python numbers (JSON-ready)."""
    keep = _after_warmup(result)
    cpu = result.node_cpu[keep].astype(np.float64)
    mem = result.node_mem[keep].astype(np.float64)
    alive = float(result.pods_alive[keep].sum())

    def share(x: np.ndarray) -> float:
        return float(x[keep].sum() / alive) if alive else 0.0

    cap_cpu = result.cap_cpu.astype(np.float64)
    cap_mem = result.cap_mem.astype(np.float64)
    return {
        "mean_cpu": float(cpu.mean()) if cpu.size else float("nan"),
        "p95_cpu": _pct(cpu.ravel(), 95),
        "hot_share": float((cpu > HOT_THRESHOLD).mean()) if cpu.size else float("nan"),
        "target_band_share": float((np.abs(cpu - TARGET) <= TARGET_BAND).mean())
        if cpu.size
        else float("nan"),
        "spread": float(cpu.std(axis=1).mean()) if cpu.size else float("nan"),
        "objective": placement_objective(cpu),
        "mean_mem": float(mem.mean()) if mem.size else float("nan"),
        "availability": 1.0 - share(result.pods_impacted) if alive else float("nan"),
        "impacted_pending": share(result.impacted_pending),
        "impacted_cpu": share(result.impacted_cpu),
        "impacted_oom": share(result.impacted_oom),
        "pending_p95_s": _pct(result.pending_times_s, 95),
        "evictions": int(result.evictions),
        "placements": int(result.placements),
        "never_placed": int(result.never_placed),
        "latency_p50_ms": _pct(result.latencies_s, 50) * 1e3,
        "latency_p99_ms": _pct(result.latencies_s, 99) * 1e3,
        "requested_cpu_share": float(result.requested_cpu_share[keep].mean()),
        "requested_mem_share": float(result.requested_mem_share[keep].mean()),
        "used_cpu_share": float((cpu * cap_cpu).sum(axis=1).mean() / cap_cpu.sum()),
        "used_mem_share": float((mem * cap_mem).sum(axis=1).mean() / cap_mem.sum()),
        "cpu_overloaded_node_share": float(
            result.cpu_overloaded_nodes[keep].mean() / max(cap_cpu.size, 1)
        ),
        "wall_s": float(result.wall_s),
    }
