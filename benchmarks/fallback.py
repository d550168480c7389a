"""Emergency fallback on a replay: how long pods of ML-scheduled workloads stay pending
after the ML scheduler dies, with and without ``hydatis fallback``.

Method:

1. The replay: the default dataset (the real composite trace when the data directory
   exists, else the synthetic default), ``--nodes`` nodes, ``--horizon`` simulated. A
   seeded ``--ml-share`` of the workloads have ``schedulerName: ml-scheduler`` in their pod
   template (Deployments, and ``--statefulset-share`` of them StatefulSets); the rest use
   the default scheduler. The ML scheduler is kube-scheduler's default plugins plus the
   extender (simulator/extender.py) over HTTP, with the model servers and extender
   started by cli/ml_stack.py (quick models, trained once and reused).
2. At ``--kill-at`` the ML scheduler dies (its Deployment has no ready replica, its
   Lease stops being renewed); pods that name it wait (they are never attempted), pods
   of the default scheduler go on. It comes back after ``--outage``.
3. Without fallback: nothing else happens. With fallback: ``--detect`` after the kill
   (an alert's ``for:`` plus an operator's reaction) the production command
   (:class:`operations.fallback.Fallback`, ``on`` with ``--apply``) runs against the
   replay's Kubernetes API through the ``kubernetes`` client: share to 0 %, templates of
   the ML workloads to ``default-scheduler``, their pending pods deleted and recreated.
   ``--detect`` after the scheduler is back, ``off`` restores the templates and share.
4. Recovery: from the kill to the first step at which the ML workloads' pending pods are
   back at their level before the kill (the largest count in the hour before it).
   Reported beside it: the pod-seconds those pods spent pending from the kill to the end
   of the outage plus an hour, and the wall time of the command.

BENCH line: ``fallback_recovery_s`` (recovery with fallback, s); the table gives the run
without fallback (measured in the same script) and the time saved.

Run: ``.venv/bin/python benchmarks/fallback.py [--nodes 100] [--horizon 6h]
[--kill-at 3h] [--outage 30m] [--detect 5m] [--seed 0] [--synthetic]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") in sys.path:
    sys.path.remove(str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from monitoring.alerts.spec import duration_s  # noqa: E402
from monitoring.remediation.audit import AuditLog  # noqa: E402
from monitoring.remediation.config import RemediationConfig  # noqa: E402
from operations._fallback_kube import OpsCluster, connect  # noqa: E402
from operations._fallback_replay import RoutedScheduler, SchedulerReplay  # noqa: E402
from operations._rollout_share import ShareControl  # noqa: E402
from operations.fallback import Fallback  # noqa: E402
from simulator.datasets import default_dataset  # noqa: E402
from simulator.engine import PENDING, SimConfig, simulate  # noqa: E402
from simulator.k8s_api import (  # noqa: E402
    ReplayApiServer,
    extender_configmap,
    extender_deployment,
)
from simulator.schedulers import make_scheduler  # noqa: E402
from simulator.workload import compile_workload  # noqa: E402

console = Console(width=160)
ML = "ml-scheduler"


class Tracker:
    """Per step: pending pods of the ML workloads; and the operator's commands."""

    def __init__(
        self, ml_workloads: set[str], fallback: Fallback | None, acts: dict[str, float], step: float
    ):
        self.ml, self.fallback, self.acts, self.step = ml_workloads, fallback, acts, step
        self.times: list[float] = []
        self.pending: list[int] = []
        self.commands: list[dict[str, Any]] = []

    def __call__(self, c: SchedulerReplay, t: float) -> None:
        pend = np.flatnonzero(c.state == PENDING)
        self.times.append(t)
        self.pending.append(sum(1 for i in pend.tolist() if c.owner_of[i] in self.ml))
        if self.fallback is None:
            return
        for command, when in self.acts.items():
            if when <= t < when + self.step:
                t0 = time.perf_counter()
                fn = self.fallback.on if command == "on" else self.fallback.off
                report = fn(dry_run=False)
                self.commands.append(
                    {
                        "command": command,
                        "t": t,
                        "wall_s": time.perf_counter() - t0,
                        "outcomes": [
                            (o.action, o.target, o.result, o.reason) for o in report.outcomes
                        ],
                    }
                )


