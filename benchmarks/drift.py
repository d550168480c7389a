"""Drift detection on real node traces: false alarms where nothing changed, detection
rate and delay for injected changes of known size, beside Evidently's off-the-shelf
defaults computed in the same run.

Protocol, per source (Alibaba v2018 machines, Bitbrains VMs; read by pattern from the
data directory by the project's importers):

1. the first third of the source's timeline trains the monitored load predictor (the
   project's :class:`~hydatis.models.load_predictor.LoadPredictor` with its default
   parameters, on at most ``--max-train-rows`` rows); the other source's model is trained
   the same way (the ``model`` change swaps them);
2. the remaining calendar days are dealt round-robin into ``--folds`` folds (at most one
   per day). Each fold in turn is monitored and the other days are the reference: the
   thresholds are calibrated on them alone (no-change windows, leave-one-day-out, same
   time of day; their errors are out-of-sample for the model). So every monitored day is
   one the calibration never saw, from the same period, where nothing was changed;
3. **false alarms**: every monitored window, nothing injected: the share each kind calls
   drifted (and the share in alarm after K windows). Evidently's defaults (its automatic
   test per column and default threshold against the whole reference, "dataset drift"
   when half the columns drift, as DataDriftPreset) are scored on the same windows;
4. **detection**: at seeded change points on monitored days (early enough that the next
   ``--max-delay`` windows stay on that day), one change at a time: ``level`` (every
   node's CPU utilisation x 1.2), ``mix`` (half the nodes run the other source's
   workload), ``stuck`` (a quarter of the nodes report a frozen CPU value), ``model``
   (the load predictor trained on the other source replaces the model). A run detects
   when any kind is in alarm within ``--max-delay`` windows; the delay counts windows from
   the change to the alarm, the first included (so at least K). The state starts fresh
   at the change, so an alarm already running is never credited;
5. **later period** (information, not a BENCH figure): calibrated on the first two thirds,
   the last third monitored with nothing injected. Real traces change on their own (the
   table gives the mean CPU of both periods): a flag there may be a real change.

BENCH lines: ``drift_false_alarm_rate`` (the worst kind and source),
``drift_detection_rate`` and ``drift_detection_delay_windows`` (the worst source, over all
its changes), ``drift_offtheshelf_false_alarm_rate`` (Evidently's defaults, worst kind).

Run: ``.venv/bin/python benchmarks/drift.py [--repeats 8] [--max-vms 40] [--method
psi|wasserstein|ks] [--reference-mode same_hours] [--no-later] [--out out/bench/drift]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if __package__ in (None, ""):  # run as a script: the repository root holds the packages
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydatis.config import require_data_dir
from hydatis.dataset import ClusterDataset
from hydatis.features import node_features, node_labels
from hydatis.models.load_predictor import LoadPredictor
from monitoring.drift import (
    KINDS,
    DriftData,
    DriftDetector,
    DriftSettings,
    DriftState,
    WindowResult,
    calibrate,
    drift_data,
    verdict,
    write_summary_html,
)
from monitoring.drift.inject import freeze_metric, scale_load, swap_workload

SCENARIOS = ("level", "mix", "stuck", "model")
HORIZON_S = 300.0
LOOKBACK = pd.Timedelta(days=8)  # the longest feature lag (7 d) plus the 24 h windows
DAY = pd.Timedelta(days=1)
console = Console(width=200)


@dataclass
class Source:
    """One trace and what the benchmark derives from it."""

    name: str
    ds: ClusterDataset
    features: pd.DataFrame
    labels: pd.DataFrame
    t0: pd.Timestamp
    train_end: pd.Timestamp
    ref_end: pd.Timestamp
    t1: pd.Timestamp
    model: LoadPredictor | None = None
    table: DriftData | None = None


def load_sources(names: list[str], max_vms: int) -> dict[str, ClusterDataset]:
    """The real traces, by the project's importers."""
    from components.train_load.core import bitbrains_dataset
    from simulator.importers import load_alibaba_v2018

    base = require_data_dir()
    out: dict[str, ClusterDataset] = {}
    for name in names:
        if name == "alibaba-v2018":
            out[name] = load_alibaba_v2018(base)
        elif name == "bitbrains":
            out[name] = bitbrains_dataset(base, max_vms=max_vms)
        else:
            raise SystemExit(f"unknown source {name!r}: use alibaba-v2018, bitbrains")
        out[name].meta.setdefault("source", name)
    return out


