"""Demand series from Prometheus or from a cluster dataset, for the cluster and its node
pools.

A node pool is the set of nodes sharing a label value (``--pool-label``, e.g.
``cloud.google.com/gke-nodepool``, read from kube-state-metrics' ``kube_node_labels`` or
from a dataset's ``nodes`` column of that name) or, without one, the set of nodes of the
same shape (cores and memory), since a pool is usually one machine type. A cluster of one
pool gets no pool series.

Prometheus is read through :class:`hydatis.prometheus.PrometheusClient`, whose retries
and typed errors apply: an unreachable server raises
:class:`~hydatis.prometheus.PrometheusUnavailableError` naming the server and the query.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hydatis.dataset import ClusterDataset
from hydatis.errors import ConfigError
from hydatis.prometheus import PrometheusClient, TimeLike, to_unix
from monitoring.forecast.errors import ForecastInputError
from monitoring.forecast.series import MAX_GAP_S, DemandSeries, check_step, regular_series

__all__ = [
    "DEFAULT_QUERIES_PATH",
    "RESOURCES",
    "ForecastQueries",
    "dataset_demand",
    "load_forecast_queries",
    "prometheus_demand",
]

log = logging.getLogger(__name__)

DEFAULT_QUERIES_PATH = Path(__file__).with_name("queries.yaml")
RESOURCES: dict[str, str] = {"cpu": "cores", "mem": "GiB"}
_KEYS = ("cpu_demand", "mem_demand", "cpu_capacity", "mem_capacity", "node_labels")


@dataclass(frozen=True)
class ForecastQueries:
    """The validated queries file."""

    node_label: str
    queries: dict[str, str]
    path: Path


def load_forecast_queries(path: str | Path | None = None) -> ForecastQueries:
    """Load the PromQL file (default: ``monitoring/forecast/queries.yaml``).

    Raises:
        ConfigError: unreadable, or a key missing or not a string (named).
    """
    file = Path(path) if path is not None else DEFAULT_QUERIES_PATH
    try:
        raw = yaml.safe_load(file.read_text())
    except OSError as err:
        raise ConfigError(f"forecast queries file {file} cannot be read: {err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"forecast queries file {file} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"forecast queries file {file}: expected a mapping")
    queries = {}
    for key in _KEYS:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"forecast queries file {file}: '{key}' must be a PromQL string")
        queries[key] = value.strip()
    for key in ("cpu_demand", "mem_demand"):
        if "$NODES" not in queries[key]:
            raise ConfigError(f"forecast queries file {file}: '{key}' must use $NODES")
    label = raw.get("node_label", "node")
    if not isinstance(label, str) or not label:
        raise ConfigError(f"forecast queries file {file}: 'node_label' must be a label name")
    return ForecastQueries(label, queries, file)


def _promql_regex(names: list[str]) -> str:
    """An RE2 alternation of exact names, escaped for a PromQL double-quoted string."""
    return "|".join(re.escape(n) for n in sorted(names)).replace("\\", "\\\\")


def _label_name(pool_label: str) -> str:
    """kube-state-metrics' name for a node label: ``label_`` + non-alphanumerics as ``_``."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", pool_label)


def _shape_name(cores: float, gib: float) -> str:
    return f"shape={cores:g}c/{gib:.0f}Gi"


def _pools(nodes: pd.DataFrame, pool_of: dict[str, str] | None) -> dict[str, list[str]]:
    """pool name -> its nodes (by label, else by shape); empty when there is one pool."""
    if pool_of is not None:
        keys = nodes["node"].map(lambda n: f"pool={pool_of.get(n, '(none)')}")
    else:
        keys = [_shape_name(c, m) for c, m in zip(nodes["cpu"], nodes["mem"], strict=True)]
    groups: dict[str, list[str]] = {}
    for node, key in zip(nodes["node"], keys, strict=True):
        groups.setdefault(key, []).append(node)
    return groups if len(groups) > 1 else {}


def _scope_facts(nodes: pd.DataFrame, resource: str) -> tuple[float, int, float]:
    col = "cpu" if resource == "cpu" else "mem"
    return float(nodes[col].sum()), len(nodes), float(nodes[col].median())


