"""Materialise the node features into Feast, and read them back for training and serving."""

from components.materialize.core import (
    DEFAULT_SERVICE,
    VECTOR_SERVICE,
    apply_repo,
    clear_cache,
    feature_store,
    historical_features,
    materialize,
    online_features,
    prepare_online,
    redis_connection_string,
    repo_config,
    service_features,
    write_offline_table,
)

__all__ = [
    "DEFAULT_SERVICE",
    "VECTOR_SERVICE",
    "apply_repo",
    "clear_cache",
    "feature_store",
    "historical_features",
    "materialize",
    "online_features",
    "prepare_online",
    "redis_connection_string",
    "repo_config",
    "service_features",
    "write_offline_table",
]
