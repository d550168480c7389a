"""What one trial measures: a model trained with given parameters, scored on a split.

Pure adapter over the trainers (``components.train_*``); no Katib, no Optuna. Every
trial runs the trainer's own protocol with its ``params`` overrides, on one of two splits
that never overlap the data the final comparison is scored on:

- ``valid`` — what the search optimises. Carved from the *training* side of each
  model's split, so the held-out test data is never read:

  * **load**: each source's timeline is cut at the trainer's test cutoff (the last
    :data:`TEST_SHARE` is dropped, computed on the same feature timeline the trainer
    splits); the trainer then runs on what is left, its last :data:`VALID_SHARE` being
    the part scored;
  * **placement**: the training trace is cut at the end of the trainer's training
    period (``train_fraction`` of its horizon); episodes replay the first
    :data:`VALID_TRAIN_FRACTION` of that period and the agent is scored on the rest;
  * **anomaly**: the detectors fit on each entity's unlabelled train part, as in the
    trainer; labels exist only in the entity's test part, so its first half (in time) is
    the validation part.

- ``test`` — the held-out split, for the benchmark only (the trial entry point has no
  way to ask for it): the trainer's own test part for load (last 20 % of each source)
  and placement (the evaluation trace drawn with ``seed + EVAL_SEED_OFFSET``, scored
  after its training period), and the second half of each entity's labelled part for
  anomaly.

A *budget* scales the data and the training so that a local search is quick
(:data:`BUDGETS`); ``full`` is each trainer's default budget. The metrics returned are
plain floats named as in ``spaces.yaml``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hydatis.errors import ConfigError

__all__ = [
    "BUDGETS",
    "SPLITS",
    "TEST_SHARE",
    "VALID_SHARE",
    "VALID_TRAIN_FRACTION",
    "AnomalyBudget",
    "LoadBudget",
    "PlacementBudget",
    "budget_of",
    "evaluate",
    "event_f1",
    "prepare",
]

Split = Literal["valid", "test"]
SPLITS: tuple[Split, ...] = ("valid", "test")
ProgressFn = Callable[[float, str], None]

#: The load trainer's held-out share of each source's timeline (``train_load``'s default).
TEST_SHARE = 0.2
#: The share of the training period (load) the validation part takes.
VALID_SHARE = 0.25
#: Placement: the share of the training period the validation run's episodes replay.
VALID_TRAIN_FRACTION = 0.75


@dataclass(frozen=True)
class LoadBudget:
    """Data and rows of one load trial: Bitbrains VMs read (None: all), each source's
    training rows (a seeded subset of the training part), and XGBoost's threads (None:
    the model's default). One thread is the small budgets' choice: on a shared 2-core
    machine two OpenMP threads ran 3-4x *slower* than one (measured), and the result
    does not depend on it."""

    max_vms: int | None
    max_train_rows: int | None
    threads: int | None = None


@dataclass(frozen=True)
class AnomalyBudget:
    """Entities per labelled dataset (the loaders' order; None: all)."""

    smd_entities: int | None
    asd_entities: int | None


@dataclass(frozen=True)
class PlacementBudget:
    """Trace size and training length of one placement trial."""

    nodes: int
    horizon_s: float
    episodes: int
    episode_s: float
    n_slices: int


def _full_budgets() -> dict[str, Any]:
    from components.train_load.core import MAX_TRAIN_ROWS
    from components.train_placement.core import (
        DEFAULT_EPISODES,
        DEFAULT_HORIZON_S,
        DEFAULT_NODES,
        DEFAULT_PARAMS,
    )

    return {
        "load": LoadBudget(max_vms=None, max_train_rows=MAX_TRAIN_ROWS),
        "anomaly": AnomalyBudget(smd_entities=None, asd_entities=None),
        "placement": PlacementBudget(
            nodes=DEFAULT_NODES,
            horizon_s=DEFAULT_HORIZON_S,
            episodes=DEFAULT_EPISODES,
            episode_s=float(DEFAULT_PARAMS["episode_s"]),
            n_slices=int(DEFAULT_PARAMS["n_slices"]),
        ),
    }


#: Named budgets per model; ``full`` (the trainers' defaults) is resolved on use.
BUDGETS: dict[str, dict[str, Any]] = {
    "load": {
        "tiny": LoadBudget(max_vms=3, max_train_rows=3_000, threads=1),
        "small": LoadBudget(max_vms=12, max_train_rows=12_000, threads=1),
    },
    "anomaly": {
        "tiny": AnomalyBudget(smd_entities=1, asd_entities=1),
        "small": AnomalyBudget(smd_entities=2, asd_entities=5),
    },
    "placement": {
        "tiny": PlacementBudget(
            nodes=12, horizon_s=4 * 3600.0, episodes=3, episode_s=1800.0, n_slices=2
        ),
        "small": PlacementBudget(
            nodes=50, horizon_s=8 * 3600.0, episodes=20, episode_s=3600.0, n_slices=4
        ),
    },
}
BUDGET_NAMES = ("tiny", "small", "full")


def budget_of(model: str, name: str) -> Any:
    """The budget ``name`` (``tiny``, ``small``, ``full``) of ``model``.

    Raises:
        ConfigError: unknown model or budget.
    """
    if model not in BUDGETS:
        raise ConfigError(f"unknown model {model!r}: use one of {', '.join(BUDGETS)}")
    if name == "full":
        return _full_budgets()[model]
    if name not in BUDGETS[model]:
        raise ConfigError(f"unknown budget {name!r}: use one of {', '.join(BUDGET_NAMES)}")
    return BUDGETS[model][name]


def budget_dict(model: str, name: str) -> dict[str, Any]:
    """The budget's knobs as a plain dict (for reports and the best-parameters file)."""
    return asdict(budget_of(model, name))


# --------------------------------------------------------------------------- data


def prepare(
    model: str,
    budget: str,
    *,
    seed: int = 0,
    split: Split = "valid",
    data_dir: str | Path | None = None,
) -> Any:
    """Read (and cut) the data a trial of ``model`` needs on ``split``.

    The expensive, parameter-free part of a trial: a caller running many trials in one
    process prepares once and passes the result to :func:`evaluate`.

    Raises:
        ConfigError: no data directory where the model needs the real data (load,
            anomaly), or an unknown model, budget or split.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}: use one of {SPLITS}")
    b = budget_of(model, budget)
    if model == "load":
        return _load_data(b, split, data_dir)
    if model == "anomaly":
        return _anomaly_data(b, data_dir)
    return _placement_data(b, seed, split)


def _load_data(b: LoadBudget, split: Split, data_dir: str | Path | None) -> dict[str, Any]:
    from components.train_load import real_datasets

    datasets = real_datasets(data_dir, max_vms=b.max_vms)
    if split == "test":
        return datasets
    return {name: training_period(ds) for name, ds in datasets.items()}


def training_period(ds: Any, test_share: float = TEST_SHARE) -> Any:
    """A load dataset without its held-out part: node samples before the cutoff the load
    trainer computes for ``test_share`` (on the same feature timeline it splits)."""
    from components.train_load import time_split
    from hydatis.dataset import ClusterDataset
    from hydatis.features import node_features

    features = node_features(ds)
    _, _, cut = time_split(features["event_timestamp"], test_share=test_share)
    metrics = ds.node_metrics.loc[ds.node_metrics["ts"] < cut].reset_index(drop=True)
    meta = {**ds.meta, "cut_before": str(cut)}
    return ClusterDataset(ds.nodes, metrics, ds.pods, ds.pod_usage, meta)


def _anomaly_data(b: AnomalyBudget, data_dir: str | Path | None) -> list[Any]:
    from hydatis.config import require_data_dir
    from simulator.importers.anomaly_data import load_asd, load_smd

    base = data_dir if data_dir is not None else require_data_dir()
    smd, asd = load_smd(base), load_asd(base)
    return smd[: b.smd_entities] + asd[: b.asd_entities]


def _placement_data(b: PlacementBudget, seed: int, split: Split) -> dict[str, Any]:
    from components.train_placement.core import (
        DEFAULT_LOAD_FACTOR,
        DEFAULT_PARAMS,
        DEFAULT_USAGE_SCALE,
        EVAL_SEED_OFFSET,
        time_window,
    )
    from simulator.datasets import default_dataset

    knobs = {
        "nodes": b.nodes,
        "load_factor": DEFAULT_LOAD_FACTOR,
        "usage_scale": DEFAULT_USAGE_SCALE,
        "horizon_s": b.horizon_s,
    }
    train, _ = default_dataset(**knobs, seed=seed)
    if split == "valid":
        end = float(DEFAULT_PARAMS["train_fraction"]) * b.horizon_s
        return {"dataset": time_window(train, 0.0, end), "eval_dataset": None}
    test, _ = default_dataset(**knobs, seed=seed + EVAL_SEED_OFFSET)
    return {"dataset": train, "eval_dataset": test}


# --------------------------------------------------------------------------- evaluation


def evaluate(
    model: str,
    params: dict[str, Any],
    *,
    budget: str = "small",
    seed: int = 0,
    split: Split = "valid",
    repeats: int = 1,
    data: Any = None,
    data_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, float]:
    """Train ``model`` with ``params`` (trainer values) and score it on ``split``.

    Args:
        model: ``load``, ``anomaly`` or ``placement``.
        params: overrides of the trainer's defaults (:meth:`katib.spaces.Space.to_trainer`).
        budget: ``tiny``, ``small`` or ``full`` (:data:`BUDGETS`).
        seed: seeds the trainer (and the placement traces).
        split: ``valid`` (what a search optimises) or ``test`` (held out).
        repeats: train this many times, with trainer seeds ``seed, seed + 1, ...`` on the
            same data, and average each metric: a training as noisy as the agent's (one
            seed to the next moves its objective by ~10 %) needs it for a comparison.
        data: what :func:`prepare` returned for the same model, budget, seed and split;
            None reads it now.
        data_dir: the trace directory (default: the configured one).
        progress: called with the fraction done and what is being done.

    Returns:
        The metrics named in ``spaces.yaml`` (objective and additional), as floats
        (NaN where undefined), plus a few per-source or per-dataset figures; with
        ``repeats > 1`` each is the mean over the runs (NaN runs left out).
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    b = budget_of(model, budget)
    if data is None:
        data = prepare(model, budget, seed=seed, split=split, data_dir=data_dir)
    runs = []
    for i in range(repeats):
        step = None
        if progress is not None:
            step = _scaled(progress, i / repeats, 1.0 / repeats)
        if model == "load":
            runs.append(_load_eval(params, data, b, seed + i, split, step))
        elif model == "anomaly":
            runs.append(_anomaly_eval(params, data, seed + i, split, step))
        else:
            runs.append(_placement_eval(params, data, b, seed + i, split, step))
    if repeats == 1:
        return runs[0]
    return {k: _nanmean([r.get(k, math.nan) for r in runs]) for k in runs[0]}


