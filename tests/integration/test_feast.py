"""The Feast repo on its local stores (SQLite online, parquet offline): apply, materialise,
point-in-time historical retrieval and online retrieval.

Every test works on a copy of ``feature_repo/`` under a temporary folder, so nothing is
written into the source tree. Feature values encode (node, step, feature) so a test can
tell exactly which offline row was joined.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.materialize import core
from hydatis.errors import SchemaError
from hydatis.features import feature_names

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2] / "feature_repo"
T0 = pd.Timestamp("2024-01-01", tz="UTC")
STEP_S = 30
NODES = 4
STEPS = 6


def copy_repo(dest: Path) -> Path:
    """Copy the Feast repo's definitions (not its data) to ``dest``."""
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns("data", "__pycache__"))
    return dest


def value(node: int, step: int, feature: int) -> float:
    """The value of one feature of one row: readable back into (node, step, feature)."""
    return node * 1000.0 + step + feature / 1000.0


def feature_table(nodes: int = NODES, steps: int = STEPS) -> pd.DataFrame:
    """A node_features-shaped table: every node every ``STEP_S`` seconds from T0."""
    names = feature_names()
    node = np.repeat(np.arange(nodes), steps)
    step = np.tile(np.arange(steps), nodes)
    df = pd.DataFrame(
        {
            "node_id": [f"node-{n}" for n in node],
            "event_timestamp": T0 + pd.to_timedelta(step * STEP_S, unit="s"),
        }
    )
    values = value(node[:, None], step[:, None], np.arange(len(names))[None, :])
    return pd.concat([df, pd.DataFrame(values, columns=names)], axis=1)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory):
    """An applied and materialised copy of the repo, with the table it was given."""
    path = copy_repo(tmp_path_factory.mktemp("feast") / "feature_repo")
    table = feature_table()
    stats = core.materialize(table, path)
    yield path, table, stats
    core.clear_cache()


def test_materialize_reports_what_it_loaded(repo):
    path, table, stats = repo
    assert stats["rows"] == len(table)
    assert stats["nodes"] == NODES
    assert stats["features"] == len(feature_names())
    assert stats["online_store"] == "sqlite"
    assert "node_30s_vector" in stats["views"]
    assert stats["end"] == (T0 + pd.Timedelta(seconds=STEP_S * (STEPS - 1))).isoformat()
    assert (path / "data" / "registry.db").is_file()
    assert (path / "data" / "online_store.db").is_file()


def test_every_feature_is_in_exactly_one_domain_view(repo):
    path, _, _ = repo
    store = core.feature_store(path)
    seen = [
        f.name for v in store.list_feature_views() if v.name != core.VECTOR_VIEW for f in v.features
    ]
    assert sorted(seen) == sorted(feature_names())
    vector = store.get_feature_view(core.VECTOR_VIEW)
    assert vector.tags["columns"].split(",") == feature_names()
    services = {s.name for s in store.list_feature_services()}
    assert services == {
        "load_predictor_v1",
        "anomaly_detector_v1",
        "placement_agent_v1",
        "node_vector_v1",
    }


@pytest.mark.parametrize(
    ("offset_s", "expected_step"),
    [
        (0, 0),  # exactly at a row's time: that row
        (STEP_S - 1, 0),  # just before the next row: still the earlier one
        (STEP_S, 1),
        (STEP_S * 3 + 12, 3),
        (STEP_S * (STEPS - 1) + 600, STEPS - 1),  # after the last row, inside the TTL
    ],
    ids=["at-row", "before-next", "next-row", "between-rows", "after-last-within-ttl"],
)
def test_historical_join_takes_the_latest_row_at_or_before_t(repo, offset_s, expected_step):
    path, _, _ = repo
    names = core.service_features(core.feature_store(path), "load_predictor_v1")
    index = {n: j for j, n in enumerate(feature_names())}
    entity = pd.DataFrame(
        {
            "node_id": [f"node-{n}" for n in range(NODES)],
            "event_timestamp": T0 + pd.Timedelta(seconds=offset_s),
            "label": np.arange(NODES, dtype=float),
        }
    )
    out = core.historical_features(entity, path, service="load_predictor_v1")
    assert list(out.columns) == ["node_id", "event_timestamp", "label", *names]
    assert out["label"].tolist() == list(range(NODES))  # row order kept
    for n in range(NODES):
        expected = [value(n, expected_step, index[name]) for name in names]
        np.testing.assert_allclose(out.loc[n, names].to_numpy(float), expected)


@pytest.mark.parametrize(
    "offset_s",
    [-1, STEP_S * (STEPS - 1) + 3601],
    ids=["before-first-row", "past-ttl"],
)
def test_historical_join_gives_nan_without_an_earlier_row_in_ttl(repo, offset_s):
    path, _, _ = repo
    entity = pd.DataFrame(
        {"node_id": ["node-0", "node-1"], "event_timestamp": T0 + pd.Timedelta(seconds=offset_s)}
    )
    out = core.historical_features(entity, path, service="anomaly_detector_v1")
    assert len(out) == 2
    assert out.drop(columns=["node_id", "event_timestamp"]).isna().all().all()


