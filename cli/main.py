"""The ``hydatis`` command: wires the project's packages into subcommands.

Subcommands:
    simulate   replay a dataset with several schedulers and write the comparison report
    dataset    build (composite or synthetic, optionally replayed) or validate a dataset
    extract    read a cluster's history from Prometheus into a dataset
    features   list the node features, build the offline table, materialise into Feast
    train      train, evaluate and register the load predictor, anomaly detector, agent
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from hydatis.errors import HydatisError

__all__ = ["main"]

DEFAULT_SCHEDULERS = "default,tlp,lvrb,koordinator,crane,random"
DEFAULT_HORIZON_S = 86400.0
# Wide enough for the comparison table when the output is a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 200)


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text!r}") from exc
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "workload knobs (--nodes, --load-factor, --usage-scale and "
        "--synthetic apply to the built-in datasets)"
    )
    g.add_argument(
        "--nodes",
        type=_positive(int),
        default=None,
        help="N nodes: a sample of the trace's, or copies of them plus a sample",
    )
    g.add_argument(
        "--load-factor", type=_positive(float), default=1.0, help="scale arrivals (workloads)"
    )
    g.add_argument(
        "--usage-scale", type=_positive(float), default=1.0, help="scale pods' use per request"
    )
    g.add_argument(
        "--horizon",
        type=_positive(float),
        default=None,
        help="seconds to replay (default: 1 day for a built-in dataset, all of a --dataset)",
    )
    g.add_argument(
        "--synthetic",
        action="store_true",
        help="use the embedded synthetic default even when the data directory exists",
    )


def _build_dataset(args: argparse.Namespace):
    from hydatis.dataset import load_dataset

    if getattr(args, "dataset", None):
        ds = load_dataset(args.dataset)
        return ds, f"dataset at {args.dataset}"
    from simulator.datasets import default_dataset

    with console.status("building the dataset…"):
        return default_dataset(
            nodes=args.nodes,
            load_factor=args.load_factor,
            usage_scale=args.usage_scale,
            horizon_s=args.horizon or DEFAULT_HORIZON_S,
            seed=args.seed,
            synthetic=args.synthetic,
        )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run the comparison and write results.json, run.json and report.html."""
    from simulator.compare import run_comparison
    from simulator.engine import SimConfig
    from simulator.report import render_table, write_html, write_results
    from simulator.schedulers import ML_VARIANTS

    if args.dataset is not None:
        knobs = {
            "--nodes": args.nodes is not None,
            "--load-factor": args.load_factor != 1.0,
            "--usage-scale": args.usage_scale != 1.0,
            "--synthetic": args.synthetic,
        }
        given = [flag for flag, on in knobs.items() if on]
        if given:
            raise HydatisError(
                f"{', '.join(given)} shape(s) a built-in dataset and cannot change "
                f"--dataset {args.dataset}: rebuild it with `hydatis dataset build`"
            )
    names = [n.strip() for n in args.schedulers.split(",") if n.strip()]
    if not names:
        raise HydatisError("--schedulers is empty: name at least one scheduler")
    config = SimConfig(
        step_s=args.step,
        metrics_lag_s=args.metrics_lag,
        horizon_s=args.horizon if args.dataset is not None else None,
    )
    recorder = None
    if args.metrics_out is not None:
        from simulator.metrics_export import ReplayRecorder

        recorder = ReplayRecorder(scrape_interval_s=args.metrics_scrape_interval)
    ds, description = _build_dataset(args)
    console.print(f"[bold]Dataset:[/] {description}")
    scheduler_params: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        ml_names = [n for n in names if n in ML_VARIANTS]
        if ml_names:
            from cli.ml_stack import ml_stack
            from simulator.node_state import scheduler_context

            knobs = {
                "load_factor": args.load_factor,
                "usage_scale": args.usage_scale,
                "synthetic": args.synthetic,
            }
            ml = stack.enter_context(
                ml_stack(
                    seed=args.seed,
                    knobs=knobs,
                    variants=tuple(ml_names),
                    progress=console.print,
                )
            )
            console.print(f"[bold]ML scheduler:[/] extender {ml.url}; models {ml.sources}")
            context = scheduler_context(ds)
            for name in ml_names:
                scheduler_params[name] = {"url": ml.variant_urls[name], **context}
            if recorder is not None:
                from simulator.metrics_export import ml_stack_targets

                recorder.targets = {
                    name: ml_stack_targets(ml.variant_urls[name], ml.model_urls)
                    for name in ml_names
                }
        with _progress() as progress:
            tasks = {n: progress.add_task(n, total=1.0) for n in names}

            def on_progress(name: str, frac: float) -> None:
                progress.update(tasks[name], completed=frac)

            results, series, run = run_comparison(
                ds,
                names,
                seed=args.seed,
                config=config,
                description=description,
                on_progress=on_progress,
                scheduler_params=scheduler_params,
                recorder=recorder,
            )
    out = Path(args.out)
    res_path, _ = write_results(out, results, run)
    html_path = write_html(out, results, series, run)
    first = next(iter(results.values()))
    console.print(
        render_table(
            results,
            title=f"{description} — seed {args.seed}, {run['dataset']['nodes']} nodes, "
            f"{run['dataset']['pods']} pods",
        )
    )
    console.print(
        f"Cluster: requested CPU {first['requested_cpu_share']:.1%}, memory "
        f"{first['requested_mem_share']:.1%}; used CPU {first['used_cpu_share']:.1%}, memory "
        f"{first['used_mem_share']:.1%} (mean node CPU {first['mean_cpu']:.3f}). A scheduler "
        "moves where load lands, not how much there is."
    )
    console.print(f"Wrote {res_path} and {html_path}")
    if recorder is not None:
        from cli.report import write_simulate_metrics

        console.print(write_simulate_metrics(recorder, args))
    return 0


