"""High availability: three extender processes sharing node state through a real Redis,
reached through a client-side failover; one is SIGKILLed mid-replay.

How kube-scheduler reaches the extender, modelled honestly: its ``urlPrefix`` names a
Service; kube-proxy spreads connections over the ready replicas, and a replica that dies
keeps receiving connections until the endpoints controller removes it. kube-scheduler
itself never retries an extender call: with ``ignorable: true`` a failed call means the
pod is scheduled without the extender (a lost extender decision, not a lost pod). The
:class:`FailoverTransport` here spreads requests round-robin, and on a transport error
retries the request once on another replica and takes the failed one out of rotation
for ``eject_s`` (as a mesh retry policy plus endpoint removal would); a request that
fails on that retry too is lost. Its counters give both figures: requests that failed on
their first replica (what plain kube-scheduler behind a Service would lose) and requests
lost beyond the single retry.

The helpers (:class:`FailoverTransport`, :func:`extender_replicas`) are used by
``benchmarks/ha.py`` too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.redis_server import RedisUnavailableError, start_redis
from tests.servers import free_port, stop_process, wait_http_ready

ROOT = Path(__file__).resolve().parents[2]
SERVICE_URL = "http://hydatis-shim.hydatis-system.svc:8888"


class FailoverTransport(httpx.BaseTransport):
    """Round-robin over replicas; a request that fails on one (connection refused or
    reset, timeout) is retried once on the next, and the failed replica is skipped for
    ``eject_s``.

    Args:
        replicas: the replicas' base URLs.
        retries: extra attempts on other replicas (1; 0 = kube-scheduler alone).
        eject_s: how long a failed replica is left out of the rotation.
        on_request: called with the number of requests so far, before each one (the
            benchmark kills a replica from here at a chosen request).
    """

    def __init__(
        self,
        replicas: list[str],
        *,
        retries: int = 1,
        eject_s: float = 5.0,
        on_request: Callable[[int], None] | None = None,
    ) -> None:
        self.replicas = [httpx.URL(u) for u in replicas]
        self.retries, self.eject_s, self.on_request = retries, eject_s, on_request
        self._inner = httpx.HTTPTransport()
        self._next = 0
        self._ejected: dict[int, float] = {}
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.served_by: Counter[str] = Counter()

    def _pick(self, avoid: set[int]) -> int | None:
        with self._lock:
            now = time.monotonic()
            n = len(self.replicas)
            for k in range(n):
                i = (self._next + k) % n
                if i not in avoid and self._ejected.get(i, 0.0) <= now:
                    self._next = i + 1
                    return i
            rest = [i for i in range(n) if i not in avoid]  # all ejected: try one anyway
            return rest[0] if rest else None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        verb = request.url.path.rsplit("/", 1)[-1]
        self.counts["requests"] += 1
        self.counts[f"{verb}_requests"] += 1
        if self.on_request is not None:
            self.on_request(self.counts["requests"])
        tried: set[int] = set()
        last: Exception | None = None
        for attempt in range(1 + self.retries):
            i = self._pick(tried)
            if i is None:
                break
            tried.add(i)
            base = self.replicas[i]
            url = request.url.copy_with(scheme=base.scheme, host=base.host, port=base.port)
            headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
            fwd = httpx.Request(
                request.method,
                url,
                headers=headers,
                content=request.read(),
                extensions=request.extensions,
            )
            try:
                resp = self._inner.handle_request(fwd)
                resp.read()
            except httpx.TransportError as exc:
                last = exc
                self.counts["failed_attempts"] += 1
                if attempt == 0:
                    self.counts["first_try_failed"] += 1
                    self.counts[f"{verb}_first_try_failed"] += 1
                with self._lock:
                    self._ejected[i] = time.monotonic() + self.eject_s
                continue
            if attempt > 0:
                self.counts["recovered_by_retry"] += 1
            self.served_by[str(base)] += 1
            return resp
        self.counts["lost"] += 1
        self.counts[f"{verb}_lost"] += 1
        raise httpx.ConnectError(f"every replica tried failed: {last}", request=request)

    def close(self) -> None:
        self._inner.close()


@dataclass
class Replica:
    """One extender process."""

    url: str
    process: subprocess.Popen
    log: Path


@contextmanager
def extender_replicas(
    n: int,
    redis_url: str,
    log_dir: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    timeout_s: float = 60.0,
) -> Iterator[list[Replica]]:
    """``n`` extender processes (``python -m scheduler_shim``, source ``push``) sharing
    node state through ``redis_url``; stopped on exit (a killed one is left as is)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log_dir.mkdir(parents=True, exist_ok=True)
    replicas: list[Replica] = []
    try:
        for k in range(n):
            port = free_port()
            cfg = {
                "host": "127.0.0.1",
                "port": port,
                "source": "push",
                "redis_url": redis_url,
                "refresh_interval_s": 1.0,  # how often a replica polls the shared state
                **(settings or {}),
            }
            path = log_dir / f"shim-{k}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            log = log_dir / f"shim-{k}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "scheduler_shim", "--config", str(path)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            replicas.append(Replica(f"http://127.0.0.1:{port}", proc, log))
        for r in replicas:
            try:
                wait_http_ready(f"{r.url}/healthz", timeout_s, proc=r.process)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{r.log.read_text(errors='replace')[-2000:]}") from exc
        yield replicas
    finally:
        for r in replicas:
            stop_process(r.process)


