"""The random baseline: a node drawn uniformly among all nodes that fit the pod."""

from __future__ import annotations

import numpy as np

from simulator.types import ClusterView, PodSpec, Scheduler, fit_filter

__all__ = ["RandomScheduler"]


class RandomScheduler(Scheduler):
    """Uniform choice among every node passing the NodeResourcesFit filter.

    Unlike :class:`~simulator.types.FrameworkScheduler` it samples no subset: every
    feasible node is equally likely. It has no parameters; the draw uses ``self.rng``,
    seeded by :meth:`reset`.
    """

    name = "random"

    def select(self, pod: PodSpec, view: ClusterView) -> int | None:
        """Index of a uniformly drawn feasible node, or None when no node fits."""
        feasible = np.flatnonzero(fit_filter(pod, view))
        if feasible.size == 0:
            return None
        return int(feasible[self.rng.integers(feasible.size)])
