"""The extender as kube-scheduler sees it: latency of filter + prioritize over HTTP, a
fixed-rate load run, and the node-state refresh.

Everything runs as separate processes on loopback, as on a cluster: the three model
servers (``python -m serving.<model>``) and the extender (``python -m scheduler_shim``,
source ``push``). Models: the local registry's champions are not assumed; the three
models are fitted here with the training components' default sizes on synthetic feature
rows (latency depends on model size, not on what the model learned).

1. Refresh: a snapshot of N nodes (the 75 node features) is PUT to ``/v1/node-state``;
   the extender parses it and calls the load predictor and the anomaly detector once
   each, batched, before it answers (the placement agent has no pod-independent output:
   it is called per pod). Median of a few refreshes at 5000 nodes.
2. Latency: for 100, 500 and 5000 candidate nodes (``nodeCacheCapable: true``, so the
   request carries ``NodeNames``), sequential pods, each a ``filter`` then a
   ``prioritize`` (which makes the one per-pod agent call), on a keep-alive connection;
   p50 / p99 per pod (both verbs) and per verb. The baseline measured in the same run is
   the same extender with no model servers configured (every part neutral): the protocol
   and HTTP cost alone. Target: p99 ≤ 5 ms per pod at 500 nodes.
3. Load: a fixed rate of pods (default 50 pods/s, each a filter and a prioritize: 100
   requests/s) at 500 nodes for 60 s, bounded in count and time (at most 64 pods in
   flight; a pod due while the client is saturated is counted as not sent), counting
   errors (non-200 answers, over the 500 ms ``httpTimeout``) and the rate achieved.

Ends with the BENCH lines ``extender_100_nodes_p99_ms``, ``extender_500_nodes_p99_ms``,
``extender_5000_nodes_p99_ms``, ``extender_load_errors``, ``extender_load_rps`` and
``node_state_refresh_5000_nodes_s``.

Run: ``.venv/bin/python benchmarks/extender.py [--pods 300] [--load-seconds 60] [--rate 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the server helpers live in the tests package

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from hydatis.features import feature_names  # noqa: E402
from tests.servers import free_port, stop_process, wait_http_ready  # noqa: E402

SIZES = (100, 500, 5000)
REFRESH_NODES = 5000
TARGET_P99_MS = 5.0
HTTP_TIMEOUT_S = 0.5
MODELS = {
    "load": ("serving.load_predictor", "hydatis-load-predictor"),
    "anomaly": ("serving.anomaly_detector", "hydatis-anomaly-detector"),
    "agent": ("serving.placement_agent", "hydatis-placement-agent"),
}
console = Console()


def synthetic_rows(n: int, seed: int) -> np.ndarray:
    """Plausible node feature rows: utilisations in [0, 1], capacities, counts."""
    cols = feature_names()
    rng = np.random.default_rng(seed)
    x = np.clip(rng.beta(2, 4, size=(n, len(cols))), 0, 1)
    x[:, cols.index("cpu_capacity_cores")] = rng.choice([16, 32, 64, 96], n)
    x[:, cols.index("mem_capacity_gib")] = rng.choice([64, 128, 256, 512], n)
    x[:, cols.index("pod_count")] = rng.integers(0, 80, n)
    x[:, cols.index("metric_age_s")] = rng.uniform(0, 60, n)
    return x


def fit_models(out: Path, seed: int) -> dict[str, Path]:
    """Fit the three models with the training defaults' sizes and save them."""
    from components.train_anomaly.core import DEFAULT_PARAMS as ANOMALY_PARAMS
    from components.train_placement.core import DEFAULT_PARAMS as PLACEMENT_PARAMS
    from hydatis.models.anomaly_detector import AnomalyDetector
    from hydatis.models.load_predictor import LoadPredictor
    from hydatis.models.placement_agent import PlacementAgent
    from hydatis.models.placement_features import FEATURES

    cols = feature_names()
    x = synthetic_rows(6000, seed)
    rng = np.random.default_rng(seed)
    import pandas as pd

    t = pd.date_range("2024-01-01", periods=len(x), freq="30s", tz="UTC")
    feats = pd.DataFrame(x, columns=cols)
    feats.insert(0, "event_timestamp", t)
    feats.insert(0, "node_id", "n0")
    labels = feats[["node_id", "event_timestamp"]].copy()
    labels["cpu_util_target"] = np.clip(x[:, 0] + rng.normal(0, 0.05, len(x)), 0, 1)
    labels["mem_util_target"] = np.clip(x[:, 1] + rng.normal(0, 0.05, len(x)), 0, 1)
    paths = {k: out / k for k in MODELS}
    lp = LoadPredictor(horizon_s=300, random_state=seed)
    lp.fit(feats, labels)
    lp.save(paths["load"])
    keys = {
        "n_forests",
        "n_estimators",
        "max_samples",
        "feature_fraction",
        "contamination",
        "validation_fraction",
        "vote_threshold",
        "mad_z",
        "stat_weight",
        "min_run",
    }
    ad = AnomalyDetector(**{k: v for k, v in ANOMALY_PARAMS.items() if k in keys})
    ad.fit(x, cols).save(paths["anomaly"])
    agent = PlacementAgent(hidden=PLACEMENT_PARAMS["hidden"], random_state=seed)
    agent.build(len(FEATURES)).save(paths["agent"])
    return paths