def fallback_count(url: str, reasons: tuple[str, ...] = ("no_state", "stale_state")) -> float:
    """A live replica's neutral answers for want of state (from its /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=5.0).text
    total = 0.0
    for line in text.splitlines():
        for reason in reasons:
            if line.startswith(f'hydatis_extender_fallbacks_total{{reason="{reason}"}}'):
                total += float(line.split()[-1])
    return total


def replay_with_kill(
    replicas: list[Replica],
    *,
    nodes: int,
    horizon_s: float,
    seed: int,
    kill_at_share: float = 0.4,
    retries: int = 1,
) -> dict[str, Any]:
    """Replay a workload with the ML scheduler reaching ``replicas`` through a
    :class:`FailoverTransport`; SIGKILL ``replicas[0]`` at ``kill_at_share`` of the
    expected extender requests. Returns the transport's counters and the run's figures."""
    from simulator.datasets import default_dataset
    from simulator.engine import simulate
    from simulator.node_state import scheduler_context
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    ds, what = default_dataset(nodes=nodes, horizon_s=horizon_s, seed=seed, synthetic=True)
    workload = compile_workload(ds)
    victim = replicas[0]
    kill_at = max(2, int(kill_at_share * 2 * workload.n_pods))  # filter + prioritize per pod
    killed: dict[str, Any] = {}

    def maybe_kill(count: int) -> None:
        if count == kill_at and victim.process.poll() is None:
            os.kill(victim.process.pid, signal.SIGKILL)
            victim.process.wait(timeout=10)
            killed.update(at_request=count, wall=time.monotonic())

    transport = FailoverTransport([r.url for r in replicas], retries=retries, on_request=maybe_kill)
    sched = make_scheduler("ml", url=SERVICE_URL, transport=transport, **scheduler_context(ds))
    result = simulate(workload, sched, seed=seed)
    transport.close()
    return {
        "data": what,
        "pods": workload.n_pods,
        "never_placed": int(result.never_placed),
        "placements": int(result.placements),
        "killed": killed,
        "counts": dict(transport.counts),
        "served_by": dict(transport.served_by),
        "scheduler": dict(sched.counts),
    }


@pytest.fixture
def redis_url() -> Iterator[str]:
    try:
        with start_redis() as url:
            yield url
    except RedisUnavailableError as exc:
        pytest.skip(str(exc))


def test_sigkill_of_one_replica_loses_nothing_beyond_one_retry(redis_url, tmp_path):
    with ExitStack() as stack:
        replicas = stack.enter_context(extender_replicas(3, redis_url, tmp_path / "logs"))
        out = replay_with_kill(replicas, nodes=20, horizon_s=2 * 3600.0, seed=0)
        assert replicas[0].process.returncode == -signal.SIGKILL
        survivors = replicas[1:]
        for r in survivors:
            assert r.process.poll() is None
            state = httpx.get(f"{r.url}/v1/state", timeout=5.0).json()
            assert state["nodes"] == 20, state  # the shared snapshot reached every replica
    c = out["counts"]
    assert out["killed"], "the replica was never killed"
    assert c.get("first_try_failed", 0) >= 1  # the kill was felt...
    assert c.get("lost", 0) == 0  # ...and the single retry covered it
    assert c["recovered_by_retry"] == c["first_try_failed"]
    assert out["scheduler"].get("filter_errors", 0) == 0
    assert out["scheduler"].get("prioritize_errors", 0) == 0
    assert all(out["served_by"].get(r.url, 0) > 0 for r in survivors)


def test_without_retry_the_kill_costs_decisions(redis_url, tmp_path):
    """The same kill with kube-scheduler's own behaviour (no retry): the requests sent to
    the dead replica before it left the rotation are lost, and the pods still placed."""
    with extender_replicas(2, redis_url, tmp_path / "logs") as replicas:
        out = replay_with_kill(replicas, nodes=20, horizon_s=2 * 3600.0, seed=0, retries=0)
    c = out["counts"]
    assert c["lost"] == c["first_try_failed"] >= 1
    errors = out["scheduler"].get("filter_errors", 0) + out["scheduler"].get("prioritize_errors", 0)
    verbs_lost = c.get("filter_lost", 0) + c.get("prioritize_lost", 0)
    assert errors == verbs_lost  # a lost node-state push is not a scheduling call
    assert out["scheduler"].get("failed_cycles", 0) == 0  # ignorable: pods go on without it
