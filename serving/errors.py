"""The serving package's typed errors (no kserve import, so launchers can catch them cheaply).

The one error a request can cause, :class:`serving._base.InputError`, lives beside the
predictors because it must also be kserve's ``InvalidInput`` (which the server maps to
HTTP 400); everything here happens before or around a server, never inside a request.
"""

from __future__ import annotations

from hydatis.errors import HydatisError

__all__ = ["ModelLoadError", "RegistryError", "ServerStartError", "ServingError"]


class ServingError(HydatisError):
    """Base class of the serving package's deliberate errors."""


class ModelLoadError(ServingError):
    """A predictor could not load its model.

    Attributes:
        source: the model source as given (a directory or a ``models:/`` URI).
        reason: what went wrong, for people.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source, self.reason = str(source), reason
        super().__init__(f"cannot load model from {self.source!r}: {reason}")


class RegistryError(ServingError):
    """The MLflow registry has no such model, alias or version, or cannot be read."""


class ServerStartError(ServingError):
    """A model server process exited or did not become ready in time."""
