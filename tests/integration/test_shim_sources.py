"""The extender's pulled source: the Feast online store read in the background, the nodes
named by requests added to what is refreshed."""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli.shim import feast_reader
from components.materialize import core
from hydatis.features import feature_names
from scheduler_shim.app import build_app
from scheduler_shim.config import load_config
from scheduler_shim.sources import FrameSource, rows_from_frame

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2] / "feature_repo"
T0 = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("feast") / "feature_repo"
    shutil.copytree(REPO, path, ignore=shutil.ignore_patterns("data", "__pycache__"))
    names = feature_names()
    rows = []
    for node in range(3):
        for step in range(2):
            values = np.full(len(names), 0.2 + 0.1 * node)
            values[names.index("cpu_capacity_cores")] = 16
            values[names.index("mem_capacity_gib")] = 64
            rows.append(
                {
                    "node_id": f"node-{node}",
                    "event_timestamp": T0 + pd.Timedelta(seconds=30 * step),
                    **dict(zip(names, values, strict=True)),
                }
            )
    core.materialize(pd.DataFrame(rows), path)
    yield path
    core.clear_cache()


def test_feast_reader_gives_rows_the_extender_reads(repo):
    frame = feast_reader(str(repo), None)(["node-0", "node-2", "node-9"])
    rows = rows_from_frame(frame, at=100.0)
    assert rows.names == ["node-0", "node-2"]  # node-9 has no features: dropped
    assert rows.column("cpu_util")[1] == pytest.approx(0.4)
    assert rows.column("cpu_capacity_cores").tolist() == [16, 16]


def test_background_refresh_learns_nodes_from_requests(repo):
    cfg = load_config(None, source="feast", refresh_interval_s=0.2)
    source = FrameSource(feast_reader(str(repo), None), nodes=["node-0"])
    pod = {"metadata": {"uid": "u"}, "spec": {"containers": [{}]}}
    with TestClient(build_app(cfg, source=source)) as c:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and c.get("/readyz").status_code != 200:
            time.sleep(0.05)
        assert c.get("/v1/state").json()["nodes"] == 1
        c.post("/filter", json={"Pod": pod, "NodeNames": ["node-1", "node-2"]})
        while time.monotonic() < deadline and c.get("/v1/state").json()["nodes"] < 3:
            time.sleep(0.05)
        assert c.get("/v1/state").json()["nodes"] == 3