def prometheus_demand(
    client: PrometheusClient,
    *,
    start: TimeLike,
    end: TimeLike,
    step_s: float = 300.0,
    resources: tuple[str, ...] = ("cpu", "mem"),
    pools: bool = True,
    pool_label: str | None = None,
    queries: ForecastQueries | None = None,
    max_gap_s: float = MAX_GAP_S,
    progress: Callable[[str], None] | None = None,
) -> list[DemandSeries]:
    """Cluster (and node-pool) demand history from Prometheus.

    Args:
        client: the Prometheus reader.
        start, end: the history's range.
        step_s: the evaluation step (divides a day).
        resources: ``cpu`` and/or ``mem``.
        pools: also the node pools' series.
        pool_label: the node label naming a pool (default: pools by node shape).
        queries: the PromQL (default: the packaged file).
        max_gap_s: longer gaps cut the history: only what follows the last one is used.
        progress: called with a line per query.

    Raises:
        PrometheusUnavailableError: the server did not answer (after the client's retries).
        PrometheusQueryError: it rejected a query.
        ForecastInputError: no data for a query.
    """
    q = queries or load_forecast_queries()
    check_step(step_s, "forecast")
    t0, t1 = to_unix(start), to_unix(end)
    say = progress or (lambda _line: None)
    bad = [r for r in resources if r not in RESOURCES]
    if bad:
        raise ForecastInputError(f"unknown resource(s) {bad}; known: {list(RESOURCES)}")
    label = q.node_label
    caps: dict[str, dict[str, float]] = {}
    for res in ("cpu", "mem"):
        say(f"capacity ({res})")
        data = client.query(q.queries[f"{res}_capacity"], t1)
        for item in data.get("result", []):
            node = item.get("metric", {}).get(label)
            if node is not None:
                caps.setdefault(node, {})[res] = float(item["value"][1])
    nodes = pd.DataFrame(
        [(n, c.get("cpu", np.nan), c.get("mem", np.nan)) for n, c in sorted(caps.items())],
        columns=["node", "cpu", "mem"],
    )
    if nodes.empty:
        raise ForecastInputError(
            f"Prometheus at {client.base_url} has no node capacity at {pd.Timestamp(t1, unit='s')} "
            f"(query {q.queries['cpu_capacity']!r})"
        )
    pool_of = None
    if pools and pool_label:
        lname = _label_name(pool_label)
        say(f"node labels ({pool_label})")
        data = client.query(q.queries["node_labels"].replace("$LABEL", lname), t1)
        pool_of = {
            item["metric"][label]: item["metric"].get(lname, "(none)")
            for item in data.get("result", [])
            if label in item.get("metric", {})
        }
        if not pool_of:
            raise ForecastInputError(
                f"no node has the label {pool_label!r} (series kube_node_labels{{{lname}}})"
            )
    scopes: dict[str, list[str] | None] = {"cluster": None}
    if pools:
        scopes |= _pools(nodes, pool_of)
    out = []
    for scope, members in scopes.items():
        scope_nodes = nodes if members is None else nodes[nodes["node"].isin(members)]
        matcher = f'{label}=~".+"' if members is None else f'{label}=~"{_promql_regex(members)}"'
        for res in resources:
            query = q.queries[f"{res}_demand"].replace("$NODES", matcher)
            say(f"{scope} {res} demand")
            found = client.query_range(query, t0, t1, step_s)
            if not found or len(found[0]) == 0:
                raise ForecastInputError(
                    f"Prometheus returned no {res} demand for {scope} between "
                    f"{pd.Timestamp(t0, unit='s', tz='UTC')} and "
                    f"{pd.Timestamp(t1, unit='s', tz='UTC')} (query {query!r})"
                )
            name = f"{scope} {res}"
            start_ts, values = regular_series(
                found[0].timestamps,
                found[0].values,
                step_s,
                name=name,
                max_gap_s=max_gap_s,
                keep_after_gap=True,
            )
            total, count, median = _scope_facts(scope_nodes, res)
            out.append(
                DemandSeries(
                    name,
                    res,
                    RESOURCES[res],
                    start_ts,
                    step_s,
                    values,
                    capacity=total,
                    nodes=count,
                    node_capacity=median,
                    meta={"source": f"prometheus {client.base_url}", "scope": scope},
                )
            )
    return out


def dataset_demand(
    ds: ClusterDataset,
    *,
    step_s: float = 300.0,
    resources: tuple[str, ...] = ("cpu", "mem"),
    pools: bool = True,
    pool_label: str | None = None,
    source: str = "dataset",
) -> list[DemandSeries]:
    """Cluster (and node-pool) demand history from a dataset's node series.

    Each node's ``cpu_util × cpu_cores`` (``mem_util × mem_gib``) is averaged into
    ``step_s`` bins, carried over bins where the node has no sample, and summed.

    Raises:
        ForecastInputError: no node series, or ``pool_label`` is not a ``nodes`` column.
    """
    check_step(step_s, "forecast")
    nm = ds.node_metrics
    if nm.empty:
        raise ForecastInputError(f"{source}: node_metrics is empty; nothing to forecast")
    nodes = ds.nodes.rename(columns={"cpu_cores": "cpu", "mem_gib": "mem"})
    nodes = nodes[nodes["node"].isin(set(nm["node"]))]
    pool_of = None
    if pools and pool_label:
        if pool_label not in ds.nodes.columns:
            raise ForecastInputError(
                f"{source}: nodes has no column {pool_label!r} to group pools by; columns: "
                f"{list(ds.nodes.columns)}"
            )
        pool_of = dict(zip(ds.nodes["node"], ds.nodes[pool_label].astype(str), strict=True))
    cores = nodes.set_index("node")
    frame = nm[["ts", "node"]].copy()
    frame["cpu"] = nm["cpu_util"].to_numpy() * nm["node"].map(cores["cpu"]).to_numpy()
    frame["mem"] = nm["mem_util"].to_numpy() * nm["node"].map(cores["mem"]).to_numpy()
    frame["bin"] = frame["ts"].dt.floor(f"{int(step_s)}s")
    scopes: dict[str, list[str] | None] = {"cluster": None}
    if pools:
        scopes |= _pools(nodes, pool_of)
    out = []
    for res in resources:
        if res not in RESOURCES:
            raise ForecastInputError(f"unknown resource {res!r}; known: {list(RESOURCES)}")
        per_node = frame.pivot_table(index="bin", columns="node", values=res, aggfunc="mean")
        grid = pd.date_range(per_node.index[0], per_node.index[-1], freq=f"{int(step_s)}s")
        per_node = per_node.reindex(grid).ffill().fillna(0.0)
        for scope, members in scopes.items():
            cols = per_node.columns if members is None else [c for c in per_node if c in members]
            scope_nodes = nodes if members is None else nodes[nodes["node"].isin(members)]
            total, count, median = _scope_facts(scope_nodes, res)
            start = per_node.index[0]
            start = start.tz_localize("UTC") if start.tzinfo is None else start
            out.append(
                DemandSeries(
                    f"{scope} {res}",
                    res,
                    RESOURCES[res],
                    start,
                    step_s,
                    per_node[cols].sum(axis=1).to_numpy(dtype="float64"),
                    capacity=total,
                    nodes=count,
                    node_capacity=median,
                    meta={"source": source, "scope": scope},
                )
            )
    return out
