"""``hydatis pipeline``: compile the Kubeflow pipelines, or run them on this machine.

hydatis pipeline compile --out DIR
    one KFP IR YAML per pipeline (``hydatis-training.yaml``, ``hydatis-retraining.yaml``):
    what a user uploads in the Kubeflow Pipelines UI
hydatis pipeline run [training] [--trials N] [--budget quick] [--deploy local] ...
    the training pipeline with ``kfp.local`` (history → features → Feast → tune → train →
    evaluate → register behind the gate → deploy), a progress bar over its tasks, every
    task's output in ``<root>/<pipeline>.log``; unchanged tasks come from the cache
hydatis pipeline run retraining --dataset DIR --features DIR
    retrain, gate and deploy from an existing dataset and feature table
hydatis pipeline stop-local
    stop the model servers a ``--deploy local`` run left running
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydatis.errors import HydatisError

__all__ = [
    "add_parser",
    "read_outcomes",
    "run",
    "run_with_progress",
    "training_arguments",
]

DEFAULT_ROOT = "pipeline"  # under the work directory


def _console() -> Any:
    """A console bound to the real stdout *now*: while a pipeline runs, ``sys.stdout`` is
    the task log, and the progress bar must not land in it."""
    from rich.console import Console

    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_trace_arguments(p: argparse.ArgumentParser, *, defaults: Mapping[str, Any]) -> None:
    """The trace, split and budget options the training pipeline and the demo share."""
    g = p.add_argument_group("the trace (source 'trace') and its split")
    g.add_argument("--nodes", type=int, default=defaults["nodes"], help="nodes sampled")
    g.add_argument("--load-factor", type=float, default=defaults["load_factor"])
    g.add_argument("--usage-scale", type=float, default=defaults["usage_scale"])
    g.add_argument(
        "--horizon", type=float, default=defaults["horizon_s"], help="trace length (seconds)"
    )
    g.add_argument(
        "--history",
        type=float,
        default=defaults["history_s"],
        help="seconds of the trace that are history (the pipeline's data); the rest is the future",
    )
    g.add_argument(
        "--valid-share",
        type=float,
        default=defaults["valid_share"],
        help="share of the history kept for validation (never trained on)",
    )
    g.add_argument(
        "--synthetic", action="store_true", help="the synthetic default even with traces"
    )
    g.add_argument("--seed", type=int, default=0)
    b = p.add_argument_group("search and training")
    b.add_argument(
        "--trials",
        type=_positive_int,
        default=defaults["tune_trials"],
        help="search trials per model (0: the trainers' defaults)",
    )
    b.add_argument(
        "--tune-budget",
        choices=("tiny", "small", "full"),
        default=defaults["tune_budget"],
        help="data and training size of each search trial",
    )
    b.add_argument(
        "--budget",
        choices=("tiny", "quick", "full"),
        default=defaults["train_budget"],
        help="data and episodes of each model's training",
    )
    b.add_argument(
        "--models",
        default="placement,load,anomaly",
        help="comma-separated models to train (default all three)",
    )
    r = p.add_argument_group("local run")
    r.add_argument(
        "--root",
        type=Path,
        default=None,
        help="pipeline root: tasks' outputs, the cache, the log (default <work dir>/pipeline)",
    )
    r.add_argument("--no-cache", action="store_true", help="run every task again")


TRAINING_DEFAULTS: dict[str, Any] = {
    "nodes": 200,
    "load_factor": 1.3,
    "usage_scale": 1.5,
    "horizon_s": 86400.0,
    "history_s": 57600.0,
    "valid_share": 0.25,
    "tune_trials": 20,
    "tune_budget": "small",
    "train_budget": "full",
}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis pipeline`` (``compile``, ``run``, ``stop-local``); the caller
    sets ``func`` to :func:`run`."""
    p = sub.add_parser(
        "pipeline",
        help="compile the Kubeflow pipelines, or run them locally",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    actions = p.add_subparsers(dest="pipeline_action", required=True)
    comp = actions.add_parser("compile", help="write one KFP IR YAML per pipeline")
    comp.add_argument("--out", type=Path, required=True, help="directory for the YAML files")

    runp = actions.add_parser("run", help="run a pipeline locally with kfp.local")
    runp.add_argument("pipeline", nargs="?", choices=("training", "retraining"), default="training")
    runp.add_argument(
        "--source",
        choices=("trace", "dataset", "prometheus"),
        default="trace",
        help="training: where the history comes from (default: the trace, replayed)",
    )
    runp.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="a dataset directory (source 'dataset'; retraining: the dataset to retrain on)",
    )
    runp.add_argument(
        "--features", type=Path, default=None, help="retraining: the feature table directory"
    )
    runp.add_argument("--prometheus", default="", help="Prometheus URL (source 'prometheus')")
    runp.add_argument("--days", type=float, default=30.0, help="days to extract")
    runp.add_argument(
        "--deploy",
        choices=("render", "local", "cluster"),
        default="render",
        help="after a promotion: render the InferenceServices only, also restart the local "
        "model servers on the champions, or apply them to the cluster (kubeconfig)",
    )
    runp.add_argument("--feature-repo", default="feature_repo", help="the Feast repo")
    runp.add_argument("--redis-url", default="", help="Redis online store for Feast")
    add_trace_arguments(runp, defaults=TRAINING_DEFAULTS)

    actions.add_parser("stop-local", help="stop the local deployment's model servers")
    return p