def _scaled(progress: ProgressFn, start: float, width: float) -> ProgressFn:
    return lambda fraction, what: progress(start + width * fraction, what)


def _load_eval(
    params: dict[str, Any],
    datasets: dict[str, Any],
    b: LoadBudget,
    seed: int,
    split: Split,
    progress: ProgressFn | None,
) -> dict[str, float]:
    from components.train_load.core import PRIMARY_HORIZON_S, train_load

    if b.threads is not None:
        params = {"n_jobs": b.threads, **params}
    with tempfile.TemporaryDirectory(prefix="hydatis-trial-") as tmp:
        result = train_load(
            datasets=datasets,
            horizons=(PRIMARY_HORIZON_S,),
            test_share=VALID_SHARE if split == "valid" else TEST_SHARE,
            seed=seed,
            progress=progress,
            params=params,
            max_train_rows=b.max_train_rows,
            out_dir=tmp,
        )
    m = result.metrics
    table = result.table
    model_rows = table[(table["model"] == "model") & (table["target"] == "cpu")]
    out = {
        "load_cpu_accuracy": float(m["load_cpu_accuracy"]),
        "load_mem_accuracy": float(m["load_mem_accuracy"]),
        "load_cpu_wape": 1.0 - float(m["load_cpu_accuracy"]),
        "load_mem_wape": 1.0 - float(m["load_mem_accuracy"]),
        "load_cpu_mae_pp": float(model_rows["mae_pp"].max()),
        "load_cpu_mae_ratio_vs_best_baseline": float(m["load_cpu_mae_ratio_vs_best_baseline"]),
        "load_train_seconds": float(m["load_train_seconds"]),
    }
    for key, value in m.items():
        if key.startswith(("load_cpu_accuracy_", "load_mem_accuracy_")):
            out[key] = float(value)
    return out


