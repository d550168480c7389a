"""Train the three models on the pipeline's own data: the *training part* of the history.

The pipeline's dataset is the cluster's history up to now (``components.import_trace``).
It is split once, by time, into

- the **training part** — the first ``1 − valid_share`` of the node series' timeline —
  which is all that training sees (each trainer splits it again inside for its own
  protocol: early stopping and a held-out tail for the load predictor, held-out episodes
  for the placement agent);
- the **validation part** — the rest — which only ``components.evaluate`` reads, to score
  the models beside the baselines before registration and the gate.

A pod still running at the cut is, in the training part, still running (no end time):
its later life is not revealed. The trace's future beyond the history (the demo's
held-out replay) is never part of the dataset at all.

The models:

- **load** — :func:`components.train_load.train_load` on the training part's node series
  (one 5-min horizon);
- **anomaly** — an :class:`~hydatis.models.anomaly_detector.AnomalyDetector` fitted, as
  the trainer's cluster model is (same parameters, the same derived deviations), on the
  offline feature table's rows of the training part after its first hour;
- **placement** — :func:`components.train_placement.train_placement` on the training part
  as a trace: episodes over its first ``PLACEMENT_TRAIN_FRACTION``, evaluated beside
  random, default and TLP over the rest.

A training is kept as a *bundle* directory (:func:`save_bundle`, :func:`load_bundle`): the
model, ``result.json`` (parameters, metrics, targets, ...), ``report.md``, ``table.csv``,
so that it passes between pipeline steps as one artifact.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hydatis.dataset import ClusterDataset, load_dataset
from hydatis.errors import ConfigError
from hydatis.models.base import ProgressFn, Target, TrainResult

__all__ = [
    "ANOMALY_TARGETS",
    "BUDGETS",
    "DEFAULT_VALID_SHARE",
    "KINDS",
    "PLACEMENT_TRAIN_FRACTION",
    "TrainBudget",
    "load_bundle",
    "load_model",
    "resolve_params",
    "save_bundle",
    "split_time",
    "train_model",
    "training_part",
]

KINDS = ("load", "anomaly", "placement")
DEFAULT_VALID_SHARE = 0.25
#: The placement trainer's own split of the training part (episodes / its evaluation).
PLACEMENT_TRAIN_FRACTION = 0.75
#: Rows of the first hour have incomplete 1-hour windows: the detector skips them.
ANOMALY_WARMUP_S = 3600.0
LOAD_HORIZON_S = 300
#: The anomaly detector's gate on the cluster (checked by ``components.evaluate`` on the
#: validation part with injected anomalies): the trainer's targets where they apply to
#: a cluster — false-positive rate, event recall, detection delay, beating PCA.
ANOMALY_TARGETS = [
    Target("anomaly_injected_fpr", "<=", 0.08),
    Target("anomaly_injected_event_recall", ">=", 0.5),
    Target("anomaly_injected_delay_p95_s", "<=", 30.0),
    Target("anomaly_injected_auc_pr_ratio_vs_pca", ">", 1.0),
]
ANOMALY_PRIMARY = "anomaly_injected_auc_pr"
_RESULT, _REPORT, _TABLE, _MODEL, _ARTIFACTS = (
    "result.json",
    "report.md",
    "table.csv",
    "model",
    "artifacts",
)


@dataclass(frozen=True)
class TrainBudget:
    """How much data and training each model gets (not its hyperparameters: those come
    from tuning).

    Attributes:
        load_max_train_rows: cap on the load predictor's training rows (a seeded subset
            of the training part; None = all).
        anomaly_max_rows: cap on the detector's training rows (the latest ones).
        placement_episodes: the agent's training episodes.
        placement_episode_s: the length of an episode window.
        placement_slices: episode windows, spread over the agent's training period.
    """

    load_max_train_rows: int | None
    anomaly_max_rows: int | None
    placement_episodes: int
    placement_episode_s: float
    placement_slices: int


#: ``tiny`` for tests, ``quick`` for the demo (minutes on two cores), ``full`` the
#: trainers' own defaults.
BUDGETS: dict[str, TrainBudget] = {
    "tiny": TrainBudget(5_000, 5_000, 2, 1800.0, 2),
    "quick": TrainBudget(15_000, 100_000, 10, 3600.0, 4),
    "full": TrainBudget(200_000, None, 40, 7200.0, 6),
}


def budget(name: str) -> TrainBudget:
    """The budget called ``name``.

    Raises:
        ConfigError: no such budget.
    """
    try:
        return BUDGETS[name]
    except KeyError:
        raise ConfigError(f"unknown training budget {name!r}: use one of {list(BUDGETS)}") from None


# --------------------------------------------------------------------------- split


def split_time(ds: ClusterDataset, valid_share: float = DEFAULT_VALID_SHARE) -> pd.Timestamp:
    """The cut between the training and the validation part: the first node sample plus
    ``1 − valid_share`` of the node series' span, on a whole second.

    Raises:
        ConfigError: ``valid_share`` outside (0, 1), or no node series.
    """
    if not 0.0 < valid_share < 1.0:
        raise ConfigError(f"valid_share must be in (0, 1), got {valid_share}")
    ts = ds.node_metrics["ts"]
    if not len(ts):
        raise ConfigError("the dataset has no node series to split")
    lo, hi = ts.min(), ts.max()
    return (lo + (hi - lo) * (1.0 - valid_share)).floor("s")


def training_part(ds: ClusterDataset, valid_share: float = DEFAULT_VALID_SHARE) -> ClusterDataset:
    """``ds`` as it stood at :func:`split_time`: node samples and usage before the cut,
    pods started before it (still running at the cut → no end time)."""
    cut = split_time(ds, valid_share)
    nm = ds.node_metrics.loc[ds.node_metrics["ts"] < cut].reset_index(drop=True)
    pods = ds.pods.loc[ds.pods["start_ts"] < cut].copy()
    pods.loc[pods["end_ts"] >= cut, "end_ts"] = pd.NaT
    usage = ds.pod_usage.loc[
        (ds.pod_usage["ts"] < cut) & ds.pod_usage["pod"].isin(pods["pod"])
    ].reset_index(drop=True)
    t0 = min(nm["ts"].min(), pods["start_ts"].min()) if len(pods) else nm["ts"].min()
    meta = {k: v for k, v in ds.meta.items() if k != "ramp_s"}
    meta.update(
        {"horizon_s": float((cut - t0).total_seconds()), "cut": str(cut), "part": "training"}
    )
    return ClusterDataset(ds.nodes, nm, pods.reset_index(drop=True), usage, meta)


# --------------------------------------------------------------------------- bundles


def load_model(kind: str, path: str | Path) -> Any:
    """The native model of ``kind`` saved in ``path``."""
    if kind == "load":
        from hydatis.models.load_predictor import LoadPredictor

        return LoadPredictor.load(path)
    if kind == "anomaly":
        from hydatis.models.anomaly_detector import AnomalyDetector

        return AnomalyDetector.load(path)
    if kind == "placement":
        from hydatis.models.placement_agent import PlacementAgent

        return PlacementAgent.load(path)
    raise ConfigError(f"unknown model kind {kind!r}: use one of {list(KINDS)}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def save_bundle(result: TrainResult, path: str | Path) -> Path:
    """Write ``result`` as a bundle directory (module docstring); return ``path``."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = out / _MODEL
    if model_dir.exists():
        shutil.rmtree(model_dir)
    if result.name == "placement":
        result.model.save(model_dir, optimizer=False)
    else:
        result.model.save(model_dir)
    artifacts: dict[str, str] = {}
    art_dir = out / _ARTIFACTS
    for key, src in result.artifacts.items():
        src = Path(src)
        if not src.exists():
            continue
        dest = art_dir / src.name
        if src.resolve() != dest.resolve():
            art_dir.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True)
            else:
                shutil.copyfile(src, dest)
        artifacts[key] = f"{_ARTIFACTS}/{src.name}"
    record = {
        "name": result.name,
        "params": _jsonable(result.params),
        "metrics": _jsonable(result.metrics),
        "targets": [[t.metric, t.op, t.value] for t in result.targets],
        "primary": result.primary,
        "higher_is_better": result.higher_is_better,
        "features": list(result.features),
        "eval_data_id": result.eval_data_id,
        "artifacts": artifacts,
    }
    (out / _RESULT).write_text(json.dumps(record, indent=2))
    (out / _REPORT).write_text(result.report or "")
    result.table.to_csv(out / _TABLE, index=False)
    return out


