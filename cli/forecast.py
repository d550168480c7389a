"""``hydatis forecast``: cluster and node-pool CPU and memory demand ahead, with intervals,
and the nodes needed to keep the p95 utilisation at the target.

hydatis forecast --horizon 24h|7d|30d
                 (--prometheus URL [--days D] [--end TIME] [--step 5m] [--queries FILE]
                  | --dataset DIR | --aggregate google2019|azure_v2|alibaba2018 [--file PATH])
                 [--resources cpu,mem] [--pool-label LABEL | --no-pools]
                 [--target 0.65] [--quantile 0.95] [--models a,b] [--windows N] [--top K]
                 [--out DIR]

Prints one row per series (model chosen by backtest, its backtest score, demand now and
ahead, nodes needed at the point forecast and at the top of each interval) and writes
OUT/forecast.html (table and plots), OUT/forecast.csv (the forecast, step by step) and
OUT/summary.json. Without a source option, ``PROMETHEUS_URL`` names the server.
Exit status 0, or 2 with the reason on bad input: a history shorter than the horizon
needs (the message names the minimum), Prometheus unreachable (named, after retries).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from hydatis.errors import ConfigError, HydatisError

__all__ = ["add_parser", "main", "run"]

DEFAULT_STEP_S = 300.0
DEFAULT_HISTORY_DAYS = 28.0
DEFAULT_RETRIES = 3
#: The aggregates' units and what 100 % of the cluster is in them.
AGGREGATE_UNITS: dict[str, tuple[str, float | None]] = {
    "google2019": ("share of capacity", 1.0),
    "alibaba2018": ("% of capacity", 100.0),
    "azure_v2": ("as published (sum over VMs)", None),
}


def _horizon(text: str) -> float:
    from monitoring.forecast import parse_horizon
    from monitoring.forecast.errors import ForecastInputError

    try:
        return parse_horizon(text)
    except ForecastInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis forecast`` (its handler is :func:`run`)."""
    p = sub.add_parser(
        "forecast",
        help="forecast cluster and node-pool CPU and memory demand, and the nodes needed",
        description=__doc__.split("\n\n")[0],
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``hydatis forecast``."""
    p.add_argument(
        "--horizon", type=_horizon, default=_horizon("24h"), help="24h, 7d or 30d (default 24h)"
    )
    src = p.add_argument_group("history (one source)")
    src.add_argument("--prometheus", default=None, help="Prometheus base URL")
    src.add_argument("--dataset", type=Path, default=None, help="a cluster dataset directory")
    src.add_argument(
        "--aggregate",
        default=None,
        choices=sorted(AGGREGATE_UNITS),
        help="a public cluster aggregate series from the data directory",
    )
    src.add_argument("--file", type=Path, default=None, help="the aggregate's file (same format)")
    prom = p.add_argument_group("Prometheus")
    prom.add_argument(
        "--days",
        type=float,
        default=None,
        help=f"days of history (default {DEFAULT_HISTORY_DAYS:g} or what the horizon needs)",
    )
    prom.add_argument("--end", default=None, help="end of the history (ISO 8601 UTC; default now)")
    prom.add_argument("--step", type=_horizon, default=DEFAULT_STEP_S, help="e.g. 5m (default)")
    prom.add_argument("--queries", type=Path, default=None, help="PromQL file (YAML)")
    prom.add_argument(
        "--retries", type=int, default=DEFAULT_RETRIES, help="retries per query when unreachable"
    )
    p.add_argument("--resources", default="cpu,mem", help="cpu and/or mem")
    pools = p.add_mutually_exclusive_group()
    pools.add_argument(
        "--pool-label", default=None, help="node label naming the pool (default: node shape)"
    )
    pools.add_argument("--no-pools", action="store_true", help="the cluster only")
    p.add_argument("--target", type=_fraction, default=0.65, help="utilisation target")
    p.add_argument("--quantile", type=_fraction, default=0.95, help="of utilisation over time")
    p.add_argument("--models", default=None, help="candidates the backtest chooses from")
    p.add_argument("--windows", type=int, default=None, help="backtest windows at most")
    p.add_argument("--top", type=int, default=None, help="average this many best candidates")
    p.add_argument("--out", type=Path, default=Path("out/forecast"), help="output directory")
    return p


def _settings(args: argparse.Namespace):
    from monitoring.forecast import ForecastSettings

    kwargs: dict[str, Any] = {}
    if args.models:
        kwargs["candidates"] = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if args.top is not None:
        kwargs["top"] = args.top
    if args.windows is not None:
        kwargs["windows"] = args.windows
        kwargs["min_windows"] = min(ForecastSettings.min_windows, args.windows)
    return ForecastSettings(**kwargs)


def _aggregate_series(args: argparse.Namespace, resources: tuple[str, ...]) -> list:
    import pandas as pd

    from monitoring.forecast import DemandSeries
    from simulator.importers.aggregates import STEP_S, read_aggregate

    columns = {
        "alibaba2018": {"cpu": "cpu_util_percent", "mem": "mem_util_percent"},
        "google2019": {"cpu": "cpu_util", "mem": "mem_util"},
        "azure_v2": {"cpu": "cpu_usage", "mem": "assigned_mem"},
    }[args.aggregate]
    df = read_aggregate(args.aggregate, path=args.file)
    unit, capacity = AGGREGATE_UNITS[args.aggregate]
    return [
        DemandSeries(
            f"{args.aggregate} {res}",
            res,
            unit,
            pd.Timestamp(0, unit="s", tz="UTC"),
            float(STEP_S),
            df[columns[res]].to_numpy(dtype="float64"),
            capacity=capacity,
            meta={"source": f"aggregate {args.aggregate}", "times": "from the trace start"},
        )
        for res in resources
    ]


def load_series(args: argparse.Namespace, settings, say=print) -> tuple[list, str]:
    """The demand series the options name, and a description of the source."""
    from monitoring.forecast import dataset_demand, min_history_s, prometheus_demand

    resources = tuple(r.strip() for r in args.resources.split(",") if r.strip())
    url = args.prometheus or (
        os.environ.get("PROMETHEUS_URL") if not (args.dataset or args.aggregate) else None
    )
    given = [
        n
        for n, v in (
            ("--prometheus", url),
            ("--dataset", args.dataset),
            ("--aggregate", args.aggregate),
        )
        if v
    ]
    if len(given) != 1:
        raise ConfigError(
            "name one history source: --prometheus URL (or PROMETHEUS_URL), --dataset DIR or "
            f"--aggregate SOURCE; got {given or 'none'}"
        )
    if args.aggregate:
        return _aggregate_series(args, resources), f"aggregate {args.aggregate}"
    if args.dataset:
        from hydatis.dataset import load_dataset

        ds = load_dataset(args.dataset)
        return (
            dataset_demand(
                ds,
                step_s=args.step,
                resources=resources,
                pools=not args.no_pools,
                pool_label=args.pool_label,
                source=str(args.dataset),
            ),
            f"dataset {args.dataset}",
        )
    import pandas as pd

    from hydatis.prometheus import PrometheusClient
    from monitoring.forecast.sources import load_forecast_queries

    need_days = min_history_s(args.horizon, args.step, settings) / 86400
    days = args.days if args.days is not None else max(DEFAULT_HISTORY_DAYS, need_days)
    end = pd.Timestamp(args.end) if args.end else pd.Timestamp.now(tz="UTC").floor("min")
    if end.tzinfo is None:
        end = end.tz_localize("UTC")
    queries = load_forecast_queries(args.queries) if args.queries else None
    with PrometheusClient(url, max_retries=args.retries) as client:
        series = prometheus_demand(
            client,
            start=end - pd.Timedelta(days=days),
            end=end,
            step_s=args.step,
            resources=resources,
            pools=not args.no_pools,
            pool_label=args.pool_label,
            queries=queries,
            progress=lambda line: say(f"query: {line}"),
        )
    return series, f"Prometheus {url}, {days:g} days to {end}"


def run(args: argparse.Namespace) -> int:
    """Forecast every series, print the table, write the report."""
    import pandas as pd
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from monitoring.forecast import (
        capacity_need,
        forecast_series,
        forecast_table,
        write_forecast_html,
    )
    from monitoring.forecast.errors import format_duration

    console = Console(width=None if sys.stdout.isatty() else 200)
    settings = _settings(args)
    series, description = load_series(args, settings, say=lambda line: console.log(line))
    forecasts, needs = [], []
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} windows"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        for s in series:
            task = progress.add_task(s.name, total=None)
            fc = forecast_series(
                s,
                args.horizon,
                settings,
                on_window=lambda done, total, task=task: progress.update(
                    task, completed=done, total=total
                ),
            )
            forecasts.append(fc)
            needs.append(capacity_need(fc, target=args.target, quantile=args.quantile))
    table = forecast_table(forecasts, needs)
    title = f"Demand {format_duration(args.horizon)} ahead — {description}"
    rich_table = Table(title=title, header_style="bold")
    for col in table.columns:
        rich_table.add_column(
            str(col), justify="right" if table[col].dtype.kind in "fiu" else "left"
        )
    for row in table.itertuples(index=False):
        rich_table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(rich_table)
    console.print(
        f"Nodes needed keep the p{args.quantile * 100:g} utilisation over the horizon ≤ "
        f"{args.target:.0%} (nodes of the scope's median size; ×F = a factor of today's "
        "capacity where node sizes are unknown)."
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    page = write_forecast_html(forecasts, needs, out / "forecast.html", title=title)
    steps = []
    for fc in forecasts:
        frame = pd.DataFrame({"time": fc.times, "series": fc.series.name, "mean": fc.result.mean})
        for lv, (lo, hi) in sorted(fc.result.bounds.items()):
            frame[f"lo{lv}"], frame[f"hi{lv}"] = lo, hi
        steps.append(frame)
    pd.concat(steps).to_csv(out / "forecast.csv", index=False)
    summary = {
        "source": description,
        "horizon_s": args.horizon,
        "target": args.target,
        "quantile": args.quantile,
        "series": [
            {
                "name": fc.series.name,
                "unit": fc.series.unit,
                "model": fc.result.model,
                "backtest_wape": fc.result.backtest_wape,
                "windows": fc.result.windows,
                "demand": need.demand,
                "nodes_needed": need.nodes,
                "capacity_factor": need.factor,
                "nodes_now": need.nodes_now,
            }
            for fc, need in zip(forecasts, needs, strict=True)
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    console.print(f"Wrote {page}, {out / 'forecast.csv'} and {out / 'summary.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``hydatis forecast`` on its own (``python -m cli.forecast``)."""
    parser = add_arguments(argparse.ArgumentParser(prog="hydatis forecast"))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except HydatisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
