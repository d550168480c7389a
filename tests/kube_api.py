"""A loopback HTTP server that plays the Kubernetes API server (or any JSON API) in tests.

No kube-apiserver can run in the tests, yet code that acts on a cluster must be checked
at the HTTP boundary: the official ``kubernetes`` client sends real requests to
:class:`ApiRecorder`, which answers them from a small routing table and records each
one (method, path, query, headers, body) so a test can assert on exactly what a cluster
would have seen. The same server stands in for other JSON APIs spoken over HTTP (the
scheduler extender, the Kubeflow Pipelines API).

Example::

    with serving() as start:
        api = start({("GET", "/api/v1/nodes"): (200, {"kind": "NodeList", "items": []})})
        ...  # point the client at api.url
        assert [(s.method, s.path) for s in api.seen] == [("GET", "/api/v1/nodes")]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Answer", "ApiRecorder", "Routes", "Seen", "serving"]

NOT_FOUND: tuple[int, dict[str, Any]] = (
    404,
    {"kind": "Status", "code": 404, "message": "not found"},
)


@dataclass
class Seen:
    """One request as the server received it.

    Attributes:
        method: The HTTP method (``GET``, ``PATCH``...).
        path: The URL path, without the query.
        query: The query string parsed by :func:`urllib.parse.parse_qs` (every value a
            list, as a parameter may repeat).
        headers: The request headers, names lower-cased.
        body: The JSON body decoded, or ``None`` when the request had none.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header, ``""`` when absent: the patch strategy the
        ``kubernetes`` client chose shows here."""
        return self.headers.get("content-type", "")


Answer = tuple[int, Any] | Callable[[Seen], tuple[int, Any]]
"""A route's answer: ``(status, JSON body)``, or a callable computing it from the request."""

Routes = dict[tuple[str, str], Answer]
"""``(method, path) -> Answer``; any other request is answered 404 (a Kubernetes Status)."""


class ApiRecorder:
    """A loopback HTTP server answering ``routes[(method, path)]`` (404 otherwise) and
    recording every request in ``seen``, in arrival order.

    It serves from construction until :meth:`close` (a test helper: a test cannot
    forget to start it). It speaks HTTP/1.1 keep-alive, as the API server does, so the
    client's connection pool is exercised as in a cluster. ``routes`` may be changed
    between requests.

    Args:
        routes: What to answer; see :data:`Routes`.
    """

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _do(self) -> None:
                url = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                seen = Seen(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                owner.seen.append(seen)
                answer = owner.routes.get((self.command, url.path), NOT_FOUND)
                code, body = answer(seen) if callable(answer) else answer
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _do  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def writes(self) -> list[Seen]:
        """The requests that could change something: every method but ``GET``."""
        return [s for s in self.seen if s.method != "GET"]

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> ApiRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def serving() -> Iterator[Callable[[Routes], ApiRecorder]]:
    """Yield a function starting an :class:`ApiRecorder` per call; close them all on exit.

    A test module wraps it in its fixture, so a failing test leaves no server running::

        @pytest.fixture
        def api():
            with serving() as start:
                yield start
    """
    started: list[ApiRecorder] = []

    def start(routes: Routes) -> ApiRecorder:
        rec = ApiRecorder(routes)
        started.append(rec)
        return rec

    try:
        yield start
    finally:
        for rec in started:
            rec.close()