def load_bundle(path: str | Path) -> TrainResult:
    """Read a bundle written by :func:`save_bundle` (the model loaded)."""
    base = Path(path)
    record = json.loads((base / _RESULT).read_text())
    try:
        table = pd.read_csv(base / _TABLE)
    except pd.errors.EmptyDataError:
        table = pd.DataFrame()
    metrics = {k: (math.nan if v is None else v) for k, v in record["metrics"].items()}
    return TrainResult(
        name=record["name"],
        model=load_model(record["name"], base / _MODEL),
        params=record["params"],
        metrics=metrics,
        table=table,
        targets=[Target(m, op, float(v)) for m, op, v in record["targets"]],
        primary=record["primary"],
        higher_is_better=bool(record["higher_is_better"]),
        report=(base / _REPORT).read_text(),
        features=list(record["features"]),
        artifacts={k: base / v for k, v in record.get("artifacts", {}).items()},
        eval_data_id=record.get("eval_data_id", ""),
    )


# --------------------------------------------------------------------------- training


def _train_load(
    ds: ClusterDataset,
    params: dict[str, Any],
    b: TrainBudget,
    seed: int,
    out: Path,
    progress: ProgressFn | None,
) -> TrainResult:
    from components.train_load import train_load

    result = train_load(
        datasets={"cluster": training_part(ds, params.pop("_valid_share"))},
        horizons=(LOAD_HORIZON_S,),
        seed=seed,
        progress=progress,
        params=params or None,
        max_train_rows=b.load_max_train_rows,
        out_dir=out,
    )
    return result


