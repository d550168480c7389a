"""Train and evaluate the load predictor on real node utilisation series.

Protocol (per source, per horizon):

1. features at every grid step (:func:`hydatis.features.node_features`) and the labels at
   ``t + h`` (:func:`hydatis.features.node_labels`);
2. a time-ordered split of the source's timeline: the last ``test_share`` is the test
   part; training rows are those whose *label* time lies before the test part (a purge
   of ``h``, so no training target is read from the test period); no shuffling across
   time;
3. the training part is split the same way into a fit part and a validation tail
   (``VALID_SHARE`` of it); early stopping picks the number of boosting rounds on the
   validation tail only, then the model is refit on the whole training part with that
   number of rounds. Nothing is chosen on the test part;
4. one pooled model over all sources (each source's rows weighted to the same total, so
   the small Alibaba set is not drowned by the Bitbrains VMs), evaluated per source on the
   test part beside persistence, seasonal-naive and EWMA baselines computed in the same
   run on the same rows.

Evaluation rows: test rows whose label is present and whose current value (``cpu_util``
or ``mem_util`` at ``t``) is present, so every forecast, naive ones included, covers the
same rows.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hydatis.config import data_dir as default_data_dir
from hydatis.dataset import ClusterDataset, empty_table, load_dataset
from hydatis.features import feature_names, node_features, node_labels
from hydatis.models.base import ProgressFn, Target, TrainResult
from hydatis.models.forecast_baselines import (
    BASELINES,
    KEYS,
    accuracy_1_minus_wape,
    mae_pp,
    rmse,
)
from hydatis.models.load_predictor import LoadPredictor, infer_latency_ms
from simulator.importers import iter_bitbrains, load_alibaba_v2018
from simulator.importers.bitbrains import DEFAULT_FOLDER as BITBRAINS_FOLDER

__all__ = [
    "DEFAULT_HORIZONS",
    "MAX_TRAIN_ROWS",
    "MIN_VM_SAMPLES",
    "PRIMARY_HORIZON_S",
    "SOURCES",
    "TARGETS",
    "VALID_SHARE",
    "bitbrains_dataset",
    "evaluate_load",
    "infer_latency_ms",
    "real_datasets",
    "time_split",
    "train_load",
]

log = logging.getLogger(__name__)

SOURCES = ("alibaba-v2018", "bitbrains")
DEFAULT_HORIZONS = (300, 900)
PRIMARY_HORIZON_S = 300
VALID_SHARE = 0.2
#: default cap on each source's training rows (a seeded random subset of the training part).
MAX_TRAIN_ROWS = 200_000
#: a Bitbrains VM is usable when it has at least one day of 5-min samples.
MIN_VM_SAMPLES = 288
TARGETS = [
    Target("load_cpu_accuracy", ">=", 0.89),
    Target("load_mem_accuracy", ">=", 0.86),
    Target("load_cpu_mae_ratio_vs_best_baseline", "<", 1.0),
    Target("load_mem_mae_ratio_vs_best_baseline", "<", 1.0),
]
_RES = ("cpu", "mem")
_NS = 1_000_000_000


# --------------------------------------------------------------------------- data


def _empty_pods() -> tuple[pd.DataFrame, pd.DataFrame]:
    return empty_table("pods"), empty_table("pod_usage")


def bitbrains_dataset(
    data_dir: str | Path | None = None,
    *,
    folder: str | Path = BITBRAINS_FOLDER,
    max_vms: int | None = None,
    min_samples: int = MIN_VM_SAMPLES,
) -> ClusterDataset:
    """The Bitbrains VMs as node-like series: one node per VM, ``cpu_util`` = CPU use /
    provisioned, ``mem_util`` = memory use / provisioned, every 300 s.

    Only the grid steps that held a real sample are kept (the importer's interpolation
    across gaps reads the sample after the gap, which a forecast at ``t`` could not know).

    Args:
        data_dir: where the traces live (default :func:`hydatis.config.data_dir`).
        folder: the month folder inside ``data_dir``.
        max_vms: keep the first this many usable VMs (file order); None keeps all.
        min_samples: a VM with fewer real samples is skipped.
    """
    metrics, nodes = [], []
    for vm in iter_bitbrains(folder, data_dir=data_dir):
        if max_vms is not None and len(nodes) >= max_vms:
            break
        idx = np.flatnonzero(vm.observed)
        usable = vm.cpu_cores > 0 and vm.mem_gib > 0
        if idx.size < min_samples or not usable:
            continue
        name = f"vm-{vm.vm}"
        ts = pd.to_datetime(vm.t0 + idx.astype(np.int64) * vm.step_s, unit="s", utc=True)
        metrics.append(
            pd.DataFrame(
                {
                    "ts": ts,
                    "node": name,
                    "cpu_util": vm.cpu_frac[idx],
                    "mem_util": vm.mem_frac[idx],
                }
            )
        )
        nodes.append({"node": name, "cpu_cores": vm.cpu_cores, "mem_gib": vm.mem_gib})
    if not nodes:
        raise ValueError(f"{folder}: no usable VM (>= {min_samples} samples)")
    pods, usage = _empty_pods()
    meta = {"source": "bitbrains GWA-T-12 rnd", "folder": str(folder), "vms": len(nodes)}
    return ClusterDataset(
        pd.DataFrame(nodes), pd.concat(metrics, ignore_index=True), pods, usage, meta
    )


def real_datasets(
    data_dir: str | Path | None = None, *, max_vms: int | None = None
) -> dict[str, ClusterDataset]:
    """The two real sources: ``alibaba-v2018`` (16 machines, ~60 s samples, 6 days) and
    ``bitbrains`` (VMs as nodes, 300 s, one month).

    Raises:
        ConfigError: no data directory is configured.
    """
    if data_dir is None:
        from hydatis.config import require_data_dir

        data_dir = require_data_dir()
    return {
        "alibaba-v2018": load_alibaba_v2018(data_dir),
        "bitbrains": bitbrains_dataset(data_dir, max_vms=max_vms),
    }


# --------------------------------------------------------------------------- split


def time_split(
    timestamps: pd.Series | np.ndarray,
    *,
    test_share: float = 0.2,
    purge_s: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, pd.Timestamp]:
    """Split rows by time: the last ``test_share`` of the timeline is the test part.

    Args:
        timestamps: one per row (UTC).
        test_share: share of the timeline (first to last timestamp) held out, in (0, 1].
        purge_s: training rows must end this long before the test part (the horizon plus
            one grid step), so no training label is read from the test period.

    Returns:
        ``(train_mask, test_mask, cutoff)``: test rows have ``ts >= cutoff``, training
        rows ``ts + purge_s < cutoff``; every test timestamp is after every training one.
    """
    if not 0.0 < test_share <= 1.0:
        raise ValueError(f"test_share must be in (0, 1], got {test_share}")
    ts = pd.DatetimeIndex(timestamps).as_unit("ns").asi8
    if ts.size == 0:
        empty = np.zeros(0, dtype=bool)
        return empty, empty, pd.NaT
    lo, hi = int(ts.min()), int(ts.max())
    cut = lo + round((1.0 - test_share) * (hi - lo))
    if test_share >= 1.0:
        cut = lo
    test = ts >= cut
    train = ts + round(purge_s * _NS) < cut
    return train, test, pd.Timestamp(cut, tz="UTC")


def _grid_step_s(features: pd.DataFrame) -> float:
    """The grid step of a feature table: the median gap between a node's rows."""
    ts = features["event_timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    same = features["node_id"].to_numpy()[1:] == features["node_id"].to_numpy()[:-1]
    gaps = np.diff(ts)[same]
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) / _NS if gaps.size else 0.0