def test_historical_batches_give_the_same_rows(repo):
    path, table, _ = repo
    entity = table[["node_id", "event_timestamp"]].sample(frac=1.0, random_state=1)
    whole = core.historical_features(entity, path, service="placement_agent_v1")
    batched = core.historical_features(
        entity, path, service="placement_agent_v1", max_join_rows=STEPS * 5
    )
    pd.testing.assert_frame_equal(whole, batched)
    names = core.service_features(core.feature_store(path), "placement_agent_v1")
    expected = table.loc[entity.index, names].reset_index(drop=True)
    np.testing.assert_allclose(whole[names].to_numpy(float), expected.to_numpy(float))


@pytest.mark.parametrize("packed", [True, False], ids=["packed-vector", "per-feature"])
def test_online_returns_the_latest_values(repo, packed):
    path, table, _ = repo
    ids = ["node-2", "node-0", "missing-node", "node-3"]
    out = core.online_features(ids, path, service="placement_agent_v1", packed=packed)
    names = core.service_features(core.feature_store(path), "placement_agent_v1")
    assert list(out.columns) == ["node_id", *names]
    assert out["node_id"].tolist() == ids
    latest = table.groupby("node_id").tail(1).set_index("node_id")
    for i, node in enumerate(ids):
        row = out.loc[i, names].to_numpy(float)
        if node == "missing-node":
            assert np.isnan(row).all()
        else:
            np.testing.assert_allclose(row, latest.loc[node, names].to_numpy(float))


def test_full_vector_service_unpacks_in_catalogue_order(repo):
    path, table, _ = repo
    out = core.online_features(["node-1"], path, service=core.VECTOR_SERVICE)
    assert list(out.columns) == ["node_id", *feature_names()]
    latest = table[table["node_id"] == "node-1"].iloc[-1]
    np.testing.assert_allclose(
        out.iloc[0, 1:].to_numpy(float), latest[feature_names()].to_numpy(float)
    )


def test_materialize_up_to_an_earlier_end_loads_the_rows_before_it(tmp_path):
    path = copy_repo(tmp_path / "feature_repo")
    try:
        end = T0 + pd.Timedelta(seconds=STEP_S * 2)
        stats = core.materialize(feature_table(nodes=2), path, end=end.to_pydatetime())
        assert stats["end"] == end.isoformat()
        out = core.online_features(["node-1"], path, service=core.VECTOR_SERVICE)
        assert out.loc[0, "cpu_util"] == value(1, 2, feature_names().index("cpu_util"))
    finally:
        core.clear_cache()


def test_write_offline_table_names_a_missing_column(tmp_path):
    path = copy_repo(tmp_path / "feature_repo")
    table = feature_table(nodes=1, steps=2).drop(columns=["pod_count"])
    with pytest.raises(SchemaError, match="pod_count"):
        core.write_offline_table(table, path)


def test_write_offline_table_rejects_duplicate_rows(tmp_path):
    path = copy_repo(tmp_path / "feature_repo")
    table = feature_table(nodes=1, steps=2)
    with pytest.raises(SchemaError, match="duplicate"):
        core.write_offline_table(pd.concat([table, table.iloc[[0]]]), path)


def test_feast_cli_applies_the_repo(tmp_path):
    """``cd feature_repo && feast apply`` works on the definitions as they are."""
    path = copy_repo(tmp_path / "feature_repo")
    feast = Path(sys.executable).with_name("feast")
    if not feast.is_file():
        pytest.skip("the feast command is not installed beside this Python")
    done = subprocess.run(
        [str(feast), "apply"], cwd=path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "load_predictor_v1" in done.stdout
    assert (path / "data" / "registry.db").is_file()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:16379/0", "127.0.0.1:16379,db=0"),
        ("redis://redis", "redis:6379"),
        ("rediss://:s3cret@cache:6380/2", "cache:6380,db=2,password=s3cret,ssl=true"),
        ("redis-master:6379,db=1", "redis-master:6379,db=1"),
    ],
    ids=["loopback-db", "default-port", "tls-password", "feast-form-unchanged"],
)
def test_redis_connection_string(url, expected):
    assert core.redis_connection_string(url) == expected


def test_repo_config_selects_redis_only_when_asked(tmp_path):
    path = copy_repo(tmp_path / "feature_repo")
    assert core.repo_config(path).online_store.type == "sqlite"
    config = core.repo_config(path, redis_url="redis://127.0.0.1:6390/0")
    assert config.online_store.type == "redis"
    assert config.online_store.connection_string == "127.0.0.1:6390,db=0"
    assert Path(config.repo_path) == path.resolve()
