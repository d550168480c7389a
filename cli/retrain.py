"""``hydatis retrain``: retrain when the data says so, or on a schedule.

hydatis retrain --if-drift --dataset DIR [--current DIR] [drift options] --out DIR
    run the drift check (``hydatis drift check``'s logic, its retraining trigger off); when
    a kind is in drift, run the retraining pipeline locally on the checked data; when none
    is, say so and do nothing
hydatis retrain --force --dataset DIR [--features DIR] --out DIR
    run the retraining pipeline whatever the data says
hydatis retrain (--if-drift | --force) --full ...
    run the training pipeline instead (the search included) on ``--dataset``
hydatis retrain schedules --out DIR --dataset-uri URI --features-uri URI --prometheus-url URL
    compile the pipelines and write the KFP recurring runs (daily incremental, weekly
    full) in both of the forms KFP takes; ``--apply --host URL`` creates them

Every run registers through the pipeline's gate step (champion only when the gate
passes); nothing here registers a model. ``OUT/retrain.json`` records the decision.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hydatis.errors import ConfigError

__all__ = ["add_parser", "decide", "pipeline_arguments", "run"]

DEFAULT_OUT = "retrain"  # under the work directory
DRIFT_DIR = "drift"
SUMMARY = "retrain.json"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis retrain`` (``run``, the default, and ``schedules``)."""
    from pipelines.schedules import DAILY_CRON, WEEKLY_CRON

    p = sub.add_parser(
        "retrain",
        help="retrain on drift or on demand; write the KFP schedules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="?", choices=("run", "schedules"), default="run")
    p.add_argument("--out", type=Path, default=None, help="output folder")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--if-drift", action="store_true", help="retrain only on drift")
    when.add_argument("--force", action="store_true", help="retrain whatever the data says")
    p.add_argument("--full", action="store_true", help="the training pipeline (with search)")

    d = p.add_argument_group("data (run)")
    d.add_argument("--dataset", type=Path, default=None, help="the cluster dataset")
    d.add_argument("--current", type=Path, default=None, help="newer data to check (--if-drift)")
    d.add_argument("--features", type=Path, default=None, help="its feature table folder")
    ref = d.add_mutually_exclusive_group()
    ref.add_argument("--reference-until", default=None, help="end of the drift reference")
    ref.add_argument("--reference-share", type=float, default=None, help="reference share")
    d.add_argument("--validation-share", type=float, default=None)
    d.add_argument("--model", default=None, help="load predictor for drift: DIR or champion")
    d.add_argument("--drift-config", type=Path, default=None, help="drift settings YAML")
    d.add_argument("--state", type=Path, default=None, help="drift state file (carried)")

    r = p.add_argument_group("the pipeline run")
    r.add_argument("--models", default="placement,load,anomaly", help="models to retrain")
    r.add_argument("--budget", choices=("tiny", "quick", "full"), default="full")
    r.add_argument("--trials", type=int, default=20, help="search trials (--full)")
    r.add_argument("--tune-budget", choices=("tiny", "small", "full"), default="small")
    r.add_argument("--valid-share", type=float, default=0.25)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--deploy", choices=("render", "local", "cluster"), default="render")
    r.add_argument("--feature-repo", default="feature_repo", help="Feast repo (--full)")
    r.add_argument("--redis-url", default="", help="Redis online store (--full)")
    r.add_argument("--root", type=Path, default=None, help="pipeline root")
    r.add_argument("--no-cache", action="store_true")

    s = p.add_argument_group("schedules")
    s.add_argument("--dataset-uri", default=None, help="daily: the latest dataset's URI")
    s.add_argument("--features-uri", default=None, help="daily: its feature table's URI")
    s.add_argument("--prometheus-url", default=None, help="weekly: the cluster's Prometheus")
    s.add_argument("--days", type=float, default=30.0, help="weekly: days of history")
    s.add_argument("--daily-cron", default=DAILY_CRON, help=f"default {DAILY_CRON!r}")
    s.add_argument("--weekly-cron", default=WEEKLY_CRON, help=f"default {WEEKLY_CRON!r}")
    s.add_argument("--experiment-id", default=None)
    s.add_argument("--pipeline-root", default=None)
    s.add_argument("--service-account", default=None)
    s.add_argument("--apply", action="store_true", help="create them on the KFP API")
    s.add_argument("--host", default=None, help="the KFP API (with --apply)")
    p.set_defaults(func=run)
    return p


def _console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)


def _out(args: argparse.Namespace) -> Path:
    from hydatis.config import work_dir

    return Path(args.out) if args.out else work_dir() / DEFAULT_OUT


# --------------------------------------------------------------------------- schedules


def _schedules(args: argparse.Namespace) -> int:
    from pipelines.schedules import apply_schedules, default_schedules, write_schedules

    if args.out is None:
        raise ConfigError("retrain schedules needs --out DIR")
    schedules = default_schedules(
        dataset_uri=args.dataset_uri or "",
        features_uri=args.features_uri or "",
        prometheus_url=args.prometheus_url or "",
        days=args.days,
        deploy_target="cluster" if args.deploy == "render" else args.deploy,
        tune_trials=args.trials,
        daily_cron=args.daily_cron,
        weekly_cron=args.weekly_cron,
    )
    paths = write_schedules(
        args.out,
        schedules,
        experiment_id=args.experiment_id,
        pipeline_root=args.pipeline_root,
        service_account=args.service_account,
    )
    console = _console()
    for s in schedules:
        console.print(f"[bold]{s.name}[/]: {s.pipeline} pipeline, cron {s.cron!r}")
    for path in paths:
        console.print(f"wrote {path}")
    if args.apply:
        if not args.host:
            raise ConfigError("--apply needs --host (the KFP API URL)")
        ids = apply_schedules(args.host, args.out)
        console.print(f"created recurring runs: {', '.join(ids)}")
    return 0


