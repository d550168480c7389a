"""Pipeline step: the cluster's history as a dataset — a replayed trace, a dataset
directory, or a Prometheus extraction (see README.md)."""

from components.import_trace.core import (
    DEFAULT_HISTORY_S,
    DEFAULT_HORIZON_S,
    DEFAULT_LOAD_FACTOR,
    DEFAULT_NODES,
    DEFAULT_USAGE_SCALE,
    SOURCES,
    future_part,
    import_history,
    replay_history,
    trace,
)

__all__ = [
    "DEFAULT_HISTORY_S",
    "DEFAULT_HORIZON_S",
    "DEFAULT_LOAD_FACTOR",
    "DEFAULT_NODES",
    "DEFAULT_USAGE_SCALE",
    "SOURCES",
    "future_part",
    "import_history",
    "replay_history",
    "trace",
]
