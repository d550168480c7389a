"""The remediation service's errors, each mapped to an HTTP status once (in ``app``).

- :class:`BadPayloadError` → 400 with the reason (names the field: ``alerts[2].startsAt``);
- :class:`PrometheusUnavailableError` (from :mod:`hydatis.prometheus`) and
  :class:`KubeApiError` → 503, so Alertmanager delivers the notification again later;
  nothing was recorded as done, so the retry is acted on.
"""

from __future__ import annotations

from hydatis.errors import HydatisError
from hydatis.prometheus import PrometheusUnavailableError

__all__ = [
    "BadPayloadError",
    "KubeApiError",
    "PrometheusUnavailableError",
    "RegistryError",
    "RemediationError",
]


class RemediationError(HydatisError):
    """Base class of the remediation service's deliberate errors."""


class BadPayloadError(RemediationError):
    """The webhook body is not an Alertmanager (version 4) notification.

    Attributes:
        where: the offending field as a path (``alerts[0].labels.alertname``).
    """

    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason}")


class KubeApiError(RemediationError):
    """The Kubernetes API failed or could not be reached (after the client's retries).

    Attributes:
        status: the HTTP status, or None when no answer came.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class RegistryError(RemediationError):
    """The model registry (MLflow) could not be read or changed."""
