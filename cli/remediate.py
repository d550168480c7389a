"""``hydatis remediate``: the Alertmanager webhook that maps alerts to safe actions.

hydatis remediate serve [--config FILE] [--act] [--kube-api incluster|kubeconfig|URL]
        [--prometheus-url URL] [--audit-log FILE] [--extender-config-file FILE]
    serve the webhook (``POST /v1/alerts``), ``/metrics``, ``/healthz``, ``/v1/audit``;
    dry-run unless ``--act``
hydatis remediate audit [--audit-log FILE] [--last N]
    print the latest decisions of the audit log as a table
hydatis remediate rules [--root DIR]
    rewrite the rule file and Alertmanager configuration (monitoring/alerts/rules) and
    their ConfigMaps (infra/prometheus) from the spec
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``remediate`` (``serve``, ``audit``, ``rules``) to the ``hydatis`` subcommands."""
    from monitoring.remediation.server import add_arguments

    p = sub.add_parser(
        "remediate",
        help="the remediation webhook (alerts -> safe, audited actions)",
        description=__doc__.splitlines()[0],
    )
    rsub = p.add_subparsers(dest="remediate_action", required=True)
    serve = rsub.add_parser("serve", help="serve the Alertmanager webhook")
    add_arguments(serve)
    audit = rsub.add_parser("audit", help="print the latest decisions")
    audit.add_argument("--config", help="YAML settings file (for its audit_log)")
    audit.add_argument("--audit-log", dest="audit_log", help="the JSONL audit file")
    audit.add_argument("--last", type=int, default=20, help="how many records (default 20)")
    rules = rsub.add_parser("rules", help="render the Prometheus rules and Alertmanager config")
    rules.add_argument("--root", default=".", help="repository root (default: .)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``remediate`` action."""
    action = args.remediate_action
    if action == "serve":
        from monitoring.remediation.server import config_from_args, serve

        serve(config_from_args(args), log_level=args.log_level)
        return 0
    if action == "rules":
        from monitoring.alerts.render import write_all

        for path in write_all(args.root):
            sys.stdout.write(f"wrote {path}\n")
        return 0
    return _audit(args)


def _audit(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from monitoring.remediation.audit import AuditLog
    from monitoring.remediation.config import load_config

    overrides = {"audit_log": args.audit_log} if args.audit_log else {}
    config = load_config(args.config, **overrides)
    records = list(AuditLog(config.audit_log).records())[-max(args.last, 0) :]
    table = Table(title=f"{config.audit_log} — last {len(records)} decisions", header_style="bold")
    for col in ("time (UTC)", "alert", "object", "action", "result", "dry-run", "reason"):
        table.add_column(col)
    for r in records:
        labels = r.get("labels") or {}
        obj = labels.get("node") or labels.get("pod") or labels.get("model") or labels.get("kind")
        when = datetime.fromtimestamp(float(r.get("time", 0)), UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            when,
            str(r.get("alert")),
            str(obj or ""),
            str(r.get("action")),
            str(r.get("result")),
            "yes" if r.get("dry_run") else "no",
            str(r.get("reason")),
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0
