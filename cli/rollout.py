"""``hydatis rollout``: the ML scheduler's progressive rollout (10 → 50 → 100 % of pods).

hydatis rollout status [--json] [options]
    the step, the share in force, whether it is halted and why, the latest verdicts
hydatis rollout advance|rollback [--apply] [options]
    one step forward (clears a halt) or back (dry run unless ``--apply``)
hydatis rollout step [--apply] --prometheus-url URL [options]
    evaluate the gates on the window that just ended and act on the verdict
hydatis rollout watch [--apply] --prometheus-url URL [options]
    ``step`` once per window until interrupted

Options: the cluster options of ``hydatis fallback`` (``--kube-api``, ``--config``,
``--extender-config-file``, ``--audit-log``); ``--state-file`` (keep the state in a local
JSON file instead of the ``hydatis-rollout`` ConfigMap); ``--gates FILE`` (a YAML mapping
of :class:`operations._rollout_gates.GateConfig` fields); ``--steps 10,50,100``;
``--window 30m``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cli.fallback import add_cluster_args, open_share, outcomes_table

__all__ = ["add_parser", "load_gates", "run"]

console = Console()


def _duration(text: str) -> float:
    from monitoring.alerts.spec import duration_s

    try:
        return float(duration_s(text))
    except (ValueError, KeyError) as exc:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 1h)") from exc


def load_gates(path: str | None, **overrides: Any):
    """The gate configuration: defaults, then the YAML file, then ``overrides``.

    Raises:
        ConfigError: the file is missing, not a mapping, or a field is invalid (named).
    """
    import yaml
    from pydantic import ValidationError

    from hydatis.errors import ConfigError
    from operations._rollout_gates import GateConfig

    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"no gate configuration file at {p}")
        loaded = yaml.safe_load(p.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the gate configuration must be a mapping")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return GateConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"gate configuration {path or ''}: {where}: {first['msg']}") from exc


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``rollout`` (``status``, ``advance``, ``rollback``, ``step``, ``watch``)."""
    p = sub.add_parser(
        "rollout",
        help="progressive rollout of the ML scheduler with gates",
        description=__doc__.splitlines()[0],
    )
    rsub = p.add_subparsers(dest="rollout_action", required=True)
    cmds = {
        "status": rsub.add_parser("status", help="the step, share, halt and verdicts"),
        "advance": rsub.add_parser("advance", help="one step forward"),
        "rollback": rsub.add_parser("rollback", help="one step back"),
        "step": rsub.add_parser("step", help="evaluate the last window and act"),
        "watch": rsub.add_parser("watch", help="evaluate every window and act"),
    }
    for name, q in cmds.items():
        add_cluster_args(q)
        q.add_argument("--state-file", default=None, help="local JSON state (no ConfigMap)")
        q.add_argument("--gates", default=None, help="gate configuration YAML")
        q.add_argument(
            "--steps",
            default=None,
            type=lambda s: [float(x) for x in s.split(",") if x.strip()],
            help="shares, e.g. 10,50,100",
        )
        q.add_argument("--window", type=_duration, default=None, help="window, e.g. 30m")
        if name != "status":
            q.add_argument("--apply", action="store_true", help="act (default: dry run)")
        if name in ("step", "watch"):
            q.add_argument("--prometheus-url", required=True, help="Prometheus base URL")
        if name == "watch":
            q.add_argument("--windows", type=int, default=0, help="stop after N (0: never)")
    p.set_defaults(func=run)
    return p


def _verdict_table(verdict: Any) -> Table:
    table = Table(title=f"gates: {verdict.decision}", header_style="bold")
    for col in ("gate", "status", "value", "limit", "detail"):
        table.add_column(col)
    colour = {"pass": "green", "fail": "red", "skipped": "dim"}  # nosec B105 colour names
    for g in verdict.gates:
        table.add_row(
            g.gate,
            f"[{colour[g.status]}]{g.status}[/]",
            "–" if g.value != g.value else f"{g.value:.4g}",
            "–" if g.limit != g.limit else f"{g.limit:.4g}",
            g.detail,
        )
    return table


def _status_table(st: dict[str, Any]) -> Table:
    table = Table(title="rollout", header_style="bold", show_header=False)
    table.add_column("what")
    table.add_column("value")
    steps = " → ".join(
        f"[bold]{s:g}[/]" if i == st["index"] else f"{s:g}" for i, s in enumerate(st["steps"])
    )
    table.add_row("steps (%)", steps)
    table.add_row("planned share", f"{st['planned_percent']:g} %")
    share = st["share"]
    if share is None:
        table.add_row("share in force", "[yellow]cannot read the extender's settings[/]")
    else:
        mark = "" if st["in_sync"] else " [yellow](differs from the plan)[/]"
        table.add_row("share in force", f"{share['rollout_percent']:g} % ({share['mode']}){mark}")
    table.add_row("fallback", "[red]ON[/]" if st["fallback_on"] else "off")
    table.add_row("halted", f"[red]yes[/]: {st['halt_reason']}" if st["halted"] else "no")
    table.add_row("next", "–" if st["next_percent"] is None else f"{st['next_percent']:g} %")
    table.add_row("state", st["state"])
    for h in st["history"][-5:]:
        table.add_row(h["time"], f"{h['action']} {h['result']}: {h['reason']}")
    return table


def run(args: argparse.Namespace) -> int:
    """Run ``hydatis rollout <action>``; 0 on success, 1 when refused or failed."""
    from monitoring.remediation.audit import AuditLog
    from operations.rollout import ConfigMapStore, FileStore, PrometheusEvidence, Rollout

    gates = load_gates(args.gates, steps=args.steps, window_s=args.window)
    config, cluster, share = open_share(args)
    try:
        if args.state_file:
            store: Any = FileStore(args.state_file)
        elif cluster is not None:
            store = ConfigMapStore(cluster)
        else:
            from hydatis.errors import ConfigError

            raise ConfigError("rollout state: give --state-file, or --kube-api for a ConfigMap")
        rollout = Rollout(share, store, gates, audit=AuditLog(config.audit_log))
        action = args.rollout_action
        if action == "status":
            st = rollout.status()
            if args.json:
                print(json.dumps(st, indent=2, default=str))
            else:
                console.print(_status_table(st))
            return 0
        dry_run = not args.apply
        if action in ("advance", "rollback"):
            out = (
                rollout.advance(dry_run=dry_run)
                if action == "advance"
                else rollout.rollback(dry_run=dry_run)
            )
            outs = [out]
            if args.json:
                print(json.dumps([o.__dict__ for o in outs], indent=2, default=str))
            else:
                console.print(outcomes_table(f"rollout {action}", outs))
            return 1 if out.result in ("refused", "failed") else 0
        from hydatis.prometheus import PrometheusClient

        prom = PrometheusClient(args.prometheus_url)
        evidence = PrometheusEvidence(prom.query, gates)
        windows = 0
        while True:
            now = time.time()
            percent = share.current()["rollout_percent"]
            verdict, out = rollout.step(evidence.collect(now, percent), dry_run=dry_run)
            if args.json:
                print(
                    json.dumps({"verdict": verdict.to_dict(), "outcome": out.__dict__}, default=str)
                )
            else:
                console.print(_verdict_table(verdict))
                console.print(outcomes_table("rollout step", [out]))
            windows += 1
            if action == "step" or (args.windows and windows >= args.windows):
                return 1 if out.result in ("refused", "failed") else 0
            time.sleep(gates.window_s)
    finally:
        if cluster is not None:
            cluster.close()
