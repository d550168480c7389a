"""Start real servers on loopback for integration tests, and stop them again.

Integration tests talk to real Prometheus (and later Redis, model servers, the extender)
over their real protocols; these helpers find a free port, start the process, wait until
it answers, and always stop it, so a failing test leaves nothing running.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "RunningServer",
    "backfill_openmetrics",
    "free_port",
    "prometheus_server",
    "running_process",
    "stop_process",
    "wait_http_ready",
]


def backfill_openmetrics(src: Path, data_dir: Path, timeout_s: float = 300.0) -> None:
    """Write ``src`` (OpenMetrics) into TSDB blocks under ``data_dir`` with the real
    ``promtool tsdb create-blocks-from openmetrics``; its stderr in the error if it fails."""
    proc = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(src), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill of {src} failed: {proc.stderr[-2000:]}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Terminate a server process, killing it if it does not exit in ``timeout_s``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def wait_http_ready(
    url: str, timeout: float, *, proc: subprocess.Popen | None = None, interval: float = 0.05
) -> None:
    """Poll ``url`` until it answers 200.

    Raises:
        RuntimeError: ``proc`` exited first, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} was ready")
        try:
            resp = httpx.get(url, timeout=1.0)
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}"
        except httpx.TransportError as err:
            last = type(err).__name__
        time.sleep(interval)
    raise RuntimeError(f"{url} not ready after {timeout} s ({last})")


@dataclass(frozen=True)
class RunningServer:
    """A started server: its base URL, port, process and log file."""

    url: str
    port: int
    process: subprocess.Popen
    log: Path


@contextmanager
def running_process(
    argv: Sequence[str],
    *,
    ready_url: str,
    url: str,
    port: int,
    log: Path,
    timeout: float = 30.0,
) -> Iterator[RunningServer]:
    """Run ``argv`` (output to ``log``), wait for ``ready_url``, yield, then stop it.

    The process is terminated (SIGTERM, then SIGKILL after 10 s) on exit, error or not.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT)
        try:
            try:
                wait_http_ready(ready_url, timeout, proc=proc)
            except RuntimeError as err:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{err}\n--- {log} ---\n{tail}") from err
            yield RunningServer(url, port, proc, log)
        finally:
            stop_process(proc)


@contextmanager
def prometheus_server(
    storage: Path,
    *,
    retention: str = "100y",
    timeout: float = 30.0,
    extra_args: Sequence[str] = (),
) -> Iterator[RunningServer]:
    """A real Prometheus on a free 127.0.0.1 port reading ``storage`` (no scrape targets).

    Raises:
        RuntimeError: ``prometheus`` is not on PATH or did not become ready.
    """
    exe = shutil.which("prometheus")
    if exe is None:
        raise RuntimeError("prometheus is not on PATH")
    storage.mkdir(parents=True, exist_ok=True)
    config = storage.parent / f"{storage.name}-prometheus.yml"
    config.write_text("global:\n  scrape_interval: 30s\nscrape_configs: []\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        exe,
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.retention.time={retention}",
        *extra_args,
    ]
    with running_process(
        argv,
        ready_url=f"{url}/-/ready",
        url=url,
        port=port,
        log=storage.parent / f"{storage.name}-prometheus.log",
        timeout=timeout,
    ) as server:
        yield server
