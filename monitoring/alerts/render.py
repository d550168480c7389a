"""Render the rules (:mod:`monitoring.alerts.spec`) and the Alertmanager configuration as
the YAML files Prometheus and Alertmanager load, and as the ConfigMaps a cluster mounts.

``python -m monitoring.alerts render`` rewrites the checked-in files: the plain files in
``monitoring/alerts/rules/`` (what ``promtool`` and ``amtool`` check, and what the rule
unit tests load) and the same content as ConfigMaps in ``infra/prometheus/`` (applied with
``kubectl apply -k infra/prometheus``). A test fails when any of them differs from what
this module renders, so they never drift from the definitions. Tests render variants (a
short ``for:``, a loopback webhook URL, fast grouping) without touching the files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from monitoring.alerts.spec import ALERTS, RECORDING_RULES, AlertRule, RecordingRule, runbook_path

__all__ = [
    "ALERTMANAGER_CONFIGMAP_FILE",
    "ALERTMANAGER_FILE",
    "DEFAULT_WEBHOOK_URL",
    "INFRA_DIR",
    "RULES_CONFIGMAP_FILE",
    "RULES_DIR",
    "RULES_FILE",
    "alertmanager_config",
    "configmap",
    "dump_yaml",
    "rendered_files",
    "rule_groups",
    "write_all",
]

RULES_DIR = Path("monitoring") / "alerts" / "rules"
RULES_FILE = RULES_DIR / "hydatis-rules.yaml"
ALERTMANAGER_FILE = RULES_DIR / "alertmanager.yml"
INFRA_DIR = Path("infra") / "prometheus"
RULES_CONFIGMAP_FILE = INFRA_DIR / "prometheus-rules.yaml"
ALERTMANAGER_CONFIGMAP_FILE = INFRA_DIR / "alertmanager-config.yaml"
NAMESPACE = "hydatis-system"
#: The remediation service's webhook inside the cluster (infra/prometheus/remediation.yaml).
DEFAULT_WEBHOOK_URL = "http://hydatis-remediation.hydatis-system.svc:9095/v1/alerts"
HEADER = (
    "# Rendered by `python -m monitoring.alerts render` from monitoring/alerts/spec.py;\n"
    "# edit the spec, not this file (a test compares the two).\n"
)


class _Dumper(yaml.SafeDumper):
    """Block style, long PromQL on one line, multi-line text as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any) -> str:
    """YAML as the checked-in files are written (stable key order, wide lines)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def _window(expr: str, rate_window: str | None) -> str:
    return expr.replace("[5m]", f"[{rate_window}]") if rate_window else expr


def _record(rule: RecordingRule, rate_window: str | None) -> dict[str, Any]:
    return {"record": rule.record, "expr": _window(rule.expr, rate_window)}


def _alert(
    rule: AlertRule, for_: str | None, runbook_base: str, rate_window: str | None
) -> dict[str, Any]:
    labels = {"severity": rule.severity, "remediation": rule.action, **rule.labels}
    out: dict[str, Any] = {"alert": rule.name, "expr": _window(rule.expr, rate_window)}
    duration = for_ if for_ is not None else rule.for_
    if duration not in ("0s", "0m", "0"):
        out["for"] = duration
    out["labels"] = labels
    out["annotations"] = {
        "summary": rule.summary,
        "description": rule.description,
        "runbook_url": f"{runbook_base}{runbook_path(rule)}",
    }
    return out


def rule_groups(
    *,
    for_: str | None = None,
    interval: str | None = None,
    runbook_base: str = "",
    alerts: Iterable[AlertRule] = ALERTS,
    rate_window: str | None = None,
) -> dict[str, Any]:
    """The rule file's content.

    Args:
        for_: replace every alert's ``for:`` (tests use a few seconds); None keeps each
            alert's own.
        interval: evaluation interval of both groups (None: Prometheus's global one).
        runbook_base: prefix of the ``runbook_url`` annotations (e.g. the repository's
            web URL ending in ``/blob/main/``); the default leaves the repository path.
        alerts: the alerts to include (default: all).
        rate_window: replace the 5-minute ``rate()`` windows (tests that scrape a new
            series for seconds: ``rate`` divides by the whole window, so a series younger
            than it reads low).
    """
    recording: dict[str, Any] = {
        "name": "hydatis.recording",
        "rules": [_record(r, rate_window) for r in RECORDING_RULES],
    }
    alerting: dict[str, Any] = {
        "name": "hydatis.alerts",
        "rules": [_alert(a, for_, runbook_base, rate_window) for a in alerts],
    }
    if interval:
        recording = {"name": recording["name"], "interval": interval, "rules": recording["rules"]}
        alerting = {"name": alerting["name"], "interval": interval, "rules": alerting["rules"]}
    return {"groups": [recording, alerting]}


def alertmanager_config(
    webhook_url: str = DEFAULT_WEBHOOK_URL,
    *,
    group_wait: str = "30s",
    group_interval: str = "5m",
    repeat_interval: str = "4h",
) -> dict[str, Any]:
    """Alertmanager's configuration: every HYDATIS alert goes to the remediation webhook
    (other alerts, in a shared Alertmanager, to a receiver that does nothing).

    Alerts are grouped per alert and per object (node, model, drift kind), so the service
    receives one incident per notification; resolved notifications are sent too (the
    service records them). Alertmanager re-sends a firing group every
    ``repeat_interval``: the service recognises those repeats (fingerprint + startsAt) and
    does not act twice.
    """
    return {
        "route": {
            "receiver": "none",
            "group_by": ["alertname", "node", "model", "kind", "resource"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
            "routes": [
                {
                    "receiver": "hydatis-remediation",
                    "matchers": ['alertname=~"Hydatis.*"'],
                }
            ],
        },
        "receivers": [
            {"name": "none"},
            {
                "name": "hydatis-remediation",
                "webhook_configs": [
                    {"url": webhook_url, "send_resolved": True, "max_alerts": 0},
                ],
            },
        ],
    }


def configmap(name: str, key: str, text: str, why: str) -> dict[str, Any]:
    """A ConfigMap holding one file."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/component": "alerting",
            },
            "annotations": {"hydatis.io/purpose": why},
        },
        "data": {key: text},
    }


def rendered_files() -> dict[Path, str]:
    """Every checked-in file this module renders, path (from the repository root) → text."""
    rules = dump_yaml(rule_groups())
    am = dump_yaml(alertmanager_config())
    return {
        RULES_FILE: HEADER + rules,
        ALERTMANAGER_FILE: HEADER + am,
        RULES_CONFIGMAP_FILE: HEADER
        + dump_yaml(
            configmap(
                "hydatis-prometheus-rules",
                RULES_FILE.name,
                rules,
                "rule file for a Prometheus that loads rules from this ConfigMap",
            )
        ),
        ALERTMANAGER_CONFIGMAP_FILE: HEADER
        + dump_yaml(
            configmap(
                "hydatis-alertmanager-config",
                ALERTMANAGER_FILE.name,
                am,
                "Alertmanager configuration: every Hydatis alert to the remediation webhook",
            )
        ),
    }


def write_all(root: str | Path = ".") -> list[Path]:
    """Rewrite the checked-in rule files, Alertmanager configuration and their ConfigMaps
    under ``root``."""
    written = []
    for rel, text in rendered_files().items():
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
