"""Run the remediation service: parse the command line, load the settings, serve with
uvicorn (``hydatis remediate serve`` and ``python -m monitoring.remediation``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn

from hydatis.errors import ConfigError
from monitoring.remediation.app import build_app
from monitoring.remediation.config import RemediationConfig, load_config

__all__ = ["add_arguments", "config_from_args", "main", "serve"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The service's command-line options (every other setting: the YAML file or
    ``HYDATIS_REMEDIATION_<KEY>``; see monitoring/remediation/README.md)."""
    parser.add_argument("--config", help="YAML settings file")
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 9095)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run",
        dest="dry_run",
        action="store_const",
        const=True,
        help="decide, change nothing (default)",
    )
    mode.add_argument(
        "--act", dest="dry_run", action="store_const", const=False, help="carry the actions out"
    )
    parser.add_argument("--audit-log", dest="audit_log", help="the JSONL audit file")
    parser.add_argument("--prometheus-url", dest="prometheus_url", help="confirm alerts here")
    parser.add_argument(
        "--kube-api", dest="kube_api", help="incluster | kubeconfig | http(s)://URL"
    )
    parser.add_argument(
        "--extender-config-file",
        dest="extender_config_file",
        help="the extender's local settings file (implies extender_target: file)",
    )
    parser.add_argument("--log-level", default="info")
    return parser


def config_from_args(args: argparse.Namespace) -> RemediationConfig:
    """Settings from the file, the environment and the flags (flags win)."""
    keys = ("host", "port", "dry_run", "audit_log", "prometheus_url", "kube_api")
    overrides = {k: getattr(args, k, None) for k in keys}
    if getattr(args, "extender_config_file", None):
        overrides["extender_config_file"] = args.extender_config_file
        overrides["extender_target"] = "file"
    return load_config(args.config, **overrides)


def serve(config: RemediationConfig, *, log_level: str = "info") -> None:
    """Serve until interrupted."""
    uvicorn.run(
        build_app(config),
        host=config.host,
        port=config.port,
        log_level=log_level.lower(),
        access_log=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m monitoring.remediation``."""
    parser = add_arguments(
        argparse.ArgumentParser(prog="python -m monitoring.remediation", description=__doc__)
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    serve(config, log_level=args.log_level)
    return 0
