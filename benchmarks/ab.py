"""Model A/B tests on replays: does the test pick the better model, never promote the
worse one, and how many pods does it take?

Two placement agents of known quality: the quick agent (``cli.ml_stack.quick_models``,
trained on a separate training replay) and a deliberately worse one, its *anti-agent*
(the same network with the last layer negated: Q' = −Q, so it prefers the nodes the
agent rates worst). Per seed, two A/B tests run on the same replay (the extender over
HTTP as kube-scheduler calls it, pods split 50/50 by the salted UID hash): the agent as
champion and the anti-agent as challenger (right answer: keep), then the arms swapped
(right answer: promote). The load predictor and anomaly detector are shared. Each test
is analysed as ``hydatis ab status`` does (:func:`operations.ab.analyse`: placement
objective on each pod's node over the next 30 min, 20-minute matched windows, the
always-valid 95 % test); because the interval stays valid under repeated looks, the
pods needed are those placed up to the first window at which the test was decisive.

A test is correct when it promotes the better challenger or keeps the champion against
the worse one; ``undecided`` at the end counts as not correct. Promoting the worse model
is counted separately (it must stay 0).

    .venv/bin/python benchmarks/ab.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from operations._ab_stats import decide  # noqa: E402
from operations.ab import ABTest, Observations, analyse  # noqa: E402

COLUMNS = (
    "seed",
    "champion → challenger",
    "right",
    "decision",
    "pods needed",
    "pods",
    "windows",
    "objective champ / chal",
    "interval (champ − chal)",
    "wall s",
)
ORDERS = (("agent", "anti-agent", "keep"), ("anti-agent", "agent", "promote"))


def anti_agent(good: Path, out: Path) -> Path:
    """The agent with its output layer negated (Q' = −Q), saved to ``out``."""
    import torch

    from hydatis.models.placement_agent import PlacementAgent

    agent = PlacementAgent.load(good)
    with torch.no_grad():
        for net in (agent.q_net_, agent.target_net_):
            last = net.body[-1]
            last.weight.mul_(-1.0)
            last.bias.mul_(-1.0)
    agent.save(out, optimizer=False)
    return out


def replay_observations(workload, result) -> Observations:
    """Placements (first stay of each pod) with the UIDs the extender saw, node CPU."""
    from simulator.extender import pod_object

    seg = result.segments
    first: dict[int, tuple[float, int]] = {}
    for pod, node, start, _ in seg[np.argsort(seg[:, 2], kind="stable")]:
        first.setdefault(int(pod), (float(start), int(node)))
    pods = sorted(first)
    uids = [pod_object(workload.pods[i])["metadata"]["uid"] for i in pods]
    return Observations(
        times=np.asarray(result.times, dtype=float),
        node_cpu=np.asarray(result.node_cpu, dtype=float),
        placed_at=np.array([first[i][0] for i in pods]),
        node_index=np.array([first[i][1] for i in pods], dtype=np.int64),
        uids=uids,
    )


def first_decision(report, obs: Observations, test: ABTest) -> tuple[str, int]:
    """The first decisive look (always valid) and the pods placed up to its window's end;
    (final decision, all pods) when no look was decisive."""
    w = report.windows
    for k in range(test.min_windows, len(w["start"]) + 1):
        v = decide(
            np.asarray(w["champion"][:k]),
            np.asarray(w["challenger"][:k]),
            confidence=test.confidence,
            min_windows=test.min_windows,
        )
        if v.decision != "undecided":
            end = w["start"][k - 1] + test.window_s
            return v.decision, int(
                ((obs.placed_at >= test.started_at) & (obs.placed_at < end)).sum()
            )
    return report.verdict.decision, int(sum(report.pods.values()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--nodes", type=int, default=60)
    p.add_argument("--horizon", type=float, default=24 * 3600.0, help="replay seconds")
    p.add_argument("--percent", type=float, default=50.0)
    p.add_argument("--load-factor", type=float, default=1.3)
    p.add_argument("--usage-scale", type=float, default=1.5)
    p.add_argument("--model-seed", type=int, default=0, help="the quick models' seed")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    from cli.ml_stack import quick_models, start_shim
    from serving.launch import serve_models
    from simulator.datasets import default_dataset
    from simulator.engine import simulate
    from simulator.node_state import scheduler_context
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    console = Console(width=170)
    base = args.out or Path(tempfile.mkdtemp(prefix="hydatis-ab-bench-"))
    rows, t0 = [], time.perf_counter()
    knobs = {"load_factor": args.load_factor, "usage_scale": args.usage_scale}
    # one pair of models for every replay (trained on their own training replay)
    paths = quick_models(base / "models", seed=args.model_seed, knobs=knobs, progress=console.log)
    bad = anti_agent(paths["placement"], base / "anti-agent")
    for seed in args.seeds:
        ds, what = default_dataset(nodes=args.nodes, horizon_s=args.horizon, seed=seed, **knobs)
        workload = compile_workload(ds)
        sources = {k: str(v) for k, v in paths.items()}
        logs = base / f"logs-{seed}"
        with (
            serve_models(sources, log_dir=logs / "champion") as good_srv,
            serve_models({"placement": str(bad)}, log_dir=logs / "anti") as bad_srv,
        ):
            urls = {"agent": good_srv.urls["placement"], "anti-agent": bad_srv.urls["placement"]}
            for champion, challenger, right in ORDERS:
                salt = f"bench-{seed}-{champion}"
                model_urls = {**good_srv.urls, "placement": urls[champion]}
                settings = {
                    "ab_percent": args.percent,
                    "ab_salt": salt,
                    "challenger_agent_url": urls[challenger],
                }
                wall = time.perf_counter()
                with start_shim(model_urls, log_dir=logs / salt, settings=settings) as url:
                    sched = make_scheduler("ml", url=url, **scheduler_context(ds))
                    result = simulate(workload, sched, seed=seed)
                obs = replay_observations(workload, result)
                test = ABTest(
                    challenger={"agent": urls[challenger]},
                    percent=args.percent,
                    salt=salt,
                    started_at=float(result.warmup_s),
                )
                report = analyse(obs, test)
                first, pods_needed = first_decision(report, obs, test)
                v = report.verdict
                rows.append(
                    {
                        "seed": seed,
                        "champion": champion,
                        "challenger": challenger,
                        "right": right,
                        "decision": first,
                        "final": v.decision,
                        "pods_needed": pods_needed,
                        "pods": sum(report.pods.values()),
                        "windows": v.windows,
                        "obj_champion": report.objective["champion"],
                        "obj_challenger": report.objective["challenger"],
                        "low": v.low,
                        "high": v.high,
                        "wall_s": time.perf_counter() - wall,
                        "data": what,
                    }
                )
                console.log(f"seed {seed} {champion} vs {challenger}: {first} ({v.reason})")
    if args.out is None:
        shutil.rmtree(base, ignore_errors=True)

    table = Table(title=f"A/B tests on replays ({rows[0]['data']}, {args.nodes} nodes, "
                  f"{args.horizon / 3600:.0f} h, {args.percent:.0f} % challenger)")  # fmt: skip
    for col in COLUMNS:
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["seed"]),
            f"{r['champion']} → {r['challenger']}",
            r["right"],
            r["decision"],
            str(r["pods_needed"]),
            str(r["pods"]),
            str(r["windows"]),
            f"{r['obj_champion']:.4f} / {r['obj_challenger']:.4f}",
            f"[{r['low']:.4f}, {r['high']:.4f}]",
            f"{r['wall_s']:.0f}",
        )
    console.print(table)
    correct = [r["decision"] == r["right"] for r in rows]
    worse_promoted = sum(r["decision"] == "promote" and r["right"] == "keep" for r in rows)
    decided = [r["pods_needed"] for r, ok in zip(rows, correct, strict=True) if ok]
    console.print(f"total wall {time.perf_counter() - t0:.0f} s")
    print(f"BENCH ab_correct_pick_rate {np.mean(correct):.3f} ratio")
    print(f"BENCH ab_worse_promoted {worse_promoted} tests")
    if decided:
        print(f"BENCH ab_pods_needed_median {float(np.median(decided)):.0f} pods")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
