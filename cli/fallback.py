"""``hydatis fallback``: move scheduling off the ML scheduler in an emergency, and back.

hydatis fallback on [--apply] [--force-templates] [cluster options]
    ML share to 0 %; if the ML scheduler is down, workload templates to the default
    scheduler and their pending pods recreated (dry run unless ``--apply``)
hydatis fallback off [--apply] [--force] [cluster options]
    templates and share back to what ``on`` recorded
hydatis fallback status [--json] [cluster options]
    the share, the ML scheduler's health, the workloads that use it

Cluster options: ``--kube-api incluster|kubeconfig|URL``, ``--config FILE`` (the
remediation settings: where the extender's settings live), ``--extender-config-file``
(a local settings file instead of a ConfigMap), ``--audit-log FILE``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["add_cluster_args", "add_parser", "open_share", "outcomes_table", "run"]

console = Console()


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    """Options every operations command shares: how to reach the cluster and settings."""
    p.add_argument("--config", default=None, help="remediation settings YAML (extender_*)")
    p.add_argument(
        "--kube-api",
        default=None,
        help="incluster, kubeconfig or an API URL (default: the settings' kube_api)",
    )
    p.add_argument(
        "--extender-config-file",
        default=None,
        help="a local extender settings file instead of the ConfigMap",
    )
    p.add_argument("--audit-log", default=None, help="JSONL audit file (default: settings')")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def open_share(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(remediation config, an OpsCluster or None, a ShareControl) from the options."""
    from monitoring.remediation.config import load_config
    from operations._fallback_kube import open_cluster
    from operations._rollout_share import ShareControl

    overrides: dict[str, Any] = {}
    if args.kube_api:
        overrides["kube_api"] = args.kube_api
    if args.extender_config_file:
        overrides["extender_target"] = "file"
        overrides["extender_config_file"] = Path(args.extender_config_file)
    if args.audit_log:
        overrides["audit_log"] = Path(args.audit_log)
    config = load_config(args.config, **overrides)
    cluster = open_cluster(config.kube_api, config.kube_timeout_s) if config.kube_api else None
    return config, cluster, ShareControl(cluster, config)


def outcomes_table(title: str, outcomes: list[Any]) -> Table:
    """A rich table of :class:`~monitoring.remediation.actions.Outcome` rows."""
    table = Table(title=title, header_style="bold")
    for col in ("action", "target", "result", "reason"):
        table.add_column(col)
    colour = {"done": "green", "dry_run": "cyan", "noop": "dim", "refused": "yellow"}
    for o in outcomes:
        style = colour.get(o.result, "red")
        table.add_row(o.action, o.target, f"[{style}]{o.result}[/]", o.reason)
    return table


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``fallback`` (``on``, ``off``, ``status``) to the ``hydatis`` subcommands."""
    p = sub.add_parser(
        "fallback",
        help="emergency fallback from the ML scheduler to the default scheduler",
        description=__doc__.splitlines()[0],
    )
    fsub = p.add_subparsers(dest="fallback_action", required=True)
    on = fsub.add_parser("on", help="ML share to 0 %; templates to default if it is down")
    on.add_argument("--apply", action="store_true", help="act (default: dry run)")
    on.add_argument(
        "--force-templates",
        action="store_true",
        help="patch the templates even though the ML scheduler looks up",
    )
    off = fsub.add_parser("off", help="restore the templates and the share")
    off.add_argument("--apply", action="store_true", help="act (default: dry run)")
    off.add_argument("--force", action="store_true", help="even if the ML scheduler is down")
    st = fsub.add_parser("status", help="share, ML scheduler health, workloads")
    for q in (on, off, st):
        add_cluster_args(q)
    p.set_defaults(func=run)
    return p


def _status_tables(status: dict[str, Any]) -> list[Table]:
    head = Table(title="fallback", header_style="bold", show_header=False)
    head.add_column("what")
    head.add_column("value")
    share = status.get("share") or {}
    head.add_row("fallback", "[red]ON[/]" if status["fallback_on"] else "[green]off[/]")
    if status.get("share_error"):
        head.add_row("ML share", f"[yellow]{status['share_error']}[/]")
    else:
        head.add_row(
            "ML share", f"{share.get('rollout_percent', float('nan')):g} % ({share.get('mode')})"
        )
    if status.get("previous_share") is not None:
        head.add_row(
            "share before fallback", f"{status['previous_share']} % (since {status['since']})"
        )
    sched = status["scheduler"]
    up = {True: "[green]up[/]", False: "[red]down[/]", None: "[yellow]unknown[/]"}[sched["up"]]
    head.add_row("ML scheduler", f"{up} ({sched['reason']})")
    work = Table(title="workloads using the ML scheduler", header_style="bold")
    for col in ("kind", "namespace", "name", "schedulerName", "previous", "pending ML pods"):
        work.add_column(col)
    for w in status["workloads"]:
        work.add_row(
            w["kind"],
            w["namespace"],
            w["name"],
            w["scheduler"],
            w["previous"] or "",
            str(w["pending_ml_pods"]),
        )
    return [head, work]


def run(args: argparse.Namespace) -> int:
    """Run ``hydatis fallback <action>``; 0 on success, 1 when a step failed or was
    refused."""
    from monitoring.remediation.audit import AuditLog
    from operations.fallback import Fallback

    config, cluster, share = open_share(args)
    try:
        fb = Fallback(cluster, share, audit=AuditLog(config.audit_log))
        if args.fallback_action == "status":
            status = fb.status()
            if args.json:
                print(json.dumps(status, indent=2, default=str))
            else:
                for table in _status_tables(status):
                    console.print(table)
            return 0
        dry_run = not args.apply
        if args.fallback_action == "on":
            report = fb.on(dry_run=dry_run, force_templates=args.force_templates)
        else:
            report = fb.off(dry_run=dry_run, force=args.force)
        if args.json:
            print(
                json.dumps(
                    {
                        "command": report.command,
                        "dry_run": report.dry_run,
                        "outcomes": [o.__dict__ for o in report.outcomes],
                    },
                    indent=2,
                    default=str,
                )
            )
        else:
            mode = "dry run: nothing changed" if dry_run else "applied"
            console.print(outcomes_table(f"fallback {report.command} ({mode})", report.outcomes))
            console.print(f"audit: {config.audit_log}")
        return 1 if report.failed else 0
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="hydatis")
    add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args()
    sys.exit(ns.func(ns))
