"""Extract a cluster's history from Prometheus into the cluster dataset.

Weeks of history at a 30 s step is many requests and millions of points, and a long run
gets interrupted. So the range is cut into chunks (a day by default) and every query's
answer for a chunk is written to ``out_dir/_chunks/<query>-<hash>/`` as soon as it
arrives (to a temporary name, then renamed, so a file present is a file complete); a rerun
skips every chunk already on disk and fetches only the rest. Changing a query changes its
hash, so stale chunks are never reused.

Then the chunks are joined into the four tables (:mod:`hydatis.dataset`), a data-quality
report is written (``quality.json`` and ``quality.html``: completeness, gaps, NaNs and
counter resets per node and series), and the dataset is saved — unless a required node
series is less complete than ``min_completeness``, in which case
:class:`DataQualityError` names the worst node and series.

The PromQL comes from the queries file (:func:`hydatis.prometheus.load_queries`).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset, empty_table, save_dataset
from hydatis.errors import ConfigError, HydatisError
from hydatis.prometheus import (
    PrometheusClient,
    QuerySet,
    QuerySpec,
    TimeLike,
    load_queries,
    to_unix,
)

__all__ = [
    "DEFAULT_CHUNK_S",
    "DEFAULT_MIN_COMPLETENESS",
    "DEFAULT_STEP_S",
    "REQUIRED_NODE_SERIES",
    "DataQualityError",
    "ProgressFn",
    "extract",
    "quality_report",
    "write_quality_report",
]

log = logging.getLogger(__name__)

DEFAULT_STEP_S = 30.0
DEFAULT_CHUNK_S = 86_400.0
DEFAULT_MIN_COMPLETENESS = 0.95
#: the node series whose completeness can fail a run; optional ones are only reported.
REQUIRED_NODE_SERIES = ("cpu_util", "mem_util", "capacity")
CHUNKS_DIR = "_chunks"
QUALITY_JSON = "quality.json"
QUALITY_HTML = "quality.html"
#: a pod seen within this many steps of the range's end is taken as still running.
RUNNING_AT_END_STEPS = 1.5

#: ``progress(done, total, what)``: chunks done so far, chunks in all, the current query.
ProgressFn = Callable[[int, int, str], None]


class DataQualityError(HydatisError):
    """Extracted data is too incomplete to build a dataset from.

    Attributes:
        node: the worst node.
        series: its worst series (``cpu_util``, ``mem_util``, ``capacity``).
        completeness: that series' share of expected points present, in [0, 1].
        threshold: the configured minimum.
        report_path: the quality report written before failing.
    """

    def __init__(
        self,
        node: str,
        series: str,
        completeness: float,
        threshold: float,
        report_path: Path | None = None,
    ) -> None:
        self.node, self.series = node, series
        self.completeness, self.threshold, self.report_path = completeness, threshold, report_path
        where = f"; see {report_path}" if report_path is not None else ""
        super().__init__(
            f"data completeness {completeness:.1%} for node '{node}' series '{series}' is "
            f"below the {threshold:.1%} threshold{where}"
        )


# -- chunked fetching --------------------------------------------------------------------
def _chunk_bounds(t0: float, t1: float, step: float, chunk_s: float) -> list[tuple[float, float]]:
    """Inclusive [first, last] evaluation times of each chunk of the grid ``t0 + k·step``."""
    n_points = math.floor((t1 - t0) / step + 1e-9) + 1
    per = max(round(chunk_s / step), 1)
    return [
        (t0 + a * step, t0 + (min(a + per, n_points) - 1) * step) for a in range(0, n_points, per)
    ]


def _spec_dir(root: Path, spec: QuerySpec, step: float) -> Path:
    digest = hashlib.sha256(f"{spec.query}\n{step}\n{sorted(spec.labels.items())}".encode())
    return root / f"{spec.key}-{digest.hexdigest()[:10]}"


def _columns(spec: QuerySpec, qs: QuerySet) -> dict[str, str]:
    """Result label -> frame column, for the labels a query's rows keep."""
    key = qs.pod_label if spec.section in ("pods", "pod_usage") else qs.node_label
    cols = {key: "pod" if spec.section in ("pods", "pod_usage") else "node"}
    for column, label in spec.labels.items():
        cols.setdefault(label, column)
    return cols


