"""Where a predictor's model comes from: a local directory or a ``models:/`` URI.

The registry layout is the one ``components/register`` writes (serving does not import it:
the two meet only through MLflow): every version is an MLflow pyfunc whose ``model_dir``
artifact is the model's own ``save()`` directory. A source is therefore one of

- a native model directory (what ``save()`` wrote; what a cluster mounts at /mnt/models
  when the artifacts were copied out of the pyfunc),
- an MLflow pyfunc directory (has an ``MLmodel`` file; its ``model_dir`` artifact is used),
- ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``, resolved with MLflow's own API and
  downloaded (the pyfunc is never unpickled: its class lives in ``components``).

MLflow is imported only when a registry is actually read (it is slow to import).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hydatis.config import work_dir
from serving.errors import ModelLoadError, RegistryError

__all__ = [
    "CHAMPION",
    "KINDS",
    "MODEL_NAMES",
    "MODULES",
    "ModelRef",
    "default_tracking_uri",
    "download_version",
    "model_dir_of",
    "parse_models_uri",
    "registry_uri_for",
    "resolve_ref",
]

log = logging.getLogger(__name__)

#: Model kind -> registered model name (the same names ``components/register`` uses).
MODEL_NAMES: dict[str, str] = {
    "load": "hydatis-load-predictor",
    "anomaly": "hydatis-anomaly-detector",
    "placement": "hydatis-placement-agent",
}
KINDS: tuple[str, ...] = tuple(MODEL_NAMES)
#: Model kind -> the module whose ``__main__`` serves it.
MODULES: dict[str, str] = {
    "load": "serving.load_predictor",
    "anomaly": "serving.anomaly_detector",
    "placement": "serving.placement_agent",
}
CHAMPION = "champion"
_MLMODEL = "MLmodel"
_ARTIFACT = "model_dir"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")


@dataclass(frozen=True)
class ModelRef:
    """One registered model version.

    Attributes:
        name: the registered model's name.
        version: its version number (a string, as MLflow gives it).
        run_id: the training run that logged it.
        alias: the alias it was found by, or None when asked for by version.
        source: where MLflow keeps its artifacts (provenance only).
    """

    name: str
    version: str
    run_id: str
    alias: str | None
    source: str

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``: this exact version, whatever the aliases do later."""
        return f"models:/{self.name}/{self.version}"


def default_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else the project's local SQLite store.

    The same rule as ``components/register`` (``<work dir>/mlflow/mlflow.db``), kept here
    because serving may not import components; unlike registration it creates nothing.
    """
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(work_dir() / 'mlflow' / 'mlflow.db').resolve()}"


def registry_uri_for(tracking_uri: str) -> str:
    """The registry URI that goes with a tracking URI (``MLFLOW_REGISTRY_URI`` wins)."""
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri


def parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """Split ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION`` into (name, alias, version).

    Raises:
        ModelLoadError: any other form (stages are not used in this project).
    """
    match = _URI.match(uri.strip())
    if match is None:
        raise ModelLoadError(uri, "expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return match["name"], match["alias"], match["version"]


def _client(tracking_uri: str) -> Any:
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        if not db.is_file():  # MLflow would silently create an empty registry
            raise RegistryError(f"no MLflow registry at {db} (train and register a model first)")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri, registry_uri_for(tracking_uri))


def resolve_ref(
    name: str,
    *,
    alias: str | None = None,
    version: str | None = None,
    tracking_uri: str | None = None,
) -> ModelRef:
    """Find one version of a registered model, by alias or by number.

    Raises:
        RegistryError: the registry cannot be read, or has no such model/alias/version.
    """
    from mlflow.exceptions import MlflowException

    uri = default_tracking_uri(tracking_uri)
    client = _client(uri)
    try:
        if alias is not None:
            mv = client.get_model_version_by_alias(name, alias)
        elif version is not None:
            mv = client.get_model_version(name, str(version))
        else:
            raise ValueError("give an alias or a version")
    except MlflowException as exc:
        what = f"alias {alias!r}" if alias is not None else f"version {version}"
        raise RegistryError(f"{name} {what} not found in {uri}: {exc.message}") from exc
    return ModelRef(name, str(mv.version), str(mv.run_id or ""), alias, str(mv.source or ""))


def download_version(ref: ModelRef, dst: Path, *, tracking_uri: str | None = None) -> Path:
    """Download the version's pyfunc directory into ``dst`` and return its ``model_dir``.

    Raises:
        ModelLoadError: the download failed or the pyfunc has no ``model_dir`` artifact.
    """
    import mlflow.artifacts

    uri = default_tracking_uri(tracking_uri)
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=ref.uri,
            dst_path=str(dst),
            tracking_uri=uri,
            registry_uri=registry_uri_for(uri),
        )
    except Exception as exc:  # MLflow raises many kinds; the source names the model
        raise ModelLoadError(ref.uri, f"download failed: {exc}") from exc
    return model_dir_of(Path(local), source=ref.uri)


def model_dir_of(path: Path, *, source: str | None = None) -> Path:
    """The model's own ``save()`` directory inside ``path``.

    ``path`` is either that directory already, or an MLflow pyfunc directory (an
    ``MLmodel`` file whose ``python_function`` flavour lists a ``model_dir`` artifact).

    Raises:
        ModelLoadError: ``path`` is not a directory, or the pyfunc lacks the artifact.
    """
    where = source or str(path)
    if not path.is_dir():
        raise ModelLoadError(where, f"{path} is not a directory")
    mlmodel = path / _MLMODEL
    if not mlmodel.is_file():
        return path
    try:
        meta = yaml.safe_load(mlmodel.read_text()) or {}
        rel = meta["flavors"]["python_function"]["artifacts"][_ARTIFACT]["path"]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            where, f"{mlmodel} is not a HYDATIS pyfunc (no '{_ARTIFACT}' artifact)"
        ) from exc
    model_dir = path / rel
    if not model_dir.is_dir():
        raise ModelLoadError(where, f"the pyfunc's {_ARTIFACT} artifact {model_dir} is missing")
    return model_dir