def _horizon_eff_s(horizon_s: float, step_s: float) -> float:
    """The label's actual lead: ``h`` rounded up to whole grid steps."""
    return float(np.ceil(horizon_s / step_s) * step_s) if step_s > 0 else float(horizon_s)


# --------------------------------------------------------------------------- evaluation


def _eval_rows(
    source: str,
    horizon_s: float,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    preds: dict[str, pd.DataFrame],
) -> list[dict[str, Any]]:
    rows = []
    for res in _RES:
        y = labels[f"{res}_util_target"].to_numpy(np.float64)
        ok = ~np.isnan(y) & ~np.isnan(features[f"{res}_util"].to_numpy(np.float64))
        for name, pred in preds.items():
            p = pred[f"{res}_util_pred"].to_numpy(np.float64)
            rows.append(
                {
                    "source": source,
                    "horizon_s": int(horizon_s),
                    "target": res,
                    "model": name,
                    "mae_pp": mae_pp(y[ok], p[ok]),
                    "rmse": rmse(y[ok], p[ok]),
                    "accuracy": accuracy_1_minus_wape(y[ok], p[ok]),
                    "mean_actual": float(np.mean(y[ok])) if ok.any() else float("nan"),
                    "n_rows": int(ok.sum()),
                }
            )
    return rows


