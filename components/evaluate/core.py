"""Score a trained model on the validation part of the history, beside the baselines.

The validation part (``components.train.split_time``: the last ``valid_share`` of the
node series' timeline) was never trained on. Its figures go into the model's metrics
under the names its gate's targets read, so registration promotes on data the model did
not see; the evaluation data's hash (``eval_data_id``) lets the gate compare a new
version with the champion on the same rows, re-evaluating the champion here when it was
scored on other data.

- **load**: :func:`components.train_load.evaluate_load` on the validation rows — the
  model beside persistence, seasonal-naive and EWMA forecasts of the same rows. MAE in
  points, accuracy = 1 − WAPE.
- **anomaly**: the four kinds of anomaly of :func:`components.train_anomaly.core.
  inject_anomalies` are injected into the validation part's node series; the detector and
  three baselines fitted in the same run on the same training rows (per-feature z-score,
  PCA reconstruction error, one Isolation Forest) score every node-sample. Per detector:
  the mean false-positive rate over nodes, event recall (injected events flagged at
  least once), alarm precision, detection delay of the detected events, and AUC-PR over
  all validation node-samples.
- **placement**: the simulator comparison. The validation part is replayed (the hour
  before it only fills the cluster, unmeasured) by the agent (greedy, no learning) and
  every baseline scheduler with one seed; the figures are
  :func:`simulator.metrics.summarize`'s, over the validation part only. Improvement of A
  over B = 1 − objective(A) / objective(B), the objective being the mean over node-time
  of max(0, CPU − 0.65).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.train.core import ANOMALY_WARMUP_S, DEFAULT_VALID_SHARE, split_time
from hydatis.dataset import ClusterDataset, load_dataset
from hydatis.errors import ConfigError
from hydatis.models.base import ProgressFn, TrainResult

__all__ = [
    "PLACEMENT_BASELINES",
    "PLACEMENT_WARMUP_S",
    "Evaluation",
    "apply_evaluation",
    "champion_evaluator",
    "evaluate_model",
]

PLACEMENT_BASELINES = ("default", "tlp", "lvrb", "koordinator", "crane", "random")
#: The replay of the validation part starts this long before it, to fill the cluster.
PLACEMENT_WARMUP_S = 3600.0
#: At most this many training rows fit the anomaly baselines (the latest ones).
ANOMALY_BASELINE_ROWS = 50_000


@dataclass
class Evaluation:
    """One model's validation figures.

    Attributes:
        kind: ``load``, ``anomaly`` or ``placement``.
        metrics: flat name -> value, named as the gate's targets read them.
        table: the model beside the baselines, one row per (model|baseline[, target]).
        report: a Markdown section: protocol, table, what the numbers mean.
        data_id: a hash of the evaluation data.
        extra: kind-specific details (events, per-node table, ...).
    """

    kind: str
    metrics: dict[str, float]
    table: pd.DataFrame
    report: str
    data_id: str
    extra: dict[str, Any] = field(default_factory=dict)


def _hash_frame(h: Any, frame: pd.DataFrame, cols: list[str]) -> None:
    for col in cols:
        values = frame[col]
        if values.dtype.kind == "M" or str(values.dtype).startswith("datetime"):
            h.update(values.to_numpy(dtype="datetime64[ns]").astype(np.int64).tobytes())
        elif values.dtype.kind in "fiu":
            h.update(values.to_numpy(np.float32).tobytes())
        else:
            h.update("\x00".join(values.astype(str)).encode())


def _md_table(frame: pd.DataFrame, digits: int = 4) -> str:
    if not len(frame):
        return "(no rows)\n"
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append("–" if not math.isfinite(v) else f"{v:.{digits}g}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- load


def _evaluate_load(model: Any, ds: ClusterDataset, valid_share: float) -> Evaluation:
    from components.train_load import evaluate_load

    cut = split_time(ds, valid_share)
    table = evaluate_load(model, ds, source="validation", test_share=valid_share)
    metrics: dict[str, float] = {}
    for res in ("cpu", "mem"):
        by = table[table["target"] == res].set_index("model")
        acc, mae = float(by.loc["model", "accuracy"]), float(by.loc["model", "mae_pp"])
        best = float(by.drop(index="model")["mae_pp"].min())
        metrics[f"load_{res}_accuracy"] = acc
        metrics[f"load_{res}_mae_pp"] = mae
        metrics[f"load_{res}_mae_ratio_vs_best_baseline"] = mae / best if best > 0 else math.nan
    h = hashlib.sha256(b"load-validation")
    part = ds.node_metrics[ds.node_metrics["ts"] >= cut]
    _hash_frame(h, part, ["ts", "node", "cpu_util", "mem_util"])
    h.update(str(model.horizon_s).encode())
    shown = table[["target", "model", "mae_pp", "rmse", "accuracy", "n_rows"]]
    report = (
        "## Validation: load predictor\n\n"
        f"Node series from {cut} on (never trained on), forecast {model.horizon_s:g} s "
        "ahead; the model beside persistence (the last value), seasonal-naive (the same "
        "time a day earlier, where there is one) and EWMA, on the same rows.\n\n"
        + _md_table(shown)
        + "\n`mae_pp`: mean absolute error in percentage points of utilisation; `accuracy` = "
        "1 − WAPE = 1 − Σ|error| / Σ|actual|; `rmse` in utilisation units.\n"
    )
    return Evaluation("load", metrics, table, report, h.hexdigest()[:16])


# --------------------------------------------------------------------------- anomaly


def _anomaly_training_rows(
    ds: ClusterDataset, features_dir: str | Path | None, cut: pd.Timestamp
) -> pd.DataFrame:
    from hydatis.features import node_features

    if features_dir is not None:
        from components.build_features.core import FEATURES_FILE

        feats = pd.read_parquet(Path(features_dir) / FEATURES_FILE)
    else:
        feats = node_features(ds)
    start = feats["event_timestamp"].min() + pd.Timedelta(seconds=ANOMALY_WARMUP_S)
    rows = feats[(feats["event_timestamp"] >= start) & (feats["event_timestamp"] < cut)]
    rows = rows.sort_values(["event_timestamp", "node_id"], kind="stable")
    return rows.iloc[-ANOMALY_BASELINE_ROWS:]


def _evaluate_anomaly(
    model: Any,
    ds: ClusterDataset,
    features_dir: str | Path | None,
    valid_share: float,
    seed: int,
    progress: ProgressFn | None,
) -> Evaluation:
    from components.train_anomaly.core import inject_anomalies
    from hydatis.features import feature_names, node_features
    from hydatis.models.anomaly_detector import (
        IForestBaseline,
        PCABaseline,
        ZScoreBaseline,
        persist,
    )
    from hydatis.models.anomaly_metrics import evaluate_series

    cut = split_time(ds, valid_share)
    nm = ds.node_metrics
    end = nm["ts"].max()
    nodes = sorted(ds.nodes["node"].astype(str))
    per_kind = max(1, min(3, len(nodes) // 8))
    if len(nodes) < 4 * per_kind:
        raise ConfigError(
            f"the anomaly evaluation injects into 4 nodes; the cluster has {len(nodes)}"
        )
    if progress:
        progress(0.1, "injecting anomalies into the validation part")
    injected_nm, events = inject_anomalies(nm, nodes, cut, end, per_kind=per_kind, seed=seed)
    injected = ClusterDataset(ds.nodes, injected_nm, ds.pods, ds.pod_usage, dict(ds.meta))
    step = float(nm["ts"].drop_duplicates().sort_values().diff().median().total_seconds())
    if progress:
        progress(0.3, "features of the injected history")
    feats = node_features(injected)
    valid = feats[feats["event_timestamp"] >= cut].sort_values(
        ["node_id", "event_timestamp"], kind="stable"
    )
    names = feature_names()
    x_valid = valid[names].to_numpy(np.float64)
    train_rows = _anomaly_training_rows(ds, features_dir, cut)
    x_train = train_rows[names].to_numpy(np.float64)
    common = {
        "contamination": float(getattr(model, "contamination", 0.01)),
        "validation_fraction": float(getattr(model, "validation_fraction", 0.3)),
        "min_run": int(getattr(model, "min_run", 1)),
    }
    if progress:
        progress(0.5, "fitting the baselines")
    detectors: dict[str, Any] = {"model": model}
    baselines = {
        "zscore": ZScoreBaseline(**common),
        "pca": PCABaseline(**common, random_state=seed),
        "iforest": IForestBaseline(random_state=seed, **common),
    }
    x_fit = np.nan_to_num(x_train, nan=0.0)
    for name, det in baselines.items():
        detectors[name] = det.fit(x_fit, names)

    labels = np.zeros(len(valid), dtype=np.int8)
    node_col = valid["node_id"].astype(str).to_numpy()
    ts = valid["event_timestamp"]
    for e in events.itertuples():
        labels[(node_col == e.node) & (ts >= e.start).to_numpy() & (ts < e.end).to_numpy()] = 1
    kind_of = dict(zip(events["node"], events["kind"], strict=True))
    bounds = np.flatnonzero(np.r_[True, node_col[1:] != node_col[:-1], True])

    rows: list[dict[str, Any]] = []
    per_node: list[dict[str, Any]] = []
    for i, (name, det) in enumerate(detectors.items()):
        if progress:
            progress(0.6 + 0.4 * i / len(detectors), f"scoring with {name}")
        x = x_valid if name == "model" else np.nan_to_num(x_valid, nan=0.0)
        scores = np.asarray(det.score(x), dtype=np.float64)
        fprs, precisions, false_alarms, delays_s = [], [], [], []
        events_total = detected = 0
        for lo, hi in itertools.pairwise(bounds):
            s, y = scores[lo:hi], labels[lo:hi]
            if name == "model":
                flags = persist(det.min_run, s >= det.threshold_)
            else:
                flags = det.flag(x[lo:hi], s)
            r = evaluate_series(y, s, flags, interval_s=step)
            fprs.append(r["fpr"])
            precisions.append(r["alarm_precision"])
            if not r["events"]:
                false_alarms.append(r["false_alarms_per_day"])
            events_total += r["events"]
            detected += r["detected"]
            delays_s += [d * step for d in r["delays"]]
            if name == "model":
                node = node_col[lo]
                per_node.append(
                    {
                        "node": node,
                        "kind": kind_of.get(node, "none"),
                        **{
                            k: r[k]
                            for k in ("events", "detected", "alarms", "fpr", "false_alarms_per_day")
                        },
                    }
                )
        from sklearn.metrics import average_precision_score

        auc = (
            float(average_precision_score(labels.astype(bool), np.nan_to_num(scores)))
            if labels.any()
            else math.nan
        )

        def mean(values: list[float]) -> float:
            arr = np.asarray(values, dtype=np.float64)
            arr = arr[np.isfinite(arr)]
            return float(arr.mean()) if arr.size else math.nan

        rows.append(
            {
                "detector": name,
                "fpr": mean(fprs),
                "event_recall": detected / events_total if events_total else math.nan,
                "alarm_precision": mean(precisions),
                "auc_pr": auc,
                "delay_median_s": float(np.median(delays_s)) if delays_s else math.nan,
                "delay_p95_s": float(np.percentile(delays_s, 95)) if delays_s else math.nan,
                "clean_false_alarms_per_day": mean(false_alarms),
            }
        )
    table = pd.DataFrame(rows)
    by = table.set_index("detector")
    m = by.loc["model"]
    pca_auc = float(by.loc["pca", "auc_pr"])
    metrics = {
        "anomaly_injected_fpr": float(m["fpr"]),
        "anomaly_injected_event_recall": float(m["event_recall"]),
        "anomaly_injected_alarm_precision": float(m["alarm_precision"]),
        "anomaly_injected_auc_pr": float(m["auc_pr"]),
        "anomaly_injected_auc_pr_ratio_vs_pca": float(m["auc_pr"]) / pca_auc
        if pca_auc > 0
        else math.nan,
        "anomaly_injected_delay_median_s": float(m["delay_median_s"]),
        "anomaly_injected_delay_p95_s": float(m["delay_p95_s"]),
        "anomaly_injected_clean_false_alarms_per_day": float(m["clean_false_alarms_per_day"]),
    }
    h = hashlib.sha256(f"anomaly-validation|{seed}|{per_kind}".encode())
    _hash_frame(h, nm[nm["ts"] >= cut], ["ts", "node", "cpu_util", "mem_util"])
    events_md = _md_table(
        events.assign(start=events["start"].astype(str), end=events["end"].astype(str))
    )
    report = (
        "## Validation: anomaly detector\n\n"
        f"The validation part (from {cut}, never trained on) of every node's series, with "
        f"{len(events)} injected events ({per_kind} of each kind: CPU spike +0.6 for 10 min, "
        "memory leak +0.4/h for 60 min, exporter silent 20 min, noisy neighbour +0.3 ± 0.1 "
        "for 30 min). The detector and the baselines fitted in this run on the same "
        f"training rows ({len(x_train)} node-samples) score {len(valid)} node-samples.\n\n"
        + _md_table(table)
        + "\n`fpr`: share of normal samples flagged (mean over nodes); `event_recall`: "
        "injected events flagged at least once; `alarm_precision`: share of alarms that "
        "overlap an event (mean over nodes with alarms); `auc_pr`: area under the "
        "precision-recall curve of the score over all validation samples (threshold-free); "
        "delays from an event's start to its first flag; `clean_false_alarms_per_day`: "
        "alarms per node-day on nodes without an event.\n\nInjected events:\n\n" + events_md
    )
    return Evaluation(
        "anomaly",
        metrics,
        table,
        report,
        h.hexdigest()[:16],
        {"events": events, "per_node": pd.DataFrame(per_node)},
    )


# --------------------------------------------------------------------------- placement


def _evaluate_placement(
    model: Any,
    ds: ClusterDataset,
    valid_share: float,
    seed: int,
    progress: ProgressFn | None,
) -> Evaluation:
    from components.import_trace import future_part
    from simulator.agent import AgentScheduler
    from simulator.engine import SimConfig, simulate
    from simulator.metrics import improvement, summarize
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    cut = split_time(ds, valid_share)
    t0 = ds.pods["start_ts"].min()
    cut_s = (cut - t0).total_seconds()
    end_s = (ds.node_metrics["ts"].max() - t0).total_seconds()
    lo_s = max(0.0, cut_s - PLACEMENT_WARMUP_S)
    trace = ClusterDataset(
        ds.nodes, ds.node_metrics.iloc[0:0], ds.pods, ds.pod_usage, {**ds.meta, "horizon_s": end_s}
    )
    window = future_part(trace, lo_s, end_s)
    workload = compile_workload(window)
    cfg = SimConfig(warmup_s=cut_s - lo_s)
    schedulers: list[tuple[str, Any]] = [("agent", AgentScheduler(model))]
    schedulers += [(name, make_scheduler(name)) for name in PLACEMENT_BASELINES]
    rows: dict[str, dict[str, Any]] = {}
    for i, (name, sched) in enumerate(schedulers):
        if progress:
            progress(i / len(schedulers), f"replaying the validation part with {name}")
        rows[name] = summarize(simulate(workload, sched, seed=seed, config=cfg))
    obj = {name: r["objective"] for name, r in rows.items()}
    for r in rows.values():
        r["improvement_vs_random_pct"] = 100.0 * improvement(r["objective"], obj["random"])
    agent = rows["agent"]
    hot_default = rows["default"]["hot_share"]
    metrics = {
        "placement_improvement_vs_random_pct": agent["improvement_vs_random_pct"],
        "placement_hot_share_ratio_vs_default": agent["hot_share"] / hot_default
        if hot_default > 0
        else math.nan,
        "placement_objective": agent["objective"],
        "placement_hot_share": agent["hot_share"],
        "placement_availability": agent["availability"],
    }
    for name in PLACEMENT_BASELINES:
        metrics[f"placement_improvement_vs_{name}_pct"] = 100.0 * improvement(
            agent["objective"], obj[name]
        )
    cols = [
        "objective",
        "improvement_vs_random_pct",
        "mean_cpu",
        "p95_cpu",
        "hot_share",
        "target_band_share",
        "spread",
        "availability",
        "never_placed",
    ]
    table = pd.DataFrame([{"scheduler": n, **{c: r[c] for c in cols}} for n, r in rows.items()])
    h = hashlib.sha256(f"placement-validation|{seed}|{lo_s}|{cut_s}|{end_s}".encode())
    for arr in (workload.arrival, workload.req_cpu, workload.usage_cpu):
        h.update(np.ascontiguousarray(arr).tobytes())
    report = (
        "## Validation: placement agent in the simulator\n\n"
        f"The validation part ({(end_s - cut_s) / 3600:.1f} h from {cut}; {workload.n_pods} "
        f"pods, {workload.n_nodes} nodes) replayed by the agent (greedy) and every baseline, "
        f"seed {seed}; the hour before it fills the cluster and is not measured.\n\n"
        + _md_table(table)
        + "\n`objective`: mean over node-time of max(0, CPU − 0.65), lower is better; "
        "`improvement_vs_random_pct` = 100 · (1 − objective / objective of random); "
        "`hot_share`: node-time above 0.85 CPU; `target_band_share`: node-time within "
        "0.65 ± 0.05; `spread`: standard deviation of CPU across nodes; `availability` = "
        "1 − impacted / alive pod-time.\n"
    )
    return Evaluation("placement", metrics, table, report, h.hexdigest()[:16])


# --------------------------------------------------------------------------- API


def evaluate_model(
    kind: str,
    model: Any,
    dataset: ClusterDataset | str | Path,
    *,
    features_dir: str | Path | None = None,
    valid_share: float = DEFAULT_VALID_SHARE,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> Evaluation:
    """Score ``model`` (of ``kind``) on the validation part of ``dataset`` beside the
    baselines (module docstring).

    Args:
        kind: ``load``, ``anomaly`` or ``placement``.
        model: the fitted native model.
        dataset: the pipeline's dataset (or its directory).
        features_dir: the offline feature table (the anomaly baselines fit on its
            training rows; computed when None).
        valid_share: the validation part's share of the timeline (as in training).
        seed: seeds the injection and the replays.
        progress: called with the fraction done and what is being done.
    """
    ds = dataset if isinstance(dataset, ClusterDataset) else load_dataset(dataset)
    if kind == "load":
        return _evaluate_load(model, ds, valid_share)
    if kind == "anomaly":
        return _evaluate_anomaly(model, ds, features_dir, valid_share, seed, progress)
    if kind == "placement":
        return _evaluate_placement(model, ds, valid_share, seed, progress)
    raise ConfigError(f"unknown model kind {kind!r}: use load, anomaly or placement")


def apply_evaluation(result: TrainResult, ev: Evaluation, table_path: str | Path) -> TrainResult:
    """Fold ``ev`` into ``result`` for registration: the validation figures replace the
    trainer's figures of the same name (kept as ``train_<name>``), the evaluation table
    becomes the result's table (the trainer's is written to ``table_path`` and logged as
    an artifact), the report gains the validation section, and ``eval_data_id`` names the
    validation data."""
    metrics = dict(result.metrics)
    for key, value in ev.metrics.items():
        if key in metrics:
            metrics[f"train_{key}"] = metrics[key]
        metrics[key] = value
    if len(result.table):
        Path(table_path).parent.mkdir(parents=True, exist_ok=True)
        result.table.to_csv(table_path, index=False)
        result.artifacts = {**result.artifacts, "training_table": Path(table_path)}
    result.metrics = metrics
    result.table = ev.table
    result.report = (result.report or "").rstrip() + "\n\n" + ev.report
    result.eval_data_id = ev.data_id
    return result


def champion_evaluator(
    kind: str,
    dataset: ClusterDataset | str | Path,
    *,
    features_dir: str | Path | None = None,
    valid_share: float = DEFAULT_VALID_SHARE,
    seed: int = 0,
) -> Callable[[Any], dict[str, float]]:
    """A function scoring any model of ``kind`` on this validation data: what
    :func:`components.register.register` calls to compare a new version with a champion
    evaluated elsewhere."""
    ds = dataset if isinstance(dataset, ClusterDataset) else load_dataset(dataset)

    def evaluate(model: Any) -> dict[str, float]:
        return evaluate_model(
            kind, model, ds, features_dir=features_dir, valid_share=valid_share, seed=seed
        ).metrics

    return evaluate
