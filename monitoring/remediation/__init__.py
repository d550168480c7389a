"""The remediation service: Alertmanager's webhook mapping each HYDATIS alert to a safe,
audited, idempotent, rate-limited action (see README.md)."""

from monitoring.remediation.app import build_app, build_remediator
from monitoring.remediation.config import RemediationConfig, load_config
from monitoring.remediation.errors import BadPayloadError, KubeApiError, RemediationError
from monitoring.remediation.payload import Alert, Notification, parse_notification
from monitoring.remediation.service import Decision, Remediator

__all__ = [
    "Alert",
    "BadPayloadError",
    "Decision",
    "KubeApiError",
    "Notification",
    "RemediationConfig",
    "RemediationError",
    "Remediator",
    "build_app",
    "build_remediator",
    "load_config",
    "parse_notification",
]
