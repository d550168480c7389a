"""``hydatis report business``: the business report from simulator comparisons.

Reads one or more ``hydatis simulate`` output directories (``results.json``, ``run.json``),
compares the candidate scheduler with the baseline under the cost model (defaults in
``monitoring/business/costs.yaml``, overridden by ``--costs FILE``), prints the tables and
writes ``business.html``, ``business.json`` and the metrics (``business.prom`` for a
textfile collector or Pushgateway; ``--openmetrics-out`` for a promtool backfill beside a
replay's ``--metrics-out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

__all__ = ["add_parser", "run", "simulate_metrics_args", "write_simulate_metrics"]

console = Console(width=None if sys.stdout.isatty() else 200)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``report`` (with ``business``) to the ``hydatis`` subcommands."""
    rep = sub.add_parser("report", help="reports built from earlier runs")
    rsub = rep.add_subparsers(dest="report", required=True)
    bus = rsub.add_parser(
        "business",
        help="savings and ROI of a scheduler against a baseline, from simulator comparisons",
    )
    bus.add_argument(
        "--results",
        action="append",
        required=True,
        type=Path,
        metavar="DIR",
        help="a `hydatis simulate --out` directory (repeat for several seeds or slices)",
    )
    bus.add_argument("--candidate", default="ml", help="the scheduler evaluated (default: ml)")
    bus.add_argument("--baseline", default="default", help="the reference (default: default)")
    bus.add_argument(
        "--costs", type=Path, default=None, help="YAML overriding the cost inputs (see costs.yaml)"
    )
    bus.add_argument(
        "--out", type=Path, default=None, help="output directory (default: <first DIR>/business)"
    )
    bus.add_argument(
        "--openmetrics-out",
        type=Path,
        default=None,
        help="also write the metrics as OpenMetrics with timestamps, for a promtool backfill",
    )
    bus.add_argument(
        "--openmetrics-end-before",
        type=float,
        default=4 * 3600.0,
        help="seconds before now the backfilled samples end (default 4 h)",
    )
    bus.add_argument(
        "--openmetrics-span",
        type=float,
        default=6 * 3600.0,
        help="seconds the backfilled samples span (default 6 h)",
    )
    bus.set_defaults(func=run)
    return rep


def run(args: argparse.Namespace) -> int:
    """Compute the report, print its tables and write its files."""
    from monitoring.business import (
        business_report,
        figures_table,
        load_costs,
        savings_table,
        sensitivity_table,
        write_html,
        write_json,
        write_openmetrics,
        write_prometheus_text,
    )

    costs = load_costs(args.costs)
    report = business_report(args.results, costs, candidate=args.candidate, baseline=args.baseline)
    out = args.out or (args.results[0] / "business")
    console.print(figures_table(report))
    console.print(savings_table(report))
    console.print(sensitivity_table(report))
    source = str(args.costs) if args.costs else "monitoring/business/costs.yaml (defaults)"
    html = write_html(report, out / "business.html", costs_source=source)
    js = write_json(report, out / "business.json")
    prom = write_prometheus_text(report, out / "business.prom")
    written = [html, js, prom]
    if args.openmetrics_out is not None:
        written.append(
            write_openmetrics(
                report,
                args.openmetrics_out,
                end_before=args.openmetrics_end_before,
                span_s=args.openmetrics_span,
            )
        )
    console.print(f"Cost inputs: {source}. Wrote " + ", ".join(str(p) for p in written))
    return 0


# --------------------------------------------------------------------------- simulate


def simulate_metrics_args(parser: argparse.ArgumentParser) -> None:
    """The ``hydatis simulate`` options of the metrics export (``--metrics-out`` ...)."""
    g = parser.add_argument_group("metrics export (OpenMetrics, for a promtool backfill)")
    g.add_argument(
        "--metrics-out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the replay as metrics: the raw cluster names of the ML run (else the "
        "first) and per-scheduler series; backfill with `promtool tsdb create-blocks-from "
        "openmetrics FILE DIR`",
    )
    g.add_argument(
        "--metrics-end-before",
        type=float,
        default=4 * 3600.0,
        help="shift the export to end this many seconds before now (default 4 h: "
        "Prometheus refuses backfilled blocks in its head's last ~3 h)",
    )
    g.add_argument(
        "--metrics-scrape-interval",
        type=float,
        default=30.0,
        help="simulated seconds between scrapes of the extender and model servers",
    )
    g.add_argument(
        "--metrics-attribute-interval",
        type=float,
        default=None,
        help="write static series (capacities, requests) only this often, in seconds",
    )


def write_simulate_metrics(recorder, args: argparse.Namespace) -> str:
    """Write the recorder's file for ``hydatis simulate --metrics-out``; a line to print."""
    export = recorder.write(
        args.metrics_out,
        end_before=args.metrics_end_before,
        attribute_interval_s=args.metrics_attribute_interval,
    )
    return (
        f"Metrics: {export.series} series, {export.samples} samples ({export.subject} under the "
        f"cluster's names; {', '.join(export.schedulers)} per scheduler"
        + (f"; scraped {', '.join(export.scraped_jobs)}" if export.scraped_jobs else "")
        + f") → {export.path}"
    )
