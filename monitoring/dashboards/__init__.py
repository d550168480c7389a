"""Three Grafana dashboards as code (grafana-foundation-sdk): business, ML performance and
scheduler operations, written as JSON for import and as Kubernetes ConfigMaps for
Grafana's provisioning.

``python -m monitoring.dashboards`` writes ``infra/grafana/`` (a test checks the files
there equal what this code builds). Every panel's queries are listed by
:func:`panel_targets`, so a test can run each against a Prometheus that holds a replay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitoring.dashboards import business, ml_performance, scheduler_operations
from monitoring.dashboards._panels import SOURCES, Dash, build

__all__ = [
    "DASHBOARDS",
    "DATASOURCE_UID",
    "NAMESPACE",
    "SOURCES",
    "PanelTarget",
    "build_all",
    "dashboard_configmap",
    "panel_targets",
    "provisioning_configmap",
    "render_infra",
    "series_read",
    "variable_queries",
    "write_infra",
]

#: name -> the function that builds its spec; the JSON file is ``<name>.json``.
DASHBOARDS: dict[str, Callable[[], Dash]] = {
    "business": business.dashboard,
    "ml-performance": ml_performance.dashboard,
    "scheduler-operations": scheduler_operations.dashboard,
}
NAMESPACE = "hydatis-system"
DATASOURCE_UID = "prometheus"
#: The Grafana sidecar (grafana helm chart, kube-prometheus-stack) loads ConfigMaps with
#: this label; plain provisioning mounts the ConfigMap at the provider's path instead.
SIDECAR_LABEL = "grafana_dashboard"
DASHBOARD_DIR = "/var/lib/grafana/dashboards/hydatis"


def build_all() -> dict[str, dict[str, Any]]:
    """name -> Grafana JSON model, for every dashboard."""
    return {name: build(make()) for name, make in DASHBOARDS.items()}


@dataclass(frozen=True)
class PanelTarget:
    """One query of one panel, as a test or a linter needs it."""

    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool
    source: str


def panel_targets() -> list[PanelTarget]:
    """Every panel's every query, with where its data comes from."""
    out = []
    for name, make in DASHBOARDS.items():
        for panel in make().panels():
            for i, target in enumerate(panel.targets):
                out.append(
                    PanelTarget(
                        name,
                        panel.title,
                        chr(ord("A") + i),
                        target.expr,
                        panel.instant,
                        panel.source,
                    )
                )
    return out


#: Prefixes of the series names dashboards read (PromQL functions and keywords have none).
SERIES_PREFIXES = ("hydatis_", "node_", "kube_", "container_", "scheduler_", "request_", "up")


def series_read(expr: str) -> set[str]:
    """The series names a PromQL query reads: recording-rule names (with ``:``) and names
    with a known exporter prefix, label matchers, strings and ranges left out."""
    bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]', " ", expr)
    tokens = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return {t for t in tokens if ":" in t or t.startswith(SERIES_PREFIXES)}


def variable_queries() -> list[tuple[str, str, str]]:
    """``(dashboard, variable, label_values(...) query)`` of every query variable."""
    return [
        (name, var, query)
        for name, make in DASHBOARDS.items()
        for var, (_, query) in make().variables.items()
    ]


def _json(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def dashboard_configmap(models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ConfigMap holding every dashboard's JSON (one key per file)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "hydatis-grafana-dashboards",
            "namespace": NAMESPACE,
            "labels": {SIDECAR_LABEL: "1", "app.kubernetes.io/part-of": "hydatis-ml-scheduler"},
            "annotations": {"grafana_folder": "HYDATIS"},
        },
        "data": {f"{name}.json": _json(model) for name, model in models.items()},
    }


def provisioning_configmap() -> dict[str, Any]:
    """The ConfigMap with Grafana's provisioning files: the dashboard provider (reading
    the dashboards ConfigMap mounted at :data:`DASHBOARD_DIR`) and the Prometheus data
    source the dashboards' ``datasource`` variable defaults to."""
    providers = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "hydatis",
                "folder": "HYDATIS",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": DASHBOARD_DIR},
            }
        ],
    }
    datasources = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": "http://prometheus-operated.monitoring.svc:9090",
                "isDefault": True,
                "jsonData": {"timeInterval": "30s"},
            }
        ],
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "hydatis-grafana-provisioning",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "hydatis-ml-scheduler"},
        },
        "data": {
            "dashboards.yaml": yaml.safe_dump(providers, sort_keys=False),
            "datasources.yaml": yaml.safe_dump(datasources, sort_keys=False),
        },
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (dashboard JSON, provisioning files) as readable ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def _yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000)


_HEADER = (
    "# Rendered by `python -m monitoring.dashboards`; edit monitoring/dashboards/, not this.\n"
)


def render_infra() -> dict[str, str]:
    """Relative path under ``infra/grafana/`` -> text, for every generated file."""
    models = build_all()
    files = {f"dashboards/{name}.json": _json(model) for name, model in models.items()}
    files["dashboards-configmap.yaml"] = _HEADER + _yaml(dashboard_configmap(models))
    files["provisioning-configmap.yaml"] = _HEADER + _yaml(provisioning_configmap())
    files["kustomization.yaml"] = _HEADER + _yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["dashboards-configmap.yaml", "provisioning-configmap.yaml"],
        }
    )
    return files


def write_infra(folder: str | Path) -> list[Path]:
    """Write :func:`render_infra` under ``folder`` (e.g. ``infra/grafana``)."""
    root = Path(folder)
    written = []
    for rel, text in render_infra().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