# --------------------------------------------------------------------------- running


def run_with_progress(
    name: str,
    arguments: Mapping[str, Any],
    *,
    root: Path,
    caching: bool,
    console: Any,
    models: list[str] | None = None,
) -> Any:
    """Run pipeline ``name`` locally behind a progress bar over its tasks.

    Returns:
        The :class:`pipelines.LocalRun`.

    Raises:
        HydatisError: a task failed (with the log's path and its last lines).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from pipelines import PIPELINES, PipelineFailedError, run_local, task_count

    total = task_count(name, models)
    running: list[str] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task(f"pipeline {name}", total=total)

        def describe() -> str:
            now = ", ".join(sorted(set(running))) or "…"
            return f"pipeline {name}: {now}"[:70]

        def on_task(event: str, task: str) -> None:
            if event == "start":
                running.append(task)
            elif task in running:
                running.remove(task)
            if event in ("done", "cached", "skipped"):
                progress.advance(bar)
            progress.update(bar, description=describe())

        try:
            result = run_local(
                PIPELINES[name],
                arguments,
                pipeline_root=root,
                caching=caching,
                on_task=on_task,
            )
        except PipelineFailedError as exc:
            raise HydatisError(
                f"pipeline {name}: task {exc.task or '?'} failed; its output is in "
                f"{exc.log_path}. The end of the log:\n{exc.tail[-2500:]}"
            ) from exc
        progress.update(bar, completed=total, description=f"pipeline {name}: done")
    return result


def read_outcomes(run: Any) -> list[dict[str, Any]]:
    """The registration outcomes a run returned (one per model)."""
    path = getattr(run.output, "path", None)
    if not path or not Path(path).is_file():
        raise HydatisError(f"the pipeline run returned no outcomes ({run.output!r})")
    return list(json.loads(Path(path).read_text()))


def training_arguments(args: argparse.Namespace, *, deploy: str = "render") -> dict[str, Any]:
    """The training pipeline's parameters from parsed ``hydatis pipeline run``/``demo``
    options; the data directory is resolved here (and so enters the tasks' cache keys)."""
    from hydatis.config import data_dir

    base = None if args.synthetic else data_dir()
    source = getattr(args, "source", "trace")
    dataset = getattr(args, "dataset", None)
    if source == "dataset" and dataset is None:
        raise HydatisError("--source dataset needs --dataset DIR")
    if source == "prometheus" and not getattr(args, "prometheus", ""):
        raise HydatisError("--source prometheus needs --prometheus URL")
    return {
        "source": source,
        "dataset_uri": str(Path(dataset).resolve()) if dataset else "",
        "prometheus_url": getattr(args, "prometheus", "") or "",
        "days": float(getattr(args, "days", 30.0)),
        "nodes": int(args.nodes),
        "load_factor": float(args.load_factor),
        "usage_scale": float(args.usage_scale),
        "horizon_s": float(args.horizon),
        "history_s": float(args.history),
        "synthetic": bool(args.synthetic),
        "data_dir": str(base) if base is not None else "",
        "seed": int(args.seed),
        "feature_repo": str(Path(getattr(args, "feature_repo", "feature_repo")).resolve()),
        "redis_url": getattr(args, "redis_url", "") or "",
        "models": _models(args),
        "tune_trials": int(args.trials),
        "tune_budget": args.tune_budget,
        "train_budget": args.budget,
        "valid_share": float(args.valid_share),
        "deploy_target": deploy,
    }


def _models(args: argparse.Namespace) -> list[str]:
    from pipelines import MODELS

    models = [m.strip() for m in str(args.models).split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown or not models:
        raise HydatisError(f"--models: use some of {', '.join(MODELS)} (got {args.models!r})")
    return models


def prepare_registry() -> None:
    """Create the local MLflow store before parallel tasks write to it (two processes
    creating one SQLite schema at once would race)."""
    from components.register import tracking_uri

    uri = tracking_uri()
    if uri.startswith("sqlite:"):
        from mlflow.tracking import MlflowClient

        MlflowClient(uri, uri).search_experiments(max_results=1)


def outcome_table(outcomes: list[dict[str, Any]]) -> Any:
    """A rich table: one row per registered model."""
    from rich.table import Table

    table = Table(title="Registered (gate)", header_style="bold")
    for col in ("model", "version", "alias", "primary figure", "reason"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        value = o.get("value")
        figure = f"{o.get('primary')} = {value:.4g}" if isinstance(value, float) else "–"
        table.add_row(str(o["name"]), str(o["version"]), str(o["alias"]), figure, o["reason"])
    return table


def _root(args: argparse.Namespace) -> Path:
    from hydatis.config import work_dir

    return Path(args.root) if args.root else work_dir() / DEFAULT_ROOT


def _run_pipeline(args: argparse.Namespace) -> int:
    console = _console()
    if args.pipeline == "retraining":
        if args.dataset is None or args.features is None:
            raise HydatisError("retraining needs --dataset DIR and --features DIR")
        arguments: dict[str, Any] = {
            "dataset_uri": str(args.dataset.resolve()),
            "features_uri": str(args.features.resolve()),
            "models": _models(args),
            "train_budget": args.budget,
            "valid_share": float(args.valid_share),
            "seed": int(args.seed),
            "deploy_target": args.deploy,
        }
    else:
        arguments = training_arguments(args, deploy=args.deploy)
        what = (
            f"the real composite trace from {arguments['data_dir']}"
            if arguments["data_dir"]
            else "the embedded synthetic default"
        )
        if arguments["source"] == "trace":
            console.print(f"[bold]Data:[/] {what}")
    prepare_registry()
    t0 = time.perf_counter()
    run = run_with_progress(
        args.pipeline,
        arguments,
        root=_root(args),
        caching=not args.no_cache,
        console=console,
        models=arguments["models"],
    )
    outcomes = read_outcomes(run)
    console.print(outcome_table(outcomes))
    console.print(
        f"{run.pipeline} finished in {time.perf_counter() - t0:.0f} s "
        f"({run.cached} tasks from the cache); outputs in {run.run_dir}, log {run.log_path}"
    )
    return 0


def _compile(args: argparse.Namespace) -> int:
    from pipelines import compile_all

    for path in compile_all(args.out):
        print(f"wrote {path}")
    return 0


def _stop_local(args: argparse.Namespace) -> int:
    from components.deploy import local_state_path, stop_local

    pids = stop_local(local_state_path())
    print(f"stopped {len(pids)} model server(s)" if pids else "no local deployment running")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``hydatis pipeline ...``; the exit code."""
    if args.pipeline_action == "compile":
        return _compile(args)
    if args.pipeline_action == "stop-local":
        return _stop_local(args)
    return _run_pipeline(args)