def run_once(
    ds: Any,
    owners: dict[str, str],
    ml_workloads: dict[str, str],
    *,
    url: str,
    context: dict[str, Any],
    kill_at: float,
    outage: float,
    detect: float,
    fallback: bool,
    seed: int,
    step: float,
    out: Path,
    progress: Progress,
) -> dict[str, Any]:
    workload = compile_workload(ds)
    cluster = SchedulerReplay(
        workload,
        owners=owners,
        kinds=ml_workloads,
        schedulers=dict.fromkeys(ml_workloads, ML),
        ml_down=[(kill_at, kill_at + outage)],
    )
    cluster.configmaps[("hydatis-system", "hydatis-shim-config")] = extender_configmap(
        {"mode": "active", "rollout_percent": 100}
    )
    cluster.deployments[("hydatis-system", "hydatis-shim")] = extender_deployment()
    label = "with fallback" if fallback else "without fallback"
    task = progress.add_task(label, total=1.0)
    with ReplayApiServer(cluster, record=False) as api:
        fb = None
        if fallback:
            audit = out / "audit.jsonl"
            audit.unlink(missing_ok=True)
            ops = OpsCluster(connect(api.url))
            share = ShareControl(ops, RemediationConfig(kube_api=api.url))
            fb = Fallback(ops, share, audit=AuditLog(audit), clock=cluster.now)
        acts = {"on": kill_at + detect, "off": kill_at + outage + detect}
        tracker = Tracker(set(ml_workloads), fb, acts, step)
        cluster.observers.append(tracker)
        routed = RoutedScheduler(
            cluster,
            {
                "default-scheduler": make_scheduler("default"),
                ML: make_scheduler("ml", url=url, **context),
            },
        )
        t0 = time.perf_counter()
        result = simulate(
            workload,
            routed,
            seed=seed,
            config=SimConfig(step_s=step),
            control=cluster,
            progress=lambda f: progress.update(task, completed=f),
        )
        wall = time.perf_counter() - t0
    times, pending = np.asarray(tracker.times), np.asarray(tracker.pending)
    before = pending[(times >= kill_at - 3600) & (times < kill_at)]
    level = int(before.max()) if before.size else 0
    after = np.flatnonzero((times > kill_at) & (pending <= level))
    # the first step back at the level after the backlog formed
    formed = np.flatnonzero((times > kill_at) & (pending > level))
    recovery = float("nan")
    if formed.size:
        later = after[after > formed[0]]
        if later.size:
            recovery = float(times[later[0]] - kill_at)
    window = (times >= kill_at) & (times < kill_at + outage + 3600)
    return {
        "label": label,
        "recovery_s": recovery,
        "level_before": level,
        "peak_pending": int(pending[window].max()) if window.any() else 0,
        "pending_pod_s": float(pending[window].sum() * step),
        "placed": dict(routed.placed),
        "deleted_pods": cluster.deleted,
        "commands": tracker.commands,
        "wall_s": wall,
        "placements": result.placements,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--horizon", default="6h", help="simulated time")
    ap.add_argument("--kill-at", default="3h", help="when the ML scheduler dies")
    ap.add_argument("--outage", default="30m", help="how long it stays down")
    ap.add_argument("--detect", default="5m", help="kill -> fallback command (alert + operator)")
    ap.add_argument("--ml-share", type=float, default=0.5, help="workloads on the ML scheduler")
    ap.add_argument("--statefulset-share", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--step", type=float, default=30.0)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("out/bench/fallback"))
    args = ap.parse_args(argv)
    horizon, kill_at = duration_s(args.horizon), duration_s(args.kill_at)
    outage, detect = duration_s(args.outage), duration_s(args.detect)
    if not kill_at + outage < horizon:
        raise SystemExit(
            f"--kill-at + --outage ({kill_at + outage:.0f} s) must end before --horizon"
        )
    args.out.mkdir(parents=True, exist_ok=True)

    from cli.ml_stack import ml_stack
    from simulator.node_state import scheduler_context

    with console.status("building the dataset…"):
        ds, description = default_dataset(
            nodes=args.nodes, horizon_s=horizon, seed=args.seed, synthetic=args.synthetic
        )
    owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
    names = sorted(set(owners.values()))
    rng = np.random.default_rng(args.seed)
    chosen = [n for n in names if rng.random() < args.ml_share]
    ml_workloads = {
        n: ("StatefulSet" if rng.random() < args.statefulset_share else "Deployment")
        for n in chosen
    }
    console.print(
        f"[bold]Dataset:[/] {description}: {len(ds.nodes)} nodes, {len(ds.pods)} pods, "
        f"{len(names)} workloads, {len(ml_workloads)} on the ML scheduler"
    )
    runs: dict[bool, dict[str, Any]] = {}
    knobs = {"synthetic": args.synthetic}
    with ml_stack(seed=args.seed, knobs=knobs, use_registry=False, progress=console.print) as stack:
        context = scheduler_context(ds)
        with Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            for fallback in (False, True):
                runs[fallback] = run_once(
                    ds,
                    owners,
                    ml_workloads,
                    url=stack.url,
                    context=context,
                    kill_at=kill_at,
                    outage=outage,
                    detect=detect,
                    fallback=fallback,
                    seed=args.seed,
                    step=args.step,
                    out=args.out,
                    progress=progress,
                )
    off, on = runs[False], runs[True]
    table = Table(
        title=f"ML scheduler killed at {kill_at / 3600:g} h for {outage / 60:g} min — "
        f"{description}, {len(ds.nodes)} nodes, seed {args.seed}; fallback {detect / 60:g} min "
        "after the kill",
        header_style="bold",
    )
    for col in ("", "without fallback", "with fallback"):
        table.add_column(col, justify="right" if col else "left")

    def s(v: float) -> str:
        return "never" if v != v else f"{v:.0f} s ({v / 60:.1f} min)"

    for label, a, b in (
        ("recovery (kill -> pending back to before)", s(off["recovery_s"]), s(on["recovery_s"])),
        ("pending ML-workload pods before the kill (max)", off["level_before"], on["level_before"]),
        ("peak pending ML-workload pods", off["peak_pending"], on["peak_pending"]),
        (
            "pending pod-seconds (kill .. outage end + 1 h)",
            f"{off['pending_pod_s']:.0f}",
            f"{on['pending_pod_s']:.0f}",
        ),
        (
            "pods placed by ml-scheduler / default",
            f"{off['placed'].get(ML, 0)} / {off['placed'].get('default-scheduler', 0)}",
            f"{on['placed'].get(ML, 0)} / {on['placed'].get('default-scheduler', 0)}",
        ),
        ("pending pods deleted for recreation", off["deleted_pods"], on["deleted_pods"]),
        ("replay wall time", f"{off['wall_s']:.0f} s", f"{on['wall_s']:.0f} s"),
    ):
        table.add_row(label, str(a), str(b))
    console.print(table)
    cmds = Table(
        title="fallback commands run through the replay's Kubernetes API", header_style="bold"
    )
    for col in ("command", "at", "wall", "changes"):
        cmds.add_column(col)
    for c in on["commands"]:
        done = sum(o[2] == "done" for o in c["outcomes"])
        cmds.add_row(
            c["command"],
            f"{c['t'] / 3600:.2f} h",
            f"{c['wall_s']:.2f} s",
            f"{done} done of {len(c['outcomes'])}",
        )
    console.print(cmds)
    saved = off["recovery_s"] - on["recovery_s"]
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "dataset": description,
                "nodes": len(ds.nodes),
                "kill_at_s": kill_at,
                "outage_s": outage,
                "detect_s": detect,
                "without": off,
                "with": on,
            },
            indent=2,
            default=str,
        )
    )
    console.print(f"time saved by fallback: {s(saved)}; results: {args.out / 'results.json'}")
    print(f"BENCH fallback_recovery_s {on['recovery_s']:.0f} s")
    print(f"BENCH fallback_recovery_without_s {off['recovery_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
