"""A small reader for the Prometheus HTTP API (``/api/v1/query_range``).

Extraction reads weeks of node and pod history at a 30 s step, which Prometheus refuses in
one request (at most 11,000 points per series) and which a busy server or a flaky network
interrupts now and then. This client hides both: it splits a range into windows of at
most :data:`MAX_POINTS` points, retries connection errors, 5xx and 429 answers with
exponential backoff, and turns Prometheus's answers into typed errors that name the query.

It depends on httpx only, and takes an ``httpx.BaseTransport`` so unit tests drive it with
``httpx.MockTransport`` and integration tests with a real server. The constructor does no
I/O; the HTTP client is opened on the first query and released by :meth:`close`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

from hydatis.errors import ConfigError, HydatisError

__all__ = [
    "DEFAULT_QUERIES_PATH",
    "MAX_POINTS",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusUnavailableError",
    "QuerySet",
    "QuerySpec",
    "Series",
    "TimeLike",
    "load_queries",
    "to_unix",
]

log = logging.getLogger(__name__)

#: Prometheus answers "exceeded maximum resolution of 11,000 points per timeseries" above
#: this; every request this client sends stays at or below it.
MAX_POINTS = 11_000
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0

DEFAULT_QUERIES_PATH = Path(__file__).with_name("promql.yaml")

TimeLike = datetime | pd.Timestamp | str | float | int


class PrometheusError(HydatisError):
    """Prometheus could not answer a query.

    Attributes:
        query: the PromQL text, or None for a request that is not a query.
        status: the HTTP status of the last answer, or None when none came.
    """

    def __init__(self, message: str, *, query: str | None = None, status: int | None = None):
        self.query, self.status = query, status
        super().__init__(message)


class PrometheusQueryError(PrometheusError):
    """Prometheus rejected the query itself (HTTP 4xx: bad PromQL, bad parameters).

    Never retried: the same request fails the same way.
    """


class PrometheusUnavailableError(PrometheusError):
    """The server stayed unreachable or kept failing (5xx, 429) after every retry."""


@dataclass(frozen=True)
class Series:
    """One series of a range query.

    Attributes:
        labels: the series' labels (``__name__`` included when PromQL kept it).
        timestamps: evaluation times, unix seconds, increasing.
        values: the values as floats; Prometheus's ``"NaN"`` stays NaN.
    """

    labels: dict[str, str]
    timestamps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamps.size)


def to_unix(t: TimeLike) -> float:
    """Unix seconds of a datetime, Timestamp, ISO string or number (naive means UTC)."""
    if isinstance(t, int | float) and not isinstance(t, bool):
        return float(t)
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.value / 1e9


def _windows(start: float, end: float, step: float) -> list[tuple[float, float]]:
    """Split [start, end] at ``step`` into windows of at most MAX_POINTS points each.

    Windows start on the grid ``start + k·step`` and do not overlap, so concatenating
    their answers gives exactly the points one unlimited query would.
    """
    n_points = math.floor((end - start) / step + 1e-9) + 1
    out = []
    for first in range(0, n_points, MAX_POINTS):
        last = min(first + MAX_POINTS, n_points) - 1
        out.append((start + first * step, start + last * step))
    return out


def _fmt(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".")


class PrometheusClient:
    """Range queries against one Prometheus server.

    Args:
        base_url: the server's root, e.g. ``http://127.0.0.1:9090`` (a path prefix such
            as ``/prometheus`` is kept).
        transport: the httpx transport to use (a ``MockTransport`` in tests); default:
            httpx's own.
        timeout_s: timeout of each HTTP request.
        max_retries: retries after the first try for connection errors, 5xx and 429.
        backoff_s: the first retry's delay; each next one doubles (capped at 30 s); a 429's
            ``Retry-After`` is honoured when longer.
        sleep: how to wait between retries (tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self._http: httpx.Client | None = None

    # -- lifecycle -------------------------------------------------------------------
    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.base_url, transport=self.transport, timeout=self.timeout_s
            )
        return self._http

    def close(self) -> None:
        """Release the HTTP connection pool (the client can be used again afterwards)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------
    def query_range(
        self, query: str, start: TimeLike, end: TimeLike, step_s: float
    ) -> list[Series]:
        """Evaluate ``query`` at ``start, start + step, ...`` up to ``end``.

        Long ranges are split into windows of at most :data:`MAX_POINTS` points; the
        windows' series are joined by label set, in time order.

        Args:
            query: PromQL.
            start: first evaluation time.
            end: last evaluation time (inclusive when on the grid).
            step_s: seconds between evaluations, > 0.

        Returns:
            One :class:`Series` per label set, in the order Prometheus first returned them.

        Raises:
            PrometheusQueryError: Prometheus rejected the query (names it and quotes
                Prometheus's message).
            PrometheusUnavailableError: retries ran out.
            PrometheusError: an answer that is not a matrix.
        """
        t0, t1 = to_unix(start), to_unix(end)
        if not step_s > 0:
            raise PrometheusQueryError(f"step must be > 0, got {step_s}", query=query)
        if t1 < t0:
            raise PrometheusQueryError(f"end {t1} is before start {t0}", query=query)
        parts: dict[tuple[tuple[str, str], ...], list[tuple[list[Any], dict[str, str]]]] = {}
        for w0, w1 in _windows(t0, t1, step_s):
            data = self._get_data(
                "/api/v1/query_range",
                {"query": query, "start": _fmt(w0), "end": _fmt(w1), "step": _fmt(step_s)},
                query,
            )
            if data.get("resultType") != "matrix":
                raise PrometheusError(
                    f"query {query!r}: expected a matrix, got {data.get('resultType')!r}",
                    query=query,
                )
            for item in data.get("result", []):
                labels = dict(item.get("metric", {}))
                key = tuple(sorted(labels.items()))
                parts.setdefault(key, []).append((item.get("values", []), labels))
        return [_series(chunks) for chunks in parts.values()]

    def query(self, query: str, time_: TimeLike | None = None) -> dict[str, Any]:
        """An instant query; returns Prometheus's ``data`` object as is."""
        params = {"query": query}
        if time_ is not None:
            params["time"] = _fmt(to_unix(time_))
        return self._get_data("/api/v1/query", params, query)

    # -- transport -------------------------------------------------------------------
    def _get_data(self, path: str, params: dict[str, str], query: str) -> dict[str, Any]:
        """POST ``params`` (form-encoded, so long PromQL fits) and return ``data``."""
        last: str = ""
        status: int | None = None
        for attempt in range(self.max_retries + 1):
            delay = min(self.backoff_s * (2**attempt), MAX_BACKOFF_S)
            try:
                resp = self._client().post(path, data=params)
            except httpx.TransportError as err:  # connection refused, reset, timeout
                last, status = f"{type(err).__name__}: {err}", None
            else:
                status = resp.status_code
                if status == 429 or status >= 500:
                    last = f"HTTP {status}: {_error_text(resp)}"
                    retry_after = resp.headers.get("Retry-After", "")
                    if status == 429 and retry_after.replace(".", "", 1).isdigit():
                        delay = max(delay, min(float(retry_after), MAX_BACKOFF_S))
                elif status >= 400:
                    raise PrometheusQueryError(
                        f"Prometheus rejected query {query!r} (HTTP {status}): {_error_text(resp)}",
                        query=query,
                        status=status,
                    )
                else:
                    return _data_of(resp, query)
            if attempt < self.max_retries:
                log.warning(
                    "prometheus %s failed (%s), retry %d/%d in %.2fs (query %r)",
                    path,
                    last,
                    attempt + 1,
                    self.max_retries,
                    delay,
                    query,
                )
                self.sleep(delay)
        raise PrometheusUnavailableError(
            f"Prometheus at {self.base_url} did not answer query {query!r} after "
            f"{self.max_retries + 1} tries: {last}",
            query=query,
            status=status,
        )


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    if isinstance(body, dict) and "error" in body:
        return f"{body.get('errorType', 'error')}: {body['error']}"
    return resp.text.strip()[:500]


def _data_of(resp: httpx.Response, query: str) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError as err:
        raise PrometheusError(
            f"query {query!r}: answer is not JSON: {resp.text[:200]!r}",
            query=query,
            status=resp.status_code,
        ) from err
    if not isinstance(body, dict) or body.get("status") != "success":
        raise PrometheusQueryError(
            f"Prometheus rejected query {query!r}: {_error_text(resp)}",
            query=query,
            status=resp.status_code,
        )
    for warning in body.get("warnings", []) or []:
        log.warning("prometheus warning for query %r: %s", query, warning)
    return body.get("data", {})


def _series(chunks: list[tuple[list[Any], dict[str, str]]]) -> Series:
    ts_parts, val_parts = [], []
    for values, _ in chunks:
        if not values:
            continue
        ts_parts.append(np.fromiter((v[0] for v in values), dtype=np.float64, count=len(values)))
        # numpy parses the strings, "NaN" and "+Inf" included.
        val_parts.append(np.array([v[1] for v in values], dtype=np.float64))
    ts = np.concatenate(ts_parts) if ts_parts else np.zeros(0)
    vals = np.concatenate(val_parts) if val_parts else np.zeros(0)
    return Series(labels=chunks[0][1], timestamps=ts, values=vals)


# -- the queries file ----------------------------------------------------------------
#: section -> (required columns, optional-allowed columns); columns outside both are
#: accepted in node_metrics (extra node series) and rejected elsewhere.
_SECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "node_metrics": (("cpu_util", "mem_util"), ()),
    "nodes": (("cpu_cores", "mem_gib"), ()),
    "pods": (("info",), ("cpu_request", "mem_request", "cpu_limit", "mem_limit")),
    "pod_usage": (("cpu_used", "mem_used"), ()),
    "quality": ((), ("counter_resets",)),
}
_INFO_LABELS = ("node", "workload", "priority")


