"""The Feast online path against a real Redis: a throwaway ``redis-server`` on loopback.

Skipped, with the reason, when ``redis-server`` is not installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.materialize import core
from hydatis.features import feature_names
from tests.redis_server import redis_server_path, start_redis

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        redis_server_path() is None,
        reason="redis-server is not on PATH (Debian: apt-get install redis-server)",
    ),
]

REPO = Path(__file__).resolve().parents[2] / "feature_repo"
T0 = pd.Timestamp("2024-01-01", tz="UTC")
NODES = 5
STEPS = 4


def feature_table() -> pd.DataFrame:
    """Every node every 30 s; value = node * 1000 + step + feature / 1000."""
    names = feature_names()
    node = np.repeat(np.arange(NODES), STEPS)
    step = np.tile(np.arange(STEPS), NODES)
    df = pd.DataFrame(
        {
            "node_id": [f"node-{n}" for n in node],
            "event_timestamp": T0 + pd.to_timedelta(step * 30, unit="s"),
        }
    )
    values = node[:, None] * 1000.0 + step[:, None] + np.arange(len(names))[None, :] / 1000.0
    return pd.concat([df, pd.DataFrame(values, columns=names)], axis=1)


@pytest.fixture(scope="module")
def redis_repo(tmp_path_factory: pytest.TempPathFactory):
    """A repo copy materialised into a fresh Redis; yields (repo, table, stats, url)."""
    path = tmp_path_factory.mktemp("feast-redis") / "feature_repo"
    shutil.copytree(REPO, path, ignore=shutil.ignore_patterns("data", "__pycache__"))
    table = feature_table()
    with start_redis() as url:
        stats = core.materialize(table, path, redis_url=url)
        yield path, table, stats, url
    core.clear_cache()


def test_materialize_writes_into_redis(redis_repo):
    import redis

    path, _, stats, url = redis_repo
    assert stats["online_store"] == "redis"
    assert stats["nodes"] == NODES
    # One hash per node (Feast's Redis layout): the rows really are in this server.
    assert redis.Redis.from_url(url).dbsize() == NODES
    # The SQLite online store of the YAML file was not touched.
    assert not (path / "data" / "online_store.db").exists()


@pytest.mark.parametrize("packed", [True, False], ids=["packed-vector", "per-feature"])
@pytest.mark.parametrize("service", ["load_predictor_v1", "placement_agent_v1"])
def test_online_from_redis_returns_the_latest_values(redis_repo, service, packed):
    path, table, _, url = redis_repo
    ids = ["node-4", "node-0", "nobody"]
    out = core.online_features(ids, path, service=service, redis_url=url, packed=packed)
    names = core.service_features(core.feature_store(path, redis_url=url), service)
    assert list(out.columns) == ["node_id", *names]
    latest = table.groupby("node_id").tail(1).set_index("node_id")
    for i, node in enumerate(ids[:2]):
        np.testing.assert_allclose(
            out.loc[i, names].to_numpy(float), latest.loc[node, names].to_numpy(float)
        )
    assert out.loc[2, names].isna().all()


def test_full_vector_from_redis(redis_repo):
    path, table, _, url = redis_repo
    ids = [f"node-{n}" for n in range(NODES)]
    out = core.online_features(ids, path, service=core.VECTOR_SERVICE, redis_url=url)
    latest = table.groupby("node_id").tail(1).set_index("node_id").loc[ids, feature_names()]
    np.testing.assert_allclose(out[feature_names()].to_numpy(float), latest.to_numpy(float))