def _fetch_chunk(
    client: PrometheusClient,
    spec: QuerySpec,
    qs: QuerySet,
    a: float,
    b: float,
    step: float,
) -> pd.DataFrame:
    """One query over one chunk as a long frame: ts, value and the kept label columns."""
    cols = _columns(spec, qs)
    key_label = next(iter(cols))
    series = client.query_range(spec.query, a, b, step)
    parts: dict[str, list[Any]] = {"ts": [], "value": [], **{c: [] for c in cols.values()}}
    dropped = 0
    for s in series:
        if key_label not in s.labels:
            dropped += 1
            continue
        parts["ts"].append(s.timestamps)
        parts["value"].append(s.values)
        for label, col in cols.items():
            parts[col].append(np.full(len(s), s.labels.get(label, ""), dtype=object))
    if dropped:
        log.warning("query %s: %d series without label %r ignored", spec.key, dropped, key_label)
    frame = {
        k: (
            np.concatenate(v) if v else np.zeros(0, dtype=float if k in ("ts", "value") else object)
        )
        for k, v in parts.items()
    }
    return pd.DataFrame(frame)


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _fetch_all(
    client: PrometheusClient,
    qs: QuerySet,
    root: Path,
    t0: float,
    t1: float,
    step: float,
    chunk_s: float,
    progress: ProgressFn | None,
) -> dict[str, pd.DataFrame]:
    """Every query over every chunk, reusing chunk files already on disk."""
    bounds = _chunk_bounds(t0, t1, step, chunk_s)
    specs = qs.all()
    total, done = len(specs) * len(bounds), 0
    out: dict[str, pd.DataFrame] = {}
    fetched = skipped = 0
    for spec in specs:
        q_step = float(spec.step_s or step)
        folder = _spec_dir(root, spec, q_step)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "query.txt").write_text(spec.query + "\n")
        frames = []
        for i, (a, b) in enumerate(bounds):
            file = folder / f"{i:05d}_{a:.0f}_{b:.0f}.parquet"
            if file.is_file():
                frames.append(pd.read_parquet(file))
                skipped += 1
            else:
                # A coarse attribute query also looks one of its steps past the chunk, so
                # a series whose samples fall between two of its evaluations is not lost.
                end = b + (q_step - step if q_step > step and spec.section != "quality" else 0)
                frame = _fetch_chunk(client, spec, qs, a, end, q_step)
                _write_atomic(frame, file)
                frames.append(frame)
                fetched += 1
            done += 1
            if progress is not None:
                progress(done, total, spec.key)
        out[spec.key] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    log.info("extract: %d chunks fetched, %d reused from %s", fetched, skipped, root)
    return out


# -- tables ------------------------------------------------------------------------------
def _last_value(frame: pd.DataFrame, key: str) -> pd.Series:
    """The last non-NaN value per key (rows in time order)."""
    if frame.empty:
        return pd.Series(dtype="float64")
    f = frame[np.isfinite(frame["value"].to_numpy(dtype="float64"))]
    return f.sort_values("ts", kind="stable").groupby(key)["value"].last()


def _utc(seconds: np.ndarray | pd.Series) -> pd.DatetimeIndex:
    ms = np.round(np.asarray(seconds, dtype="float64") * 1000.0).astype("int64")
    return pd.to_datetime(ms, unit="ms", utc=True)


