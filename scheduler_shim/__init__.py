"""The kube-scheduler extender: endpoints, node-state cache, score combination, fallback,
shadow mode, rollout and metrics (see README.md)."""

from scheduler_shim.config import ShimConfig, load_config
from scheduler_shim.service import Extender

__all__ = ["Extender", "ShimConfig", "load_config"]