@contextlib.contextmanager
def process(args: list[str], ready_url: str, timeout_s: float = 60.0) -> Iterator[None]:
    """Run one server process until the block ends."""
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http_ready(ready_url, timeout_s, proc=proc)
        yield
    finally:
        stop_process(proc)


@contextlib.contextmanager
def model_servers(paths: dict[str, Path]) -> Iterator[dict[str, str]]:
    """The three model servers, as processes; yields their base URLs."""
    urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for kind, (module, name) in MODELS.items():
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(
                process(
                    [
                        sys.executable,
                        "-m",
                        module,
                        "--model_source",
                        str(paths[kind]),
                        "--http_port",
                        str(port),
                        "--model_name",
                        name,
                    ],
                    f"{url}/v2/models/{name}/ready",
                )
            )
            urls[kind] = url
        yield urls


@contextlib.contextmanager
def extender(urls: dict[str, str] | None) -> Iterator[str]:
    """The extender process (push source); yields its base URL."""
    port = free_port()
    args = [sys.executable, "-m", "scheduler_shim", "--port", str(port), "--log-level", "warning"]
    for kind, url in (urls or {}).items():
        args += [f"--{kind}-url", url]
    url = f"http://127.0.0.1:{port}"
    with process(args, f"{url}/healthz"):
        yield url


