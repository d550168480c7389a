"""Prometheus recording and alerting rules for the incidents HYDATIS knows, defined once
(:mod:`monitoring.alerts.spec`) and rendered for Prometheus and Alertmanager
(:mod:`monitoring.alerts.render`)."""

from monitoring.alerts.render import alertmanager_config, rule_groups, write_all
from monitoring.alerts.spec import ACTIONS, ALERT_BY_NAME, ALERTS, AlertRule, runbook_path

__all__ = [
    "ACTIONS",
    "ALERTS",
    "ALERT_BY_NAME",
    "AlertRule",
    "alertmanager_config",
    "rule_groups",
    "runbook_path",
    "write_all",
]
