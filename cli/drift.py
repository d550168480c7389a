"""``hydatis drift``: check the node features, the models' outputs, the load predictor's
errors and the observed load for drift against the training reference.

hydatis drift check --dataset DIR [--current DIR] [--reference-until TIME | --reference-share F]
                    [--model DIR | --model champion] --out DIR
    calibrate on the reference (or reuse --calibration FILE), score every new complete
    window of the monitored period, carry the state (--state FILE, default OUT/state.json)
    so the next check goes on where this one stopped, start retraining when a kind stays
    drifted for K windows, and write OUT/verdict.json (one verdict per kind),
    OUT/report.html (Evidently, latest window, calibrated thresholds), OUT/summary.html
    (scores over time) and OUT/drift.prom (Prometheus metrics; --pushgateway URL pushes
    them).

The reference is the dataset before ``--reference-until`` (default: its first
``--reference-share``); its last ``--validation-share`` is the period the model did not
train on, whose errors stand for "no change" in the performance kind. With ``--current``
the monitored data comes from another dataset directory (appended after the reference).
Exit status: 0, or 3 with ``--fail-on-drift`` when a kind is in drift, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from hydatis.errors import ConfigError, HydatisError

__all__ = ["add_parser", "main", "run"]

DEFAULT_REFERENCE_SHARE = 0.75
#: the training pipeline's ``valid_share``: the end of the history it never trains on.
DEFAULT_VALIDATION_SHARE = 0.25
PUSH_TRIES = 3
EXIT_DRIFT = 3


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        scale = units.get(t[-1:], 0)
        value = float(t[:-1]) * scale if scale else float(t)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 1h)") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``drift`` (``drift check``) to the ``hydatis`` subcommands; ``func`` is set to
    :func:`run`."""
    p = sub.add_parser(
        "drift",
        help="detect data, prediction, performance and target drift; trigger retraining",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    actions = p.add_subparsers(dest="drift_action", required=True)
    c = actions.add_parser(
        "check",
        help="check the new windows, write the verdict and reports, maybe retrain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = c.add_argument_group("data")
    d.add_argument("--dataset", type=Path, required=True, help="the cluster dataset (history)")
    d.add_argument("--current", type=Path, default=None, help="a dataset of newer data to monitor")
    when = d.add_mutually_exclusive_group()
    when.add_argument(
        "--reference-until",
        default=None,
        help="end of the training reference (a time, UTC unless it says otherwise)",
    )
    when.add_argument(
        "--reference-share",
        type=_share,
        default=None,
        help=f"the reference is this share of --dataset's span "
        f"(default {DEFAULT_REFERENCE_SHARE}; all of it with --current)",
    )
    d.add_argument(
        "--validation-share",
        type=_share,
        default=DEFAULT_VALIDATION_SHARE,
        help="the end of the reference the model did not train on (performance kind)",
    )
    d.add_argument(
        "--features",
        type=Path,
        default=None,
        help="a feature table directory (features.parquet, labels.parquet) for the data; "
        "default: built into OUT/features",
    )
    d.add_argument(
        "--model",
        default=None,
        help="the load predictor: a directory, 'champion' (the registry's) or "
        "models:/NAME@ALIAS; without it, prediction and performance drift are not checked",
    )
    s = c.add_argument_group("settings (override --config and HYDATIS_DRIFT_*)")
    s.add_argument("--config", type=Path, default=None, help="drift settings YAML")
    s.add_argument("--window", type=_duration, default=None, help="window length (e.g. 1h)")
    s.add_argument("--method", choices=("wasserstein", "psi", "ks"), default=None)
    s.add_argument("--reference-mode", choices=("same_hours", "pooled"), default=None)
    s.add_argument("--persistence", type=int, default=None, help="K drifted windows in a row")
    s.add_argument("--false-alarm-rate", type=float, default=None)
    s.add_argument("--kinds", default=None, help="comma-separated kinds to check")
    s.add_argument("--retrain-command", default=None, help="command run on persistent drift")
    o = c.add_argument_group("outputs and actions")
    o.add_argument("--out", type=Path, required=True, help="directory for the results")
    o.add_argument("--calibration", type=Path, default=None, help="reuse/save calibration")
    o.add_argument("--state", type=Path, default=None, help="state file (default OUT/state.json)")
    o.add_argument("--no-retrain", action="store_true", help="never start retraining")
    o.add_argument(
        "--wait-retraining", action="store_true", help="wait for the retraining to finish"
    )
    o.add_argument("--pushgateway", default=None, help="push the metrics to this Pushgateway")
    o.add_argument("--no-report", action="store_true", help="skip Evidently's HTML report")
    o.add_argument("--fail-on-drift", action="store_true", help=f"exit {EXIT_DRIFT} on drift")
    c.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``hydatis drift check``; the exit code."""
    if args.drift_action == "check":
        return _check(args)
    raise ConfigError(f"unknown drift action {args.drift_action!r}")


# --------------------------------------------------------------------------- pieces


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _settings(args: argparse.Namespace) -> Any:
    from monitoring.drift import load_settings

    kinds = None
    if args.kinds is not None:
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    overrides = {
        "window_s": args.window,
        "method": args.method,
        "reference_mode": args.reference_mode,
        "persistence_windows": args.persistence,
        "false_alarm_rate": args.false_alarm_rate,
        "kinds": kinds,
        "retrain_command": args.retrain_command,
    }
    return load_settings(args.config, **overrides)


def _utc(text: str, what: str) -> Any:
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: not a time: {text!r}") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _merged(args: argparse.Namespace, out: Path) -> tuple[Any, Path, Any]:
    """The dataset to compute on, the directory retraining reads it from, and the end of
    ``--dataset`` (where ``--current`` takes over)."""
    import pandas as pd

    from hydatis.dataset import ClusterDataset, load_dataset, save_dataset

    ds = load_dataset(args.dataset)
    if not len(ds.node_metrics):
        raise HydatisError(f"{args.dataset}: node_metrics is empty: drift needs node history")
    end = ds.node_metrics["ts"].max()
    if args.current is None:
        return ds, args.dataset, end
    cur = load_dataset(args.current)
    metrics = (
        pd.concat([ds.node_metrics, cur.node_metrics], ignore_index=True)
        .drop_duplicates(["node", "ts"], keep="last")
        .sort_values(["node", "ts"], kind="stable")
        .reset_index(drop=True)
    )
    nodes = pd.concat([ds.nodes, cur.nodes], ignore_index=True).drop_duplicates("node", keep="last")
    pods = pd.concat([ds.pods, cur.pods], ignore_index=True).drop_duplicates("pod", keep="last")
    usage = pd.concat([ds.pod_usage, cur.pod_usage], ignore_index=True)
    merged = ClusterDataset(
        nodes.reset_index(drop=True),
        metrics,
        pods.reset_index(drop=True),
        usage,
        {**ds.meta, "drift_current": str(args.current)},
    )
    path = save_dataset(merged, out / "dataset")
    return merged, path, end


def _model(spec: str | None) -> Any:
    if spec is None:
        return None
    path = Path(spec)
    if path.is_dir():
        from hydatis.models.load_predictor import LoadPredictor

        try:
            return LoadPredictor.load(path)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise HydatisError(f"--model {spec}: not a load predictor directory: {exc}") from exc
    alias = "champion"
    if spec.startswith("models:/"):
        name, _, alias = spec[len("models:/") :].partition("@")
        if not alias:
            raise ConfigError(f"--model {spec}: give the alias (models:/NAME@ALIAS)")
        kind = name
    elif spec == "champion":
        kind = "load"
    else:
        raise ConfigError(f"--model {spec}: neither a directory, 'champion' nor models:/NAME@ALIAS")
    from components.register import load_champion

    try:
        return load_champion(kind, alias=alias)
    except Exception as exc:  # the registry's own errors, wrapped at the boundary
        raise HydatisError(f"--model {spec}: cannot load it from the registry: {exc}") from exc


def _features(args: argparse.Namespace, ds: Any, out: Path, horizon_s: float) -> tuple:
    import pandas as pd

    from components.build_features.core import FEATURES_FILE, LABELS_FILE

    if args.features is not None:
        try:
            feats = pd.read_parquet(args.features / FEATURES_FILE)
            labels = pd.read_parquet(args.features / LABELS_FILE)
        except FileNotFoundError as exc:
            raise HydatisError(
                f"--features {args.features}: needs {FEATURES_FILE} and {LABELS_FILE} "
                "(hydatis features build writes them)"
            ) from exc
        return feats, labels, args.features
    from hydatis.features import node_features, node_labels

    feats = node_features(ds)
    labels = node_labels(ds, horizon_s=horizon_s)
    where = out / "features"
    where.mkdir(parents=True, exist_ok=True)
    feats.to_parquet(where / FEATURES_FILE, index=False)
    labels.to_parquet(where / LABELS_FILE, index=False)
    return feats, labels, where


def _reference_end(args: argparse.Namespace, first: Any, dataset_end: Any) -> Any:
    """Where the reference ends: ``--reference-until``, the end of ``--dataset`` when
    ``--current`` brings the monitored data, else a share of ``--dataset``'s span."""
    if args.reference_until is not None:
        return _utc(args.reference_until, "--reference-until")
    if args.current is not None and args.reference_share is None:
        return dataset_end
    share = args.reference_share or DEFAULT_REFERENCE_SHARE
    return first + (dataset_end - first) * share


def _push(metrics: Any, url: str, console: Any) -> str | None:
    """Push with retries; the error after the last try, or None."""
    last = None
    for attempt in range(1, PUSH_TRIES + 1):
        try:
            metrics.push(url)
            return None
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
            console.print(f"[yellow]push to {url} failed (try {attempt}/{PUSH_TRIES}):[/] {last}")
            if attempt < PUSH_TRIES:
                time.sleep(0.5 * 2**attempt)
    return last


# --------------------------------------------------------------------------- check


def _check(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from monitoring.drift import (
        Calibration,
        DriftDetector,
        DriftMetrics,
        DriftState,
        RetrainTrigger,
        calibrate,
        drift_data,
        predict_load,
        run_check,
    )

    console = _console()
    settings = _settings(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with console.status("reading the data…"):
        ds, dataset_path, dataset_end = _merged(args, out)
    first, last = ds.node_metrics["ts"].min(), ds.node_metrics["ts"].max()
    ref_end = _reference_end(args, first, pd.Timestamp(dataset_end))
    if not first < ref_end < last:
        raise ConfigError(
            f"the reference must end inside the data ({first} .. {last}), got {ref_end}"
        )
    model = _model(args.model)
    with console.status("computing features and forecasts…"):
        horizon = float(getattr(model, "horizon_s", 300.0)) if model is not None else 300.0
        feats, labels, features_path = _features(args, ds, out, horizon)
        preds = predict_load(model, feats) if model is not None else None
        table = drift_data(feats, settings=settings, labels=labels, predictions=preds)
    span = table.span
    if span is None:
        raise HydatisError("the feature table is empty")
    reference = table.between(None, ref_end)
    valid_start = span[0] + (ref_end - span[0]) * (1 - args.validation_share)
    validation = table.between(valid_start, ref_end)
    current = table.between(ref_end, None)

    calibration = None
    cal_path = args.calibration or out / "calibration.json"
    if args.calibration is not None and args.calibration.exists():
        calibration = Calibration.load(args.calibration)
        differ = calibration.matches(settings)
        if differ:
            console.print(f"[yellow]{args.calibration} was made with other {differ}: redoing it")
            calibration = None
    progress = Progress(
        TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), console=console
    )
    with progress:
        if calibration is None:
            task = progress.add_task("calibrate", total=1)
            calibration = calibrate(
                reference,
                settings,
                performance_reference=validation,
                progress=lambda d, t: progress.update(task, completed=d, total=t),
            )
            calibration.save(cal_path)
        detector = DriftDetector(settings, calibration, reference, performance_reference=validation)
        state_path = args.state or out / "state.json"
        state = DriftState.load(state_path)
        if state.last_window_end is None:
            state.last_window_end = ref_end.isoformat()
        trigger = None
        if not args.no_retrain and settings.retrain_command:
            trigger = RetrainTrigger(
                settings.retrain_command,
                placeholders={"dataset": str(dataset_path), "features": str(features_path)},
                log_path=out / "retraining.log",
                cooldown_s=settings.retrain_cooldown_s,
            )
        task = progress.add_task("check", total=1)
        metrics = DriftMetrics()
        outcome = run_check(
            detector,
            current,
            state,
            out,
            trigger=trigger,
            metrics=metrics,
            wait_retraining=args.wait_retraining,
            evidently_report=not args.no_report,
            progress=lambda d, t: progress.update(task, completed=d, total=t),
        )
    state.save(state_path)

    v = outcome.verdict
    t = Table(
        title=f"Drift: {v['windows_checked']} new window(s) up to {v['last_window_end']}",
        header_style="bold",
    )
    for col in ("kind", "status", "in drift", "score", "drifted in a row", "top columns / reason"):
        t.add_column(col)
    for kind, e in v["kinds"].items():
        score = e.get("score")
        t.add_row(
            kind,
            e["status"],
            "yes" if e["drift"] else "no",
            "–" if score is None else f"{score:.2f}",
            f"{e['consecutive_windows']} (K={e['persistence_windows']})",
            ", ".join(c["column"] for c in e.get("top_columns", [])[:3]) or e.get("reason", ""),
        )
    console.print(t)
    r = v["retraining"]
    if r.get("started"):
        console.print(f"[bold]Retraining started[/] (pid {r['pid']}): {' '.join(r['argv'])}")
    elif r.get("error"):
        console.print(f"[bold red]Retraining could not start:[/] {r['error']}")
    else:
        console.print(f"Retraining: {r.get('reason')}")
    for name, path in outcome.paths.items():
        console.print(f"{name}: {path}")
    if args.pushgateway:
        error = _push(metrics, args.pushgateway, console)
        if error is not None:
            raise HydatisError(
                f"Pushgateway {args.pushgateway} unreachable after {PUSH_TRIES} tries "
                f"({error}); the results are written in {out}"
            )
    if args.fail_on_drift and v["drift"]:
        return EXIT_DRIFT
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``drift`` on its own (``python -m cli.drift check ...``), as ``hydatis drift``
    would: a bad input is one line naming it, exit status 2."""
    parser = argparse.ArgumentParser(prog="hydatis")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["drift", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except HydatisError as exc:
        _console().print(f"[bold red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
