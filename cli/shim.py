"""``hydatis shim``: run the extender with any node-state source.

The extender package reads no feature store and no Prometheus itself (dependencies are
passed in): this module builds the reader for the configured source — the Feast online
store's packed node vector, or Prometheus history through the extract step and the one
feature function — and hands it to the server.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable, Sequence

import pandas as pd

__all__ = ["add_parser", "feast_reader", "prometheus_reader", "run"]

#: History the Prometheus reader pulls for each refresh (the longest feature window).
PROMETHEUS_WINDOW_S = 24 * 3600.0
PROMETHEUS_STEP_S = 60.0


def feast_reader(repo: str, redis_url: str | None) -> Callable[[Sequence[str]], pd.DataFrame]:
    """Read the latest node vectors from the Feast online store."""
    from components.materialize import online_features

    def read(nodes: Sequence[str]) -> pd.DataFrame:
        return online_features(nodes, repo, service="node_vector_v1", redis_url=redis_url)

    return read


def prometheus_reader(
    url: str, window_s: float = PROMETHEUS_WINDOW_S, step_s: float = PROMETHEUS_STEP_S
) -> Callable[[Sequence[str]], pd.DataFrame]:
    """Extract the last ``window_s`` from Prometheus and compute the online vector now."""
    from components.extract import extract
    from hydatis.features import node_features

    def read(nodes: Sequence[str]) -> pd.DataFrame:
        end = time.time()
        with tempfile.TemporaryDirectory(prefix="hydatis-shim-") as tmp:
            ds = extract(
                url, start=end - window_s, end=end, step_s=step_s, out_dir=tmp, min_completeness=0.0
            )
        # every node Prometheus knows, not only ``nodes``: the cache should hold them all
        return node_features(ds, at=pd.Timestamp(end, unit="s", tz="UTC"), step_s=step_s)

    return read


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis shim``."""
    from scheduler_shim.server import add_arguments

    p = sub.add_parser("shim", help="run the kube-scheduler extender service")
    return add_arguments(p)


def run(args: argparse.Namespace) -> int:
    """Run the extender until interrupted."""
    from scheduler_shim.server import config_from_args, serve
    from scheduler_shim.sources import FrameSource

    logging.getLogger().setLevel(args.log_level.upper())
    config = config_from_args(args)
    source = None
    if config.source == "feast":
        source = FrameSource(feast_reader(config.feature_repo, config.redis_url))
    elif config.source == "prometheus":
        source = FrameSource(prometheus_reader(config.prometheus_url))
    serve(config, source=source, log_level=args.log_level)
    return 0
