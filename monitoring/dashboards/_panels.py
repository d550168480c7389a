"""Panel specifications and the one place they become grafana-foundation-sdk builders.

Why a spec layer: every panel states where its data comes from (``source``), so a test
can run each query against a Prometheus that holds that source and know which panels it
must find data for; the SDK builds the JSON Grafana imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

__all__ = [
    "DATASOURCE",
    "SOURCES",
    "Dash",
    "Panel",
    "Row",
    "Target",
    "build",
]

#: Every panel reads the dashboard's ``datasource`` variable (a Prometheus).
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")

Source = Literal["cluster", "replay", "business", "services"]
#: Where a panel's series come from:
#: ``cluster``: the raw node_exporter / kube-state-metrics / kube-scheduler names a cluster
#: (or a replay's export) has; ``replay``: the ``hydatis_sim_`` series of a simulator
#: comparison; ``business``: ``hydatis report business``'s metrics; ``services``: the
#: extender's and model servers' own ``/metrics``.
SOURCES: tuple[str, ...] = ("cluster", "replay", "business", "services")


@dataclass(frozen=True)
class Target:
    """One query: PromQL and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """One panel.

    Attributes:
        title: the title.
        targets: the queries.
        source: where the series come from (:data:`SOURCES`).
        kind: ``timeseries`` (a range query), ``stat``, ``bargauge`` or ``table``
            (instant queries).
        unit: a Grafana unit id (``percentunit``, ``s``, ``short``, ``currencyUSD``...).
        description: what it shows and why it matters (shown in Grafana's info tooltip).
        width: grid columns (of 24).
        height: grid rows.
    """

    title: str
    targets: tuple[Target, ...]
    source: Source
    kind: Literal["timeseries", "stat", "bargauge", "table"] = "timeseries"
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    decimals: int | None = None

    @property
    def instant(self) -> bool:
        """Whether Grafana runs the queries as instant queries."""
        return self.kind != "timeseries"


@dataclass(frozen=True)
class Row:
    """A titled row of panels."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dash:
    """A dashboard: uid, title, rows, and the label variables it offers.

    Attributes:
        variables: name -> (label, PromQL ``label_values(...)`` query); each is a
            multi-select with "All" (``.*``), used as ``=~"$name"`` in the queries.
    """

    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = ("hydatis",)
    time_from: str = "now-24h"
    variables: dict[str, tuple[str, str]] = field(default_factory=dict)

    def panels(self) -> list[Panel]:
        """Every panel, in order."""
        return [p for row in self.rows for p in row.panels]


def _query(target: Target, ref: str, instant: bool) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(target.expr).ref_id(ref).datasource(DATASOURCE)
    q = q.instant() if instant else q.range()
    if target.legend:
        q = q.legend_format(target.legend)
    return q


def _panel_builder(panel: Panel) -> Any:
    if panel.kind == "timeseries":
        b = timeseries.Panel().legend(
            common_b.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["mean", "max", "lastNotNull"])
        )
    elif panel.kind == "stat":
        b = stat.Panel().reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
    elif panel.kind == "bargauge":
        b = (
            bargauge.Panel()
            .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
            .orientation(common.VizOrientation.HORIZONTAL)
        )
    else:
        b = table.Panel()
    b = b.title(panel.title).datasource(DATASOURCE).unit(panel.unit)
    b = b.span(panel.width).height(panel.height)
    if panel.description:
        b = b.description(panel.description)
    if panel.decimals is not None:
        b = b.decimals(panel.decimals)
    for i, target in enumerate(panel.targets):
        b = b.with_target(_query(target, chr(ord("A") + i), panel.instant))
    return b


def build(spec: Dash) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a dict ready for ``json.dump``)."""
    b = (
        dash_b.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(list(spec.tags))
        .time(spec.time_from, "now")
        .refresh("1m")
        .timezone("browser")
        .editable()
        .with_variable(
            dash_b.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
    )
    for name, (label, query) in spec.variables.items():
        b = b.with_variable(
            dash_b.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(query)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .sort(VariableSort.ALPHABETICAL_ASC)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    for row in spec.rows:
        b = b.with_row(dash_b.Row(row.title))
        for panel in row.panels:
            b = b.with_panel(_panel_builder(panel))
    model = json.loads(json.dumps(b.build(), cls=JSONEncoder))
    return _normalise(model)


def _normalise(model: dict[str, Any]) -> dict[str, Any]:
    """Stable panel ids (Grafana needs them unique), ``{}`` for unset options, and
    variable ids equal to their names, so the JSON is deterministic and importable."""
    for i, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = i
        if panel.get("options") is None:
            panel["options"] = {}
    for var in model.get("templating", {}).get("list", []):
        var["id"] = var["name"]
    model["id"] = None
    return model
