"""Gated progressive rollout on a replay: does the rollout stop and roll back a
degraded model, how many pods did that model place first; does it advance a good one.

Method:

1. The replay: the default dataset (the real composite trace when the data directory
   exists, else the synthetic default), ``--nodes`` nodes, ``--horizon`` simulated, every
   pod's CPU use scaled by ``--usage-scale`` (2 by default: at its own usage the trace has
   almost no hot node-time, so a model that prefers busy nodes does little harm), every
   pod on the ML scheduler's profile (kube-scheduler's default plugins plus the extender
   over HTTP, simulator/extender.py). The extender decides for the pods whose UID hash
   falls under ``rollout_percent`` and answers the rest neutrally (the default plugins
   decide them): the two cohorts compared in each window.
2. The models: the quick models of cli/ml_stack.py (trained once, reused). The degraded
   model is a load predictor trained by the same code on the same training replay with
   its targets inverted (``1 - utilisation``): it predicts busy nodes idle and idle nodes
   busy, so the extender's load part prefers hot nodes and its hot filter removes cool
   ones. Nothing in the extender knows; it serves as any load predictor does.
3. The rollout: at ``--start`` the share is the first step (10 %). Once per ``--window``
   the production controller (:class:`operations.rollout.Rollout`) takes the window's
   evidence from the replay's own records (:class:`ReplayEvidence`: the cohorts' hot
   pod-time, availability, pending time) and the extender's ``/metrics`` (decision p99,
   fallback rate), decides, and acts through the replay's Kubernetes API with the
   ``kubernetes`` client: the extender's ConfigMap and Deployment patched, the rollout
   state in its own ConfigMap. A rolled Deployment restarts the extender with the new
   settings (a new process, as a new pod), and the ML scheduler calls it from then on.
4. Reported: per run, each window's verdict and failed gates; the steps reached; for the
   degraded model, the pods it placed before the first rollback (and in the whole run).

BENCH lines: ``rollout_bad_model_pods_placed`` (pods the degraded model placed before the
rollout rolled it back; the whole run's count if it never did), ``rollout_good_model_final_percent``
(the share the good models reached).

Run: ``.venv/bin/python benchmarks/rollout.py [--nodes 100] [--horizon 3h] [--start 1h]
[--window 30m] [--min-pods 15] [--usage-scale 2] [--seed 0] [--synthetic]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") in sys.path:
    sys.path.remove(str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from hydatis.config import work_dir  # noqa: E402
from monitoring.alerts.spec import duration_s  # noqa: E402
from monitoring.remediation.audit import AuditLog  # noqa: E402
from monitoring.remediation.config import RemediationConfig  # noqa: E402
from operations._fallback_kube import OpsCluster, connect  # noqa: E402
from operations._fallback_replay import SchedulerReplay  # noqa: E402
from operations._rollout_share import ShareControl  # noqa: E402
from operations.rollout import (  # noqa: E402
    ConfigMapStore,
    GateConfig,
    ReplayEvidence,
    Rollout,
    RolloutState,
)
from simulator.datasets import default_dataset  # noqa: E402
from simulator.engine import SimConfig, simulate  # noqa: E402
from simulator.extender import pod_object  # noqa: E402
from simulator.k8s_api import ReplayApiServer, extender_configmap, extender_deployment  # noqa: E402
from simulator.schedulers import make_scheduler  # noqa: E402
from simulator.workload import compile_workload  # noqa: E402

console = Console(width=160)
SYS = "hydatis-system"
ROLL_MARK = "hydatis.io/remediated-at"


def inverted_load_model(out: Path, seed: int, knobs: dict[str, Any]) -> Path:
    """A load predictor trained like the quick one, on targets ``1 - utilisation``."""
    from cli.ml_stack import QUICK
    from hydatis.features import node_features, node_labels
    from hydatis.models.load_predictor import LoadPredictor
    from simulator.history import history_dataset

    path = out / f"load-inverted-seed{seed}-{'syn' if knobs.get('synthetic') else 'real'}"
    if (path / "done").is_file():
        return path
    q = QUICK
    train_seed = seed + int(q["seed_offset"])
    ds, _ = default_dataset(
        nodes=int(q["nodes"]),
        horizon_s=float(q["horizon_s"]),
        seed=train_seed,
        synthetic=bool(knobs.get("synthetic")),
    )
    workload = compile_workload(ds)
    result = simulate(workload, make_scheduler("default"), seed=train_seed)
    hist = history_dataset(workload, result)
    step = float(q["feature_step_s"])
    feats = node_features(hist, step_s=step)
    labels = node_labels(hist, horizon_s=float(q["load_horizon_s"]), step_s=step)
    for col in ("cpu_util_target", "mem_util_target"):
        labels[col] = 1.0 - labels[col]  # the corruption: busy looks idle, idle looks busy
    LoadPredictor(
        horizon_s=float(q["load_horizon_s"]),
        n_estimators=int(q["load_rounds"]),
        max_depth=int(q["load_depth"]),
        early_stopping_rounds=None,
        random_state=seed,
    ).fit(feats, labels).save(path)
    (path / "done").touch()
    return path


class Operator:
    """Once per window: the rollout's step; after it, a rolled Deployment restarts the
    extender with the ConfigMap's settings."""

    def __init__(self, rollout: Rollout, evidence: ReplayEvidence, start: float, window: float):
        self.rollout, self.evidence, self.start, self.window = rollout, evidence, start, window
        self.windows: list[dict[str, Any]] = []
        self.first_rollback_ml_placed: int | None = None

    def __call__(self, cluster: Any, t: float) -> None:
        if t == self.start:
            self.evidence.start(t)
            return
        if t <= self.start or (t - self.start) % self.window:
            return
        ev = self.evidence.take(t)
        verdict, out = self.rollout.step(ev, dry_run=False)
        if out.action == "rollout_rollback" and self.first_rollback_ml_placed is None:
            self.first_rollback_ml_placed = self.evidence.placed_ml_total
        self.windows.append(
            {
                "t_h": t / 3600,
                "percent": ev.percent,
                "ml_pods": ev.ml.pods,
                "default_pods": ev.default.pods,
                "ml_hot": ev.ml.hot_share,
                "default_hot": ev.default.hot_share,
                "ml_avail": ev.ml.availability,
                "default_avail": ev.default.availability,
                "ml_pending_p95": ev.ml.pending_p95_s,
                "default_pending_p95": ev.default.pending_p95_s,
                "p99_ms": ev.decision_p99_s * 1000,
                "fallback_rate": ev.fallback_rate,
                "decision": verdict.decision,
                "failed": verdict.failed,
                "action": f"{out.action} {out.result}",
                "reason": out.reason,
            }
        )