# --------------------------------------------------------------------------- run


def _drift_argv(args: argparse.Namespace, out: Path) -> list[str]:
    argv = ["drift", "check", "--dataset", str(args.dataset), "--out", str(out)]
    optional = {
        "--current": args.current,
        "--features": args.features,
        "--reference-until": args.reference_until,
        "--reference-share": args.reference_share,
        "--validation-share": args.validation_share,
        "--model": args.model,
        "--config": args.drift_config,
        "--state": args.state,
    }
    for flag, value in optional.items():
        if value is not None:
            argv += [flag, str(value)]
    return [*argv, "--no-retrain", "--no-report"]


def decide(verdict: dict[str, Any]) -> tuple[bool, str, list[str]]:
    """(retrain?, why, kinds in drift) from a drift verdict (``verdict.json``)."""
    kinds = [k for k, e in verdict.get("kinds", {}).items() if e.get("drift")]
    checked = verdict.get("windows_checked", 0)
    if kinds:
        return True, f"in drift: {', '.join(kinds)}", kinds
    if not checked:
        return False, "no new complete window to check since the last check", []
    parts = ", ".join(f"{k} {e.get('status')}" for k, e in verdict.get("kinds", {}).items())
    return False, f"no kind in drift over {checked} new window(s) ({parts})", []


def _check_drift(args: argparse.Namespace, out: Path) -> tuple[dict[str, Any], Path, Path]:
    """Run the drift check; (verdict, the dataset it read, its feature table)."""
    from cli import drift as drift_cmd

    parser = argparse.ArgumentParser(prog="hydatis")
    drift_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    folder = out / DRIFT_DIR
    drift_args = parser.parse_args(_drift_argv(args, folder))
    drift_cmd.run(drift_args)
    verdict = json.loads((folder / "verdict.json").read_text(encoding="utf-8"))
    dataset = folder / "dataset" if args.current is not None else args.dataset
    features = args.features if args.features is not None else folder / "features"
    return verdict, dataset, features


def _models(text: str) -> list[str]:
    from pipelines import MODELS

    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown or not models:
        raise ConfigError(f"--models: use some of {', '.join(MODELS)} (got {text!r})")
    return models


def pipeline_arguments(
    args: argparse.Namespace, dataset: Path, features: Path | None
) -> tuple[str, dict[str, Any]]:
    """(pipeline name, its parameters) for a retraining run on ``dataset``."""
    models = _models(args.models)
    if args.full:
        from hydatis.config import data_dir

        base = data_dir()
        return "training", {
            "source": "dataset",
            "dataset_uri": str(Path(dataset).resolve()),
            "data_dir": str(base) if base is not None else "",
            "seed": int(args.seed),
            "feature_repo": str(Path(args.feature_repo).resolve()),
            "redis_url": args.redis_url or "",
            "models": models,
            "tune_trials": int(args.trials),
            "tune_budget": args.tune_budget,
            "train_budget": args.budget,
            "valid_share": float(args.valid_share),
            "deploy_target": args.deploy,
        }
    if features is None:
        raise ConfigError("the retraining pipeline needs a feature table")
    return "retraining", {
        "dataset_uri": str(Path(dataset).resolve()),
        "features_uri": str(Path(features).resolve()),
        "models": models,
        "train_budget": args.budget,
        "valid_share": float(args.valid_share),
        "seed": int(args.seed),
        "deploy_target": args.deploy,
    }


def _features_for(args: argparse.Namespace, out: Path) -> Path | None:
    if args.full:
        return None
    if args.features is not None:
        return args.features
    from components.build_features import build_features

    where = out / "features"
    build_features(args.dataset, where)
    return where


def _retrain(args: argparse.Namespace, dataset: Path, features: Path | None) -> dict[str, Any]:
    from cli.pipeline import outcome_table, prepare_registry, read_outcomes, run_with_progress
    from hydatis.config import work_dir

    console = _console()
    name, arguments = pipeline_arguments(args, dataset, features)
    prepare_registry()
    run = run_with_progress(
        name,
        arguments,
        root=args.root or work_dir() / "pipeline",
        caching=not args.no_cache,
        console=console,
        models=arguments["models"],
    )
    outcomes = read_outcomes(run)
    console.print(outcome_table(outcomes))
    return {
        "pipeline": name,
        "arguments": arguments,
        "outcomes": outcomes,
        "log": str(run.log_path),
    }


def _run(args: argparse.Namespace) -> int:
    if not (args.if_drift or args.force):
        raise ConfigError("say when: --if-drift (only on drift) or --force (always)")
    if args.dataset is None:
        raise ConfigError("retrain needs --dataset DIR (the cluster dataset)")
    if args.force and args.current is not None:
        raise ConfigError("--current is checked for drift: use it with --if-drift")
    console = _console()
    out = _out(args)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"mode": "if-drift" if args.if_drift else "force"}
    if args.if_drift:
        verdict, dataset, features = _check_drift(args, out)
        retrain, reason, kinds = decide(verdict)
        summary.update(drift_kinds=kinds, windows_checked=verdict.get("windows_checked", 0))
        features = None if args.full else features
    else:
        retrain, reason, dataset = True, "forced (--force)", args.dataset
        features = _features_for(args, out)
    summary.update(retrained=retrain, reason=reason)
    if not retrain:
        console.print(f"[bold]Not retraining:[/] {reason}")
    else:
        console.print(f"[bold]Retraining[/] ({reason})")
        summary.update(_retrain(args, Path(dataset), features))
    path = out / SUMMARY
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"decision: {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``hydatis retrain``; the exit code."""
    if args.action == "schedules":
        return _schedules(args)
    return _run(args)
