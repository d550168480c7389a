"""Run the extender: parse the command line, load the configuration, serve with uvicorn.

``python -m scheduler_shim`` serves the ``push`` source (and any source whose reader is
passed in); ``hydatis shim`` adds the Feast and Prometheus readers, which live outside
this package.

With ``tls_cert_file`` and ``tls_key_file`` set (``HYDATIS_SHIM_TLS_CERT_FILE`` /
``HYDATIS_SHIM_TLS_KEY_FILE``) the extender serves HTTPS, the other side of
kube-scheduler's extender ``tlsConfig``; the log level defaults to ``HYDATIS_LOG_LEVEL``
so an overlay sets it without rewriting the container's arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from hydatis.errors import ConfigError
from scheduler_shim.app import build_app
from scheduler_shim.config import ShimConfig, load_config
from scheduler_shim.sources import FrameSource

__all__ = [
    "DEFAULT_LOG_LEVEL",
    "LOG_LEVEL_ENV",
    "add_arguments",
    "config_from_args",
    "main",
    "serve",
    "tls_options",
]

#: The environment variable that sets ``--log-level``'s default (the overlays set it).
LOG_LEVEL_ENV = "HYDATIS_LOG_LEVEL"
DEFAULT_LOG_LEVEL = "info"
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The extender's command-line options (shared by ``hydatis shim``)."""
    parser.add_argument("--config", help="YAML settings file (keys: scheduler_shim/README.md)")
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 8888)")
    parser.add_argument("--source", choices=["push", "feast", "prometheus"])
    parser.add_argument("--mode", choices=["active", "shadow"])
    parser.add_argument("--rollout-percent", type=float, dest="rollout_percent")
    parser.add_argument("--load-url", dest="load_url")
    parser.add_argument("--anomaly-url", dest="anomaly_url")
    parser.add_argument("--agent-url", dest="agent_url")
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=_LOG_LEVELS,
        default=os.environ.get(LOG_LEVEL_ENV, DEFAULT_LOG_LEVEL).lower(),
        help=f"log level (default: ${LOG_LEVEL_ENV}, else {DEFAULT_LOG_LEVEL})",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> ShimConfig:
    """Settings from the file, the environment and the flags (flags win)."""
    keys = (
        "host",
        "port",
        "source",
        "mode",
        "rollout_percent",
        "load_url",
        "anomaly_url",
        "agent_url",
    )
    return load_config(args.config, **{k: getattr(args, k) for k in keys})


def tls_options(config: ShimConfig) -> dict[str, Any]:
    """uvicorn's TLS keywords for ``config``: empty (plain HTTP) when neither file is set.

    Raises:
        ConfigError: only one of the two is set, or a file named is not there (checked
            here, so a missing Secret mount fails at start with the setting's name rather
            than as an SSL error deep inside uvicorn).
    """
    cert, key = config.tls_cert_file, config.tls_key_file
    if not cert and not key:
        return {}
    if not (cert and key):
        given, missing = (
            ("tls_cert_file", "tls_key_file") if cert else ("tls_key_file", "tls_cert_file")
        )
        raise ConfigError(f"{given} is set but {missing} is not: HTTPS needs both")
    for name, value in (("tls_cert_file", cert), ("tls_key_file", key)):
        if not Path(value).is_file():
            raise ConfigError(f"{name}: {value} is not a readable file")
    return {"ssl_certfile": cert, "ssl_keyfile": key}


def serve(
    config: ShimConfig, *, source: FrameSource | None = None, log_level: str = DEFAULT_LOG_LEVEL
) -> None:
    """Serve until interrupted (HTTPS when the TLS files are set).

    Raises:
        ConfigError: the TLS settings are incomplete or name a missing file.
    """
    tls = tls_options(config)
    app = build_app(config, source=source)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level.lower(),
        access_log=False,
        loop="uvloop",
        http="httptools",
        **tls,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scheduler_shim``."""
    parser = add_arguments(
        argparse.ArgumentParser(prog="python -m scheduler_shim", description=__doc__)
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = config_from_args(args)
        if config.source != "push":
            raise ConfigError(
                f"source {config.source!r} needs its reader: run `hydatis shim` instead"
            )
        tls_options(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(config, log_level=args.log_level)
    return 0