def event_f1(alarm_precision: float, event_recall: float) -> float:
    """Harmonic mean of alarm precision and event recall: one figure that rewards
    catching events with few false alarms, so the thresholds (contamination, vote
    threshold, min run) matter.

    No event detected (recall 0) gives 0 whatever the precision — also when there was
    no alarm at all (precision undefined), as scikit-learn's F1 does; no event to find
    (recall undefined) gives NaN.
    """
    p, r = float(alarm_precision), float(event_recall)
    if math.isnan(r):
        return math.nan
    if r == 0.0:
        return 0.0
    if math.isnan(p):
        return math.nan
    return 0.0 if p + r == 0 else 2.0 * p * r / (p + r)


def _nanmean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else math.nan


def _anomaly_eval(
    params: dict[str, Any],
    entities: list[Any],
    seed: int,
    split: Split,
    progress: ProgressFn | None,
) -> dict[str, float]:
    from components.train_anomaly.core import DEFAULT_PARAMS
    from hydatis.models.anomaly_detector import AnomalyDetector
    from hydatis.models.anomaly_metrics import evaluate_series

    if not entities:
        raise ConfigError("no labelled entity to evaluate the anomaly detector on")
    p = {**DEFAULT_PARAMS, **params}
    unknown = set(p) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"unknown anomaly params: {sorted(unknown)}")
    per: dict[str, dict[str, list[float]]] = {}
    for i, e in enumerate(entities):
        if progress is not None:
            progress(i / len(entities), f"{e.dataset} {e.name}")
        half = len(e.test) // 2
        part = slice(0, half) if split == "valid" else slice(half, None)
        detector = AnomalyDetector(**p, random_state=seed).fit(e.train, e.feature_names)
        x = e.test[part]
        scores = detector.score(x)
        flags = detector.flag(x, scores)
        r = evaluate_series(e.labels[part], scores, flags, interval_s=e.interval_s)
        figures = per.setdefault(e.dataset, {})
        true_alarms = round(r["alarm_precision"] * r["alarms"]) if r["alarms"] else 0
        counts = {"alarms": r["alarms"], "true_alarms": true_alarms}
        counts |= {"events": r["events"], "detected": r["detected"]}
        for key, value in (*counts.items(), ("auc_pr", r["auc_pr"]), ("fpr", r["fpr"])):
            figures.setdefault(key, []).append(float(value))
    if progress is not None:
        progress(1.0, "scored")
    out: dict[str, float] = {}
    f1s, precisions, recalls, aucs, fprs = [], [], [], [], []
    for dataset, f in per.items():
        # Pooled over the dataset's entities (a few events each): steadier than a mean
        # of per-entity ratios, where an entity with one alarm moves the mean by 0 or 1.
        alarms, events = sum(f["alarms"]), sum(f["events"])
        precision = sum(f["true_alarms"]) / alarms if alarms else math.nan
        recall = sum(f["detected"]) / events if events else math.nan
        figures = {
            "event_f1": event_f1(precision, recall),
            "alarm_precision": precision,
            "event_recall": recall,
            "auc_pr": _nanmean(f["auc_pr"]),
            "fpr": _nanmean(f["fpr"]),
            "events": float(events),
        }
        for key, value in figures.items():
            out[f"anomaly_{dataset}_{key}"] = value
        f1s.append(figures["event_f1"])
        precisions.append(precision)
        recalls.append(recall)
        aucs.append(figures["auc_pr"])
        fprs.append(figures["fpr"])

    def worst(values: list[float], pick: Callable[[np.ndarray], float]) -> float:
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        return float(pick(arr)) if arr.size else math.nan

    # A figure spanning datasets reports the worst of them (DESIGN.md).
    out["anomaly_event_f1"] = worst(f1s, np.min)
    out["anomaly_alarm_precision"] = worst(precisions, np.min)
    out["anomaly_event_recall"] = worst(recalls, np.min)
    out["anomaly_auc_pr"] = worst(aucs, np.min)
    out["anomaly_fpr"] = worst(fprs, np.max)
    return out


def _placement_eval(
    params: dict[str, Any],
    data: dict[str, Any],
    b: PlacementBudget,
    seed: int,
    split: Split,
    progress: ProgressFn | None,
) -> dict[str, float]:
    from components.train_placement import train_placement

    overrides = {**params, "episode_s": b.episode_s, "n_slices": b.n_slices}
    if split == "valid":
        overrides["train_fraction"] = VALID_TRAIN_FRACTION
    result = train_placement(
        dataset=data["dataset"],
        eval_dataset=data["eval_dataset"],
        episodes=b.episodes,
        seed=seed,
        progress=progress,
        params=overrides,
    )
    m = result.metrics
    return {
        "placement_objective": float(m["placement_objective"]),
        "placement_improvement_vs_random_pct": float(m["placement_improvement_vs_random_pct"]),
        "placement_hot_share": float(m["placement_hot_share"]),
        "placement_availability": float(m["placement_availability"]),
        "placement_train_s": float(m["placement_train_s"]),
    }
