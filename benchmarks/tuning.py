"""Tuning benchmark: the best parameters after N trials against the defaults, held out.

For each model: a local search (:func:`katib.local.tune`, Optuna TPE over
``katib/spaces.yaml``, the trainer's defaults evaluated first) scores its trials on the
validation split carved from the training side; then the defaults and the best
parameters are each trained once more and scored on the held-out test split the search
never read (:mod:`katib.objectives` describes both splits per model). Both runs use the
same budget and seed, so the only difference is the parameters.

improvement = 100 · (1 − best / defaults) for a minimised objective (load: CPU WAPE
= 1 − accuracy, placement: the placement objective), 100 · (best / defaults − 1) for a
maximised one (anomaly: event F1). Prints a table and

    BENCH tuning_load_improvement_pct X %
    BENCH tuning_anomaly_improvement_pct X %
    BENCH tuning_placement_improvement_pct X %

A trial averages ``--trial-repeats`` trainer seeds and the held-out comparison
``--repeats`` (the same seeds for the defaults and the best), because the agent's
objective moves ~10 % from one seed to the next.

Run: ``.venv/bin/python benchmarks/tuning.py [--only load,anomaly,placement]
[--trials load=10,anomaly=10,placement=10] [--budget load=small,anomaly=full,...]
[--trial-repeats placement=2] [--repeats load=1,anomaly=2,placement=4] [--seed 0]``. ``--trials
load=3,anomaly=3,placement=3 --budget load=tiny,anomaly=tiny,placement=tiny`` is a
one-minute smoke run. Studies go to a temporary directory (``--work-dir`` keeps them);
nothing is logged to MLflow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and benchmarks/simulator.py
# would shadow the simulator package the trainers import.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from hydatis.config import require_data_dir  # noqa: E402

MODELS = ("load", "anomaly", "placement")
DEFAULT_TRIALS = {"load": 10, "anomaly": 10, "placement": 10}
DEFAULT_BUDGETS = {"load": "small", "anomaly": "full", "placement": "small"}
#: Trainer seeds averaged per trial: the agent's training is chaotic (one seed to the
#: next, or a parameter's 5th digit, moves its objective by ~10 %), so one run ranks
#: its trials by noise.
TRIAL_REPEATS = {"load": 1, "anomaly": 1, "placement": 2}
#: Trainer seeds the held-out comparison averages over (the same for both sides).
DEFAULT_REPEATS = {"load": 1, "anomaly": 2, "placement": 4}
#: Side figures shown beside each objective (same runs, held-out split).
SIDE = {
    "load": ["load_cpu_accuracy", "load_mem_wape", "load_cpu_mae_pp"],
    "anomaly": ["anomaly_alarm_precision", "anomaly_event_recall", "anomaly_auc_pr"],
    "placement": ["placement_improvement_vs_random_pct", "placement_hot_share"],
}


def _per_model(text: str | None, defaults: dict[str, Any], kind: type) -> dict[str, Any]:
    out = dict(defaults)
    for item in (text or "").split(","):
        if not item.strip():
            continue
        model, _, value = item.partition("=")
        if model.strip() not in defaults or not value:
            raise SystemExit(f"bad item {item!r}: use model=value with model in {MODELS}")
        out[model.strip()] = kind(value.strip())
    return out


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "–" if value is None or value != value else format(value, spec)


def bench_model(
    model: str,
    trials: int,
    budget: str,
    trial_repeats: int,
    repeats: int,
    seed: int,
    work: Path,
    console: Console,
) -> dict[str, Any]:
    """Tune one model, then score the defaults and the best on the held-out split."""
    from katib.local import improvement_pct, tune
    from katib.objectives import evaluate, prepare
    from katib.spaces import space

    sp = space(model)
    t0, c0 = time.perf_counter(), time.process_time()

    def on_trial(number: int, s: dict[str, Any]) -> None:
        console.log(
            f"{model} trial {number}: {s['state'].lower()} {_fmt(s['value'])} "
            f"(best {_fmt(s['best'])})"
        )

    result = tune(
        model,
        trials=trials,
        budget=budget,
        seed=seed,
        repeats=trial_repeats,
        work=work,
        mlflow=False,
        on_trial=on_trial,
    )
    tune_s = time.perf_counter() - t0
    data = prepare(model, budget, seed=seed, split="test")
    defaults = sp.defaults()
    test_default = evaluate(
        model,
        sp.to_trainer(defaults),
        budget=budget,
        seed=seed,
        split="test",
        repeats=repeats,
        data=data,
    )
    if result.space_values == defaults:  # the search kept the defaults: same run
        test_best = test_default
    else:
        test_best = evaluate(
            model,
            result.params,
            budget=budget,
            seed=seed,
            split="test",
            repeats=repeats,
            data=data,
        )
    metric = sp.objective.metric
    return {
        "model": model,
        "metric": metric,
        "direction": sp.objective.direction,
        "trials": result.trials,
        "failed": result.failed,
        "budget": budget,
        "repeats": repeats,
        "trial_repeats": trial_repeats,
        "valid_default": result.default_value,
        "valid_best": result.value,
        "valid_gain": result.improvement_pct,
        "test_default": test_default[metric],
        "test_best": test_best[metric],
        "test_gain": improvement_pct(test_best[metric], test_default[metric], result.direction),
        "side": {k: (test_default.get(k), test_best.get(k)) for k in SIDE[model]},
        "params": result.space_values,
        "defaults": defaults,
        "tune_s": tune_s,
        "total_s": time.perf_counter() - t0,
        # CPU seconds of this process: the wall time on an idle machine (the work is
        # single-threaded), whatever else shares the cores.
        "cpu_s": time.process_time() - c0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(MODELS))
    parser.add_argument("--trials", default=None, help="e.g. load=20,anomaly=16")
    parser.add_argument("--budget", default=None, help="e.g. load=small,placement=tiny")
    parser.add_argument(
        "--trial-repeats", default=None, help="trainer seeds averaged per trial, e.g. placement=2"
    )
    parser.add_argument(
        "--repeats", default=None, help="trainer seeds averaged on the test split, e.g. load=1"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the studies here")
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = _per_model(args.trials, DEFAULT_TRIALS, int)
    budgets = _per_model(args.budget, DEFAULT_BUDGETS, str)
    repeats = _per_model(args.repeats, DEFAULT_REPEATS, int)
    trial_repeats = _per_model(args.trial_repeats, TRIAL_REPEATS, int)
    models = [m.strip() for m in args.only.split(",") if m.strip()]
    if unknown := set(models) - set(MODELS):
        raise SystemExit(f"unknown model(s) {sorted(unknown)}: use {', '.join(MODELS)}")
    if {"load", "anomaly"} & set(models):
        require_data_dir()
    console = Console(width=200, stderr=True)
    out = Console(width=200)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hydatis-bench-tuning-") as tmp:
        work = args.work_dir or Path(tmp)
        for model in models:
            rows.append(
                bench_model(
                    model,
                    trials[model],
                    budgets[model],
                    trial_repeats[model],
                    repeats[model],
                    args.seed,
                    work,
                    console,
                )
            )

    table = Table(title=f"Tuning: defaults vs the best after N trials (seed {args.seed})")
    for col in (
        "model",
        "objective",
        "trials",
        "budget",
        "valid: defaults",
        "valid: best",
        "valid gain",
        "seeds: trial / test",
        "test: defaults",
        "test: best",
        "test gain",
        "wall (CPU)",
    ):
        table.add_column(
            col, justify="left" if col in ("model", "objective", "budget") else "right"
        )
    for r in rows:
        arrow = "↓" if r["direction"] == "minimize" else "↑"
        table.add_row(
            r["model"],
            f"{r['metric']} {arrow}",
            f"{r['trials']}" + (f" (+{r['failed']} failed)" if r["failed"] else ""),
            r["budget"],
            _fmt(r["valid_default"]),
            _fmt(r["valid_best"]),
            _fmt(r["valid_gain"], "+.1f") + " %",
            f"{r['trial_repeats']} / {r['repeats']}",
            _fmt(r["test_default"]),
            _fmt(r["test_best"]),
            _fmt(r["test_gain"], "+.1f") + " %",
            f"{r['total_s']:.0f} s ({r['cpu_s']:.0f} s)",
        )
    out.print(table)
    side = Table(title="Side figures on the held-out split (defaults → best)")
    for col in ("model", "figure", "defaults", "best"):
        side.add_column(col)
    for r in rows:
        for name, (d, b) in r["side"].items():
            side.add_row(r["model"], name, _fmt(d), _fmt(b))
    out.print(side)
    params = Table(title="Best parameters (defaults in brackets)")
    for col in ("model", "parameters"):
        params.add_column(col)
    for r in rows:
        text = ", ".join(
            f"{k}={_fmt(v, '.4g') if isinstance(v, float) else v} [{r['defaults'][k]}]"
            for k, v in r["params"].items()
        )
        params.add_row(r["model"], text)
    out.print(params)
    total = sum(r["total_s"] for r in rows)
    cpu = sum(r["cpu_s"] for r in rows)
    out.print(f"Total {total / 60:.1f} min wall, {cpu / 60:.1f} min CPU")
    for r in rows:
        print(f"BENCH tuning_{r['model']}_improvement_pct {r['test_gain']:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
