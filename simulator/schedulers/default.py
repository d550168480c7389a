"""kube-scheduler v1.30's default resource scoring: NodeResourcesFit (LeastAllocated) plus
NodeResourcesBalancedAllocation, weight 1 each, after the NodeResourcesFit filter.

Checked against kubernetes/kubernetes v1.30,
pkg/scheduler/framework/plugins/noderesources/{least_allocated,balanced_allocation,
resource_allocation,fit}.go.
"""

from __future__ import annotations

import numpy as np

from simulator.schedulers._common import MAX_NODE_SCORE, free_share_score
from simulator.types import ClusterView, FrameworkScheduler, PodSpec

__all__ = [
    "DEFAULT_BALANCED_WEIGHT",
    "DEFAULT_CPU_WEIGHT",
    "DEFAULT_FIT_WEIGHT",
    "DEFAULT_MEM_WEIGHT",
    "DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE",
    "DefaultScheduler",
    "balanced_allocation_score",
    "least_allocated_score",
]

DEFAULT_CPU_WEIGHT = 1  # NodeResourcesFitArgs.ScoringStrategy.Resources, cpu
DEFAULT_MEM_WEIGHT = 1  # ... memory
DEFAULT_FIT_WEIGHT = 1  # plugin weight of NodeResourcesFit in the default profile
DEFAULT_BALANCED_WEIGHT = 1  # plugin weight of NodeResourcesBalancedAllocation
DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE = 0  # 0 = kube-scheduler's adaptive percentage


def least_allocated_score(
    req_cpu: np.ndarray,
    req_mem: np.ndarray,
    alloc_cpu: np.ndarray,
    alloc_mem: np.ndarray,
    w_cpu: int = DEFAULT_CPU_WEIGHT,
    w_mem: int = DEFAULT_MEM_WEIGHT,
) -> np.ndarray:
    """NodeResourcesFit's LeastAllocated score, integer arithmetic as upstream.

    ``s_r = (alloc_r − req_r) * 100 // alloc_r`` (0 when ``req_r > alloc_r``), then
    ``score = (Σ_r s_r · w_r) // Σ_r w_r`` over the resources the node has
    (``alloc_r > 0``); 0 when it has none.

    Args:
        req_cpu, req_mem: the node's non-zero-defaulted requested sum *including* the
            incoming pod (``nz_req_* + pod.nz_*_req``), millicores and bytes (ints).
        alloc_cpu, alloc_mem: allocatable (ints).
        w_cpu, w_mem: resource weights.

    Returns:
        Integer scores in [0, 100].
    """
    req_cpu, req_mem = np.asarray(req_cpu, np.int64), np.asarray(req_mem, np.int64)
    alloc_cpu, alloc_mem = np.asarray(alloc_cpu, np.int64), np.asarray(alloc_mem, np.int64)
    if alloc_cpu.all() and alloc_mem.all():
        num = free_share_score(req_cpu, alloc_cpu) * w_cpu
        return (num + free_share_score(req_mem, alloc_mem) * w_mem) // (w_cpu + w_mem)
    has_cpu, has_mem = alloc_cpu != 0, alloc_mem != 0
    num = free_share_score(req_cpu, alloc_cpu) * w_cpu * has_cpu
    num = num + free_share_score(req_mem, alloc_mem) * w_mem * has_mem
    den = w_cpu * has_cpu + w_mem * has_mem
    return np.where(den == 0, 0, num // np.where(den == 0, 1, den))


def balanced_allocation_score(
    req_cpu: np.ndarray, req_mem: np.ndarray, alloc_cpu: np.ndarray, alloc_mem: np.ndarray
) -> np.ndarray:
    """NodeResourcesBalancedAllocation's score (v1.30: no skip for a zero-request pod).

    ``f_r = min(req_r / alloc_r, 1)`` over the resources with ``alloc_r > 0``;
    ``std = |f_cpu − f_mem| / 2`` with two of them (0 with one or none);
    ``score = int((1 − std) * 100)`` (truncated).

    Args:
        req_cpu, req_mem: the node's *raw* requested sum including the incoming pod.
        alloc_cpu, alloc_mem: allocatable.

    Returns:
        Integer scores in [50, 100].
    """
    alloc_cpu, alloc_mem = np.asarray(alloc_cpu), np.asarray(alloc_mem)
    if alloc_cpu.all() and alloc_mem.all():
        f_cpu = np.minimum(req_cpu / alloc_cpu, 1.0)
        f_mem = np.minimum(req_mem / alloc_mem, 1.0)
        return ((1 - np.abs((f_cpu - f_mem) / 2)) * MAX_NODE_SCORE).astype(np.int64)
    has_cpu, has_mem = alloc_cpu != 0, alloc_mem != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        f_cpu = np.minimum(np.asarray(req_cpu, np.float64) / alloc_cpu, 1.0)
        f_mem = np.minimum(np.asarray(req_mem, np.float64) / alloc_mem, 1.0)
    std = np.where(has_cpu & has_mem, np.abs((f_cpu - f_mem) / 2), 0.0)
    return np.trunc((1 - std) * MAX_NODE_SCORE).astype(np.int64)


class DefaultScheduler(FrameworkScheduler):
    """kube-scheduler's default profile, reduced to its resource plugins.

    Filter: NodeResourcesFit (pods, CPU, memory). Score: ``fit_weight · LeastAllocated +
    balanced_weight · BalancedAllocation``. The other default score plugins
    (TaintToleration, NodeAffinity, PodTopologySpread, InterPodAffinity, ImageLocality)
    score every node alike in this simulator and are left out.

    Args:
        cpu_weight, mem_weight: LeastAllocated's resource weights.
        fit_weight, balanced_weight: the two plugins' weights.
        percentage_of_nodes_to_score: kube-scheduler's percentageOfNodesToScore.
    """

    name = "default"

    def __init__(
        self,
        *,
        cpu_weight: int = DEFAULT_CPU_WEIGHT,
        mem_weight: int = DEFAULT_MEM_WEIGHT,
        fit_weight: int = DEFAULT_FIT_WEIGHT,
        balanced_weight: int = DEFAULT_BALANCED_WEIGHT,
        percentage_of_nodes_to_score: int = DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE,
    ) -> None:
        self.cpu_weight = cpu_weight
        self.mem_weight = mem_weight
        self.fit_weight = fit_weight
        self.balanced_weight = balanced_weight
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score

    def score(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        """LeastAllocated (non-zero requests) + BalancedAllocation (raw requests)."""
        alloc_cpu, alloc_mem = view.alloc_cpu[nodes], view.alloc_mem[nodes]
        least = least_allocated_score(
            view.nz_req_cpu[nodes] + pod.nz_cpu_req,
            view.nz_req_mem[nodes] + pod.nz_mem_req,
            alloc_cpu,
            alloc_mem,
            self.cpu_weight,
            self.mem_weight,
        )
        balanced = balanced_allocation_score(
            view.req_cpu[nodes] + pod.cpu_req,
            view.req_mem[nodes] + pod.mem_req,
            alloc_cpu,
            alloc_mem,
        )
        return self.fit_weight * least + self.balanced_weight * balanced
