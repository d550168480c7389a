"""The ML scheduler's outcome on real traces against every baseline, with ablations,
several load levels and confidence intervals.

    .venv/bin/python benchmarks/placement.py [--quick] [--data-dir DIR] [--seeds 5]
        [--pod-list openb_pod_list_cpu100.csv] [--bitbrains-dir 2013-8] [--out DIR]

Slices (named in the report; none overlaps another):

- **training**: the models are trained here, before anything is evaluated, on a
  *training replay* of the composite trace drawn with seed ``train_seed`` (its own node
  sample, workload copies and usage offsets), hours 0–12, replayed with the default
  scheduler (``cli.ml_stack.quick_models``). ``--models champion`` uses the registry's
  champions instead (then the report says they were trained elsewhere).
- **evaluation**: seeds ``eval_seed .. eval_seed + seeds − 1`` (other node samples), the
  window ``[eval_start, eval_start + eval_hours)`` of the trace's day, after a warm-up
  hour that fills the cluster (not scored). The extender's settings (the load curve, the
  weights) were chosen on development runs with seeds 0–1 and hours 11–17, which this
  benchmark's defaults do not touch.

Load levels (``--load-factor`` scales arrivals, ``--usage-scale`` each pod's use per
request): calm 1.0/1.0 (the trace as it is), warm 1.0/1.5 (the default scheduler's first
hot nodes), hot 1.3/1.5 (the default spends ≥ 5 % of node-time above 0.85; the report
checks this). Every scheduler runs every (level, seed) on the same compiled workload, so
the comparisons are paired; the ML scheduler's ablations (``ml-load``, ``ml-agent``,
``ml-anomaly``, ``ml-nolag``) run at the hot level.

The ML scheduler is kube-scheduler's default plugins plus the extender over real HTTP,
which calls the three model servers (separate processes), one extender per variant.
Ends with the BENCH lines of the hot level.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).resolve().parent))  # after the project: no shadowing

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table  # noqa: E402

from simulator.evaluation import Estimate, mean_ci, paired_difference, paired_ratio  # noqa: E402

# wide enough for the tables when the output is a file or a pipe (rich's default is 80)
console = Console(width=None if sys.stdout.isatty() else 220)

LEVELS: dict[str, tuple[float, float]] = {
    "calm": (1.0, 1.0),
    "warm": (1.0, 1.5),
    "hot": (1.3, 1.5),
}
BASELINES = ("random", "default", "tlp", "lvrb", "koordinator", "crane")
LOAD_AWARE = ("tlp", "lvrb", "koordinator", "crane")
ABLATIONS = ("ml-load", "ml-agent", "ml-anomaly", "ml-nolag")
ABLATION_MEANING = {
    "ml": "all three parts, metric-lag compensation on (the ML scheduler)",
    "ml-load": "the load predictor's part (and its hot filter) alone",
    "ml-agent": "the placement agent's part alone (no filter)",
    "ml-anomaly": "the anomaly detector's part (and its filter) alone",
    "ml-nolag": "all three parts without metric-lag compensation",
}
#: Columns of the per-level table: key, header, format, scale.
COLUMNS = (
    ("objective", "objective", "{:.4f}", 1.0),
    ("mean_cpu", "mean CPU", "{:.3f}", 1.0),
    ("p95_cpu", "p95 CPU", "{:.3f}", 1.0),
    ("hot_share", "hot %", "{:.2f}", 100.0),
    ("target_band_share", "in band %", "{:.1f}", 100.0),
    ("spread", "spread", "{:.3f}", 1.0),
    ("availability", "availability %", "{:.3f}", 100.0),
    ("impacted_pending", "pending>60s %", "{:.3f}", 100.0),
    ("impacted_cpu", "CPU over %", "{:.3f}", 100.0),
    ("impacted_oom", "OOM %", "{:.3f}", 100.0),
    ("pending_p95_s", "pending p95 s", "{:.0f}", 1.0),
    ("latency_p50_ms", "p50 ms", "{:.2f}", 1.0),
    ("latency_p99_ms", "p99 ms", "{:.2f}", 1.0),
    ("fallback_share", "fallbacks %", "{:.2f}", 100.0),
)
HIST_EDGES = np.linspace(0.0, 1.0, 101)
#: The extra decision latency the ML scheduler may add (p99, ms): the extender's target.
EXTENDER_BUDGET_MS = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 30 nodes, 2 seeds, 1 h")
    p.add_argument("--data-dir", type=Path, help="a data directory laid out like the default")
    p.add_argument("--pod-list", help="OpenB pod list (file name in alibaba-openb/ or a path)")
    p.add_argument("--node-list", help="OpenB node list")
    p.add_argument("--bitbrains-dir", help="Bitbrains month folder (or glob) for usage shapes")
    p.add_argument("--nodes", type=int, default=80)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--eval-seed", type=int, default=100, help="first evaluation seed")
    p.add_argument("--train-seed", type=int, default=1000, help="the training replay's seed")
    p.add_argument("--eval-start-h", type=float, default=13.0)
    p.add_argument("--eval-hours", type=float, default=3.0)
    p.add_argument("--warmup-h", type=float, default=1.0)
    p.add_argument("--levels", default="calm,warm,hot")
    p.add_argument("--schedulers", default=",".join((*BASELINES, "ml")))
    p.add_argument("--ablations", default=",".join(ABLATIONS), help="'' for none")
    p.add_argument("--ablation-level", default="hot")
    p.add_argument("--models", choices=("quick", "champion"), default="quick")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "placement")
    args = p.parse_args(argv)
    if args.quick:
        args.nodes, args.seeds, args.eval_hours = 30, 2, 1.0
        args.levels = "calm,hot"
    args.level_names = [x.strip() for x in args.levels.split(",") if x.strip()]
    bad = [x for x in args.level_names if x not in LEVELS]
    if bad:
        p.error(f"--levels: unknown {bad}; known: {', '.join(LEVELS)}")
    if args.seeds < 2:
        p.error("--seeds must be at least 2 (intervals need two runs)")
    return args


def trace_files(args: argparse.Namespace) -> dict[str, str]:
    """The composite trace's file options given on the command line."""
    given = {
        "pod_list": args.pod_list,
        "node_list": args.node_list,
        "bitbrains_dir": args.bitbrains_dir,
    }
    return {k: v for k, v in given.items() if v}


