"""Alertmanager's webhook notification (version 4), parsed and checked.

Alertmanager POSTs ``{"version": "4", "status", "receiver", "groupKey", "groupLabels",
"commonLabels", "commonAnnotations", "externalURL", "truncatedAlerts", "alerts": [...]}``;
each alert has ``status`` (firing | resolved), ``labels``, ``annotations``, ``startsAt``,
``endsAt``, ``generatorURL`` and ``fingerprint``. Anything else is rejected with the field
and the reason, never half-handled.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitoring.remediation.errors import BadPayloadError

__all__ = ["Alert", "Notification", "parse_notification", "parse_time"]

_STATUSES = ("firing", "resolved")


@dataclass(frozen=True)
class Alert:
    """One alert of a notification.

    Attributes:
        name: the ``alertname`` label.
        status: ``firing`` or ``resolved``.
        labels, annotations: as sent.
        starts_at: when the alert started firing (unix seconds).
        starts_at_text: ``startsAt`` exactly as sent (part of the idempotency key).
        fingerprint: Alertmanager's fingerprint of the label set (derived from the labels
            when an old Alertmanager sends none).
    """

    name: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    starts_at_text: str
    fingerprint: str
    generator_url: str = ""

    @property
    def key(self) -> str:
        """What makes a delivery the same incident: fingerprint, start and status.

        Alertmanager re-sends a firing alert every ``repeat_interval`` with the same
        fingerprint and ``startsAt``; a new incident of the same alert starts later.
        """
        return f"{self.fingerprint}/{self.starts_at_text}/{self.status}"


@dataclass(frozen=True)
class Notification:
    """A parsed notification: its alerts and the group it was sent for."""

    alerts: list[Alert]
    receiver: str = ""
    group_key: str = ""
    external_url: str = ""
    common_labels: dict[str, str] = field(default_factory=dict)


def parse_time(value: Any, where: str) -> float:
    """An RFC 3339 time (Go's nanoseconds allowed) as unix seconds.

    Raises:
        BadPayloadError: not such a time (names ``where``).
    """
    if not isinstance(value, str) or not value:
        raise BadPayloadError(where, f"expected an RFC 3339 time string, got {value!r}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Go writes up to nanoseconds; Python parses up to microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}" if digits else f"{head}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadPayloadError(where, f"not an RFC 3339 time: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadPayloadError(where, f"expected an object of strings, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise BadPayloadError(f"{where}.{key}", f"expected a string, got {item!r}")
    return dict(value)


def _fingerprint(labels: dict[str, str]) -> str:
    text = "\xff".join(f"{k}\xff{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _alert(raw: Any, where: str) -> Alert:
    if not isinstance(raw, dict):
        raise BadPayloadError(where, f"expected an object, got {type(raw).__name__}")
    status = raw.get("status")
    if status not in _STATUSES:
        raise BadPayloadError(f"{where}.status", f"expected 'firing' or 'resolved', got {status!r}")
    labels = _str_map(raw.get("labels"), f"{where}.labels")
    name = labels.get("alertname")
    if not name:
        raise BadPayloadError(f"{where}.labels.alertname", "missing")
    starts_text = raw.get("startsAt")
    starts = parse_time(starts_text, f"{where}.startsAt")
    fingerprint = raw.get("fingerprint") or _fingerprint(labels)
    if not isinstance(fingerprint, str):
        raise BadPayloadError(f"{where}.fingerprint", f"expected a string, got {fingerprint!r}")
    url = raw.get("generatorURL") or ""
    return Alert(
        name=name,
        status=status,
        labels=labels,
        annotations=_str_map(raw.get("annotations"), f"{where}.annotations"),
        starts_at=starts,
        starts_at_text=str(starts_text),
        fingerprint=fingerprint,
        generator_url=url if isinstance(url, str) else "",
    )


def parse_notification(body: Any) -> Notification:
    """Check and parse a decoded webhook body.

    Raises:
        BadPayloadError: not an Alertmanager v4 notification (names the field).
    """
    if not isinstance(body, dict):
        raise BadPayloadError("body", f"expected a JSON object, got {type(body).__name__}")
    version = body.get("version")
    if version is not None and str(version) != "4":
        raise BadPayloadError(
            "version", f"expected Alertmanager webhook version '4', got {version!r}"
        )
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise BadPayloadError("alerts", "missing or not a list")
    if not alerts:
        raise BadPayloadError("alerts", "empty: a notification carries at least one alert")
    parsed = [_alert(a, f"alerts[{i}]") for i, a in enumerate(alerts)]
    return Notification(
        alerts=parsed,
        receiver=str(body.get("receiver") or ""),
        group_key=str(body.get("groupKey") or ""),
        external_url=str(body.get("externalURL") or ""),
        common_labels=_str_map(body.get("commonLabels"), "commonLabels"),
    )