def _hash_rows(h: Any, source: str, horizon_s: float, labels: pd.DataFrame) -> None:
    h.update(f"{source}|{int(horizon_s)}|{len(labels)}".encode())
    h.update("\x00".join(labels["node_id"].astype(str)).encode())
    h.update(labels["event_timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64).tobytes())
    for res in _RES:
        h.update(labels[f"{res}_util_target"].to_numpy(np.float32).tobytes())


def _evaluate_part(
    model: LoadPredictor,
    source: str,
    horizon_s: float,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    all_labels: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Model and baselines on the rows of ``features``/``labels`` (aligned row for row);
    ``all_labels`` is the whole label series the seasonal-naive baseline reads back in."""
    preds = {"model": model.predict(features)}
    for name, fn in BASELINES.items():
        preds[name] = fn(features, all_labels)
    return _eval_rows(source, horizon_s, features, labels, preds)


def evaluate_load(
    model: LoadPredictor,
    dataset: ClusterDataset | str | Path,
    *,
    source: str = "dataset",
    test_share: float = 0.2,
    horizon_s: float | None = None,
    step_s: float | None = None,
) -> pd.DataFrame:
    """Evaluate a fitted model and the naive baselines on any dataset.

    Args:
        model: a fitted :class:`LoadPredictor`.
        dataset: a :class:`ClusterDataset` or the path of a saved dataset
            (:func:`hydatis.dataset.load_dataset`).
        source: the name to put in the table's ``source`` column.
        test_share: evaluate on the last this share of the timeline (1.0 = all of it,
            for a dataset the model never saw).
        horizon_s: the label horizon; default the model's ``horizon_s``.
        step_s: the feature grid step; default the median sample gap of the data.

    Returns:
        One row per ``(target cpu|mem, model|persistence|seasonal_naive|ewma)``:
        ``source, horizon_s, target, model, mae_pp, rmse, accuracy, mean_actual, n_rows``.
    """
    ds = dataset if isinstance(dataset, ClusterDataset) else load_dataset(dataset)
    h = float(model.horizon_s if horizon_s is None else horizon_s)
    features = node_features(ds, step_s=step_s)
    labels = node_labels(ds, horizon_s=h, step_s=step_s)
    _, test, _ = time_split(features["event_timestamp"], test_share=test_share)
    part_f = features.loc[test].reset_index(drop=True)
    part_l = labels.loc[test].reset_index(drop=True)
    return pd.DataFrame(_evaluate_part(model, source, h, part_f, part_l, labels))


# --------------------------------------------------------------------------- training


def _balanced_weights(sizes: Iterable[int]) -> np.ndarray:
    """Per-row weights giving every source the same total weight (mean weight 1)."""
    sizes = list(sizes)
    total = sum(sizes)
    parts = [np.full(n, total / (len(sizes) * n)) if n else np.zeros(0) for n in sizes]
    return np.concatenate(parts) if parts else np.zeros(0)


def _stack(parts: dict[str, dict[str, pd.DataFrame]], key: str) -> pd.DataFrame:
    """One table over all sources; node ids are prefixed with the source so the pooled
    features and labels join one-to-one even where two sources share a node name."""
    frames = []
    for source, p in parts.items():
        frame = p[key]
        frames.append(frame.assign(node_id=source + "/" + frame["node_id"].astype(str)))
    return pd.concat(frames, ignore_index=True)


def _slug(source: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in source.lower()).strip("_")


def _headline(table: pd.DataFrame, horizon_s: int) -> dict[str, float]:
    """Headline figures at one horizon: per source, and the worst source."""
    out: dict[str, float] = {}
    part = table[table["horizon_s"] == horizon_s]
    suffix = "" if horizon_s == PRIMARY_HORIZON_S else f"_{horizon_s}s"
    for res in _RES:
        accs, ratios = [], []
        for source, grp in part[part["target"] == res].groupby("source", sort=True):
            by = grp.set_index("model")
            acc = float(by.loc["model", "accuracy"])
            mae = float(by.loc["model", "mae_pp"])
            best = float(by.drop(index="model")["mae_pp"].min())
            ratio = mae / best if best > 0 else float("nan")
            slug = _slug(str(source))
            out[f"load_{res}_accuracy{suffix}_{slug}"] = acc
            out[f"load_{res}_mae_pp{suffix}_{slug}"] = mae
            out[f"load_{res}_mae_ratio_vs_best_baseline{suffix}_{slug}"] = ratio
            accs.append(acc)
            ratios.append(ratio)
        if accs:
            out[f"load_{res}_accuracy{suffix}"] = min(accs)
            out[f"load_{res}_mae_ratio_vs_best_baseline{suffix}"] = max(ratios)
    return out


def _fmt(x: float, nd: int = 3) -> str:
    return "—" if x != x else f"{x:.{nd}f}"


def _report(
    table: pd.DataFrame,
    metrics: dict[str, float],
    targets: list[Target],
    info: dict[str, Any],
) -> str:
    lines = [
        "# Load predictor — evaluation",
        "",
        "Predicts each node's CPU and memory utilisation at t + h from the node features at t.",
        "",
        "## Definitions",
        "",
        "- **MAE (pp)** = 100 · mean |ŷ − y|, in percentage points of utilisation.",
        "- **RMSE** = sqrt(mean (ŷ − y)²), utilisation as a fraction.",
        "- **accuracy** = 1 − WAPE = 1 − Σ|ŷ − y| / Σ|y| over the evaluation rows.",
        "- **MAE ratio vs best baseline** = model MAE / the lowest MAE among persistence, "
        "seasonal naive and EWMA on the same rows; < 1 means the model beats all of them.",
        "- Baselines: *persistence* ŷ(t+h) = y(t); *seasonal_naive* ŷ(t+h) = y(t+h−1 d) "
        "(persistence where there is no value a day back); *ewma* = the exponentially "
        "weighted mean of the last hour, span 10 min (persistence where undefined).",
        "- Headline figures span both sources and report the **worst** source "
        "(lowest accuracy, highest MAE ratio); per-source figures are in the table.",
        "",
        "## Protocol",
        "",
        f"- Sources: {info['sources']}.",
        f"- Time-ordered split per source: the last {info['test_share']:.0%} of each "
        "source's timeline is the test part; training rows end (label time) before it. "
        f"The last {VALID_SHARE:.0%} of the training part is a validation tail used only "
        "for early stopping (the number of boosting rounds); the model is then refit on the "
        "whole training part. Nothing is tuned on the test part; no shuffling across time.",
        "- One pooled model per horizon over all sources (one registered artifact that "
        "serves any node), each source's training rows weighted to the same total weight "
        "so the 16 Alibaba machines count as much as the Bitbrains VMs; evaluated per "
        "source. The model predicts the change from the current value (see the model's "
        "docstring), with the absolute error as its loss.",
        "- Evaluation rows: test rows whose label and current value are present; every "
        "forecast covers the same rows.",
        f"- Training rows per source: at most {info['max_train_rows']} (a seeded random "
        "subset of the training part, spanning its whole time range; the test part is "
        "never sampled).",
        f"- Parameters: `{info['params']}`; boosting rounds chosen: {info['rounds']}.",
        f"- Inference: {info['latency_ms']:.1f} ms for a batch of 5000 nodes "
        "(`predict_array`, median of repeats, 2 threads).",
        "",
        "## Targets (primary horizon 300 s, worst source)",
        "",
        "| target | value | met |",
        "|---|---|---|",
    ]
    for t in targets:
        lines.append(
            f"| `{t}` | {_fmt(metrics.get(t.metric, float('nan')))} | "
            f"{'yes' if t.met(metrics) else 'NO'} |"
        )
    lines += [
        "",
        "## Evaluation table (test part)",
        "",
        "| source | h (s) | target | forecast | MAE (pp) | RMSE | accuracy | mean y | rows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.source} | {r.horizon_s} | {r.target} | {r.model} | {_fmt(r.mae_pp)} | "
            f"{_fmt(r.rmse, 4)} | {_fmt(r.accuracy, 4)} | {_fmt(r.mean_actual)} | "
            f"{r.n_rows} |"
        )
    return "\n".join(lines) + "\n"


def train_load(
    *,
    datasets: dict[str, ClusterDataset] | None = None,
    data_dir: str | Path | None = None,
    horizons: tuple[int, ...] = DEFAULT_HORIZONS,
    test_share: float = 0.2,
    seed: int = 0,
    progress: ProgressFn | None = None,
    params: dict[str, Any] | None = None,
    max_vms: int | None = None,
    max_train_rows: int | None = MAX_TRAIN_ROWS,
    out_dir: str | Path | None = None,
) -> TrainResult:
    """Train one pooled load predictor per horizon and evaluate it per source.

    Args:
        datasets: source name -> dataset with node series; None = the real sources from
            the data directory (:func:`real_datasets`).
        data_dir: the trace directory when ``datasets`` is None (default: configured).
        horizons: label horizons in seconds; the model of ``PRIMARY_HORIZON_S`` (or the
            first horizon) is the one returned and gives the headline metrics.
        test_share: share of each source's timeline held out as the test part.
        seed: the random seed of the boosters.
        progress: called with the fraction done and a short message at each step.
        params: :class:`LoadPredictor` parameters overriding the defaults.
        max_vms: cap on the Bitbrains VMs read when ``datasets`` is None.
        max_train_rows: cap on each source's training rows (a seeded random subset of
            the training part, which keeps its time span; the test part is never
            sampled); None = all. Bounds the training time on the large sources.
        out_dir: where the artifacts go (default: a new temporary directory).

    Returns:
        A :class:`TrainResult` named ``load``; ``artifacts`` holds the feature importance
        CSV, the evaluation table CSV and the other horizons' saved models.
    """
    t_start = time.perf_counter()

    stage = [0, 1]  # stages done, stages expected (known once the sources are)

    def say(msg: str) -> None:
        log.info("train_load: %s", msg)
        if progress is not None:
            progress(min(stage[0] / stage[1], 1.0), msg)
        stage[0] += 1

    if datasets is None:
        say("reading the real sources")
        datasets = real_datasets(data_dir or default_data_dir(), max_vms=max_vms)
    if not datasets:
        raise ValueError("no dataset to train on")
    horizons = tuple(int(h) for h in horizons)
    stage[1] = len(datasets) * (1 + len(horizons)) + 2 * len(horizons) + 2
    primary_h = PRIMARY_HORIZON_S if PRIMARY_HORIZON_S in horizons else horizons[0]
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="train-load-"))
    out.mkdir(parents=True, exist_ok=True)
    model_params = {"random_state": seed, **(params or {})}

    feats: dict[str, pd.DataFrame] = {}
    steps: dict[str, float] = {}
    for source, ds in datasets.items():
        say(f"{source}: features")
        feats[source] = node_features(ds)
        steps[source] = _grid_step_s(feats[source])

    names = list(model_params.get("features") or feature_names())
    feat_cols = [*KEYS, *names]
    rows: list[dict[str, Any]] = []
    models: dict[int, LoadPredictor] = {}
    rounds: dict[int, dict[str, int]] = {}
    digest = hashlib.sha256()
    for h in horizons:
        parts: dict[str, dict[str, pd.DataFrame]] = {}
        labels_all: dict[str, pd.DataFrame] = {}
        for source, ds in datasets.items():
            f = feats[source]
            lab = node_labels(ds, horizon_s=h, step_s=steps[source] or None)
            labels_all[source] = lab
            purge = _horizon_eff_s(h, steps[source])
            train, test, cut = time_split(
                f["event_timestamp"], test_share=test_share, purge_s=purge
            )
            rows_idx = np.flatnonzero(train)
            if max_train_rows is not None and rows_idx.size > max_train_rows:
                rng = np.random.default_rng(seed)
                rows_idx = np.sort(rng.choice(rows_idx, max_train_rows, replace=False))
            train_f, train_l = f.loc[rows_idx, feat_cols], lab.loc[rows_idx]
            fit, valid, _ = time_split(
                train_f["event_timestamp"], test_share=VALID_SHARE, purge_s=purge
            )
            parts[source] = {
                "train_f": train_f,
                "train_l": train_l,
                "fit_f": train_f.loc[fit],
                "fit_l": train_l.loc[fit],
                "valid_f": train_f.loc[valid],
                "valid_l": train_l.loc[valid],
            }
            say(
                f"{source} h={h}s: {rows_idx.size} train rows ({int(valid.sum())} of them "
                f"validation), {int(test.sum())} test rows from {cut}"
            )
            parts[source]["test_f"] = f.loc[test].reset_index(drop=True)
            parts[source]["test_l"] = lab.loc[test].reset_index(drop=True)

        say(f"h={h}s: early stopping on the validation tail")
        probe = LoadPredictor(horizon_s=h, **model_params)
        probe.fit(
            _stack(parts, "fit_f"),
            _stack(parts, "fit_l"),
            sample_weight=_balanced_weights(len(p["fit_f"]) for p in parts.values()),
            eval_set=(_stack(parts, "valid_f"), _stack(parts, "valid_l")),
        )
        chosen = dict(probe.best_iterations_)
        say(f"h={h}s: rounds {chosen}; refit on the whole training part")
        final = LoadPredictor(horizon_s=h, **{**model_params, "early_stopping_rounds": None})
        final.fit(
            _stack(parts, "train_f"),
            _stack(parts, "train_l"),
            sample_weight=_balanced_weights(len(p["train_f"]) for p in parts.values()),
            rounds=chosen,
        )
        models[h], rounds[h] = final, chosen
        for source, p in parts.items():
            rows += _evaluate_part(final, source, h, p["test_f"], p["test_l"], labels_all[source])
            _hash_rows(digest, source, h, p["test_l"])
    table = pd.DataFrame(rows)
    model = models[primary_h]
    metrics = _headline(table, primary_h)
    for h in horizons:
        if h != primary_h:
            metrics.update(_headline(table, h))
    say("measuring inference latency")
    latency = infer_latency_ms(model, n_nodes=5000, repeats=20)
    metrics["load_infer_ms_5000_nodes"] = latency
    metrics["load_train_seconds"] = time.perf_counter() - t_start

    artifacts: dict[str, Path] = {}
    imp_path = out / "load_feature_importance.csv"
    model.feature_importance().to_csv(imp_path, index=False)
    artifacts["feature_importance"] = imp_path
    table_path = out / "load_evaluation.csv"
    table.to_csv(table_path, index=False)
    artifacts["evaluation_table"] = table_path
    for h, m in models.items():
        if h != primary_h:
            artifacts[f"model_{h}s"] = m.save(out / f"load_predictor_{h}s")
            m.feature_importance().to_csv(out / f"load_feature_importance_{h}s.csv", index=False)
            artifacts[f"feature_importance_{h}s"] = out / f"load_feature_importance_{h}s.csv"
    used = {k: v for k, v in model.get_params().items() if k != "features"}
    info = {
        "sources": ", ".join(f"{s} ({len(d.nodes)} nodes)" for s, d in datasets.items()),
        "test_share": test_share,
        "params": used,
        "rounds": {f"{h}s": r for h, r in rounds.items()},
        "latency_ms": latency,
        "max_train_rows": "all" if max_train_rows is None else max_train_rows,
    }
    report = _report(table, metrics, TARGETS, info)
    (out / "load_report.md").write_text(report)
    artifacts["report"] = out / "load_report.md"
    say(f"done in {metrics['load_train_seconds']:.0f} s")
    return TrainResult(
        name="load",
        model=model,
        params={
            **used,
            "horizons": list(horizons),
            "test_share": test_share,
            "valid_share": VALID_SHARE,
            "rounds": rounds[primary_h],
        },
        metrics=metrics,
        table=table,
        targets=list(TARGETS),
        primary="load_cpu_accuracy",
        higher_is_better=True,
        report=report,
        features=list(model.feature_names_),
        artifacts=artifacts,
        eval_data_id=digest.hexdigest(),
    )