def push_body(n: int, seed: int, t: float = 1000.0) -> bytes:
    """A ``/v1/node-state`` snapshot of ``n`` nodes."""
    x = synthetic_rows(n, seed)
    return orjson.dumps(
        {
            "time": t,
            "columns": feature_names(),
            "nodes": [f"node-{i:05d}" for i in range(n)],
            "values": x,
            "sample_time": np.full(n, t - 30.0),
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def pod_body(i: int, names: list[str]) -> bytes:
    """kube-scheduler's ExtenderArgs for pod ``i`` over ``names`` (NodeNames mode)."""
    cpu = [100, 250, 500, 1000, 2000][i % 5]
    pod = {
        "metadata": {"name": f"bench-{i}", "namespace": "bench", "uid": f"uid-{i}"},
        "spec": {
            "schedulerName": "ml-scheduler",
            "containers": [
                {
                    "name": "app",
                    "resources": {"requests": {"cpu": f"{cpu}m", "memory": f"{cpu * 2}Mi"}},
                }
            ],
        },
    }
    return orjson.dumps({"Pod": pod, "Nodes": None, "NodeNames": names})


def refresh_times(client: httpx.Client, url: str, n: int, repeats: int, seed: int) -> list[float]:
    """Seconds per PUT of an ``n``-node snapshot (the extender calls the models inside)."""
    out = []
    for r in range(repeats):
        body = push_body(n, seed + r, 1000.0 + r)
        t0 = time.perf_counter()
        resp = client.put(f"{url}/v1/node-state", content=body)
        out.append(time.perf_counter() - t0)
        resp.raise_for_status()
    return out


class Connection:
    """One keep-alive HTTP/1.1 connection with the least client-side overhead (what is
    timed should be the extender, not a Python client library)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()


def latencies(
    client: httpx.Client, url: str, n: int, pods: int, seed: int
) -> dict[str, np.ndarray]:
    """Per-pod milliseconds of filter, prioritize and both, over ``n`` candidates."""
    client.put(f"{url}/v1/node-state", content=push_body(n, seed)).raise_for_status()
    names = [f"node-{i:05d}" for i in range(n)]
    bodies = [pod_body(i, names) for i in range(pods + 20)]
    conn = Connection(url)
    f_ms, p_ms = [], []
    try:
        for i, body in enumerate(bodies):
            t0 = time.perf_counter()
            sf, _ = conn.post("/filter", body)
            t1 = time.perf_counter()
            sp, _ = conn.post("/prioritize", body)
            t2 = time.perf_counter()
            if sf != 200 or sp != 200:
                raise RuntimeError(f"extender answered {sf}/{sp}")
            if i >= 20:  # warm-up
                f_ms.append((t1 - t0) * 1e3)
                p_ms.append((t2 - t1) * 1e3)
    finally:
        conn.close()
    f, p = np.array(f_ms), np.array(p_ms)
    return {"filter": f, "prioritize": p, "pod": f + p}


async def load_run(
    url: str, n: int, rate: float, seconds: float, max_inflight: int = 64
) -> tuple[int, int, int, float]:
    """Pods (filter + prioritize) at a fixed rate for ``seconds``.

    Bounded in count (``rate × seconds`` pods, at most ``max_inflight`` at once: a pod due
    while the client is saturated is not sent and counted apart) and in time (each pod
    gets 2 × ``httpTimeout``; the run waits at most that long for stragglers).

    Returns:
        (pods due, errors — non-200 answers or over the timeout, pods not sent, pods per
        second answered).
    """
    from scheduler_shim._http import HttpPool

    names = [f"node-{i:05d}" for i in range(n)]
    total = int(rate * seconds)
    pool = HttpPool(url, max_idle=max_inflight)
    errors = not_sent = done = 0
    inflight = 0

    async def one(i: int) -> None:
        nonlocal errors, done, inflight
        body = pod_body(i, names)
        try:
            for verb in ("/filter", "/prioritize"):
                status, _ = await asyncio.wait_for(pool.post(verb, body), HTTP_TIMEOUT_S)
                if status != 200:
                    errors += 1
                    return
            done += 1
        except (TimeoutError, OSError, ConnectionError):
            errors += 1
        finally:
            inflight -= 1

    start = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if inflight >= max_inflight:
            not_sent += 1
            continue
        inflight += 1
        tasks.append(asyncio.create_task(one(i)))
    _, late = await asyncio.wait(tasks, timeout=2 * HTTP_TIMEOUT_S) if tasks else ((), ())
    for t in late:
        t.cancel()
    errors += len(late)
    elapsed = time.perf_counter() - start
    await pool.close()
    return total, errors, not_sent, done / elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=300, help="pods per size (latency)")
    ap.add_argument("--load-seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=50.0, help="pods per second (load run)")
    ap.add_argument("--refreshes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    results: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="hydatis-bench-") as tmp,
        Progress(console=console, transient=True) as progress,
    ):
        task = progress.add_task("fitting the three models", total=None)
        paths = fit_models(Path(tmp), args.seed)
        with httpx.Client(timeout=30.0) as client:
            progress.update(task, description="baseline: the extender without models")
            with extender(None) as url:
                results["no models (baseline)"] = {
                    n: latencies(client, url, n, args.pods, args.seed) for n in SIZES
                }
            progress.update(task, description="starting the model servers and the extender")
            with model_servers(paths) as urls, extender(urls) as url:
                progress.update(task, description=f"refresh of {REFRESH_NODES} nodes")
                refresh = refresh_times(client, url, REFRESH_NODES, args.refreshes, args.seed)
                results["three models"] = {}
                for n in SIZES:
                    progress.update(task, description=f"latency at {n} nodes")
                    results["three models"][n] = latencies(client, url, n, args.pods, args.seed)
                progress.update(
                    task, description=f"load run: {args.rate:.0f} pods/s, {args.load_seconds:.0f} s"
                )
                client.put(f"{url}/v1/node-state", content=push_body(500, args.seed))
                sent, errors, not_sent, rps = asyncio.run(
                    load_run(url, 500, args.rate, args.load_seconds)
                )
                fallback_lines = [
                    line
                    for line in client.get(f"{url}/metrics").text.splitlines()
                    if line.startswith("hydatis_extender_fallbacks_total{")
                ]

    table = Table(title="Extender latency per pod (filter + prioritize over HTTP), ms")
    for col in (
        "extender",
        "nodes",
        "filter p50",
        "filter p99",
        "prioritize p50",
        "prioritize p99",
        "pod p50",
        "pod p99",
        "p99 / baseline",
    ):
        table.add_column(col, justify="right" if col != "extender" else "left")
    base = results["no models (baseline)"]
    for name, by_size in results.items():
        for n, lat in by_size.items():
            ratio = np.percentile(lat["pod"], 99) / np.percentile(base[n]["pod"], 99)
            table.add_row(
                name,
                str(n),
                *(
                    f"{np.percentile(lat[v], q):.2f}"
                    for v in ("filter", "prioritize", "pod")
                    for q in (50, 99)
                ),
                f"{ratio:.2f}",
            )
    console.print(table)
    t2 = Table(title="Node-state refresh and load run")
    t2.add_column("measure")
    t2.add_column("value", justify="right")
    t2.add_column("target", justify="right")
    med = float(np.median(refresh))
    t2.add_row(
        f"refresh, {REFRESH_NODES} nodes (median of {len(refresh)})", f"{med:.3f} s", "< 1 s"
    )
    t2.add_row(
        f"load run at 500 nodes: pods sent ({args.rate:.0f}/s × {args.load_seconds:.0f} s)",
        str(sent),
        "",
    )
    t2.add_row("load run: errors (non-200 or > 500 ms)", str(errors), "0")
    t2.add_row("load run: not sent (client at its in-flight bound)", str(not_sent), "0")
    t2.add_row("load run: pods per second achieved", f"{rps:.1f}", f"{args.rate:.0f}")
    console.print(t2)
    for line in fallback_lines:
        console.print(f"  {line}")
    p99 = {n: float(np.percentile(results["three models"][n]["pod"], 99)) for n in SIZES}
    status = "met" if p99[500] <= TARGET_P99_MS else "MISSED"
    console.print(
        f"p99 at 500 nodes {p99[500]:.2f} ms against the {TARGET_P99_MS} ms target: {status}"
    )
    for n in SIZES:
        print(f"BENCH extender_{n}_nodes_p99_ms {p99[n]:.3f} ms")
    print(f"BENCH extender_load_errors {errors} count")
    print(f"BENCH extender_load_rps {rps:.1f} rps")
    print(f"BENCH node_state_refresh_5000_nodes_s {med:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
