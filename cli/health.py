"""``hydatis health``: check every part the configuration names, all at once.

hydatis health [--config FILE] [--local] [--timeout S] [--json]
    one row per part (Prometheus, feature store, MLflow registry, Redis, the three model
    servers, the extender, the remediation webhook): ok / down / skipped, the latency,
    and why a part is down; exit 1 when a configured part is down. ``--local`` points
    every part the settings leave empty at where it listens on this machine

Settings: the YAML file, ``HYDATIS_HEALTH_<KEY>`` variables and the shared
``PROMETHEUS_URL``, ``MLFLOW_TRACKING_URI``, ``REDIS_URL`` (operations/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["EXIT_DOWN", "add_parser", "report_table", "run"]

#: Exit status when a configured part is down (2 is a bad input, as everywhere).
EXIT_DOWN = 1
_STYLE = {"ok": "green", "down": "bold red", "skipped": "dim"}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis health``."""
    p = sub.add_parser(
        "health",
        help="check every configured part of the platform (exit 1 if one is down)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, default=None, help="health settings YAML")
    p.add_argument(
        "--local",
        action="store_true",
        help="check the parts left unconfigured at their local default addresses",
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds per part (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
    return p


def report_table(report: Any) -> Any:
    """A rich table of a :class:`operations.health.HealthReport`."""
    from rich.table import Table

    table = Table(title="HYDATIS health", header_style="bold")
    for col in ("part", "status", "latency", "target", "reason / details"):
        table.add_column(col, overflow="fold")
    for r in report.results:
        latency = "–" if r.latency_s is None else f"{r.latency_s * 1000:.0f} ms"
        info = r.reason or ", ".join(f"{k}={v}" for k, v in r.details.items())
        table.add_row(
            r.component,
            f"[{_STYLE[r.status]}]{r.status}[/]",
            latency,
            r.target or "–",
            info,
        )
    return table


def run(args: argparse.Namespace) -> int:
    """Run ``hydatis health``; 0 when nothing configured is down, else :data:`EXIT_DOWN`."""
    from rich.console import Console

    from operations.health import load_health_settings, run_health, with_local_defaults

    settings = load_health_settings(args.config, timeout_s=args.timeout)
    if args.local:
        settings = with_local_defaults(settings)
    report = asyncio.run(run_health(settings))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(report_table(report))
        down = [r.component for r in report.results if r.status == "down"]
        if all(r.status == "skipped" for r in report.results):
            console.print(
                "[yellow]nothing is configured:[/] give --config FILE, set HYDATIS_HEALTH_<KEY> "
                "(or PROMETHEUS_URL, MLFLOW_TRACKING_URI, REDIS_URL), or use --local"
            )
        elif down:
            console.print(f"[bold red]down:[/] {', '.join(down)}")
        else:
            console.print("[green]every configured part is up")
    return 0 if report.healthy else EXIT_DOWN
