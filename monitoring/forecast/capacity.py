"""How many nodes keep a forecast demand at the target utilisation.

With demand d(t) over the horizon and nodes of capacity c, utilisation with N nodes is
d(t) / (N·c). Keeping its p95 at or below the target u means

    N = ⌈ p95_t(d) / (u · c) ⌉

(``quantile`` and ``target`` default to 0.95 and 0.65, DESIGN's target band). It is
computed for the point forecast and for the upper bound of each interval: the upper
bound answers "how many nodes if demand comes in at the top of what we expect". ``c``
is the scope's median node; a pool mixes shapes rarely, a cluster often, so a cluster
figure is "nodes of the median size".

When only a utilisation share is known (the public cluster aggregates), the answer is a
factor of the current capacity, p95(d) / (u · capacity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monitoring.forecast.forecaster import Forecast

__all__ = ["DEFAULT_QUANTILE", "DEFAULT_TARGET", "CapacityNeed", "capacity_need", "nodes_for"]

DEFAULT_TARGET = 0.65
DEFAULT_QUANTILE = 0.95


def nodes_for(demand: np.ndarray, node_capacity: float, target: float, quantile: float) -> int:
    """⌈quantile(demand) / (target · node_capacity)⌉ (at least 1 when there is demand)."""
    if not node_capacity > 0:
        raise ValueError(f"node capacity must be > 0, got {node_capacity}")
    need = float(np.quantile(demand, quantile)) / (target * node_capacity)
    return max(0, math.ceil(need - 1e-9))


@dataclass(frozen=True)
class CapacityNeed:
    """Demand and nodes needed over a forecast's horizon.

    Attributes:
        target: the utilisation target.
        quantile: the quantile of demand over the horizon that must stay at the target.
        demand: ``point`` and ``hi<level>`` -> that quantile of the forecast demand.
        factor: the same keys -> demand / (target · current capacity), None without one.
        nodes: the same keys -> nodes needed, None without a node capacity.
        nodes_now: nodes in the scope now, None when unknown.
    """

    target: float
    quantile: float
    demand: dict[str, float]
    factor: dict[str, float | None]
    nodes: dict[str, int | None]
    nodes_now: int | None


def capacity_need(
    forecast: Forecast, *, target: float = DEFAULT_TARGET, quantile: float = DEFAULT_QUANTILE
) -> CapacityNeed:
    """Nodes needed to keep ``quantile`` of utilisation ≤ ``target`` over the forecast."""
    if not 0 < target <= 1:
        raise ValueError(f"target utilisation must be in (0, 1], got {target}")
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    s = forecast.series
    paths = {"point": forecast.result.mean}
    paths |= {f"hi{lv}": hi for lv, (_lo, hi) in sorted(forecast.result.bounds.items())}
    node_cap = s.node_capacity
    if node_cap is None and s.capacity and s.nodes:
        node_cap = s.capacity / s.nodes
    demand, factor, nodes = {}, {}, {}
    for key, path in paths.items():
        q = float(np.quantile(path, quantile))
        demand[key] = q
        factor[key] = q / (target * s.capacity) if s.capacity else None
        nodes[key] = nodes_for(path, node_cap, target, quantile) if node_cap else None
    return CapacityNeed(target, quantile, demand, factor, nodes, s.nodes)