def cmd_dataset_build(args: argparse.Namespace) -> int:
    """Build the default dataset (composite or synthetic) and write it as parquet."""
    from hydatis.dataset import save_dataset

    ds, description = _build_dataset(args)
    if args.replay:
        from simulator.engine import simulate
        from simulator.history import history_dataset
        from simulator.schedulers import make_scheduler
        from simulator.workload import compile_workload

        workload = compile_workload(ds)
        with _progress() as progress:
            task = progress.add_task(f"replay ({args.replay})", total=1.0)
            result = simulate(
                workload,
                make_scheduler(args.replay),
                seed=args.seed,
                progress=lambda f: progress.update(task, completed=f),
            )
        owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
        ds = history_dataset(workload, result, owners=owners)
        description += f", replayed with the {args.replay} scheduler"
    path = save_dataset(ds, args.out)
    console.print(
        f"{description}: {len(ds.nodes)} nodes, {len(ds.pods)} pods, "
        f"{len(ds.pod_usage)} usage rows → {path}"
    )
    return 0


def cmd_dataset_validate(args: argparse.Namespace) -> int:
    """Validate a dataset directory; exit 0 when it is valid."""
    from hydatis.dataset import load_dataset

    ds = load_dataset(args.path)
    console.print(
        f"valid: {len(ds.nodes)} nodes, {len(ds.node_metrics)} node samples, "
        f"{len(ds.pods)} pods, {len(ds.pod_usage)} usage rows"
    )
    return 0