@dataclass(frozen=True)
class QuerySpec:
    """One query of the queries file.

    Attributes:
        section: the dataset table it feeds (``node_metrics``, ``nodes``, ``pods``,
            ``pod_usage``) or ``quality``.
        column: the column it fills (``info`` for the pods' identity query).
        query: the PromQL text.
        step_s: its own evaluation step, or None for the extraction step.
        optional: a missing result is not an error.
        labels: for ``pods.info``: dataset column -> result label.
    """

    section: str
    column: str
    query: str
    step_s: float | None = None
    optional: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``section.column``, as named in errors and chunk folders."""
        return f"{self.section}.{self.column}"


@dataclass(frozen=True)
class QuerySet:
    """The validated queries file: the key labels and every query by section."""

    node_label: str
    pod_label: str
    sections: dict[str, dict[str, QuerySpec]]
    path: Path

    def section(self, name: str) -> dict[str, QuerySpec]:
        """The queries of one section (empty when the file has none)."""
        return self.sections.get(name, {})

    def all(self) -> list[QuerySpec]:
        """Every query, section by section."""
        return [q for sec in self.sections.values() for q in sec.values()]


def _spec(section: str, column: str, raw: Any) -> QuerySpec:
    key = f"{section}.{column}"
    if isinstance(raw, str):
        raw = {"query": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"queries file: '{key}' must be a mapping or a PromQL string")
    unknown = set(raw) - {"query", "step_s", "optional", "labels"}
    if unknown:
        raise ConfigError(f"queries file: '{key}' has unknown keys {sorted(unknown)}")
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"queries file: '{key}.query' must be a non-empty PromQL string")
    step = raw.get("step_s")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int | float)):
        raise ConfigError(f"queries file: '{key}.step_s' must be a number, got {step!r}")
    if step is not None and not step > 0:
        raise ConfigError(f"queries file: '{key}.step_s' must be > 0, got {step!r}")
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise ConfigError(f"queries file: '{key}.optional' must be true or false")
    labels = raw.get("labels", {}) or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ConfigError(f"queries file: '{key}.labels' must map columns to label names")
    if labels and key != "pods.info":
        raise ConfigError(f"queries file: '{key}.labels' is only read for 'pods.info'")
    bad = set(labels) - set(_INFO_LABELS)
    if bad:
        raise ConfigError(f"queries file: '{key}.labels' has unknown columns {sorted(bad)}")
    return QuerySpec(section, column, query.strip(), step, optional, dict(labels))


def load_queries(path: str | Path | None = None) -> QuerySet:
    """Load and validate the queries file (default: ``hydatis/promql.yaml``).

    Raises:
        ConfigError: the file is missing or unreadable, or a key is missing or bad (the
            message names the key, e.g. ``pods.info.query``).
    """
    file = Path(path) if path is not None else DEFAULT_QUERIES_PATH
    try:
        raw = yaml.safe_load(file.read_text())
    except OSError as err:
        raise ConfigError(f"queries file {file} cannot be read: {err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"queries file {file} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"queries file {file}: expected a mapping at the top level")
    unknown = set(raw) - set(_SECTIONS) - {"version", "node_label", "pod_label"}
    if unknown:
        raise ConfigError(f"queries file {file}: unknown top-level keys {sorted(unknown)}")
    labels = {}
    for key in ("node_label", "pod_label"):
        value = raw.get(key, key.removesuffix("_label"))
        if not isinstance(value, str) or not value:
            raise ConfigError(f"queries file {file}: '{key}' must be a label name")
        labels[key] = value
    sections: dict[str, dict[str, QuerySpec]] = {}
    for section, (required, allowed) in _SECTIONS.items():
        body = raw.get(section)
        if body is None and not required:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"queries file {file}: section '{section}' missing or not a mapping")
        for column in required:
            if column not in body:
                raise ConfigError(f"queries file {file}: '{section}.{column}' is missing")
        if section != "node_metrics":
            extra = set(body) - set(required) - set(allowed)
            if extra:
                raise ConfigError(
                    f"queries file {file}: unknown keys in '{section}': {sorted(extra)}"
                )
        sections[section] = {col: _spec(section, col, spec) for col, spec in body.items()}
        for column in required:
            if sections[section][column].optional:
                raise ConfigError(
                    f"queries file {file}: '{section}.{column}' is required, not optional"
                )
    return QuerySet(labels["node_label"], labels["pod_label"], sections, file)
