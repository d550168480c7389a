"""Online lookup of the full node feature vector through Feast, SQLite and Redis.

A copy of ``feature_repo/`` in a temporary folder gets a generated feature table (500
nodes x 3 rows, every catalogue feature), materialised into the local SQLite online store
and into a throwaway ``redis-server`` on loopback (skipped, and said so, when it is not
installed). Then, for 100 and 500 nodes, the time of one
:func:`components.materialize.online_features` call (``get_online_features`` plus the
DataFrame), three ways:

- ``packed, serving set-up``: service ``node_vector_v1``, the whole vector as one value
  per node, after :func:`components.materialize.prepare_online` (one warm-up lookup, then
  ``gc.freeze()``: what the serving process does once after loading). The headline.
- ``packed, no serving set-up``: the same read without the freeze, to show what it buys
  (its p99 is a full collection of the ~200k objects feast, pandas and dask load);
- ``per feature``: service ``load_predictor_v1`` read view by view, one value per node
  and feature (Feast's default layout), for comparison.

Prints a table (p50, p99, and p99 against the 50 ms target) and ends with
``BENCH feature_online_500_nodes_p99_ms <value> ms`` (SQLite) and
``BENCH feature_online_redis_500_nodes_p99_ms <value> ms`` (Redis), both for the
headline way.

Run: ``.venv/bin/python benchmarks/feature_serving.py [--samples 200] [--seed 0]``
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The Redis helper lives in the project's tests package, which is not installed.
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from components.materialize import core  # noqa: E402
from hydatis.features import feature_names  # noqa: E402
from tests.redis_server import redis_server_path, start_redis  # noqa: E402

SIZES = (100, 500)
MAX_NODES = max(SIZES)
ROWS_PER_NODE = 3
TARGET_MS = 50.0
#: The read the BENCH lines report: the serving path, in a process with default settings.
HEADLINE_WAY = "packed, serving set-up (prepare_online)"
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def make_table(seed: int) -> pd.DataFrame:
    """``MAX_NODES`` nodes x ``ROWS_PER_NODE`` rows of every feature, uniform in [0, 1)."""
    rng = np.random.default_rng(seed)
    names = feature_names()
    n = MAX_NODES * ROWS_PER_NODE
    df = pd.DataFrame(
        {
            "node_id": np.repeat([f"node-{i:04d}" for i in range(MAX_NODES)], ROWS_PER_NODE),
            "event_timestamp": T0
            + pd.to_timedelta(np.tile(np.arange(ROWS_PER_NODE) * 30, MAX_NODES), unit="s"),
        }
    )
    return pd.concat([df, pd.DataFrame(rng.random((n, len(names))), columns=names)], axis=1)


def timings_ms(
    call: Callable[[], object],
    samples: int,
    *,
    setup: Callable[[], object] | None = None,
    warmup: int = 5,
) -> np.ndarray:
    """Wall time of ``samples`` calls after ``warmup`` untimed ones, in milliseconds.

    ``setup`` runs after the warm-up (the serving set-up freezes the heap there); any
    freeze is released afterwards so the next case starts alike.
    """
    for _ in range(warmup):
        call()
    if setup is not None:
        setup()
    out = np.empty(samples)
    try:
        for i in range(samples):
            t0 = time.perf_counter()
            call()
            out[i] = (time.perf_counter() - t0) * 1000.0
    finally:
        gc.unfreeze()
    return out


def measure(repo: Path, store: str, redis_url: str | None, samples: int) -> list[dict]:
    """Time the packed and per-feature reads for each size on one online store."""
    rows = []
    for nodes in SIZES:
        ids = [f"node-{i:04d}" for i in range(nodes)]
        ways = (
            (HEADLINE_WAY, core.VECTOR_SERVICE, True, samples, True),
            ("packed, no serving set-up", core.VECTOR_SERVICE, True, samples, False),
            ("per feature (load_predictor_v1)", "load_predictor_v1", False, samples // 10, False),
        )
        for way, service, packed, n, freeze in ways:
            frame = core.online_features(
                ids, repo, service=service, redis_url=redis_url, packed=packed
            )
            assert len(frame) == nodes and not frame.iloc[:, 1:].isna().any().any()
            ms = timings_ms(
                lambda i=ids, s=service, p=packed: core.online_features(
                    i, repo, service=s, redis_url=redis_url, packed=p
                ),
                max(n, 20),
                setup=(
                    (
                        lambda i=ids, s=service: core.prepare_online(
                            i, repo, service=s, redis_url=redis_url, packed=True
                        )
                    )
                    if freeze
                    else None
                ),
            )
            rows.append(
                {
                    "store": store,
                    "way": way,
                    "nodes": nodes,
                    "features": frame.shape[1] - 1,
                    "samples": max(n, 20),
                    "p50": float(np.percentile(ms, 50)),
                    "p99": float(np.percentile(ms, 99)),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and the BENCH lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="timed calls per packed case")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    console = Console(width=120)
    table = make_table(args.seed)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hydatis-feast-bench-") as tmp:
        repo = Path(tmp) / "feature_repo"
        shutil.copytree(
            ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__")
        )
        stats = core.materialize(table, repo)
        console.print(f"SQLite: materialised {stats['rows']} rows in {stats['materialize_s']} s")
        results += measure(repo, "sqlite", None, args.samples)
        if redis_server_path() is None:
            console.print("[yellow]redis-server is not on PATH: Redis skipped[/yellow]")
        else:
            with start_redis() as url:
                stats = core.materialize(table, repo, redis_url=url)
                console.print(
                    f"Redis: materialised {stats['rows']} rows in {stats['materialize_s']} s"
                )
                results += measure(repo, "redis", url, args.samples)
        core.clear_cache()

    out = Table(title=f"Feast online lookup of the feature vector (target p99 < {TARGET_MS} ms)")
    for col in ("store", "read", "nodes", "features", "samples", "p50 ms", "p99 ms", "p99/50ms"):
        out.add_column(col, justify="left" if col in ("store", "read") else "right")
    for r in results:
        ratio = r["p99"] / TARGET_MS
        colour = "green" if ratio < 1 else "red"
        out.add_row(
            r["store"],
            r["way"],
            str(r["nodes"]),
            str(r["features"]),
            str(r["samples"]),
            f"{r['p50']:.2f}",
            f"{r['p99']:.2f}",
            f"[{colour}]{ratio:.2f}[/{colour}]",
        )
    console.print(out)

    def headline(store: str) -> float | None:
        for r in results:
            if r["store"] == store and r["nodes"] == MAX_NODES and r["way"] == HEADLINE_WAY:
                return r["p99"]
        return None

    with contextlib.suppress(BrokenPipeError):
        for key, store in (
            ("feature_online_500_nodes_p99_ms", "sqlite"),
            ("feature_online_redis_500_nodes_p99_ms", "redis"),
        ):
            value = headline(store)
            if value is not None:
                print(f"BENCH {key} {value:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