def _seconds(text: str) -> float:
    """``30``, ``30s``, ``5m``, ``1h`` or ``2d`` in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        scale = units.get(text[-1:], 0)
        value = float(text[:-1]) * scale if scale else float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 5m, 1h)") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def cmd_extract(args: argparse.Namespace) -> int:
    """Extract ``--days`` of history from Prometheus into a dataset directory."""
    import pandas as pd

    from components.extract import extract

    end = pd.Timestamp(args.end) if args.end else pd.Timestamp.now(tz="UTC").floor("min")
    if end.tzinfo is None:
        end = end.tz_localize("UTC")
    start = end - pd.Timedelta(days=args.days)
    with _progress() as progress:
        task = progress.add_task("extract", total=1.0)
        ds = extract(
            args.prometheus,
            start=start,
            end=end,
            step_s=args.step,
            out_dir=args.out,
            queries_path=args.queries,
            min_completeness=args.min_completeness,
            progress=lambda done, total, key: progress.update(
                task, completed=done, total=total, description=f"extract {key}"
            ),
        )
    console.print(
        f"{len(ds.nodes)} nodes, {len(ds.node_metrics)} node samples, {len(ds.pods)} pods, "
        f"{len(ds.pod_usage)} pod samples from {start} to {end} → {args.out}"
    )
    return 0


def cmd_features_list(args: argparse.Namespace) -> int:
    """Print the features, one per line: name, then description."""
    from hydatis.features import feature_lines

    for line in feature_lines():
        print(line)
    return 0


def cmd_features_build(args: argparse.Namespace) -> int:
    """Write the offline feature table and labels of a dataset."""
    from components.build_features import build_features

    with console.status("computing features…"):
        info = build_features(args.dataset, args.out, horizon_s=args.horizon)
    console.print(
        f"{info['rows']} rows × {info['features']} features for {info['nodes']} nodes "
        f"in {info['seconds']:.1f} s → {args.out}"
    )
    return 0


def cmd_features_materialize(args: argparse.Namespace) -> int:
    """Load a feature table into the Feast repo: apply, write offline, materialise online."""
    import pandas as pd

    from components.build_features.core import FEATURES_FILE
    from components.materialize import materialize

    table = Path(args.features)
    if table.is_dir():
        table = table / FEATURES_FILE
    if not table.is_file():
        raise HydatisError(f"no feature table at {table}: run `hydatis features build` first")
    with console.status("materialising…"):
        info = materialize(pd.read_parquet(table), args.repo, redis_url=args.redis_url)
    console.print(f"materialised into {args.repo}: {info}")
    return 0


def _frame_table(frame: Any, title: str) -> Table:
    table = Table(title=title or None, header_style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "fiu" else "left")
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append("–" if value != value else f"{value:.4g}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table


def cmd_train(args: argparse.Namespace) -> int:
    """Train, evaluate (beside the baselines), and register each model asked for."""
    import importlib

    from components._training import TRAINERS

    kinds = list(TRAINERS) if args.model == "all" else [args.model]
    out = Path(args.out)
    for kind in kinds:
        module, name = TRAINERS[kind]
        train = getattr(importlib.import_module(module), name)
        with _progress() as progress:
            task = progress.add_task(f"train {kind}", total=1.0)
            result = train(
                seed=args.seed,
                progress=lambda frac, what, task=task: progress.update(
                    task, completed=frac, description=what[:40]
                ),
            )
        console.print(f"[bold]{kind}: model vs baselines (held-out data)[/]")
        console.print(_frame_table(result.table, ""))
        target_lines = [
            f"  {'met' if t.met(result.metrics) else 'MISSED'}  {t}  "
            f"(got {result.metrics.get(t.metric, float('nan')):.4g})"
            for t in result.targets
        ]
        console.print("Targets:\n" + "\n".join(target_lines))
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.md").write_text(result.report or "")
        result.table.to_csv(folder / "evaluation.csv", index=False)
        console.print(f"Report: {folder / 'report.md'}")
        if not args.no_register:
            from components.register import register

            outcome = register(result)
            console.print(
                f"Registered {outcome.name} version {outcome.version} as {outcome.alias}: "
                f"{outcome.reason}"
            )
    return 0


def cmd_evaluate_load(args: argparse.Namespace) -> int:
    """Score a load predictor and the naive baselines on any dataset with node series."""
    from components.train_load import evaluate_load
    from hydatis.models.load_predictor import LoadPredictor

    if args.model_dir:
        model = LoadPredictor.load(args.model_dir)
        which = str(args.model_dir)
    else:
        from components.register import load_champion

        model = load_champion("load", alias=args.alias)
        which = f"hydatis-load-predictor@{args.alias}"
    with console.status("evaluating…"):
        table = evaluate_load(
            model, args.dataset, source=args.dataset.name, test_share=args.test_share
        )
    console.print(f"[bold]{which} on {args.dataset} (last {args.test_share:.0%} of it)[/]")
    console.print(_frame_table(table, ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hydatis`` command."""
    parser = argparse.ArgumentParser(prog="hydatis", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="compare schedulers on a replayed trace")
    sim.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="a dataset directory (default: the real composite trace when the "
        "data directory exists, else the embedded synthetic default)",
    )
    sim.add_argument(
        "--schedulers",
        default=DEFAULT_SCHEDULERS,
        help=f"comma-separated names (default: {DEFAULT_SCHEDULERS})",
    )
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--out", default="out/simulate", help="output directory")
    sim.add_argument("--step", type=_positive(float), default=30.0, help="seconds per step")
    sim.add_argument(
        "--metrics-lag",
        type=float,
        default=60.0,
        help="seconds before node metrics reach load-aware schedulers",
    )
    _add_workload_args(sim)
    from cli import report as report_cmd

    report_cmd.simulate_metrics_args(sim)
    sim.set_defaults(func=cmd_simulate)

    dset = sub.add_parser("dataset", help="build or validate a cluster dataset")
    dsub = dset.add_subparsers(dest="action", required=True)
    build = dsub.add_parser("build", help="build the default dataset and write parquet")
    build.add_argument("--out", required=True, type=Path)
    build.add_argument("--seed", type=int, default=0)
    _add_workload_args(build)
    build.add_argument(
        "--replay",
        metavar="SCHEDULER",
        default=None,
        help="replay the dataset with this scheduler and write what happened (node series, "
        "pods on their nodes): the history features and models learn from",
    )
    build.set_defaults(func=cmd_dataset_build, dataset=None)
    ext = sub.add_parser("extract", help="read a cluster's history from Prometheus")
    ext.add_argument("--prometheus", required=True, help="Prometheus base URL")
    ext.add_argument("--days", type=_positive(float), default=30.0, help="days of history")
    ext.add_argument("--step", type=_seconds, default=30.0, help="resolution, e.g. 30s")
    ext.add_argument("--end", default=None, help="end time (ISO 8601, UTC; default: now)")
    ext.add_argument("--out", required=True, type=Path, help="dataset directory (resumable)")
    ext.add_argument("--queries", type=Path, default=None, help="PromQL file (YAML)")
    ext.add_argument(
        "--min-completeness", type=float, default=0.95, help="fail below this completeness"
    )
    ext.set_defaults(func=cmd_extract)

    feat = sub.add_parser("features", help="node features: list, build, materialise")
    fsub = feat.add_subparsers(dest="action", required=True)
    flist = fsub.add_parser("list", help="print the features: name, then description")
    flist.set_defaults(func=cmd_features_list)
    fbuild = fsub.add_parser("build", help="offline feature table and labels of a dataset")
    fbuild.add_argument("--dataset", required=True, type=Path)
    fbuild.add_argument("--out", required=True, type=Path)
    fbuild.add_argument("--horizon", type=_seconds, default=300.0, help="label horizon")
    fbuild.set_defaults(func=cmd_features_build)
    fmat = fsub.add_parser("materialize", help="apply the Feast repo and materialise a table")
    fmat.add_argument("--features", required=True, type=Path, help="features.parquet or dir")
    fmat.add_argument("--repo", type=Path, default=Path("feature_repo"), help="Feast repo")
    fmat.add_argument(
        "--redis-url", default=None, help="Redis online store (default: the repo's SQLite)"
    )
    fmat.set_defaults(func=cmd_features_materialize)

    tr = sub.add_parser("train", help="train, evaluate and register a model")
    tr.add_argument("model", choices=["load", "anomaly", "placement", "all"])
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", default="out/models", help="where reports and tables go")
    tr.add_argument(
        "--no-register", action="store_true", help="evaluate only; do not log to MLflow"
    )
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="evaluate a registered model on any dataset")
    esub = ev.add_subparsers(dest="what", required=True)
    evl = esub.add_parser("load", help="load predictor vs baselines on a dataset's series")
    evl.add_argument("--dataset", required=True, type=Path, help="a dataset with node series")
    evl.add_argument("--model-dir", type=Path, default=None, help="a saved model folder")
    evl.add_argument("--alias", default="champion", help="registry alias (no --model-dir)")
    evl.add_argument(
        "--test-share", type=float, default=1.0, help="share of the timeline scored (end)"
    )
    evl.set_defaults(func=cmd_evaluate_load)

    val = dsub.add_parser("validate", help="validate a dataset directory")
    val.add_argument("path", type=Path)
    val.set_defaults(func=cmd_dataset_validate)

    from cli import demo as demo_cmd
    from cli import drift as drift_cmd
    from cli import forecast as forecast_cmd
    from cli import pipeline as pipeline_cmd
    from cli import remediate as remediate_cmd
    from cli import report as report_cmd
    from cli import serve as serve_cmd
    from cli import shim as shim_cmd
    from cli import tune as tune_cmd

    serve_cmd.add_parser(sub)
    shim_cmd.add_parser(sub).set_defaults(func=shim_cmd.run)
    tune_cmd.add_parser(sub).set_defaults(func=tune_cmd.run)
    pipeline_cmd.add_parser(sub).set_defaults(func=pipeline_cmd.run)
    demo_cmd.add_parser(sub).set_defaults(func=demo_cmd.run)
    remediate_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    forecast_cmd.add_parser(sub)
    drift_cmd.add_parser(sub)
    for name in OPERATIONS_COMMANDS:
        importlib.import_module(f"cli.{name}").add_parser(sub)
    return parser


#: Production operations, one module each in ``cli/`` exposing ``add_parser(sub)``.
OPERATIONS_COMMANDS = ("fallback", "rollout", "ab", "health", "validate", "retrain")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hydatis`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except HydatisError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