class Roller:
    """Watches the extender's Deployment; a new roll mark restarts the extender."""

    def __init__(self, sched: Any, model_urls: dict[str, str], log_dir: Path, percent: float):
        self.sched, self.model_urls, self.log_dir = sched, model_urls, log_dir
        self.percent = percent
        self.url = sched.url
        self.mark: str | None = None
        self._stack: ExitStack | None = None
        self.restarts = 0

    def __call__(self, cluster: Any, t: float) -> None:
        import yaml

        from cli.ml_stack import start_shim

        dep = cluster.deployments[(SYS, "hydatis-shim")]
        mark = (dep["spec"]["template"].get("metadata") or {}).get("annotations", {}).get(ROLL_MARK)
        if mark == self.mark:
            return
        self.mark = mark
        settings = yaml.safe_load(
            cluster.configmaps[(SYS, "hydatis-shim-config")]["data"]["shim.yaml"]
        )
        new = ExitStack()
        url = new.enter_context(
            start_shim(
                self.model_urls,
                log_dir=self.log_dir / f"roll-{self.restarts + 1}",
                settings={k: settings[k] for k in ("mode", "rollout_percent")},
            )
        )
        self.sched.repoint(url)
        if self._stack is not None:
            self._stack.close()
        self._stack, self.url = new, url
        self.percent = float(settings["rollout_percent"])
        self.restarts += 1

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()