def prepare(name: str, ds: ClusterDataset) -> Source:
    """Features, labels and the split of one source: the first third trains the model
    (its end on a day boundary, so the folds are whole days)."""
    features = node_features(ds)
    labels = node_labels(ds, horizon_s=HORIZON_S)
    ts = features["event_timestamp"]
    t0, t1 = ts.min(), ts.max()
    span = t1 - t0
    train_end = (t0 + span / 3).ceil("D")
    ref_end = (t0 + 2 * span / 3).ceil("D")
    return Source(name, ds, features, labels, t0, train_end, ref_end, t1)


def train_model(src: Source, *, max_rows: int, seed: int) -> LoadPredictor:
    """The monitored model: a load predictor with the default parameters, fitted on the
    first third only (a seeded sample of ``max_rows`` rows at most)."""
    keep = src.features["event_timestamp"] < src.train_end - pd.Timedelta(seconds=HORIZON_S)
    rows = np.flatnonzero(keep.to_numpy())
    if rows.size > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    model = LoadPredictor(
        horizon_s=HORIZON_S,
        early_stopping_rounds=None,  # no validation tail here: the default rounds
        random_state=seed,
        n_jobs=1,  # one thread: on a shared 2-core machine OpenMP threads wait on each other
    )
    return model.fit(src.features.iloc[rows], src.labels)


def on_days(data: DriftData, days: list[pd.Timestamp]) -> DriftData:
    """The rows of ``data`` on the given calendar days (UTC)."""
    day = data.frame["event_timestamp"].dt.floor("D")
    keep = day.isin(days).to_numpy()
    return DriftData(data.frame.loc[keep].reset_index(drop=True), data.columns, data.notes)


def rates(windows: list[WindowResult]) -> dict[str, dict[str, float]]:
    """Per kind: windows scored, share drifted, share in alarm."""
    out = {}
    for kind in KINDS:
        scored = [w.kinds[kind] for w in windows if w.kinds[kind].status in ("ok", "drifted")]
        out[kind] = {
            "windows": len(scored),
            "drifted_n": sum(r.drifted for r in scored),
            "alarm_n": sum(r.alarm for r in scored),
        }
    return out


def merge_counts(a: dict, b: dict) -> dict:
    return {k: {m: a.get(k, {}).get(m, 0) + v for m, v in b[k].items()} for k in b}


# --------------------------------------------------------------------------- baseline


