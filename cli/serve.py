"""``hydatis serve``: run the three model servers locally, or render their InferenceServices.

hydatis serve [--registry URI] [--alias champion] [--load-model DIR] ...
    start the load predictor, anomaly detector and placement agent servers on loopback
    ports, wait until each answers /ready, print their URLs, run until Ctrl-C
hydatis serve manifests --out DIR [--storage-root URI] [--alias champion] [--no-registry]
    write DIR/inferenceservices.yaml for the registry's champion versions
"""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from serving.launch import (
    DEFAULT_HOST,
    DEFAULT_PORTS,
    DEFAULT_READY_TIMEOUT_S,
    registry_sources,
    serve_models,
)
from serving.manifests import (
    DEFAULT_STORAGE_ROOT,
    champion_refs,
    placeholder_refs,
    render,
    write_manifests,
)

__all__ = ["add_parser", "run"]

_CHAMPION = "champion"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``serve`` (and ``serve manifests``) to the ``hydatis`` subcommands."""
    p = sub.add_parser(
        "serve",
        help="run the three model servers locally, or render their InferenceServices",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "--registry",
        default=None,
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else <work dir>/mlflow)",
    )
    p.add_argument("--alias", default=_CHAMPION, help="registry alias to serve or render")
    for kind in DEFAULT_PORTS:
        p.add_argument(
            f"--{kind}-model",
            default=None,
            metavar="DIR",
            help=f"serve the {kind} model from this directory instead of the registry",
        )
    p.add_argument("--host", default=DEFAULT_HOST, help="address the servers listen on")
    for kind, port in DEFAULT_PORTS.items():
        p.add_argument(
            f"--{kind}-port", type=int, default=port, help=f"{kind} server port (0: any free)"
        )
    p.add_argument("--log-dir", default=None, help="server logs (default <work dir>/serving)")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT_S,
        help="seconds the servers may take to become ready",
    )
    p.add_argument("--log-requests", action="store_true", help="log every request")
    p.set_defaults(func=run, serve_action=None)

    actions = p.add_subparsers(dest="serve_action")
    m = actions.add_parser("manifests", help="write InferenceService YAML for the champions")
    m.add_argument("--out", required=True, help="directory to write inferenceservices.yaml in")
    m.add_argument(
        "--storage-root",
        default=DEFAULT_STORAGE_ROOT,
        help="where versions' artifacts live on the cluster (pvc://, s3://, gs://)",
    )
    # SUPPRESS: given after `manifests` they count, otherwise the `serve` values stand.
    m.add_argument("--alias", default=argparse.SUPPRESS, help="registry alias (champion)")
    m.add_argument("--registry", default=argparse.SUPPRESS, help="MLflow tracking URI")
    m.add_argument("--image", default=None, help="container image (default: project image)")
    m.add_argument(
        "--no-registry",
        action="store_true",
        help="use the alias as a version placeholder instead of asking the registry "
        "(what infra/base/inferenceservices.yaml holds)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``hydatis serve`` or ``hydatis serve manifests``; the exit code."""
    if args.serve_action == "manifests":
        return _manifests(args)
    return _serve(args)


def _manifests(args: argparse.Namespace) -> int:
    if args.no_registry:
        refs = placeholder_refs(args.alias)
    else:
        refs = champion_refs(args.alias, tracking_uri=args.registry)
    docs = render(refs, storage_root=args.storage_root, image_ref=args.image)
    path = write_manifests(docs, args.out)
    for ref in refs.values():
        run_id = f" (run {ref.run_id})" if ref.run_id else ""
        print(f"{ref.name}: version {ref.version}{run_id}")
    print(f"wrote {path}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    sources: dict[str, str] = registry_sources(args.alias)
    ports: dict[str, int] = {}
    for kind in DEFAULT_PORTS:
        local = getattr(args, f"{kind}_model")
        if local:
            sources[kind] = local
        ports[kind] = getattr(args, f"{kind}_port")

    def _terminate(signum: int, frame: Any) -> None:
        raise SystemExit(0)  # leave the with-block: the servers are stopped

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with serve_models(
            sources,
            ports=ports,
            host=args.host,
            tracking_uri=args.registry,
            log_dir=args.log_dir,
            timeout_s=args.timeout,
            log_requests=args.log_requests,
        ) as servers:
            for kind, server in servers.servers.items():
                print(f"{kind:10s} {server.url}  {server.model_name} <- {server.source}")
            print(f"logs in {next(iter(servers.servers.values())).log.parent}; Ctrl-C stops")
            while all(servers.alive().values()):
                time.sleep(0.5)
            dead = [k for k, alive in servers.alive().items() if not alive]
            print(f"server(s) {dead} stopped unexpectedly; see their logs")
            return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
