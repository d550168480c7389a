"""Pipeline step: deploy the registry's champions (render, apply on a cluster, or restart
the local model servers)."""

from components.deploy.core import (
    TARGETS,
    DeployError,
    apply_inference_services,
    champion_refs_available,
    deploy,
    local_state_path,
    restart_local,
    stop_local,
)

__all__ = [
    "TARGETS",
    "DeployError",
    "apply_inference_services",
    "champion_refs_available",
    "deploy",
    "local_state_path",
    "restart_local",
    "stop_local",
]
