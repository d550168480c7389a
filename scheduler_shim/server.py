"""Run the extender: parse the command line, load the configuration, serve with uvicorn.

``python -m scheduler_shim`` serves the ``push`` source (and any source whose reader is
passed in); ``hydatis shim`` adds the Feast and Prometheus readers, which live outside
this package.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn

from hydatis.errors import ConfigError
from scheduler_shim.app import build_app
from scheduler_shim.config import ShimConfig, load_config
from scheduler_shim.sources import FrameSource

__all__ = ["add_arguments", "config_from_args", "main", "serve"]


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
    parser.add_argument("--log-level", default="info")
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


def serve(
    config: ShimConfig, *, source: FrameSource | None = None, log_level: str = "info"
) -> None:
    """Serve until interrupted."""
    app = build_app(config, source=source)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level.lower(),
        access_log=False,
        loop="uvloop",
        http="httptools",
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
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(config, log_level=args.log_level)
    return 0
