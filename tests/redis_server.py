"""Start a throwaway ``redis-server`` on loopback for integration tests and benchmarks.

The server keeps nothing on disk (``--save "" --appendonly no``), listens on 127.0.0.1
only, and is stopped (then killed if it lingers) when the context manager exits.

Example:
    >>> with start_redis() as url:  # doctest: +SKIP
    ...     redis.Redis.from_url(url).ping()
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.servers import free_port, stop_process

__all__ = ["REDIS_SERVER", "RedisUnavailableError", "free_port", "redis_server_path", "start_redis"]

REDIS_SERVER = "redis-server"
_START_TIMEOUT_S = 10.0


class RedisUnavailableError(RuntimeError):
    """``redis-server`` is not installed, or it did not answer PING in time."""


def redis_server_path() -> str | None:
    """Return the path of ``redis-server`` on PATH (or /usr/bin), or None when absent."""
    found = shutil.which(REDIS_SERVER)
    if found:
        return found
    return shutil.which(REDIS_SERVER, path="/usr/bin:/usr/local/bin")


def _ping(port: int, timeout_s: float = 0.5) -> bool:
    """Send an inline PING over a raw socket (no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def start_redis(port: int | None = None) -> Iterator[str]:
    """Run ``redis-server`` on 127.0.0.1 for the duration of the ``with`` block.

    Args:
        port: the port to listen on; a free one when None.

    Yields:
        The server's URL, ``redis://127.0.0.1:<port>/0``.

    Raises:
        RedisUnavailableError: when ``redis-server`` is not installed or does not answer PING
            within 10 s (its output is part of the message).
    """
    binary = redis_server_path()
    if binary is None:
        raise RedisUnavailableError(f"{REDIS_SERVER} is not on PATH")
    port = free_port() if port is None else port
    workdir = tempfile.TemporaryDirectory(prefix="hydatis-redis-")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", workdir.name]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out = proc.communicate(timeout=5)[0].decode(errors="replace")
                raise RedisUnavailableError(f"redis-server on port {port} did not start:\n{out}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc, timeout_s=5.0)
        if proc.stdout is not None:
            proc.stdout.close()
        workdir.cleanup()
