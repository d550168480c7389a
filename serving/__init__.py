"""KServe model servers for the three HYDATIS models, their local launcher and manifests.

- :mod:`serving.load_predictor`, :mod:`serving.anomaly_detector`,
  :mod:`serving.placement_agent`: one ``kserve.Model`` each; ``python -m`` runs a server.
- :mod:`serving.launch`: start the three locally on loopback ports (a context manager).
- :mod:`serving.manifests`: render their InferenceServices from the registry's champions.

Only the light parts are imported here (no kserve, torch or xgboost): launching and
rendering run in processes that never serve.
"""

from serving._registry import MODEL_NAMES, ModelRef, default_tracking_uri
from serving.errors import ModelLoadError, RegistryError, ServerStartError, ServingError
from serving.launch import (
    DEFAULT_PORTS,
    ModelServers,
    RunningServer,
    dir_sources,
    registry_sources,
    serve_models,
)

__all__ = [
    "DEFAULT_PORTS",
    "MODEL_NAMES",
    "ModelLoadError",
    "ModelRef",
    "ModelServers",
    "RegistryError",
    "RunningServer",
    "ServerStartError",
    "ServingError",
    "default_tracking_uri",
    "dir_sources",
    "registry_sources",
    "serve_models",
]