def offtheshelf_counts(
    ref: DriftData, cur: DriftData, settings: DriftSettings, starts: np.ndarray, *, seed: int
) -> dict[str, dict[str, int]]:
    """Evidently's defaults on no-change windows: its automatic test per column with its
    default threshold, against the whole reference (a seeded sample of
    ``max_reference_rows``), a kind drifted when half its columns are (DataDriftPreset's
    ``drift_share``)."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(seed)
    rows = np.arange(len(ref.frame))
    if rows.size > settings.max_reference_rows:
        rows = rng.choice(rows, settings.max_reference_rows, replace=False)
    rframe = ref.frame.iloc[np.sort(rows)]
    out = {}
    cur_ts = cur.frame["event_timestamp"]
    window = pd.Timedelta(seconds=settings.window_s)
    for kind in ("data", "prediction", "target"):
        cols = [c for c in ref.columns.get(kind, []) if rframe[c].nunique() > 1]
        flags = []
        for s in starts:
            start = pd.Timestamp(int(s), tz="UTC")
            w = cur.frame.loc[((cur_ts >= start) & (cur_ts < start + window)).to_numpy()]
            drifted = scored = 0
            for c in cols:
                r, x = rframe[c].dropna(), w[c].dropna()
                if len(x) < settings.min_window_rows:
                    continue
                test = get_stattest(r, x, ColumnType.Numerical, None)
                scored += 1
                drifted += bool(test(r, x, ColumnType.Numerical, None).drifted)
            if scored:
                flags.append(drifted / scored >= 0.5)
        out[kind] = {"windows": len(flags), "drifted_n": int(sum(flags))}
    return out


# --------------------------------------------------------------------------- changes


def change_points(
    days: list[pd.Timestamp], n: int, window: pd.Timedelta, max_delay: int, seed: int
) -> list[pd.Timestamp]:
    """``n`` seeded window starts on ``days``, each early enough that ``max_delay``
    windows and the horizon after it stay on its day."""
    room = DAY - window * max_delay - pd.Timedelta(seconds=2 * HORIZON_S)
    if room < pd.Timedelta(0):
        raise SystemExit("--max-delay windows do not fit in a day")
    grid = [d + k * window for d in days for k in range(int(room / window) + 1)]
    if not grid or n <= 0:
        return []
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(grid), size=min(n, len(grid)), replace=False)
    return [grid[i] for i in sorted(pick)]


def injected_table(
    src: Source,
    other: Source | None,
    scenario: str,
    at: pd.Timestamp,
    settings: DriftSettings,
    args: argparse.Namespace,
    seed: int,
) -> DriftData:
    """The monitored windows after ``at`` with one change injected at ``at``."""
    window = pd.Timedelta(seconds=settings.window_s)
    lo = at - LOOKBACK
    hi = at + window * args.max_delay + pd.Timedelta(seconds=2 * HORIZON_S)
    nm = src.ds.node_metrics
    part = ClusterDataset(
        src.ds.nodes,
        nm.loc[((nm["ts"] >= lo) & (nm["ts"] < hi)).to_numpy()].reset_index(drop=True),
        src.ds.pods,
        src.ds.pod_usage,
        dict(src.ds.meta),
    )
    if scenario == "level":
        part = scale_load(part, at, args.level)
    elif scenario == "stuck":
        part = freeze_metric(part, at, args.stuck_share, seed=seed)
    elif scenario == "mix":
        part = swap_workload(part, at, other.ds, args.mix_share, seed=seed)
    features = node_features(part)
    labels = node_labels(part, horizon_s=HORIZON_S)
    preds = src.model.predict(features)
    if scenario == "model":
        after = (features["event_timestamp"] >= at).to_numpy()
        swapped = other.model.predict(features.loc[after])
        for col in ("cpu_util_pred", "mem_util_pred"):
            preds.loc[after, col] = swapped[col].to_numpy()
    data = drift_data(features, settings=settings, labels=labels, predictions=preds)
    return data.between(at, at + window * args.max_delay)


def detect(
    det: DriftDetector, table: DriftData, at: pd.Timestamp
) -> tuple[int | None, dict[str, int | None]]:
    """The delay (windows, the first included) of the first alarm after ``at``, overall
    and per kind; None when none is raised."""
    state = DriftState(last_window_end=at.isoformat())
    windows = det.evaluate(table, state)
    first: dict[str, int | None] = {}
    for kind in KINDS:
        first[kind] = next((i + 1 for i, w in enumerate(windows) if w.kinds[kind].alarm), None)
    hits = [d for d in first.values() if d is not None]
    return (min(hits) if hits else None), first


# --------------------------------------------------------------------------- runs


def run_folds(
    src: Source,
    other: Source | None,
    settings: DriftSettings,
    args: argparse.Namespace,
    scenarios: list[str],
    progress: Progress,
) -> dict[str, Any]:
    """Every fold of one source: calibration, no-change windows, baseline, changes."""
    window = pd.Timedelta(seconds=settings.window_s)
    post = src.table.between(src.train_end, None)
    days = sorted(post.frame["event_timestamp"].dt.floor("D").unique())
    k = max(2, min(args.folds, len(days)))
    folds = [days[i::k] for i in range(k)]
    counts: dict[str, Any] = {}
    ots: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    cal_info = []
    # change points: --repeats per scenario, spread over the folds
    per_fold = [args.repeats // k + (1 if i < args.repeats % k else 0) for i in range(k)]
    for f, eval_days in enumerate(folds):
        cal_days = [d for d in days if d not in eval_days]
        ref = on_days(post, cal_days)
        task = progress.add_task(f"{src.name} fold {f + 1}: calibrate", total=1)
        cal = calibrate(
            ref,
            settings,
            performance_reference=ref,
            progress=lambda d, t, task=task: progress.update(task, completed=d, total=t),
        )
        cal_info.append(
            {
                k: {"windows": r.windows, "scale": r.scale, "columns": len(r.columns)}
                for k, r in cal.kinds.items()
            }
        )
        det = DriftDetector(settings, cal, ref, performance_reference=ref)
        monitored = on_days(post, eval_days)
        task = progress.add_task(f"{src.name} fold {f + 1}: no-change", total=1)
        windows = det.evaluate(
            monitored,
            DriftState(),
            progress=lambda d, t, task=task: progress.update(task, completed=d, total=t),
        )
        counts = merge_counts(counts, rates(windows))
        if f == 0:
            page = verdict(windows, DriftState(), cal, settings, retraining_reason="benchmark")
            write_summary_html(windows, cal, page, args.out / f"{src.name}-nochange.html")
        if args.baseline_windows > 0:
            starts = np.array(
                [w.start.value for w in windows if w.kinds["data"].status in ("ok", "drifted")]
            )
            if starts.size > args.baseline_windows // k:
                rng = np.random.default_rng(args.seed + f)
                starts = np.sort(rng.choice(starts, args.baseline_windows // k, replace=False))
            with console.status(f"{src.name} fold {f + 1}: Evidently defaults…"):
                ots = merge_counts(
                    ots, offtheshelf_counts(ref, monitored, settings, starts, seed=args.seed)
                )
        todo = [
            (sc, at)
            for sc in scenarios
            for at in change_points(
                [d for d in eval_days if d + DAY <= src.t1 + window],
                per_fold[f],
                window,
                args.max_delay,
                args.seed + 10 * f + SCENARIOS.index(sc),
            )
        ]
        task = progress.add_task(f"{src.name} fold {f + 1}: changes", total=len(todo))
        for i, (sc, at) in enumerate(todo):
            t = injected_table(src, other, sc, at, settings, args, seed=args.seed + i)
            delay, per_kind = detect(det, t, at)
            runs.append({"scenario": sc, "at": at.isoformat(), "delay": delay, **per_kind})
            progress.advance(task)
    return {"calibration": cal_info, "false_alarms": counts, "offtheshelf": ots, "runs": runs}


def run_later(src: Source, settings: DriftSettings, progress: Progress) -> dict[str, Any]:
    """Calibrated on the first two thirds, the last third monitored, nothing injected."""
    ref = src.table.between(None, src.ref_end)
    val = src.table.between(src.train_end, src.ref_end)
    task = progress.add_task(f"{src.name} later: calibrate", total=1)
    cal = calibrate(
        ref,
        settings,
        performance_reference=val,
        progress=lambda d, t: progress.update(task, completed=d, total=t),
    )
    det = DriftDetector(settings, cal, ref, performance_reference=val)
    task = progress.add_task(f"{src.name} later: windows", total=1)
    windows = det.evaluate(
        src.table.between(src.ref_end, None),
        DriftState(),
        progress=lambda d, t: progress.update(task, completed=d, total=t),
    )
    cpu = src.features.set_index("event_timestamp")["cpu_util"]
    return {
        "counts": rates(windows),
        "cpu_mean_reference": float(cpu[cpu.index < src.ref_end].mean()),
        "cpu_mean_later": float(cpu[cpu.index >= src.ref_end].mean()),
    }


# --------------------------------------------------------------------------- output


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f} %" if d else "–"


def ratio(n: int, d: int) -> float:
    return n / d if d else math.nan


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sources", default="alibaba-v2018,bitbrains")
    p.add_argument("--max-vms", type=int, default=40, help="Bitbrains VMs used (file order)")
    p.add_argument("--repeats", type=int, default=8, help="change points per scenario")
    p.add_argument("--folds", type=int, default=4, help="folds of monitored days")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--max-delay", type=int, default=12, help="windows allowed to detect")
    p.add_argument("--level", type=float, default=1.2, help="CPU load factor (level)")
    p.add_argument("--mix-share", type=float, default=0.5, help="nodes swapped (mix)")
    p.add_argument("--stuck-share", type=float, default=0.25, help="nodes frozen (stuck)")
    p.add_argument("--window", type=float, default=3600.0, help="window (s)")
    p.add_argument("--method", default="psi", choices=("psi", "wasserstein", "ks"))
    p.add_argument("--reference-mode", default="same_hours", choices=("same_hours", "pooled"))
    p.add_argument("--persistence", type=int, default=2, help="K windows")
    p.add_argument("--false-alarm-rate", type=float, default=0.01, help="calibration level")
    p.add_argument("--max-train-rows", type=int, default=40_000)
    p.add_argument("--baseline-windows", type=int, default=48, help="0: no baseline")
    p.add_argument("--no-later", action="store_true", help="skip the later-period table")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("out/bench/drift"))
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    names = [s.strip() for s in args.sources.split(",") if s.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = sorted(set(scenarios) - set(SCENARIOS))
    if bad:
        raise SystemExit(f"unknown scenario(s) {bad}: use {', '.join(SCENARIOS)}")
    if len(names) < 2 and {"mix", "model"} & set(scenarios):
        raise SystemExit("the mix and model changes need a second source (--sources)")
    settings = DriftSettings(
        window_s=args.window,
        method=args.method,
        reference_mode=args.reference_mode,
        persistence_windows=args.persistence,
        false_alarm_rate=args.false_alarm_rate,
        retrain_command="",
        seed=args.seed,
    )
    console.print(
        f"[bold]Drift benchmark[/]: {', '.join(names)}; windows of {settings.window_s:g} s, "
        f"{settings.method}, {settings.reference_mode}, K={settings.persistence_windows}, "
        f"calibration level {settings.false_alarm_rate:g}; {args.repeats} change(s) per "
        f"scenario and source"
    )
    with console.status("reading the traces and building features…"):
        raw = load_sources(names, args.max_vms)
        sources = {n: prepare(n, ds) for n, ds in raw.items()}
    with console.status("training the monitored load predictors…"):
        for src in sources.values():
            src.model = train_model(src, max_rows=args.max_train_rows, seed=args.seed)
            preds = src.model.predict(src.features)
            src.table = drift_data(
                src.features, settings=settings, labels=src.labels, predictions=preds
            )

    results: dict[str, Any] = {"settings": settings.model_dump(), "sources": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    progress = Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        for name, src in sources.items():
            other = next((s for n, s in sources.items() if n != name), None)
            t0 = time.perf_counter()
            entry = run_folds(src, other, settings, args, scenarios, progress)
            entry["seconds_folds"] = time.perf_counter() - t0
            entry["split"] = {
                "start": src.t0.isoformat(),
                "train_end": src.train_end.isoformat(),
                "later_from": src.ref_end.isoformat(),
                "end": src.t1.isoformat(),
                "nodes": int(src.features["node_id"].nunique()),
            }
            if not args.no_later:
                t0 = time.perf_counter()
                entry["later"] = run_later(src, settings, progress)
                entry["seconds_later"] = time.perf_counter() - t0
            results["sources"][name] = entry

    # ------------------------------------------------------------------ tables
    fa = Table(
        title="No-change windows (held-out days, nothing injected): share flagged",
        header_style="bold",
    )
    for col in (
        "source",
        "kind",
        "columns",
        "windows",
        "drifted",
        "in alarm (K)",
        "Evidently defaults",
    ):
        fa.add_column(col, justify="left" if col in ("source", "kind") else "right")
    worst_fa, worst_ots = 0.0, 0.0
    for name, entry in results["sources"].items():
        for kind in KINDS:
            c = entry["false_alarms"].get(kind, {"windows": 0, "drifted_n": 0, "alarm_n": 0})
            o = entry["offtheshelf"].get(kind, {"windows": 0, "drifted_n": 0})
            cols = {cal.get(kind, {}).get("columns") for cal in entry["calibration"]} - {None}
            if c["windows"]:
                worst_fa = max(worst_fa, ratio(c["drifted_n"], c["windows"]))
            if o["windows"]:
                worst_ots = max(worst_ots, ratio(o["drifted_n"], o["windows"]))
            fa.add_row(
                name,
                kind,
                "/".join(str(x) for x in sorted(cols)) or "not monitored",
                str(c["windows"]),
                pct(c["drifted_n"], c["windows"]),
                pct(c["alarm_n"], c["windows"]),
                pct(o["drifted_n"], o["windows"]),
            )
    console.print(fa)

    dt = Table(
        title=f"Injected changes: detected within {args.max_delay} windows (any kind in alarm)",
        header_style="bold",
    )
    for col in ("source", "change", "runs", "detected", "mean delay", *KINDS):
        dt.add_column(col, justify="left" if col in ("source", "change") else "right")
    worst_rate, worst_delay = 1.0, 0.0
    for name, entry in results["sources"].items():
        runs = entry["runs"]
        for sc in scenarios:
            mine = [r for r in runs if r["scenario"] == sc]
            hit = [r for r in mine if r["delay"] is not None]
            dt.add_row(
                name,
                sc,
                str(len(mine)),
                pct(len(hit), len(mine)),
                f"{np.mean([r['delay'] for r in hit]):.2f}" if hit else "–",
                *(f"{sum(r[k] is not None for r in mine)}/{len(mine)}" for k in KINDS),
            )
        hit = [r for r in runs if r["delay"] is not None]
        rate = ratio(len(hit), len(runs))
        delay = float(np.mean([r["delay"] for r in hit])) if hit else math.nan
        entry["detection_rate"], entry["mean_delay_windows"] = rate, delay
        worst_rate = min(worst_rate, rate)
        worst_delay = max(worst_delay, delay) if math.isfinite(delay) else worst_delay
    console.print(dt)

    if not args.no_later:
        lt = Table(
            title="Later period (calibrated on the first two thirds, last third monitored, "
            "nothing injected): share flagged — the traces' own changes",
            header_style="bold",
        )
        for col in ("source", "mean CPU before", "mean CPU later", *KINDS):
            lt.add_column(col, justify="left" if col == "source" else "right")
        for name, entry in results["sources"].items():
            later = entry["later"]
            lt.add_row(
                name,
                f"{later['cpu_mean_reference']:.4f}",
                f"{later['cpu_mean_later']:.4f}",
                *(
                    pct(later["counts"][k]["drifted_n"], later["counts"][k]["windows"])
                    for k in KINDS
                ),
            )
        console.print(lt)

    results["bench"] = {
        "drift_false_alarm_rate": worst_fa,
        "drift_detection_rate": worst_rate,
        "drift_detection_delay_windows": worst_delay,
        "drift_offtheshelf_false_alarm_rate": worst_ots,
    }
    (args.out / "drift_benchmark.json").write_text(json.dumps(results, indent=2, default=str))
    console.print(
        f"per-window scores: {args.out}/<source>-nochange.html; all figures: "
        f"{args.out}/drift_benchmark.json; {time.perf_counter() - t_start:.0f} s"
    )
    print(f"BENCH drift_false_alarm_rate {worst_fa:.4f} fraction")
    print(f"BENCH drift_detection_rate {worst_rate:.4f} fraction")
    print(f"BENCH drift_detection_delay_windows {worst_delay:.2f} windows")
    if args.baseline_windows > 0:
        print(f"BENCH drift_offtheshelf_false_alarm_rate {worst_ots:.4f} fraction")
    return 0


if __name__ == "__main__":
    sys.exit(main())