def _seconds(ts: pd.Series) -> pd.Series:
    """UTC timestamps -> unix seconds (NaT -> NaN)."""
    return (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def _empty_pods() -> pd.DataFrame:
    return empty_table("pods")


def _node_tables(
    raw: dict[str, pd.DataFrame], qs: QuerySet
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], pd.Series, pd.Series]:
    """(node_metrics wide frame, per-column long frames, cores, GiB)."""
    cores = _last_value(raw["nodes.cpu_cores"], "node")
    gib = _last_value(raw["nodes.mem_gib"], "node")
    long: dict[str, pd.DataFrame] = {}
    for column in qs.section("node_metrics"):
        frame = raw[f"node_metrics.{column}"]
        if frame.empty and qs.section("node_metrics")[column].optional:
            continue
        long[column] = frame[["ts", "node", "value"]]
    wide = None
    for column, frame in long.items():
        part = frame.drop_duplicates(["ts", "node"], keep="last").rename(columns={"value": column})
        wide = part if wide is None else wide.merge(part, on=["ts", "node"], how="outer")
    if wide is None:
        wide = pd.DataFrame(columns=["ts", "node", "cpu_util", "mem_util"])
    return wide, long, cores, gib


def _pods_table(raw: dict[str, pd.DataFrame], qs: QuerySet, t1: float, step: float) -> pd.DataFrame:
    info = raw["pods.info"]
    if info.empty:
        return _empty_pods()
    values = info["value"].to_numpy(dtype="float64")
    # The info query returns the sample's own timestamp; a plain 0/1 series falls back to
    # the evaluation time.
    seen = np.where(np.isfinite(values) & (values > 1e8), values, info["ts"].to_numpy())
    info = info.assign(seen=seen).sort_values(["pod", "seen"], kind="stable")
    for col in ("node", "workload", "priority"):
        if col not in info.columns:
            info[col] = ""
    g = info.groupby("pod", sort=True)
    first, last = g["seen"].min(), g["seen"].max()

    def last_nonempty(col: str) -> pd.Series:
        f = info[info[col].astype(str) != ""]
        return f.groupby("pod")[col].last().reindex(first.index)

    node = last_nonempty("node")
    workload = last_nonempty("workload").fillna(pd.Series(first.index, index=first.index))
    prio = pd.to_numeric(last_nonempty("priority"), errors="coerce").fillna(0).astype("int64")
    running = last.to_numpy() >= t1 - RUNNING_AT_END_STEPS * step
    end = _utc(last.to_numpy() + step)
    pods = pd.DataFrame(
        {
            "pod": first.index.astype(str).to_numpy(dtype=object),
            "workload": workload.astype(str).to_numpy(dtype=object),
            "start_ts": _utc(first.to_numpy()),
            "end_ts": pd.DatetimeIndex(end).where(~running, pd.NaT),
            "node": node.where(node.notna(), None).to_numpy(dtype=object),
        }
    )
    for column in ("cpu_request", "mem_request", "cpu_limit", "mem_limit"):
        key = f"pods.{column}"
        if key not in raw:
            continue
        vals = _last_value(raw[key], "pod").reindex(first.index)
        if column.endswith("limit") and vals.isna().all():
            continue
        pods[column] = vals.clip(lower=0).to_numpy(dtype="float64")
    for column in ("cpu_request", "mem_request"):
        if column not in pods.columns:
            pods[column] = np.nan
    pods["priority"] = prio.to_numpy()
    return pods


def _usage_table(raw: dict[str, pd.DataFrame], pods: pd.DataFrame) -> pd.DataFrame:
    cpu = raw["pod_usage.cpu_used"][["ts", "pod", "value"]].rename(columns={"value": "cpu_used"})
    mem = raw["pod_usage.mem_used"][["ts", "pod", "value"]].rename(columns={"value": "mem_used"})
    use = cpu.drop_duplicates(["ts", "pod"], keep="last").merge(
        mem.drop_duplicates(["ts", "pod"], keep="last"), on=["ts", "pod"], how="inner"
    )
    use = use[np.isfinite(use["cpu_used"]) & np.isfinite(use["mem_used"])]
    life = pods.set_index("pod")
    start = _seconds(life["start_ts"]).reindex(use["pod"]).to_numpy()
    end = _seconds(life["end_ts"]).fillna(np.inf).reindex(use["pod"]).to_numpy()
    ts = use["ts"].to_numpy(dtype="float64")
    # Keep samples while the pod exists: a rate or gauge outlives its series by the lookback.
    keep = np.isfinite(start) & (ts >= start) & (ts < end)
    use = use[keep].sort_values(["pod", "ts"], kind="stable")
    return pd.DataFrame(
        {
            "ts": _utc(use["ts"].to_numpy()),
            "pod": use["pod"].astype(str).to_numpy(dtype=object),
            "cpu_used": use["cpu_used"].clip(lower=0).to_numpy(dtype="float64"),
            "mem_used": use["mem_used"].clip(lower=0).to_numpy(dtype="float64"),
        }
    )


