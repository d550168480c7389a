"""``hydatis tune MODEL --trials N``: search a model's parameters on this machine.

The local backend of :mod:`katib` (Optuna TPE over ``katib/spaces.yaml``, calling the
Katib trial entry point in-process): a rich progress bar over the trials and one for the
running trial, then the best parameters beside the defaults. The study is kept in
``<work dir>/tuning/<model>.db`` (``--resume`` continues it), the best parameters in
``<work dir>/tuning/<model>_best.json`` (the trainers' ``params``), and an MLflow run in
the ``hydatis-tuning`` experiment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

MODELS = ("load", "anomaly", "placement")


def _trials(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis tune``; the caller sets ``func`` to :func:`run`."""
    p = sub.add_parser(
        "tune",
        help="search a model's hyperparameters locally (Optuna TPE, resumable)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("model", choices=[*MODELS, "all"])
    p.add_argument("--trials", type=_trials, default=20, help="trials to run (default 20)")
    p.add_argument(
        "--budget",
        choices=("tiny", "small", "full"),
        default="small",
        help="data and training size of each trial (default small: a minute or two for 5 "
        "load trials; full = the trainers' defaults, as on Katib)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampler and trainer seed")
    p.add_argument(
        "--repeats",
        type=_trials,
        default=1,
        help="trainings per trial with seeds seed, seed+1, ... averaged (noisy models)",
    )
    p.add_argument("--resume", action="store_true", help="continue the stored study")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where tuning/ goes (default: HYDATIS_WORK_DIR or ./out)",
    )
    p.add_argument("--no-mlflow", action="store_true", help="do not log the result to MLflow")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    return p


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "x".join(str(v) for v in value)
    return str(value)


def _tune_one(args: argparse.Namespace, model: str, console: Any) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    from katib.local import improvement_pct, tune
    from katib.spaces import space

    sp = space(model)
    columns = (
        TextColumn("{task.description:<44}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task(f"tune {model}", total=args.trials)
        current = progress.add_task("trial 1", total=1.0)
        seen = [0]

        def on_trial(number: int, summary: dict[str, Any]) -> None:
            seen[0] += 1
            best = summary["best"]
            what = f"tune {model}: best {sp.objective.metric} "
            what += "–" if best is None else f"{best:.4g}"
            progress.update(overall, completed=seen[0], description=what)
            last = seen[0] >= args.trials
            progress.update(
                current, completed=0, description=f"trial {number + 2}", visible=not last
            )

        def on_progress(fraction: float, what: str) -> None:
            progress.update(current, completed=fraction, description=what[:44])

        result = tune(
            model,
            trials=args.trials,
            budget=args.budget,
            seed=args.seed,
            repeats=args.repeats,
            resume=args.resume,
            work=args.work_dir,
            mlflow=not args.no_mlflow,
            tracking_uri=args.tracking_uri,
            on_trial=on_trial,
            trial_progress=on_progress,
        )
    defaults = sp.defaults()
    table = Table(title=f"{model}: best of {result.trials} trials (validation split)")
    for col in ("parameter", "space", "default", "best"):
        table.add_column(col)
    for p in sp.params:
        table.add_row(
            p.name, p.describe(), _fmt(defaults[p.name]), _fmt(result.space_values[p.name])
        )
    console.print(table)
    line = f"{sp.objective.metric} ({sp.objective.direction}): best {result.value:.6g}"
    if result.default_value is not None:
        gain = improvement_pct(result.value, result.default_value, result.direction)
        line += f", defaults {result.default_value:.6g} ({gain:+.1f} %)"
    console.print(line + f"; {result.failed} failed; {result.seconds:.0f} s")
    console.print(f"Best parameters: {result.best_path}  study: {result.storage}")
    if result.mlflow_run_id:
        console.print(f"MLflow run {result.mlflow_run_id} (experiment hydatis-tuning)")


def run(args: argparse.Namespace) -> int:
    """Tune each model asked for; exit 0 when every search completed a trial."""
    import optuna
    from rich.console import Console

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bars say it
    console = Console(width=None if sys.stdout.isatty() else 160)
    models = list(MODELS) if args.model == "all" else [args.model]
    for model in models:
        _tune_one(args, model, console)
    return 0
