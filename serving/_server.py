"""The model server process: kserve's ModelServer bound to a chosen host, and ``main``.

kserve 0.21's ``ModelServer`` always listens on 0.0.0.0 and has no host option; locally
the servers must stay on loopback. :class:`HydatisModelServer` starts the same REST
server (one uvicorn worker, no gRPC) with the host set, after installing the v2 infer
route of :mod:`serving._rest`. Per-request log lines are off unless asked for: three of
them per request cost more than the model call on the extender's path.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence

from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.logging import configure_logging
from kserve.model_server import app
from kserve.model_server import parser as kserve_parser
from kserve.protocol.rest.server import RESTServer

from serving._base import DEFAULT_THREADS, HydatisModel
from serving._registry import MODEL_NAMES, MODULES
from serving._rest import install_v2_infer_route
from serving.errors import ServingError

__all__ = ["DEFAULT_HOST", "HydatisModelServer", "build_parser", "main"]

log = logging.getLogger(__name__)

#: In a container the server must be reachable from the pod network.
# in a container the server must be reachable from the pod network
DEFAULT_HOST = "0.0.0.0"  # nosec B104 reachable from the pod network
_REQUEST_LOGGERS = ("uvicorn.access", "kserve.trace")


class HydatisModelServer(ModelServer):
    """kserve's ModelServer on ``host``: REST only, one worker, optional request logs.

    Args:
        host: the address to listen on (``127.0.0.1`` to stay on loopback).
        http_port: the REST port.
        log_requests: keep uvicorn's access log and kserve's per-request timing lines.
    """

    def __init__(
        self, *, host: str = DEFAULT_HOST, http_port: int = 8080, log_requests: bool = False
    ) -> None:
        super().__init__(
            http_port=http_port,
            enable_grpc=False,
            workers=1,
            enable_latency_logging=log_requests,
        )
        self.host = host
        self.log_requests = log_requests

    def start(self, models: list[HydatisModel]) -> None:  # type: ignore[override]
        """Register the (loaded) models and serve until SIGTERM/SIGINT."""
        install_v2_infer_route(app, self.dataplane)
        if not self.log_requests:
            for name in _REQUEST_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = RESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            workers=1,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        self._rest_server.config.host = self.host  # the one setting ModelServer lacks
        self.servers.append(self._rest_server.start())
        self.setup_event_loop()
        self.register_signal_handler()
        log.info("serving %s on http://%s:%d", [m.name for m in models], self.host, self.http_port)
        asyncio.run(self._serve())


def build_parser(model_cls: type[HydatisModel]) -> argparse.ArgumentParser:
    """kserve's model-server options plus ours (sklearnserver style)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULES[model_cls.kind]}",
        description=(model_cls.__doc__ or "").strip().splitlines()[0],
        parents=[kserve_parser],
    )
    parser.add_argument(
        "--model_source",
        required=True,
        help="a model directory (native or MLflow pyfunc), or models:/NAME@ALIAS or "
        "models:/NAME/VERSION",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument(
        "--tracking_uri",
        default=None,
        help="MLflow tracking/registry URI for a models:/ source (default: "
        "MLFLOW_TRACKING_URI, else <work dir>/mlflow/mlflow.db)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="compute threads per request (XGBoost, torch, scikit-learn)",
    )
    parser.add_argument(
        "--log_requests", action="store_true", help="log every request (access and timing)"
    )
    parser.set_defaults(model_name=MODEL_NAMES[model_cls.kind])
    return parser


def _log_like_kserve(name: str) -> None:
    """Send this package's log records where kserve's go (kserve configures only its own)."""
    ours, theirs = logging.getLogger(name), logging.getLogger("kserve")
    if not ours.handlers:
        for handler in theirs.handlers:
            ours.addHandler(handler)
        ours.setLevel(theirs.level or logging.INFO)
        ours.propagate = False


def main(model_cls: type[HydatisModel], argv: Sequence[str] | None = None) -> int:
    """Parse the options, load the model (exit 1 naming the source if that fails), serve.

    Returns:
        The process exit code.
    """
    args, _ = build_parser(model_cls).parse_known_args(argv)
    configure_logging(args.log_config_file)
    _log_like_kserve(__package__ or "serving")
    model = model_cls(
        args.model_name, args.model_source, tracking_uri=args.tracking_uri, threads=args.threads
    )
    try:
        model.load()
    except ServingError as exc:
        log.error("%s", exc)
        return 1
    HydatisModelServer(
        host=args.host, http_port=args.http_port, log_requests=args.log_requests
    ).start([model])
    return 0