def run_once(label: str, ds: Any, owners: dict, models: dict[str, str], args, gates: GateConfig):
    from cli.ml_stack import ml_stack
    from simulator.node_state import scheduler_context

    first = gates.steps[0]
    knobs = {"synthetic": args.synthetic}
    with ml_stack(
        seed=args.seed,
        knobs=knobs,
        models=models,
        use_registry=False,
        shim_settings={"rollout_percent": first},
        out_dir=args.out / label,
        progress=console.print,
    ) as stack:
        workload = compile_workload(ds)
        cluster = SchedulerReplay(
            workload, owners=owners, schedulers=dict.fromkeys(set(owners.values()), "ml-scheduler")
        )
        cluster.configmaps[(SYS, "hydatis-shim-config")] = extender_configmap(
            {"mode": "active", "rollout_percent": first}
        )
        cluster.deployments[(SYS, "hydatis-shim")] = extender_deployment()
        sched = make_scheduler("ml", url=stack.url, **scheduler_context(ds))
        roller = Roller(sched, dict(stack.model_urls), stack.log_dir, first)
        roller.mark = None
        uids = [pod_object(s)["metadata"]["uid"] for s in workload.pods]

        def read_shim() -> str | None:
            try:
                return httpx.get(f"{roller.url}/metrics", timeout=5).text
            except httpx.HTTPError:
                return None

        evidence = ReplayEvidence(uids, lambda: roller.percent, gates, read_shim)
        with ReplayApiServer(cluster, record=False) as api:
            ops = OpsCluster(connect(api.url))
            share = ShareControl(ops, RemediationConfig(kube_api=api.url))
            store = ConfigMapStore(ops)
            audit = args.out / label / "audit.jsonl"
            audit.unlink(missing_ok=True)
            store.save(RolloutState(index=0))  # an operator started the rollout at step 1
            rollout = Rollout(share, store, gates, audit=AuditLog(audit), clock=cluster.now)
            operator = Operator(rollout, evidence, args.start, gates.window_s)
            cluster.observers += [evidence, operator, roller]
            t0 = time.perf_counter()
            try:
                with console.status(f"{label}: replaying…"):
                    simulate(
                        workload,
                        # the routed scheduler is not needed: every pod is on the ML profile
                        sched,
                        seed=args.seed,
                        config=SimConfig(step_s=args.step),
                        control=cluster,
                    )
            finally:
                roller.close()
            wall = time.perf_counter() - t0
            final = rollout.status()
    return {
        "label": label,
        "windows": operator.windows,
        "final_percent": final["planned_percent"],
        "halted": final["halted"],
        "halt_reason": final["halt_reason"],
        "ml_placed_total": evidence.placed_ml_total,
        "placed_total": evidence.placed_total,
        "ml_placed_before_rollback": operator.first_rollback_ml_placed,
        "restarts": roller.restarts,
        "wall_s": wall,
        "models": models,
    }


