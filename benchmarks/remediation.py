"""Automated remediation on a replay of the real trace: how many incidents clear within
30 minutes with the remediation service acting, against the same replay without it, and
what it costs.

Method:

1. The replay: the default dataset (the real composite trace — Alibaba OpenB nodes and
   pods, Bitbrains usage — when the data directory exists, else the embedded synthetic
   default), ``--nodes`` sampled nodes, ``--horizon`` of simulated time, kube-scheduler's
   default plugins.
2. Incidents injected at seeded random times and nodes (one at a time per node):
   - ``hot_node``: a runaway non-pod process takes U(0.45, 0.95) of the node's CPU for
     U(45 min, 4 h) (above 0.75 no drain can cool the node: the process stays);
   - ``anomalous_node``: a leaking non-pod process grows to the node's whole memory in
     U(45, 90) min and holds until fixed after U(1, 4) h; the anomaly detector flags the
     node once the leak passes 10 % of its memory.
3. Alerts: each step the rules' conditions are evaluated on what Prometheus would see
   (the 5-minute CPU average, lagged by the metrics pipeline; the flag) with the rules'
   own thresholds and ``for:`` (monitoring/alerts/spec.py), and grouped and delivered as
   Alertmanager does (group_wait 30 s, group_interval 5 min, repeat_interval 4 h, resolved
   notifications), as version-4 webhook payloads.
4. Remediation ON: the production service (monitoring.remediation, acting, default rate
   limit and blast-radius cap) receives them over HTTP and acts on the replay through the
   replay's Kubernetes API (simulator/k8s_api.py) with the ``kubernetes`` client: cordons
   and Eviction-API evictions land in the simulation. OFF: the same replay, the same
   alerts, nobody acts. In both, a simulated operator follows the runbook: when an
   injected fault is fixed (its end), or an hour after a cordon on a node with no fault,
   the node is uncordoned.
5. Resolved: the incident's condition clears within 30 minutes of its alert firing —
   ``hot_node``: the node's CPU (as the rule reads it) back at or under 75 %;
   ``anomalous_node``: no pod left running on the flagged node. Cost, over the whole
   run: Eviction-API evictions, OOM evictions, pending and availability (the simulator's
   definitions). Incidents the trace raises by itself (natural hot nodes) are reported
   apart.

BENCH lines: ``aiops_auto_resolved_share`` (injected incidents resolved with remediation
on; target ≥ 0.60) and ``aiops_availability_delta_pct`` (availability on − off, in
percentage points; target ≥ 0). Writes ``results.json`` and ``report.html`` (plots).

Run: ``.venv/bin/python benchmarks/remediation.py [--nodes 200] [--horizon 1d]
[--incidents 15] [--seed 0] [--synthetic] [--out out/bench/remediation]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from monitoring.alerts.spec import (  # noqa: E402
    HOT_NODE_CPU,
    HOT_NODE_FOR,
    NODE_ANOMALOUS_FOR,
    duration_s,
)
from simulator.datasets import default_dataset  # noqa: E402
from simulator.engine import SimConfig, simulate  # noqa: E402
from simulator.k8s_api import ReplayApiServer, ReplayCluster  # noqa: E402
from simulator.metrics import summarize  # noqa: E402
from simulator.schedulers import make_scheduler  # noqa: E402
from simulator.workload import Workload, compile_workload  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 200)

KINDS = ("hot_node", "anomalous_node")
ALERT_OF = {"hot_node": "HydatisNodeCPUHot", "anomalous_node": "HydatisNodeAnomalous"}
RESOLVE_WITHIN_S = 1800.0
FLAG_AT = 0.10  # leak share of memory at which the detector flags the node
GROUP_WAIT_S, GROUP_INTERVAL_S, REPEAT_INTERVAL_S = 30.0, 300.0, 4 * 3600.0
OPERATOR_HOLD_S = 3600.0
TARGET_SHARE = 0.60


@dataclass
class Incident:
    """One injected fault."""

    kind: str
    node: int
    start: float
    end: float
    level: float  # hot: CPU share taken; anomalous: seconds for the leak to fill memory
    fired: float | None = None
    cleared: float | None = None

    def active(self, t: float) -> bool:
        return self.start <= t < self.end

    @property
    def resolved(self) -> bool:
        return (
            self.fired is not None
            and self.cleared is not None
            and self.cleared - self.fired <= RESOLVE_WITHIN_S
        )


# ------------------------------------------------------------------------ injection
def plan(workload: Workload, per_kind: int, horizon: float, warmup: float, seed: int):
    """Seeded incidents: never two at once on a node."""
    rng = np.random.default_rng(seed)
    lo, hi = warmup + 1800.0, horizon - 2 * 3600.0
    if hi <= lo:
        raise SystemExit(f"--horizon too short for incidents: need more than {lo + 7200:.0f} s")
    busy: dict[int, list[tuple[float, float]]] = {}
    out: list[Incident] = []
    for kind in KINDS:
        for _ in range(per_kind):
            for _attempt in range(1000):
                node = int(rng.integers(workload.n_nodes))
                start = float(rng.uniform(lo, hi))
                if kind == "hot_node":
                    end, level = start + rng.uniform(2700, 4 * 3600), rng.uniform(0.45, 0.95)
                else:
                    end, level = start + rng.uniform(3600, 4 * 3600), rng.uniform(2700, 5400)
                end = min(end, horizon)
                spans = busy.setdefault(node, [])
                if all(end + 3600 <= s or start >= e + 3600 for s, e in spans):
                    spans.append((start, end))
                    out.append(Incident(kind, node, start, float(end), float(level)))
                    break
    return sorted(out, key=lambda i: i.start)


def inject(workload: Workload, incidents: list[Incident], step: float) -> Workload:
    """A copy of the workload with the incidents' non-pod load on its nodes."""
    steps = int(np.floor(workload.horizon / step)) + 1
    times = np.arange(steps) * step
    cpu = np.zeros((steps, workload.n_nodes), dtype=np.float32)
    mem = np.zeros((steps, workload.n_nodes), dtype=np.float32)
    if workload.bg_cpu is not None:  # keep a dataset's own non-pod load
        j = np.minimum((times // workload.bg_step).astype(int), workload.bg_cpu.shape[0] - 1)
        cpu += workload.bg_cpu[j]
        mem += workload.bg_mem[j]
    for inc in incidents:
        on = (times >= inc.start) & (times < inc.end)
        if inc.kind == "hot_node":
            cpu[on, inc.node] += inc.level * workload.cap_cpu[inc.node]
        else:
            share = np.minimum((times[on] - inc.start) / inc.level, 1.2)
            mem[on, inc.node] += share * workload.cap_mem[inc.node]
    out = Workload(**{**workload.__dict__})
    out.bg_cpu, out.bg_mem, out.bg_step = cpu, mem, step
    return out


# ------------------------------------------------------------------------ alerting
def _fingerprint(labels: dict[str, str]) -> str:
    text = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Alert:
    labels: dict[str, str]
    active_since: float
    fired: float | None = None
    resolved: float | None = None
    notified_firing: bool = False


@dataclass
class _Group:
    alerts: dict[str, _Alert] = field(default_factory=dict)
    last_notify: float | None = None
    dirty: bool = False


class AlertLoop:
    """Evaluates the node alerts each step, delivers them as Alertmanager would, tracks
    each incident's firing and clearing, and plays the runbook-following operator."""

    def __init__(
        self,
        incidents: list[Incident],
        webhook: str | None,
        stats: dict[str, Any],
    ) -> None:
        self.incidents = incidents
        self.webhook = webhook
        self.http = httpx.Client(timeout=120) if webhook else None
        self.stats = stats
        self.groups: dict[tuple[str, str], _Group] = {}
        self.for_s = {
            "HydatisNodeCPUHot": duration_s(HOT_NODE_FOR),
            "HydatisNodeAnomalous": duration_s(NODE_ANOMALOUS_FOR),
        }
        self.natural: list[dict[str, float | None]] = []
        self.cordoned_at: dict[int, float] = {}

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    # the engine's observer
    def __call__(self, cluster: ReplayCluster, t: float) -> None:
        names = cluster.workload.node_names
        cpu = np.nan_to_num(cluster.node_cpu(), nan=0.0)
        hot = cpu > HOT_NODE_CPU
        flagged = np.zeros(cluster.workload.n_nodes, dtype=bool)
        for inc in self.incidents:
            if (
                inc.kind == "anomalous_node"
                and inc.active(t)
                and t - inc.start >= FLAG_AT * inc.level
            ):
                flagged[inc.node] = True
        for name, cond in (("HydatisNodeCPUHot", hot), ("HydatisNodeAnomalous", flagged)):
            for node in range(cond.size):
                self._evaluate(name, names[node], bool(cond[node]), t, cluster)
        self._deliver(t, cluster)
        self._track(t, cluster, hot)
        self._operator(t, cluster)

    def _evaluate(self, name: str, node: str, cond: bool, t: float, cluster) -> None:
        key = (name, node)
        group = self.groups.get(key)
        alert = group.alerts.get("a") if group else None
        if cond:
            if alert is None or alert.resolved is not None:
                labels = {
                    "alertname": name,
                    "node": node,
                    "severity": "warning",
                    "remediation": "cordon_drain",
                }
                group = self.groups.setdefault(key, _Group())
                group.alerts["a"] = alert = _Alert(labels, t)
            if alert.fired is None and t - alert.active_since >= self.for_s[name]:
                alert.fired = t
                group.dirty = True
        elif alert is not None and alert.resolved is None:
            if alert.fired is not None:
                alert.resolved = t
                group.dirty = True
            else:
                group.alerts.pop("a")

    def _deliver(self, t: float, cluster: ReplayCluster) -> None:
        for (name, node), group in self.groups.items():
            alert = group.alerts.get("a")
            if alert is None or alert.fired is None:
                continue
            due = False
            if group.last_notify is None:
                due = t - alert.fired >= GROUP_WAIT_S
            elif group.dirty:
                due = t - group.last_notify >= GROUP_INTERVAL_S
            elif alert.resolved is None:
                due = t - group.last_notify >= REPEAT_INTERVAL_S
            if not due:
                continue
            group.last_notify, group.dirty = t, False
            self.stats["notifications"] += 1
            epoch = float(cluster.epoch)
            status = "resolved" if alert.resolved is not None else "firing"
            payload = {
                "version": "4",
                "status": status,
                "receiver": "hydatis-remediation",
                "groupKey": f"{{}}:{{alertname={name!r}, node={node!r}}}",
                "groupLabels": {"alertname": name, "node": node},
                "commonLabels": alert.labels,
                "commonAnnotations": {},
                "externalURL": "http://alertmanager.replay",
                "truncatedAlerts": 0,
                "alerts": [
                    {
                        "status": status,
                        "labels": alert.labels,
                        "annotations": {},
                        "startsAt": _iso(epoch + alert.fired),
                        "endsAt": _iso(epoch + alert.resolved) if alert.resolved else "",
                        "fingerprint": _fingerprint(alert.labels),
                    }
                ],
            }
            if alert.resolved is not None:
                group.alerts.pop("a")
            if self.http is None:
                continue
            resp = self.http.post(self.webhook, json=payload)
            if resp.status_code != 200:
                self.stats["webhook_errors"] += 1
                continue
            for d in resp.json()["decisions"]:
                self.stats["decisions"][d["result"]] = (
                    self.stats["decisions"].get(d["result"], 0) + 1
                )

    def _track(self, t: float, cluster: ReplayCluster, hot: np.ndarray) -> None:
        injected = set()
        for inc in self.incidents:
            if not (inc.start <= t < inc.end + 2 * 3600):
                continue
            injected.add(inc.node)
            name = ALERT_OF[inc.kind]
            group = self.groups.get((name, cluster.workload.node_names[inc.node]))
            alert = group.alerts.get("a") if group else None
            fired_now = alert is not None and alert.fired is not None
            if inc.fired is None and fired_now and alert.fired >= inc.start and inc.active(t):
                inc.fired = alert.fired
            if inc.fired is None or inc.cleared is not None:
                continue
            if inc.kind == "hot_node":
                clear = not hot[inc.node]
            else:
                clear = cluster.pods_on(inc.node).size == 0
            if clear:
                inc.cleared = t
        # incidents the trace raises by itself: hot nodes with no injected fault
        for (name, node), group in self.groups.items():
            alert = group.alerts.get("a")
            if name != "HydatisNodeCPUHot" or alert is None or alert.fired != t:
                continue
            idx = cluster.node_index[node]
            if idx not in injected:
                self.natural.append({"node": idx, "fired": t, "cleared": None})
        for item in self.natural:
            if item["cleared"] is None and not hot[int(item["node"])]:
                item["cleared"] = t

    def _operator(self, t: float, cluster: ReplayCluster) -> None:
        for node in np.flatnonzero(cluster.unschedulable).tolist():
            since = self.cordoned_at.setdefault(node, t)
            faulty = any(i.node == node and i.active(t) for i in self.incidents)
            if not faulty and t - since >= OPERATOR_HOLD_S:
                cluster.set_unschedulable(node, False)
                cluster.node_annotations[node].clear()
                self.cordoned_at.pop(node)
                self.stats["uncordons"] += 1


# ------------------------------------------------------------------------ the service
class InProcessService:
    """The remediation app under uvicorn in a thread, on a free loopback port, deciding by
    the replay's clock (its rate limit and audit times are in simulated time)."""

    def __init__(self, config, clock) -> None:
        import uvicorn

        from monitoring.remediation.app import build_app

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cfg = uvicorn.Config(
            build_app(config, clock=clock),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> InProcessService:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the remediation service did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# ------------------------------------------------------------------------ one run
def run_once(
    workload: Workload,
    incidents: list[Incident],
    owners: dict[str, str],
    *,
    remediate: bool,
    seed: int,
    step: float,
    out: Path,
    progress,
) -> dict[str, Any]:
    from monitoring.remediation.config import RemediationConfig

    incidents = [Incident(**{**asdict(i), "fired": None, "cleared": None}) for i in incidents]
    cluster = ReplayCluster(workload, owners=owners)
    stats: dict[str, Any] = {
        "notifications": 0,
        "webhook_errors": 0,
        "uncordons": 0,
        "decisions": {},
    }
    label = "remediation on" if remediate else "remediation off"
    task = progress.add_task(label, total=1.0)
    with ReplayApiServer(cluster, record=False) as api:
        audit = out / f"audit-{'on' if remediate else 'off'}.jsonl"
        audit.unlink(missing_ok=True)
        config = RemediationConfig(dry_run=False, kube_api=api.url, audit_log=audit)
        service = InProcessService(config, cluster.now) if remediate else None
        if service is not None:
            service.__enter__()
        loop = AlertLoop(incidents, f"{service.url}/v1/alerts" if service else None, stats)
        cluster.observers.append(loop)
        try:
            t0 = time.perf_counter()
            result = simulate(
                workload,
                make_scheduler("default"),
                seed=seed,
                config=SimConfig(step_s=step),
                control=cluster,
                progress=lambda f: progress.update(task, completed=f),
            )
            wall = time.perf_counter() - t0
        finally:
            loop.close()
            if service is not None:
                service.__exit__(None, None, None)
    summary = summarize(result)
    return {
        "incidents": incidents,
        "natural": loop.natural,
        "summary": summary,
        "api_evictions": int(result.extra.get("api_evictions", 0)),
        "stats": stats,
        "wall_s": wall,
    }


# ------------------------------------------------------------------------ reporting
def _kind_rows(off: dict, on: dict) -> list[dict[str, Any]]:
    rows = []
    groups = {k: k for k in KINDS}
    groups["all injected"] = None
    for label, kind in groups.items():
        row: dict[str, Any] = {"kind": label}
        for tag, run in (("off", off), ("on", on)):
            incs = [i for i in run["incidents"] if kind is None or i.kind == kind]
            fired = [i for i in incs if i.fired is not None]
            res = [i for i in fired if i.resolved]
            mins = [(i.cleared - i.fired) / 60 for i in fired if i.cleared is not None]
            row.update(
                {
                    "injected": len(incs),
                    f"fired_{tag}": len(fired),
                    f"resolved_{tag}": len(res),
                    f"share_{tag}": len(res) / len(fired) if fired else float("nan"),
                    f"median_min_{tag}": float(np.median(mins)) if mins else float("nan"),
                }
            )
        rows.append(row)
    nat: dict[str, Any] = {"kind": "other hot-node alerts (trace, knock-on)", "injected": 0}
    for tag, run in (("off", off), ("on", on)):
        items = run["natural"]
        res = [
            x
            for x in items
            if x["cleared"] is not None and x["cleared"] - x["fired"] <= RESOLVE_WITHIN_S
        ]
        mins = [(x["cleared"] - x["fired"]) / 60 for x in items if x["cleared"] is not None]
        nat.update(
            {
                f"fired_{tag}": len(items),
                f"resolved_{tag}": len(res),
                f"share_{tag}": len(res) / len(items) if items else float("nan"),
                f"median_min_{tag}": float(np.median(mins)) if mins else float("nan"),
            }
        )
    rows.append(nat)
    return rows


def _fmt(v: Any, pct: bool = False) -> str:
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:.0%}" if pct else f"{v:.1f}"
    return str(v)


def _html(path: Path, rows: list[dict], off: dict, on: dict, meta: dict) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            "incidents resolved within 30 min",
            "minutes from alert to clear",
            "availability",
        ),
    )
    kinds = [r["kind"] for r in rows]
    for tag, color in (("off", "#999999"), ("on", "#1f77b4")):
        fig.add_trace(
            go.Bar(
                x=kinds,
                y=[r[f"share_{tag}"] for r in rows],
                name=f"remediation {tag}",
                marker_color=color,
            ),
            row=1,
            col=1,
        )
        run = on if tag == "on" else off
        mins = [(i.cleared - i.fired) / 60 for i in run["incidents"] if i.fired and i.cleared]
        fig.add_trace(
            go.Box(y=mins, name=f"{tag}", marker_color=color, showlegend=False), row=1, col=2
        )
        fig.add_trace(
            go.Bar(
                x=[f"remediation {tag}"],
                y=[run["summary"]["availability"]],
                marker_color=color,
                showlegend=False,
            ),
            row=1,
            col=3,
        )
    fig.add_hline(y=TARGET_SHARE, line_dash="dash", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", row=1, col=1)
    fig.update_yaxes(tickformat=".3%", row=1, col=3)
    fig.update_layout(height=480, title=f"Remediation on a replay — {meta['dataset']}")
    path.write_text(fig.to_html(include_plotlyjs=True, full_html=True))  # opens offline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=200, help="nodes sampled from the trace")
    ap.add_argument("--horizon", default="1d", help="simulated time (e.g. 12h, 1d, 2d)")
    ap.add_argument("--incidents", type=int, default=15, help="incidents of each kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--step", type=float, default=30.0, help="simulated seconds per step")
    ap.add_argument("--synthetic", action="store_true", help="the synthetic default dataset")
    ap.add_argument("--out", type=Path, default=Path("out/bench/remediation"))
    args = ap.parse_args(argv)
    horizon = duration_s(args.horizon)
    args.out.mkdir(parents=True, exist_ok=True)

    with console.status("building the dataset…"):
        ds, description = default_dataset(
            nodes=args.nodes, horizon_s=horizon, seed=args.seed, synthetic=args.synthetic
        )
        base = compile_workload(ds)
    owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
    incidents = plan(base, args.incidents, base.horizon, base.warmup, args.seed)
    workload = inject(base, incidents, args.step)
    console.print(
        f"[bold]Dataset:[/] {description}: {base.n_nodes} nodes, {base.n_pods} pods, "
        f"{base.horizon / 3600:.0f} h; {len(incidents)} incidents injected"
    )
    runs = {}
    with (
        Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
        tempfile.TemporaryDirectory(),
    ):
        for remediate in (False, True):
            runs[remediate] = run_once(
                workload,
                incidents,
                owners,
                remediate=remediate,
                seed=args.seed,
                step=args.step,
                out=args.out,
                progress=progress,
            )
    off, on = runs[False], runs[True]
    rows = _kind_rows(off, on)

    table = Table(
        title=f"Incidents resolved within 30 min of their alert — {description}, "
        f"{base.n_nodes} nodes, {base.horizon / 3600:.0f} h, seed {args.seed}",
        header_style="bold",
    )
    for col in (
        "incident kind",
        "injected",
        "fired off / on",
        "resolved off",
        "resolved on",
        "median min to clear off / on",
    ):
        table.add_column(col, justify="left" if col == "incident kind" else "right")
    for r in rows:
        table.add_row(
            r["kind"],
            str(r["injected"]) if r["injected"] else "–",
            f"{r['fired_off']} / {r['fired_on']}",
            f"{r['resolved_off']} ({_fmt(r['share_off'], True)})",
            f"{r['resolved_on']} ({_fmt(r['share_on'], True)})",
            f"{_fmt(r['median_min_off'])} / {_fmt(r['median_min_on'])}",
        )
    console.print(table)

    cost = Table(title="What it cost (whole run, after the warm-up)", header_style="bold")
    for col in ("", "remediation off", "remediation on"):
        cost.add_column(col, justify="right" if col else "left")
    so, sn = off["summary"], on["summary"]
    for label, fo, fn in (
        ("availability", f"{so['availability']:.4%}", f"{sn['availability']:.4%}"),
        ("impact: pending", f"{so['impacted_pending']:.3%}", f"{sn['impacted_pending']:.3%}"),
        ("impact: CPU over", f"{so['impacted_cpu']:.3%}", f"{sn['impacted_cpu']:.3%}"),
        ("impact: OOM", f"{so['impacted_oom']:.3%}", f"{sn['impacted_oom']:.3%}"),
        ("hot node-time (>0.85)", f"{so['hot_share']:.2%}", f"{sn['hot_share']:.2%}"),
        ("Eviction-API evictions", str(off["api_evictions"]), str(on["api_evictions"])),
        ("OOM evictions", str(so["evictions"]), str(sn["evictions"])),
        ("never placed", str(so["never_placed"]), str(sn["never_placed"])),
        ("notifications delivered", "–", str(on["stats"]["notifications"])),
        (
            "decisions",
            "–",
            ", ".join(f"{k} {v}" for k, v in sorted(on["stats"]["decisions"].items())),
        ),
        ("nodes uncordoned by the operator", "–", str(on["stats"]["uncordons"])),
        ("wall time (s)", f"{off['wall_s']:.0f}", f"{on['wall_s']:.0f}"),
    ):
        cost.add_row(label, fo, fn)
    console.print(cost)

    share = rows[len(KINDS)]["share_on"]
    delta = (sn["availability"] - so["availability"]) * 100.0
    verdict = "met" if share >= TARGET_SHARE and delta >= 0 else "MISSED"
    console.print(
        f"Target: ≥ {TARGET_SHARE:.0%} resolved with availability no lower — {verdict} "
        f"({share:.0%}, {delta:+.3f} pp; without remediation "
        f"{rows[len(KINDS)]['share_off']:.0%} clear by themselves)"
    )
    meta = {
        "dataset": description,
        "nodes": base.n_nodes,
        "horizon_s": base.horizon,
        "seed": args.seed,
        "incidents_per_kind": args.incidents,
    }
    results = {
        "meta": meta,
        "rows": rows,
        "summary": {"off": so, "on": sn},
        "api_evictions": {"off": off["api_evictions"], "on": on["api_evictions"]},
        "stats_on": on["stats"],
        "incidents": {
            tag: [asdict(i) for i in run["incidents"]] for tag, run in (("off", off), ("on", on))
        },
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    _html(args.out / "report.html", rows, off, on, meta)
    console.print(f"Wrote {args.out / 'results.json'} and {args.out / 'report.html'}")
    print(f"BENCH aiops_auto_resolved_share {share:.3f} ratio")
    print(f"BENCH aiops_availability_delta_pct {delta:.4f} pp")
    return 0


if __name__ == "__main__":
    sys.exit(main())
