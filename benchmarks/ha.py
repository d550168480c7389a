"""High availability of the extender: requests lost when one replica is SIGKILLed
mid-replay.

Three extender processes (``python -m scheduler_shim``) share node state through a real
``redis-server`` on loopback; the simulator's ML scheduler reaches them as
kube-scheduler reaches a Service, through the client-side failover of
``tests/integration/test_ha.py`` (round-robin; a request that fails on one replica is
retried once on another, and the failed replica leaves the rotation for 5 s). At a
chosen share of the replay's requests one replica is SIGKILLed. The same runs without
the retry (kube-scheduler's own behaviour: it never retries an extender call; with
``ignorable: true`` a failed call schedules the pod without the extender) are the
baseline, measured in the same script.

Counted per run: extender requests (filter + prioritize), those whose first replica
failed, those lost beyond the retry (the pod scheduled without the extender), lost
node-state pushes, pods never placed, and the survivors' neutral answers for want of
state. The models are left out (the extender answers from its node state alone): what
is measured is the request path, not the decisions' quality.

    .venv/bin/python benchmarks/ha.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the server helpers live in the tests package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.integration.test_ha import (  # noqa: E402
    extender_replicas,
    fallback_count,
    replay_with_kill,
)
from tests.redis_server import start_redis  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--horizon", type=float, default=4 * 3600.0, help="replay seconds")
    p.add_argument("--kill-at", type=float, default=0.4, help="share of requests")
    args = p.parse_args(argv)
    console = Console(width=170)
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hydatis-ha-") as tmp:
        for seed in args.seeds:
            for retries in (1, 0):
                with (
                    start_redis() as redis_url,
                    extender_replicas(
                        args.replicas, redis_url, Path(tmp) / f"{seed}-{retries}"
                    ) as replicas,
                ):
                    wall = time.perf_counter()
                    out = replay_with_kill(
                        replicas,
                        nodes=args.nodes,
                        horizon_s=args.horizon,
                        seed=seed,
                        kill_at_share=args.kill_at,
                        retries=retries,
                    )
                    neutral = sum(fallback_count(r.url) for r in replicas[1:])
                c = out["counts"]
                verbs = c.get("filter_requests", 0) + c.get("prioritize_requests", 0)
                first = c.get("filter_first_try_failed", 0) + c.get(
                    "prioritize_first_try_failed", 0
                )
                lost = c.get("filter_lost", 0) + c.get("prioritize_lost", 0)
                rows.append(
                    {
                        "seed": seed,
                        "retries": retries,
                        "requests": verbs,
                        "first_failed": first,
                        "lost": lost,
                        "push_lost": c.get("node-state_lost", 0),
                        "never_placed": out["never_placed"],
                        "neutral": neutral,
                        "killed_at": out["killed"].get("at_request"),
                        "wall_s": time.perf_counter() - wall,
                        "data": out["data"],
                    }
                )
                console.log(f"seed {seed} retries {retries}: {rows[-1]}")
    table = Table(
        title=f"SIGKILL of 1 of {args.replicas} extender replicas mid-replay "
        f"({rows[0]['data']}, {args.nodes} nodes, {args.horizon / 3600:.0f} h)"
    )
    for col in (
        "seed",
        "retry",
        "extender requests",
        "failed on 1st replica",
        "lost (pod scheduled without extender)",
        "pushes lost",
        "pods never placed",
        "survivors' neutral (no state)",
        "wall s",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["seed"]),
            "once" if r["retries"] else "none (kube-scheduler alone)",
            str(r["requests"]),
            str(r["first_failed"]),
            str(r["lost"]),
            str(r["push_lost"]),
            str(r["never_placed"]),
            f"{r['neutral']:.0f}",
            f"{r['wall_s']:.0f}",
        )
    console.print(table)
    console.print(f"total wall {time.perf_counter() - t0:.0f} s")
    with_retry = [r for r in rows if r["retries"] == 1]
    without = [r for r in rows if r["retries"] == 0]
    print(f"BENCH ha_requests_lost {max(r['lost'] for r in with_retry)} requests")
    print(f"BENCH ha_requests_lost_without_retry {max(r['lost'] for r in without)} requests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