def _windows_table(run: dict[str, Any]) -> Table:
    t = Table(title=f"{run['label']}: one row per window", header_style="bold")
    for col in (
        "t (h)",
        "share",
        "pods ML/def",
        "hot ML/def",
        "avail ML/def",
        "pending p95 ML/def (s)",
        "p99 ms",
        "fallback",
        "decision",
        "failed gates",
    ):
        t.add_column(col, justify="right")

    def f(v: float, fmt: str) -> str:
        return "–" if v is None or v != v else format(v, fmt)

    for w in run["windows"]:
        t.add_row(
            f"{w['t_h']:.1f}",
            f"{w['percent']:g} %",
            f"{w['ml_pods']}/{w['default_pods']}",
            f"{f(w['ml_hot'], '.3f')}/{f(w['default_hot'], '.3f')}",
            f"{f(w['ml_avail'], '.4f')}/{f(w['default_avail'], '.4f')}",
            f"{f(w['ml_pending_p95'], '.0f')}/{f(w['default_pending_p95'], '.0f')}",
            f(w["p99_ms"], ".1f"),
            f(w["fallback_rate"], ".3f"),
            w["decision"],
            ", ".join(w["failed"]) or "–",
        )
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--horizon", default="3h")
    ap.add_argument("--start", default="1h", help="when the rollout's first window opens")
    ap.add_argument("--window", default="30m")
    ap.add_argument("--min-pods", type=int, default=15, help="placements per cohort and window")
    ap.add_argument("--load-factor", type=float, default=1.0, help="workloads × this")
    ap.add_argument(
        "--usage-scale",
        type=float,
        default=2.0,
        help="pods' CPU use × this (at 1 the trace has almost no hot node-time: a model "
        "that prefers hot nodes has little to do harm with)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--step", type=float, default=30.0)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--only", choices=["bad", "good"], default=None)
    ap.add_argument("--out", type=Path, default=Path("out/bench/rollout"))
    args = ap.parse_args(argv)
    args.start = duration_s(args.start)
    horizon = duration_s(args.horizon)
    gates = GateConfig(window_s=duration_s(args.window), min_pods=args.min_pods)
    args.out.mkdir(parents=True, exist_ok=True)

    from cli.ml_stack import quick_models

    knobs = {"synthetic": args.synthetic}
    with console.status("quick models (cached after the first run)…"):
        good = {
            k: str(v)
            for k, v in quick_models(
                args.out.parent / "quick-models", seed=args.seed, knobs=knobs
            ).items()
        }
    with console.status("the degraded load predictor (inverted targets)…"):
        bad_load = inverted_load_model(work_dir() / "ml-stack" / "models", args.seed, knobs)
    ds, description = default_dataset(
        nodes=args.nodes,
        horizon_s=horizon,
        seed=args.seed,
        synthetic=args.synthetic,
        load_factor=args.load_factor,
        usage_scale=args.usage_scale,
    )
    owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
    console.print(
        f"[bold]Dataset:[/] {description}: {len(ds.nodes)} nodes, {len(ds.pods)} pods, "
        f"{horizon / 3600:g} h; steps {gates.steps}, window {gates.window_s / 60:g} min, "
        f"min {gates.min_pods} pods per cohort"
    )
    runs = {}
    plan = {"bad": {**good, "load": str(bad_load)}, "good": good}
    for label, models in plan.items():
        if args.only and label != args.only:
            continue
        runs[label] = run_once(label, ds, owners, models, args, gates)
        console.print(_windows_table(runs[label]))
    summary = Table(title="rollout outcome", header_style="bold")
    for col in (
        "models",
        "final share",
        "halted",
        "ML-placed before 1st rollback",
        "ML-placed in run",
        "extender restarts",
        "wall",
    ):
        summary.add_column(col, justify="right" if col != "models" else "left")
    for r in runs.values():
        summary.add_row(
            "degraded load predictor" if r["label"] == "bad" else "good quick models",
            f"{r['final_percent']:g} %",
            f"yes: {r['halt_reason'][:60]}" if r["halted"] else "no",
            "never rolled back"
            if r["ml_placed_before_rollback"] is None
            else str(r["ml_placed_before_rollback"]),
            str(r["ml_placed_total"]),
            str(r["restarts"]),
            f"{r['wall_s']:.0f} s",
        )
    console.print(summary)
    (args.out / "results.json").write_text(
        json.dumps({"dataset": description, "runs": runs}, indent=2, default=str)
    )
    if "bad" in runs:
        bad = runs["bad"]
        placed = bad["ml_placed_before_rollback"]
        if placed is None:
            placed = bad["ml_placed_total"]
        print(f"BENCH rollout_bad_model_pods_placed {placed} pods")
    if "good" in runs:
        print(f"BENCH rollout_good_model_final_percent {runs['good']['final_percent']:g} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