# -- quality -----------------------------------------------------------------------------
def _runs(present: np.ndarray) -> tuple[int, int]:
    """(number of runs of missing points, longest run) in a boolean presence mask."""
    missing = ~present
    if not missing.any():
        return 0, 0
    edges = np.diff(np.r_[0, missing.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int(starts.size), int((ends - starts).max())


def quality_report(
    series: Mapping[str, pd.DataFrame],
    *,
    nodes: Sequence[str],
    start: TimeLike,
    end: TimeLike,
    step_s: float,
    capacity_known: Mapping[str, bool] | None = None,
    counter_resets: Mapping[str, float] | None = None,
    required: Sequence[str] = REQUIRED_NODE_SERIES,
    min_completeness: float = DEFAULT_MIN_COMPLETENESS,
    pods: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Completeness, gaps and NaNs of each node's series on the grid ``start + k·step``.

    Args:
        series: column -> long frame (``ts`` unix seconds, ``node``, ``value``) as fetched.
        nodes: every node expected (a node absent from a series has completeness 0).
        start: first evaluation time.
        end: last evaluation time.
        step_s: the grid step.
        capacity_known: node -> whether its capacity was found (reported as the series
            ``capacity``: completeness 1 or 0).
        counter_resets: node -> counter resets seen.
        required: the series whose completeness is checked against the threshold.
        min_completeness: the threshold, in [0, 1].
        pods: pod-level figures to include as they are.

    Returns:
        The report: per node and series ``completeness`` (present, non-NaN points over
        expected), ``points``, ``nan``, ``gaps`` (runs of missing points),
        ``longest_gap_s`` and ``enforced``; ``worst`` (the least complete enforced node
        series) and ``passed``.
    """
    t0, t1 = to_unix(start), to_unix(end)
    expected = math.floor((t1 - t0) / step_s + 1e-9) + 1
    rows: dict[str, dict[str, Any]] = {str(n): {"node": str(n), "series": {}} for n in nodes}
    for column, frame in series.items():
        by_node = {str(k): v for k, v in frame.groupby("node", sort=False)} if len(frame) else {}
        for node, entry in rows.items():
            f = by_node.get(node)
            present = np.zeros(expected, dtype=bool)
            nan = 0
            if f is not None:
                idx = np.round((f["ts"].to_numpy(dtype="float64") - t0) / step_s).astype(np.int64)
                vals = f["value"].to_numpy(dtype="float64")
                ok = (idx >= 0) & (idx < expected)
                nan = int(np.isnan(vals[ok]).sum())
                present[idx[ok & ~np.isnan(vals)]] = True
            gaps, longest = _runs(present)
            entry["series"][column] = {
                "completeness": float(present.sum() / expected),
                "points": int(present.sum()),
                "nan": nan,
                "gaps": gaps,
                "longest_gap_s": float(longest * step_s),
                "enforced": column in required,
            }
    if capacity_known is not None:
        for node, entry in rows.items():
            known = bool(capacity_known.get(node, False))
            entry["series"]["capacity"] = {
                "completeness": 1.0 if known else 0.0,
                "points": int(known),
                "nan": 0,
                "gaps": 0 if known else 1,
                "longest_gap_s": 0.0 if known else float((expected - 1) * step_s),
                "enforced": "capacity" in required,
            }
    for node, entry in rows.items():
        entry["counter_resets"] = int((counter_resets or {}).get(node, 0))
    worst = None
    for node, entry in rows.items():
        for column, s in entry["series"].items():
            if s["enforced"] and (worst is None or s["completeness"] < worst["completeness"]):
                worst = {"node": node, "series": column, "completeness": s["completeness"]}
    return {
        "start": float(t0),
        "end": float(t1),
        "step_s": float(step_s),
        "expected_points": int(expected),
        "min_completeness": float(min_completeness),
        "passed": worst is None or worst["completeness"] >= min_completeness,
        "worst": worst,
        "nodes": list(rows.values()),
        "pods": dict(pods or {}),
    }


def write_quality_report(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``quality.json`` and ``quality.html`` (one row per node and series) to
    ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / QUALITY_JSON, out / QUALITY_HTML
    json_path.write_text(json.dumps(report, indent=2, default=str))
    head = "<tr><th>node</th><th>series</th><th>completeness</th><th>gaps</th>"
    head += "<th>longest gap (s)</th><th>NaN</th><th>counter resets</th></tr>"
    body = []
    threshold = report["min_completeness"]
    for entry in report["nodes"]:
        for column, s in entry["series"].items():
            bad = s["enforced"] and s["completeness"] < threshold
            style = ' style="background:#fdd"' if bad else ""
            body.append(
                f"<tr{style}><td>{html.escape(entry['node'])}</td><td>{html.escape(column)}</td>"
                f"<td>{s['completeness']:.2%}</td><td>{s['gaps']}</td>"
                f"<td>{s['longest_gap_s']:.0f}</td><td>{s['nan']}</td>"
                f"<td>{entry['counter_resets']}</td></tr>"
            )
    verdict = "passed" if report["passed"] else "FAILED"
    worst = report.get("worst") or {}
    summary = (
        f"<p>{verdict}: threshold {threshold:.1%}; worst "
        f"{html.escape(str(worst.get('node')))} / {html.escape(str(worst.get('series')))} "
        f"at {float(worst.get('completeness', 1.0)):.2%}; "
        f"{report['expected_points']} points expected per series.</p>"
    )
    pods = html.escape(json.dumps(report.get("pods", {})))
    html_path.write_text(
        "<!doctype html><meta charset='utf-8'><title>extraction quality</title>"
        "<style>td,th{padding:2px 8px;text-align:right}table{border-collapse:collapse}</style>"
        f"<h1>Extraction data quality</h1>{summary}<p>pods: {pods}</p>"
        f"<table>{head}{''.join(body)}</table>\n"
    )
    return json_path, html_path


# -- entry point -------------------------------------------------------------------------
def extract(
    prometheus_url: str,
    *,
    start: TimeLike,
    end: TimeLike,
    step_s: float = DEFAULT_STEP_S,
    out_dir: str | Path,
    queries_path: str | Path | None = None,
    min_completeness: float = DEFAULT_MIN_COMPLETENESS,
    client: PrometheusClient | None = None,
    progress: ProgressFn | None = None,
    chunk_s: float = DEFAULT_CHUNK_S,
) -> ClusterDataset:
    """Read ``[start, end]`` from Prometheus and write the cluster dataset to ``out_dir``.

    Args:
        prometheus_url: the server's root URL (ignored when ``client`` is given).
        start: first evaluation time (datetime, ISO string or unix seconds; naive = UTC).
        end: last evaluation time.
        step_s: the evaluation step of the time series (node metrics, pod usage).
        out_dir: where the dataset, ``quality.json``/``quality.html`` and the resumable
            ``_chunks/`` go.
        queries_path: the queries file (default: ``hydatis/promql.yaml``).
        min_completeness: fail when a node's required series (CPU, memory, capacity) has
            fewer than this share of the expected points.
        client: a ready client (tests pass one with a mock transport).
        progress: called after each chunk with (done, total, query key).
        chunk_s: the span of one chunk file.

    Returns:
        The dataset as saved.

    Raises:
        ConfigError: bad arguments or queries file.
        DataQualityError: a required series is below ``min_completeness`` (the quality
            report is written first).
        PrometheusError: Prometheus rejected a query or stayed unreachable; chunks fetched
            so far stay on disk for the rerun.
    """
    t0, t1 = to_unix(start), to_unix(end)
    if not step_s > 0 or not chunk_s > 0:
        raise ConfigError(f"step_s and chunk_s must be > 0, got {step_s} and {chunk_s}")
    if t1 < t0:
        raise ConfigError(f"end {end} is before start {start}")
    if not 0.0 <= min_completeness <= 1.0:
        raise ConfigError(f"min_completeness must be in [0, 1], got {min_completeness}")
    qs = load_queries(queries_path)
    out = Path(out_dir)
    own = client is None
    client = client or PrometheusClient(prometheus_url)
    try:
        raw = _fetch_all(client, qs, out / CHUNKS_DIR, t0, t1, step_s, chunk_s, progress)
    finally:
        if own:
            client.close()

    wide, long, cores, gib = _node_tables(raw, qs)
    known = cores.index[(cores > 0) & gib.reindex(cores.index).gt(0)].astype(str)
    names = sorted(set(known) | {str(n) for n in wide["node"].unique()})
    pods = _pods_table(raw, qs, t1, step_s)
    usage = _usage_table(raw, pods)
    resets = raw.get("quality.counter_resets")
    reset_by_node = (
        resets.groupby("node")["value"].sum().to_dict()
        if resets is not None and len(resets)
        else {}
    )
    pod_counts = usage.groupby("pod").size()
    report = quality_report(
        long,
        nodes=names,
        start=t0,
        end=t1,
        step_s=step_s,
        capacity_known={n: n in set(known) for n in names},
        counter_resets=reset_by_node,
        min_completeness=min_completeness,
        pods={
            "count": len(pods),
            "with_node": int(pods["node"].notna().sum()),
            "with_usage": len(pod_counts),
            "usage_rows": len(usage),
        },
    )
    report["prometheus_url"] = prometheus_url
    report["queries_file"] = str(qs.path)
    json_path, _ = write_quality_report(report, out)
    if not report["passed"]:
        w = report["worst"]
        raise DataQualityError(
            w["node"], w["series"], w["completeness"], min_completeness, json_path
        )

    node_set = pd.Index(known)
    nodes = pd.DataFrame(
        {
            "node": node_set.to_numpy(dtype=object),
            "cpu_cores": cores.reindex(node_set).to_numpy(dtype="float64"),
            "mem_gib": gib.reindex(node_set).to_numpy(dtype="float64"),
        }
    )
    wide = wide[wide["node"].isin(node_set)]
    wide = wide[wide["cpu_util"].notna() & wide["mem_util"].notna()]
    wide = wide.sort_values(["ts", "node"], kind="stable")
    node_metrics = pd.DataFrame(
        {"ts": _utc(wide["ts"].to_numpy()), "node": wide["node"].to_numpy(dtype=object)}
    )
    for column in [c for c in wide.columns if c not in ("ts", "node")]:
        values = wide[column].to_numpy(dtype="float64")
        if column in ("cpu_util", "mem_util"):
            values = np.clip(values, 0.0, 1.0)
        node_metrics[column] = values
    pods.loc[~pods["node"].isin(node_set), "node"] = None
    ds = ClusterDataset(
        nodes=nodes,
        node_metrics=node_metrics.reset_index(drop=True),
        pods=pods,
        pod_usage=usage.reset_index(drop=True),
        meta={
            "source": f"prometheus {prometheus_url}",
            "start": str(_utc([t0])[0]),
            "end": str(_utc([t1])[0]),
            "step_s": float(step_s),
            "horizon_s": float(t1 - t0),
            "queries_file": str(qs.path),
            "queries": {q.key: q.query for q in qs.all()},
            "quality": {"worst": report["worst"], "min_completeness": min_completeness},
        },
    )
    save_dataset(ds, out)
    return ds