def _train_anomaly(
    ds: ClusterDataset,
    features_dir: str | Path,
    params: dict[str, Any],
    b: TrainBudget,
    seed: int,
    progress: ProgressFn | None,
) -> TrainResult:
    from components.build_features.core import FEATURES_FILE
    from components.train_anomaly.core import CLUSTER_DERIVED, DEFAULT_PARAMS
    from hydatis.features import feature_names
    from hydatis.models.anomaly_detector import AnomalyDetector

    valid_share = params.pop("_valid_share")
    cut = split_time(ds, valid_share)
    p = {**DEFAULT_PARAMS, **params}
    unknown = set(p) - set(DEFAULT_PARAMS)
    if unknown:
        raise ConfigError(f"unknown anomaly params: {sorted(unknown)}")
    if progress:
        progress(0.1, "reading the feature table")
    feats = pd.read_parquet(Path(features_dir) / FEATURES_FILE)
    start = feats["event_timestamp"].min() + pd.Timedelta(seconds=ANOMALY_WARMUP_S)
    rows = feats[(feats["event_timestamp"] >= start) & (feats["event_timestamp"] < cut)]
    rows = rows.sort_values(["event_timestamp", "node_id"], kind="stable")
    if b.anomaly_max_rows is not None and len(rows) > b.anomaly_max_rows:
        rows = rows.iloc[-b.anomaly_max_rows :]  # the latest: thresholds come from the tail
    if not len(rows):
        raise ConfigError(
            f"no feature rows between {start} and the cut {cut}: the history is too short "
            "for the anomaly detector (it needs more than an hour before the cut)"
        )
    names = feature_names()
    if progress:
        progress(0.3, f"fitting on {len(rows)} node-samples")
    t0 = time.perf_counter()
    model = AnomalyDetector(**{**p, "derived": CLUSTER_DERIVED}, random_state=seed)
    model.fit(rows[names].to_numpy(np.float64), names)
    fit_s = time.perf_counter() - t0
    report = (
        "# Anomaly detector (cluster) — training\n\n"
        f"Fitted on the offline feature table of the training part: {len(rows)} "
        f"node-samples of {rows['node_id'].nunique()} nodes from {rows['event_timestamp'].min()} "
        f"to {rows['event_timestamp'].max()} (the first hour of history skipped: its 1-hour "
        "windows are incomplete); thresholds from the last "
        f"{p['validation_fraction']:.0%} of those rows. Inputs: the serving feature columns "
        "plus the deviations "
        + ", ".join(f"`{a}-{c}`" for a, c in CLUSTER_DERIVED)
        + f". Fit in {fit_s:.1f} s.\n"
    )
    return TrainResult(
        name="anomaly",
        model=model,
        params={**p, "seed": seed, "train_rows": len(rows), "cut": str(cut)},
        metrics={"anomaly_train_rows": float(len(rows)), "anomaly_fit_seconds": fit_s},
        table=pd.DataFrame(),
        targets=list(ANOMALY_TARGETS),
        primary=ANOMALY_PRIMARY,
        higher_is_better=True,
        report=report,
        features=list(model.feature_names_),
    )


