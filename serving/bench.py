"""Latency of the model servers as a client sees it, per protocol and batch size.

Each timed call includes what a caller pays: encoding the batch, the HTTP round trip on a
keep-alive connection, and decoding the answer into arrays. Protocols:

- ``v1``: ``{"instances": [[...], ...]}`` (JSON);
- ``v2-json``: one ``features`` tensor, flat JSON data;
- ``v2-binary``: the binary tensor extension (JSON header + raw little-endian float32,
  ``Inference-Header-Content-Length``), JSON answer;
- ``v2-binary-out``: binary in and out (``binary_data_output``).

Run against the registry's champions, or local model directories::

    python -m serving.bench --placement-model DIR --load-model DIR --anomaly-model DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np
import orjson

from serving.launch import ModelServers, RunningServer, registry_sources, serve_models

__all__ = ["PROTOCOLS", "bench", "call", "main"]

PROTOCOLS = ("v1", "v2-json", "v2-binary", "v2-binary-out")
_WIDTH = {"load": 75, "anomaly": 75, "placement": 26}
_JSON = {"content-type": "application/json"}


def call(client: httpx.Client, server: RunningServer, x: np.ndarray, protocol: str) -> int:
    """One request of ``x`` in ``protocol``, answer decoded; the number of rows answered.

    Raises:
        RuntimeError: a non-200 answer.
    """
    if protocol == "v1":
        url = f"{server.url}/v1/models/{server.model_name}:predict"
        body = orjson.dumps({"instances": x}, option=orjson.OPT_SERIALIZE_NUMPY)
        resp = client.post(url, content=body, headers=_JSON)
        _check(resp)
        return len(orjson.loads(resp.content)["predictions"])
    tensor: dict[str, Any] = {"name": "features", "shape": list(x.shape), "datatype": "FP32"}
    doc: dict[str, Any] = {"inputs": [tensor]}
    if protocol == "v2-json":
        tensor["data"] = x.ravel()
        body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
        headers = _JSON
    else:
        tensor["parameters"] = {"binary_data_size": x.nbytes}
        if protocol == "v2-binary-out":
            doc["parameters"] = {"binary_data_output": True}
        head = orjson.dumps(doc)
        body = head + x.astype("<f4", copy=False).tobytes()
        headers = {"inference-header-content-length": str(len(head))}
    resp = client.post(server.infer_url, content=body, headers=headers)
    _check(resp)
    length = resp.headers.get("inference-header-content-length")
    if length is None:
        out = orjson.loads(resp.content)["outputs"][0]
        return len(np.asarray(out["data"], dtype=np.float32))
    out = orjson.loads(resp.content[: int(length)])["outputs"][0]
    size = out["parameters"]["binary_data_size"]
    return len(np.frombuffer(resp.content[int(length) : int(length) + size], dtype="<f4"))


def _check(resp: httpx.Response) -> None:
    if resp.status_code != 200:
        raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:300]}")


def _timed(fn: Callable[[], int], repeats: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times * 1000.0


def bench(
    servers: ModelServers,
    rows: Sequence[int] = (500, 5000),
    *,
    protocols: Sequence[str] = PROTOCOLS,
    repeats: int = 200,
    warmup: int = 20,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Time every server x batch size x protocol.

    Returns:
        One dict per combination: ``model, rows, columns, protocol, p50_ms, p99_ms,
        mean_ms``.
    """
    rng = np.random.default_rng(seed)
    results = []
    with httpx.Client(timeout=30.0) as client:
        for kind, server in servers.servers.items():
            for n in rows:
                x = rng.random((n, _WIDTH[kind]), dtype=np.float32)
                for protocol in protocols:
                    if call(client, server, x, protocol) != n:
                        raise RuntimeError(f"{kind} {protocol}: wrong answer length")
                    ms = _timed(lambda: call(client, server, x, protocol), repeats, warmup)  # noqa: B023
                    results.append(
                        {
                            "model": server.model_name,
                            "rows": n,
                            "columns": x.shape[1],
                            "protocol": protocol,
                            "p50_ms": float(np.percentile(ms, 50)),
                            "p99_ms": float(np.percentile(ms, 99)),
                            "mean_ms": float(ms.mean()),
                        }
                    )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Start the servers, time them, print a Markdown table."""
    p = argparse.ArgumentParser(prog="python -m serving.bench", description=__doc__.split("\n")[0])
    p.add_argument("--registry", default=None, help="MLflow tracking URI")
    p.add_argument("--alias", default="champion")
    for kind in _WIDTH:
        p.add_argument(f"--{kind}-model", default=None, metavar="DIR")
    p.add_argument("--only", nargs="*", choices=list(_WIDTH), help="benchmark these models")
    p.add_argument("--rows", default="500,5000", help="batch sizes, comma-separated")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="compute threads per server")
    args = p.parse_args(argv)
    sources = registry_sources(args.alias)
    for kind in _WIDTH:
        if getattr(args, f"{kind}_model"):
            sources[kind] = getattr(args, f"{kind}_model")
    if args.only:
        sources = {k: v for k, v in sources.items() if k in args.only}
    rows = [int(r) for r in args.rows.split(",")]
    with serve_models(sources, tracking_uri=args.registry, threads=args.threads) as servers:
        results = bench(servers, rows, repeats=args.repeats)
    out = sys.stdout
    out.write("| model | batch | protocol | p50 ms | p99 ms |\n|---|---|---|---:|---:|\n")
    for r in results:
        out.write(
            f"| {r['model']} | {r['rows']}x{r['columns']} | {r['protocol']} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} |\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