def _fallbacks(url: str) -> float:
    """The extender's fallbacks so far (all reasons)."""
    text = httpx.get(f"{url}/metrics", timeout=10.0).text
    return sum(
        float(m.group(1))
        for m in re.finditer(r"^hydatis_extender_fallbacks_total\{[^}]*\} (\S+)$", text, re.M)
    )


def run_slice(
    window: Any,
    names: list[str],
    *,
    seed: int,
    urls: dict[str, str],
    warmup_s: float,
    keep_matrix: set[str],
) -> dict[str, dict[str, Any]]:
    """Every scheduler on one workload: figures, node-CPU histogram, and the node-CPU
    matrix of those in ``keep_matrix``."""
    from simulator.engine import SimConfig, simulate
    from simulator.metrics import summarize
    from simulator.node_state import scheduler_context
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    workload = compile_workload(window)
    context = scheduler_context(window)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        params = {"url": urls[name], **context} if name in urls else {}
        sched = make_scheduler(name, **params)
        before = _fallbacks(urls[name]) if name in urls else 0.0
        result = simulate(workload, sched, seed=seed, config=SimConfig(warmup_s=warmup_s))
        figures = summarize(result)
        keep = result.times >= result.warmup_s
        cpu = result.node_cpu[keep]
        figures["cpu_hist"] = np.histogram(cpu.ravel(), bins=HIST_EDGES)[0]
        figures["fallback_share"] = 0.0
        if name in urls:
            stats = sched.stats()
            calls = float(stats.get("prioritize_calls", 0) + stats.get("filter_calls", 0))
            errors = float(stats.get("filter_errors", 0) + stats.get("prioritize_errors", 0))
            figures["fallback_share"] = ((_fallbacks(urls[name]) - before) + errors) / max(
                calls, 1.0
            )
            figures["extender_p99_ms"] = stats.get("extender_p99_ms", math.nan)
        if name in keep_matrix:
            stride = max(1, cpu.shape[0] // 240)
            figures["matrix"] = cpu[::stride]
            figures["matrix_hours"] = (result.times[keep][::stride] - result.warmup_s) / 3600.0
        out[name] = figures
    return out


#: What "better" means per metric for the plain-words summary: key, words, lower is better.
SUMMARY_METRICS = (
    ("objective", "the placement objective", True),
    ("hot_share", "hot node-time", True),
    ("availability", "availability", False),
    ("pending_p95_s", "pending time p95", True),
)


def wins_and_losses(per_seed: dict[str, dict[str, dict[str, dict[int, float]]]]) -> list[str]:
    """One sentence per level: where ml is better and worse than each baseline, counting
    only differences whose 95 % interval excludes zero."""
    lines = []
    for level, table in per_seed.items():
        if "ml" not in table:
            continue
        wins: list[str] = []
        losses: list[str] = []
        for key, words, lower in SUMMARY_METRICS:
            better, worse = [], []
            for other in BASELINES:
                if other not in table:
                    continue
                d = paired_difference(table["ml"][key], table[other][key])
                good, bad = (d.below(0.0), d.above(0.0)) if lower else (d.above(0.0), d.below(0.0))
                if good:
                    better.append(other)
                elif bad:
                    worse.append(other)
            if better:
                wins.append(f"{words} against {', '.join(better)}")
            if worse:
                losses.append(f"{words} against {', '.join(worse)}")
        lines.append(
            f"{level.capitalize()} level — the ML scheduler wins on "
            + ("; ".join(wins) if wins else "nothing shown")
            + "; it loses on "
            + ("; ".join(losses) if losses else "nothing shown")
            + " (95 % intervals of the paired differences; the rest is not told apart)."
        )
    return lines


def _fmt(est: Estimate, fmt: str, scale: float) -> str:
    return est.text(fmt, scale)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.data_dir is not None:
        os.environ["HYDATIS_DATA_DIR"] = str(args.data_dir)
    from cli.ml_stack import ml_stack, quick_models
    from components.import_trace.core import future_part
    from hydatis.config import data_dir
    from simulator.datasets import default_dataset

    files = trace_files(args)
    base = data_dir()
    source = f"real composite trace from {base}" if base else "embedded synthetic default"
    if files:
        source += " (" + ", ".join(f"{k}={v}" for k, v in files.items()) + ")"
    names = [n.strip() for n in args.schedulers.split(",") if n.strip()]
    ablations = [n.strip() for n in args.ablations.split(",") if n.strip()]
    ml_names = sorted({n for n in (*names, *ablations) if n.startswith("ml")})
    start_s, end_s = args.eval_start_h * 3600.0, (args.eval_start_h + args.eval_hours) * 3600.0
    warmup_s = args.warmup_h * 3600.0
    seeds = list(range(args.eval_seed, args.eval_seed + args.seeds))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    hot_lf, hot_us = LEVELS["hot"]
    knobs = {"load_factor": hot_lf, "usage_scale": hot_us, "synthetic": base is None, **files}
    console.print(f"[bold]Data:[/] {source}")

    models: dict[str, str] = {}
    origin = "registry champions (trained outside this run)"
    if args.models == "quick":
        with console.status("training the models on the training slice…") as status:
            trained = quick_models(
                out / "models",
                seed=args.train_seed - 1000,
                knobs=knobs,
                progress=status.update,
            )
        models = {k: str(v) for k, v in trained.items()}
        origin = (
            f"trained here on the training slice: seed {args.train_seed}, hours 0–12, "
            "100 nodes, hot level, replayed with the default scheduler"
        )
    train_s = time.perf_counter() - t_start

    records: dict[str, dict[int, dict[str, dict[str, Any]]]] = defaultdict(dict)
    jobs = [(level, seed) for level in args.level_names for seed in seeds]
    with ml_stack(
        seed=args.train_seed - 1000,
        models=models or None,
        use_registry=args.models == "champion",
        knobs=knobs,
        variants=tuple(ml_names),
        out_dir=out / "ml-stack",
        progress=lambda line: None,
    ) as stack:
        with Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("replays", total=len(jobs))
            for level, seed in jobs:
                lf, us = LEVELS[level]
                progress.update(task, description=f"{level} seed {seed}")
                ds, _ = default_dataset(
                    nodes=args.nodes,
                    load_factor=lf,
                    usage_scale=us,
                    horizon_s=end_s,
                    seed=seed,
                    synthetic=base is None,
                    **files,
                )
                window = future_part(ds, start_s - warmup_s, end_s)
                run_names = list(names) + (ablations if level == args.ablation_level else [])
                keep = {"default", "ml"} if (level == "hot" and seed == seeds[0]) else set()
                records[level][seed] = run_slice(
                    window,
                    run_names,
                    seed=seed,
                    urls={n: stack.variant_urls[n] for n in ml_names},
                    warmup_s=warmup_s,
                    keep_matrix=keep,
                )
                progress.advance(task)
        model_sources = dict(stack.sources)
    wall_s = time.perf_counter() - t_start

    # ------------------------------------------------------------------ aggregate
    keys = [c[0] for c in COLUMNS]
    estimates: dict[str, dict[str, dict[str, Estimate]]] = {}
    per_seed: dict[str, dict[str, dict[str, dict[int, float]]]] = {}
    for level, by_seed in records.items():
        sched_names = list(dict.fromkeys(n for r in by_seed.values() for n in r))
        per_seed[level] = {
            n: {
                k: {s: float(r[n][k]) for s, r in by_seed.items() if n in r and k in r[n]}
                for k in keys
            }
            for n in sched_names
        }
        estimates[level] = {
            n: {k: mean_ci(list(per_seed[level][n][k].values())) for k in keys} for n in sched_names
        }

    tables: list[tuple[str, list[str], list[list[str]], str]] = []
    headers = ["scheduler", *[c[1] for c in COLUMNS]]
    for level in estimates:
        lf, us = LEVELS[level]
        rows = [
            [n, *[_fmt(est[k], f, s) for k, _, f, s in COLUMNS]]
            for n, est in estimates[level].items()
        ]
        tables.append(
            (
                f"{level} level (load factor {lf}, usage scale {us})",
                headers,
                rows,
                "Mean over seeds with the 95 % interval in brackets.",
            )
        )
        rich_table = Table(title=f"{level} level — load factor {lf}, usage scale {us}")
        for h in ("scheduler", *[c[1] for c in COLUMNS]):
            rich_table.add_column(h, justify="right" if h != "scheduler" else "left")
        for n, est in estimates[level].items():
            rich_table.add_row(n, *[f.format(est[k].mean * s) for k, _, f, s in COLUMNS])
        console.print(rich_table)

    # paired comparisons of ml with every other scheduler
    pair_rows = []
    for level in per_seed:
        if "ml" not in per_seed[level]:
            continue
        ml = per_seed[level]["ml"]
        for other in per_seed[level]:
            if other == "ml":
                continue
            o = per_seed[level][other]
            d_obj = paired_difference(ml["objective"], o["objective"])
            d_hot = paired_difference(ml["hot_share"], o["hot_share"])
            d_av = paired_difference(ml["availability"], o["availability"])
            d_pend = paired_difference(ml["pending_p95_s"], o["pending_p95_s"])
            verdict = (
                "ml better"
                if d_obj.below(0.0)
                else "ml worse"
                if d_obj.above(0.0)
                else "no difference shown"
            )
            pair_rows.append(
                [
                    level,
                    other,
                    d_obj.text("{:+.4f}"),
                    d_hot.text("{:+.2f}", 100.0),
                    d_av.text("{:+.3f}", 100.0),
                    d_pend.text("{:+.0f}"),
                    verdict,
                ]
            )
    summary = wins_and_losses(per_seed)
    tables.append(
        (
            "ML scheduler minus each other scheduler, paired by seed",
            [
                "level",
                "vs",
                "Δ objective",
                "Δ hot pp",
                "Δ availability pp",
                "Δ pending p95 s",
                "objective",
            ],
            pair_rows,
            "Negative Δ objective and Δ hot are better for ml; positive Δ availability is "
            "better. 'ml better' needs the whole 95 % interval below zero.",
        )
    )

    # the ablation: what each part contributes
    abl_rows = []
    lvl = args.ablation_level
    if lvl in per_seed and "ml" in per_seed[lvl]:
        full = per_seed[lvl]["ml"]
        default = per_seed[lvl].get("default")
        for variant in ("ml", *ablations):
            if variant not in per_seed[lvl]:
                continue
            v = per_seed[lvl][variant]
            vs_default = (
                paired_difference(v["objective"], default["objective"]) if default else None
            )
            vs_full = paired_difference(v["objective"], full["objective"])
            if vs_default is None:
                says = "—"
            elif vs_default.below(0.0):
                says = "improves on default"
            elif vs_default.above(0.0):
                says = "worse than default"
            else:
                says = "adds nothing shown over default"
            if variant == "ml-nolag":
                says = (
                    "lag compensation helps"
                    if vs_full.above(0.0)
                    else "lag compensation hurts"
                    if vs_full.below(0.0)
                    else "lag compensation adds nothing shown"
                )
            abl_rows.append(
                [
                    variant,
                    ABLATION_MEANING.get(variant, ""),
                    estimates[lvl][variant]["objective"].text("{:.4f}"),
                    estimates[lvl][variant]["hot_share"].text("{:.2f}", 100.0),
                    estimates[lvl][variant]["availability"].text("{:.3f}", 100.0),
                    vs_default.text("{:+.4f}") if vs_default else "—",
                    vs_full.text("{:+.4f}") if variant != "ml" else "—",
                    says,
                ]
            )
    tables.append(
        (
            f"Ablation at the {lvl} level",
            [
                "variant",
                "what it uses",
                "objective",
                "hot %",
                "availability %",
                "Δ objective vs default",
                "Δ objective vs ml",
                "reading",
            ],
            abl_rows,
            "A part 'adds nothing shown' when the 95 % interval of its paired difference "
            "includes zero.",
        )
    )

    # ------------------------------------------------------------------ targets
    bench: dict[str, float] = {}
    target_rows = []
    hot = per_seed.get("hot", {})
    if "ml" in hot and "default" in hot:
        ml, de = hot["ml"], hot["default"]
        ratio = paired_ratio(ml["hot_share"], de["hot_share"])
        p95 = mean_ci(list(ml["p95_cpu"].values()))
        av = mean_ci(list(ml["availability"].values()))
        d_av = paired_difference(ml["availability"], de["availability"])
        best_la = min(
            (n for n in LOAD_AWARE if n in hot),
            key=lambda n: float(np.mean(list(hot[n]["objective"].values()))),
            default=None,
        )
        default_hot = mean_ci(list(de["hot_share"].values()))
        target_rows.append(
            [
                "the hot level is hot: default's hot node-time ≥ 5 %",
                default_hot.text("{:.2f}", 100.0) + " %",
                "yes" if default_hot.mean >= 0.05 else "no",
            ]
        )
        target_rows.append(
            [
                "hot node-time ≤ ⅓ of default's",
                ratio.text("{:.3f}"),
                "met" if ratio.mean <= 1 / 3 else "missed",
            ]
        )
        target_rows.append(
            ["p95 node CPU ≤ 0.70", p95.text("{:.3f}"), "met" if p95.mean <= 0.70 else "missed"]
        )
        target_rows.append(
            [
                "availability ≥ 99.7 % and ≥ default's (interval above zero)",
                f"{av.text('{:.3f}', 100.0)} %; Δ {d_av.text('{:+.3f}', 100.0)} pp",
                "met" if av.mean >= 0.997 and d_av.above(0.0) else "missed",
            ]
        )
        bench["placement_hot_share_ratio_vs_default"] = ratio.mean
        bench["placement_p95_cpu"] = p95.mean
        bench["placement_availability"] = av.mean
        if best_la is not None:
            obj_ratio = paired_ratio(ml["objective"], hot[best_la]["objective"])
            d_obj = paired_difference(ml["objective"], hot[best_la]["objective"])
            target_rows.append(
                [
                    f"objective better than the best load-aware ({best_la}), interval below 0",
                    f"ratio {obj_ratio.text('{:.3f}')}; Δ {d_obj.text('{:+.4f}')}",
                    "met" if d_obj.below(0.0) else "missed",
                ]
            )
            bench["placement_objective_ratio_vs_best_load_aware"] = obj_ratio.mean
        extra = paired_difference(ml["latency_p99_ms"], de["latency_p99_ms"])
        target_rows.append(
            [
                f"extra decision latency p99 within the extender budget ({EXTENDER_BUDGET_MS} ms)",
                extra.text("{:+.2f}") + " ms",
                "met" if extra.mean <= EXTENDER_BUDGET_MS else "missed",
            ]
        )
    calm = per_seed.get("calm", {})
    if "ml" in calm and "default" in calm:
        d_av = paired_difference(calm["ml"]["availability"], calm["default"]["availability"])
        d_pend = paired_difference(calm["ml"]["pending_p95_s"], calm["default"]["pending_p95_s"])
        target_rows.append(
            [
                "calm: availability no worse than default's",
                d_av.text("{:+.3f}", 100.0) + " pp",
                "met" if not d_av.below(0.0) else "missed",
            ]
        )
        target_rows.append(
            [
                "calm: pending p95 no worse than default's",
                d_pend.text("{:+.0f}") + " s",
                "met" if not d_pend.above(0.0) else "missed",
            ]
        )
        bench["placement_calm_availability_delta_pct"] = d_av.mean * 100.0
    tables.insert(
        0,
        (
            "Targets",
            ["target", "measured (95 % CI)", "verdict"],
            target_rows,
            "At the hot level unless said otherwise; paired by seed.",
        ),
    )
    tgt = Table(title="Targets")
    for h in ("target", "measured (95 % CI)", "verdict"):
        tgt.add_column(h)
    for row in target_rows:
        tgt.add_row(*row)
    console.print(tgt)
    abl = Table(title=f"Ablation ({lvl} level)")
    for h in (
        "variant",
        "objective",
        "hot %",
        "availability %",
        "Δ obj vs default",
        "Δ obj vs ml",
        "reading",
    ):
        abl.add_column(h)
    for row in abl_rows:
        abl.add_row(row[0], *row[2:])
    console.print(abl)
    for line in summary:
        console.print(line)

    # ------------------------------------------------------------------ report
    from _placement_report import write_report

    cdfs = {
        level: {
            n: np.sum([by_seed[s][n]["cpu_hist"] for s in by_seed if n in by_seed[s]], axis=0)
            for n in per_seed[level]
        }
        for level, by_seed in records.items()
    }
    heatmaps = []
    if "hot" in records:
        first = records["hot"][seeds[0]]
        for n in ("default", "ml"):
            if n in first and "matrix" in first[n]:
                heatmaps.append(
                    (
                        f"node CPU over time — {n}, hot level, seed {seeds[0]}",
                        first[n]["matrix"],
                        first[n]["matrix_hours"],
                    )
                )
    intro = [
        f"Data: {source}. {args.nodes} nodes per replay; evaluation seeds {seeds[0]}–"
        f"{seeds[-1]}; scored window hours {args.eval_start_h:g}–"
        f"{args.eval_start_h + args.eval_hours:g} of the trace's day after a "
        f"{args.warmup_h:g} h warm-up. Models: {origin}; served from {model_sources}.",
        "Slices: the models never see the evaluation slice (another seed — other nodes, "
        "workload copies and usage offsets — and hours before it). The extender's "
        "settings were chosen on development runs (seeds 0–1, hours 11–17), not on "
        "these seeds.",
        "How to read: the placement objective is the mean over node-time of max(0, CPU − "
        "0.65) — the CPU above the target, the quantity the scheduler exists to lower. "
        "'hot %' is the share of node-time above 0.85. Availability is 1 − the share of "
        "pod-time impacted by one of three causes: pending longer than 60 s (no node had "
        "room: fragmentation or a full cluster), sitting on a node whose CPU demand "
        "exceeds its capacity (throttled), or evicted for memory. A scheduler does not "
        "change the total load (mean CPU); it changes where the load lands.",
        f"Wall time {wall_s / 60:.1f} min (model training {train_s:.0f} s).",
        *summary,
    ]
    report = write_report(
        out / "report.html",
        title="HYDATIS ML scheduler — placement outcome on real traces",
        intro=intro,
        tables=tables,
        estimates=estimates,
        cdfs=cdfs,
        edges=HIST_EDGES,
        heatmaps=heatmaps,
    )
    results = {
        "source": source,
        "seeds": seeds,
        "models": origin,
        "levels": {
            lv: dict(zip(("load_factor", "usage_scale"), LEVELS[lv], strict=True)) for lv in records
        },
        "estimates": {
            lv: {n: {k: asdict(e) for k, e in per.items()} for n, per in est.items()}
            for lv, est in estimates.items()
        },
        "per_seed": per_seed,
        "targets": target_rows,
        "ablation": abl_rows,
        "bench": bench,
        "wall_s": wall_s,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    console.print(f"Wrote {report} and {out / 'results.json'} ({wall_s / 60:.1f} min)")
    units = {
        "placement_hot_share_ratio_vs_default": "ratio",
        "placement_p95_cpu": "utilisation",
        "placement_availability": "ratio",
        "placement_objective_ratio_vs_best_load_aware": "ratio",
        "placement_calm_availability_delta_pct": "pp",
    }
    for name, value in bench.items():
        print(f"BENCH {name} {value:.4f} {units[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