def _train_placement(
    ds: ClusterDataset,
    params: dict[str, Any],
    b: TrainBudget,
    seed: int,
    progress: ProgressFn | None,
) -> TrainResult:
    from components.train_placement import train_placement

    part = training_part(ds, params.pop("_valid_share"))
    no_series = part.node_metrics.iloc[0:0]
    trace = ClusterDataset(part.nodes, no_series, part.pods, part.pod_usage, part.meta)
    overrides = {
        **params,
        "train_fraction": PLACEMENT_TRAIN_FRACTION,
        "episode_s": b.placement_episode_s,
        "n_slices": b.placement_slices,
    }
    return train_placement(
        dataset=trace,
        episodes=b.placement_episodes,
        seed=seed,
        progress=progress,
        params=overrides,
    )


def train_model(
    kind: str,
    dataset_dir: str | Path,
    *,
    features_dir: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    budget_name: str = "quick",
    valid_share: float = DEFAULT_VALID_SHARE,
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train the model ``kind`` on the training part of the dataset at ``dataset_dir``.

    Args:
        kind: ``load``, ``anomaly`` or ``placement``.
        dataset_dir: the pipeline's dataset (the history).
        features_dir: the offline feature table's directory (``components.build_features``;
            the anomaly detector reads it).
        params: the model's hyperparameters (the trainer's values, e.g. tuning's best);
            None = the trainer's defaults.
        budget_name: ``tiny``, ``quick`` or ``full`` (:data:`BUDGETS`).
        valid_share: the share of the timeline kept for validation (never trained on).
        seed: seeds the training.
        out_dir: where the trainer may write extra artifacts (default: a temporary one).
        progress: called with the fraction done and what is being done.

    Returns:
        The :class:`TrainResult` (its metrics are the trainer's own, on the training part;
        ``components.evaluate`` adds the validation figures the gate reads).
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}: use one of {list(KINDS)}")
    b = budget(budget_name)
    split_params = {**(params or {}), "_valid_share": valid_share}
    ds = load_dataset(dataset_dir)
    if kind == "load":
        import tempfile

        out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="hydatis-train-"))
        result = _train_load(ds, split_params, b, seed, out, progress)
    elif kind == "anomaly":
        if features_dir is None:
            raise ConfigError("the anomaly detector trains on the feature table: give features_dir")
        result = _train_anomaly(ds, features_dir, split_params, b, seed, progress)
    else:
        result = _train_placement(ds, split_params, b, seed, progress)
    result.params = {
        **result.params,
        "budget": budget_name,
        "valid_share": valid_share,
        "training_cut": str(split_time(ds, valid_share)),
    }
    return result


def resolve_params(kind: str, params_json: str = "") -> tuple[dict[str, Any], str]:
    """The hyperparameters to train ``kind`` with, and where they come from.

    ``params_json`` (a JSON object, e.g. the tuning step's output) wins when given;
    otherwise the last local search's best (``<work dir>/tuning/<kind>_best.json``, what
    ``hydatis tune`` and the training pipeline write) when there is one; otherwise the
    trainer's defaults (an empty dict).
    """
    text = (params_json or "").strip()
    if text:
        try:
            params = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"params for {kind} are not JSON: {exc}") from exc
        if not isinstance(params, dict):
            raise ConfigError(f"params for {kind} must be a JSON object, got {text[:80]!r}")
        return params, "given" if params else "defaults"
    try:
        from katib.local import load_best
    except ImportError:  # katib is not installed beside the components
        return {}, "defaults"
    record = load_best(kind)
    if record and record.get("params"):
        return dict(record["params"]), f"last search ({record.get('created', 'undated')})"
    return {}, "defaults"
