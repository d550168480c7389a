"""``hydatis validate``: check a deployment, from its manifests to the extender's answers.

hydatis validate [--overlay dev|staging|prod] [--kubeconfig FILE | --kube-api URL|incluster]
                 [--extender-url URL] [--extender-ca FILE] [--offline] [--json]
    render the overlay (kubectl kustomize), check every object offline, then list the
    live nodes and send the extender the request kube-scheduler would (filter, then
    prioritize the kept nodes); exit 1 when a step fails

From outside the cluster, reach the extender through a port-forward, e.g.
``kubectl -n hydatis-system port-forward svc/hydatis-shim 8888`` and
``--extender-url http://127.0.0.1:8888``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["EXIT_FAILED", "add_parser", "report_table", "run"]

EXIT_FAILED = 1


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis validate``."""
    from operations.manifests import overlays

    names = overlays()
    p = sub.add_parser(
        "validate",
        help="validate a deployment: manifests, live nodes, the extender's answers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--overlay",
        default="dev",
        help=f"the overlay under infra/overlays ({', '.join(names) or 'none yet'}) or a folder",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file")
    where.add_argument("--kube-api", default=None, help="incluster, or an API URL")
    where.add_argument("--offline", action="store_true", help="manifests only, no cluster")
    p.add_argument("--extender-url", default=None, help="the extender (default: urlPrefix)")
    p.add_argument("--extender-ca", default=None, help="CA bundle for an HTTPS extender")
    p.add_argument("--namespace", default="default", help="the probe pod's namespace")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
    return p


def report_table(report: Any) -> Any:
    """A rich table of a :class:`operations.validate.ValidationReport`."""
    from rich.table import Table

    table = Table(title=f"Validation of overlay {report.overlay}", header_style="bold")
    for col in ("step", "result", "detail / problems"):
        table.add_column(col, overflow="fold")
    marks = {True: "[green]ok[/]", False: "[bold red]FAILED[/]", None: "[dim]not run[/]"}
    for step in report.steps:
        text = "\n".join([step.detail, *(f"• {p}" for p in step.problems)]).strip()
        table.add_row(step.name, marks[step.ok], text)
    return table


def run(args: argparse.Namespace) -> int:
    """Run ``hydatis validate``; 0 when every step that ran passed, else :data:`EXIT_FAILED`."""
    from rich.console import Console

    from operations.validate import connect, validate_deployment

    api_client = None if args.offline else connect(args.kubeconfig, args.kube_api)
    try:
        report = validate_deployment(
            args.overlay,
            api_client=api_client,
            extender_url=args.extender_url,
            ca_file=args.extender_ca,
            namespace=args.namespace,
            timeout_s=args.timeout,
        )
    finally:
        if api_client is not None:
            api_client.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(report_table(report))
        if report.scores:
            best = sorted(report.scores.items(), key=lambda kv: -kv[1])[:5]
            console.print("top scores: " + ", ".join(f"{n}={s}" for n, s in best))
        console.print("[green]valid" if report.ok else "[bold red]validation failed")
    return 0 if report.ok else EXIT_FAILED
