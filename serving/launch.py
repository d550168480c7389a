"""Start the three model servers as local processes, wait until they are ready, stop them.

Used by ``hydatis serve`` and by anything that needs real model servers for a while (the
simulator's orchestration, integration tests)::

    from serving.launch import serve_models, registry_sources

    with serve_models(registry_sources()) as servers:      # models:/NAME@champion
        servers.urls["placement"]                          # http://127.0.0.1:8093
        ...                                                # every server answers /ready

Each server is ``python -m serving.<module>`` on a loopback port, its output in a log
file. Readiness is ``GET /v2/models/{name}/ready`` answering 200; a server that exits or
is not ready in time raises :class:`ServerStartError` with the end of its log. On leaving
the block, every process is terminated (SIGTERM, SIGKILL after a grace period), error or
not. This module imports neither kserve nor the models: the children do.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hydatis.config import work_dir
from serving._registry import CHAMPION, KINDS, MODEL_NAMES, MODULES, default_tracking_uri
from serving.errors import ServerStartError, ServingError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORTS",
    "MODULES",
    "ModelServers",
    "RunningServer",
    "dir_sources",
    "free_port",
    "registry_sources",
    "serve_models",
]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: Default local ports (the extender's defaults point here).
DEFAULT_PORTS: dict[str, int] = {"load": 8091, "anomaly": 8092, "placement": 8093}
DEFAULT_READY_TIMEOUT_S = 120.0
_STOP_GRACE_S = 10.0
_POLL_S = 0.1
_ROOT = Path(__file__).resolve().parent.parent  # so children import this very tree


@dataclass(frozen=True)
class RunningServer:
    """One started model server.

    Attributes:
        kind: ``load``, ``anomaly`` or ``placement``.
        model_name: the model's name in the URL paths.
        url: the base URL, e.g. ``http://127.0.0.1:8093``.
        source: what it was asked to load.
        process: the server process.
        log: its output file.
    """

    kind: str
    model_name: str
    url: str
    source: str
    process: subprocess.Popen
    log: Path

    @property
    def ready_url(self) -> str:
        """The v2 readiness URL of the model."""
        return f"{self.url}/v2/models/{self.model_name}/ready"

    @property
    def infer_url(self) -> str:
        """The v2 infer URL of the model."""
        return f"{self.url}/v2/models/{self.model_name}/infer"


@dataclass(frozen=True)
class ModelServers:
    """The running servers, by kind."""

    servers: dict[str, RunningServer] = field(default_factory=dict)

    @property
    def urls(self) -> dict[str, str]:
        """kind -> base URL (the extender's ``load_url``, ``anomaly_url``, ``agent_url``)."""
        return {kind: s.url for kind, s in self.servers.items()}

    def __getitem__(self, kind: str) -> RunningServer:
        return self.servers[kind]

    def alive(self) -> dict[str, bool]:
        """kind -> whether its process is still running."""
        return {kind: s.process.poll() is None for kind, s in self.servers.items()}


def registry_sources(alias: str = CHAMPION) -> dict[str, str]:
    """``models:/NAME@alias`` for each of the three models."""
    return {kind: f"models:/{name}@{alias}" for kind, name in MODEL_NAMES.items()}


def dir_sources(
    load: str | Path | None = None,
    anomaly: str | Path | None = None,
    placement: str | Path | None = None,
) -> dict[str, str]:
    """Local model directories by kind (the ones given)."""
    given = {"load": load, "anomaly": anomaly, "placement": placement}
    return {kind: str(Path(path)) for kind, path in given.items() if path is not None}


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _stop_all(procs: list[subprocess.Popen], grace_s: float = _STOP_GRACE_S) -> None:
    """SIGTERM every process at once, then SIGKILL whichever outlives the grace period."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in running:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("server pid %d ignored SIGTERM for %.0f s; killing it", proc.pid, grace_s)
            proc.kill()
            proc.wait(timeout=grace_s)


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _wait_ready(server: RunningServer, deadline: float, client: httpx.Client) -> None:
    last = "no answer"
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            raise ServerStartError(
                f"{server.kind} server ({server.source}) exited with code {code} before it was "
                f"ready\n--- {server.log} ---\n{_tail(server.log)}"
            )
        try:
            resp = client.get(server.ready_url)
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}"
        except httpx.TransportError as exc:
            last = type(exc).__name__
        time.sleep(_POLL_S)
    raise ServerStartError(
        f"{server.kind} server ({server.source}) not ready at {server.ready_url} "
        f"({last})\n--- {server.log} ---\n{_tail(server.log)}"
    )


def _child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_ROOT) if not path else os.pathsep.join([str(_ROOT), path])
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    env.update(extra or {})
    return env


@contextmanager
def serve_models(
    sources: Mapping[str, str | Path],
    *,
    ports: Mapping[str, int] | None = None,
    host: str = DEFAULT_HOST,
    tracking_uri: str | None = None,
    log_dir: str | Path | None = None,
    timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    threads: int = 1,
    log_requests: bool = False,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
) -> Iterator[ModelServers]:
    """Run one model server per entry of ``sources`` until the block ends.

    Args:
        sources: kind (``load``/``anomaly``/``placement``) -> a model directory or a
            ``models:/`` URI (see :func:`registry_sources`, :func:`dir_sources`).
        ports: kind -> port; a kind left out (or 0) gets a free port.
        host: the address the servers listen on (loopback by default).
        tracking_uri: MLflow URI for ``models:/`` sources (default: ``MLFLOW_TRACKING_URI``,
            else the project's local store); resolved here and passed to every server.
        log_dir: where the servers' logs go (default ``<work dir>/serving``).
        timeout_s: how long all servers together may take to become ready.
        threads: compute threads per server.
        log_requests: log every request in the servers' logs.
        python: the interpreter to run them with.
        env: extra environment for the servers.

    Yields:
        The running servers and their URLs, every one answering ``/ready``.

    Raises:
        ServingError: an unknown kind or no source.
        ServerStartError: a server exited or was not ready in time (all are stopped).
    """
    unknown = sorted(set(sources) - set(KINDS))
    if unknown or not sources:
        raise ServingError(f"sources must name some of {list(KINDS)}, got {sorted(sources)}")
    ports = dict(ports or {})
    logs = Path(log_dir) if log_dir is not None else work_dir() / "serving"
    logs.mkdir(parents=True, exist_ok=True)
    uri = default_tracking_uri(tracking_uri)
    child_env = _child_env(env)
    with ExitStack() as stack:
        servers: dict[str, RunningServer] = {}
        procs: list[subprocess.Popen] = []
        stack.callback(_stop_all, procs)
        for kind, source in sources.items():
            port = ports.get(kind) or free_port(host)
            model_name = MODEL_NAMES[kind]
            log_path = logs / f"{model_name}.log"
            argv = [
                python,
                "-m",
                MODULES[kind],
                "--model_source",
                str(source),
                "--model_name",
                model_name,
                "--http_port",
                str(port),
                "--host",
                host,
                "--tracking_uri",
                uri,
                "--threads",
                str(threads),
                *(["--log_requests"] if log_requests else []),
            ]
            with log_path.open("wb") as out:  # the child keeps its own descriptor
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_env)
            procs.append(proc)
            url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # nosec B104 compared only
            servers[kind] = RunningServer(
                kind, model_name, f"http://{url_host}:{port}", str(source), proc, log_path
            )
            log.info("started %s server (pid %d) for %s on port %d", kind, proc.pid, source, port)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            for server in servers.values():
                _wait_ready(server, deadline, client)
        log.info("model servers ready: %s", {k: s.url for k, s in servers.items()})
        yield ModelServers(servers)
