"""Placements per second of the in-process baseline schedulers.

For each cluster size (100, 1000, 5000 nodes) and scheduler (default, tlp), a fresh
cluster with an OpenB-like node mix and node metrics receives pods one by one: each pod is
scored by ``select`` and bound, as in the simulator's scheduling step. Simulated time
advances 10 ms per pod (100 pods/s arriving), the metrics refresh every 60 s, and the
schedulers see the bindings made since, so the load-aware work grows as it would.

Prints a table and ends with one line per headline figure:
``BENCH sim_<scheduler>_<nodes>_nodes_placements_per_s <value> placements/s``.

Run: ``.venv/bin/python benchmarks/simulator.py [--pods 20000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would shadow
# the simulator package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from simulator.schedulers import make_scheduler  # noqa: E402
from simulator.types import ClusterView, PodSpec  # noqa: E402

SIZES = (100, 1000, 5000)
SCHEDULERS = ("default", "tlp")
TARGET_PER_S = 10_000.0
# Node types (cores, GiB) and their shares, from the OpenB node list (simulator/calibration).
NODE_TYPES = ((96, 384), (104, 384), (32, 256), (16, 128), (64, 512), (128, 1024), (8, 32))
NODE_SHARES = (0.45, 0.27, 0.12, 0.07, 0.04, 0.03, 0.02)


def make_cluster(n: int, rng: np.random.Generator) -> ClusterView:
    """A cluster of ``n`` nodes with OpenB-like capacities and some load on them."""
    kinds = rng.choice(len(NODE_TYPES), size=n, p=np.asarray(NODE_SHARES) / sum(NODE_SHARES))
    cores = np.array([NODE_TYPES[k][0] for k in kinds]) * 1000
    mem = np.array([NODE_TYPES[k][1] for k in kinds]) * 1024**3
    view = ClusterView.empty(cores, mem)
    util = rng.uniform(0.05, 0.6, n)
    m = view.metrics
    m.updated_at[:] = 0.0
    m.window_end = 0.0
    m.cpu_used[:] = util * cores
    m.mem_used[:] = util * 0.8 * mem
    m.cpu_avg[:], m.cpu_std[:] = util, 0.05
    m.mem_avg[:], m.mem_std[:] = util * 0.8, 0.02
    m.cpu_avg_5m[:], m.cpu_max_1h[:], m.cpu_max_1d[:] = util, util + 0.05, util + 0.1
    return view


def make_pods(count: int, rng: np.random.Generator) -> list[PodSpec]:
    """Pods with small requests, so the cluster does not fill up during the run."""
    cpu = rng.choice([100, 250, 500, 1000, 2000], size=count)
    mem = rng.choice([128, 256, 512, 1024, 2048], size=count) * 1024**2
    return [PodSpec(f"p{i}", int(c), int(m)) for i, (c, m) in enumerate(zip(cpu, mem, strict=True))]


def bench(name: str, n: int, pods: int, seed: int) -> tuple[float, float, float]:
    """Place ``pods`` pods; return (placements/s, p50 µs, p99 µs)."""
    rng = np.random.default_rng(seed)
    view = make_cluster(n, rng)
    specs = make_pods(pods, rng)
    sched = make_scheduler(name)
    sched.reset(seed)
    lat = np.empty(pods)
    t_start = time.perf_counter()
    for i, pod in enumerate(specs):
        view.now = i * 0.01
        if view.now - view.metrics.window_end >= 120.0:  # metrics refresh every 60 s, lag 60 s
            view.metrics.window_end = view.now - 60.0
            view.metrics.updated_at[:] = view.now - 60.0
            view.bindings.prune(view.now - 900.0)
        t0 = time.perf_counter()
        node = sched.select(pod, view)
        lat[i] = time.perf_counter() - t0
        if node is not None:
            view.bind(pod, node)
    total = time.perf_counter() - t_start
    return pods / total, float(np.percentile(lat, 50) * 1e6), float(np.percentile(lat, 99) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=20_000, help="pods placed per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (best is kept)")
    args = parser.parse_args()
    console = Console()
    table = Table(title="Simulator placements per second (in-process, best of runs)")
    for col in ("scheduler", "nodes", "placements/s", "p50 µs", "p99 µs", "vs 10k/s target"):
        table.add_column(col, justify="right")
    headline: dict[str, float] = {}
    for n in SIZES:
        for name in SCHEDULERS:
            runs = [bench(name, n, args.pods, seed) for seed in range(args.repeat)]
            rate, p50, p99 = max(runs, key=lambda r: r[0])
            table.add_row(
                name,
                str(n),
                f"{rate:,.0f}",
                f"{p50:.1f}",
                f"{p99:.1f}",
                f"{rate / TARGET_PER_S:.2f}x",
            )
            headline[f"sim_{name}_{n}_nodes_placements_per_s"] = rate
    console.print(table)
    ratio = (
        headline["sim_tlp_1000_nodes_placements_per_s"]
        / headline["sim_default_1000_nodes_placements_per_s"]
    )
    console.print(f"TLP / default at 1000 nodes: {ratio:.2f}x")
    for key, value in headline.items():
        print(f"BENCH {key} {value:.0f} placements/s")


if __name__ == "__main__":
    main()
