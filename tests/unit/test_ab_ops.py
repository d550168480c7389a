"""hydatis ab: start / status / stop against a settings file and, through the
``kubernetes`` client, a loopback API server that records the exact requests."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import yaml

from cli import ab as cli_ab
from monitoring.remediation.kube import KubeCluster, connect
from operations.ab import (
    ABError,
    ABTest,
    Observations,
    SettingsTarget,
    analyse,
    observations_from_dataset,
    start_test,
    status,
    stop_test,
)
from scheduler_shim.ab import assign_arm
from tests.kube_api import serving

NS, CM, DEP = "hydatis-system", "hydatis-shim-config", "hydatis-shim"
NOW = 1_700_000_000.0
SALT = "test-salt"
SMP = "application/strategic-merge-patch+json"


@pytest.fixture
def api():
    with serving() as start:
        yield start


def observations(chal_better: float, *, hours: float = 12.0, seed: int = 0) -> Observations:
    """Two nodes, node 0 hot (0.9), node 1 at 0.6. A champion pod lands on the hot node
    with probability 0.5, a challenger pod with 0.5 − ``chal_better``."""
    rng = np.random.default_rng(seed)
    times = NOW + np.arange(0, hours * 3600, 60.0)
    cpu = np.column_stack([0.9 + rng.normal(0, 0.02, times.size), np.full(times.size, 0.6)])
    placed = NOW + np.sort(rng.uniform(0, hours * 3600 - 1800, 2000))
    uids = [f"uid-{i}" for i in range(placed.size)]
    chal = np.array([assign_arm(u, 50.0, SALT) == "challenger" for u in uids])
    p_hot = np.where(chal, 0.5 - chal_better, 0.5)
    node = (rng.uniform(size=placed.size) >= p_hot).astype(np.int64)  # 0 = hot
    return Observations(times, cpu, placed, node, uids)


def ab_test(**kw) -> ABTest:
    return ABTest(**{"challenger": {"agent": "http://chal:8080"}, "salt": SALT,
                     "started_at": NOW, **kw})  # fmt: skip


@pytest.mark.parametrize(
    ("better", "hours", "expected"),
    [
        (0.3, 12.0, "promote"),
        (-0.3, 12.0, "keep"),
        (0.0, 12.0, "undecided"),
        (0.3, 1.5, "undecided"),
    ],
    ids=["challenger-better", "challenger-worse", "equal", "too-few-windows"],
)
def test_analysis_decides_on_the_placement_objective(better, hours, expected):
    report = analyse(observations(better, hours=hours), ab_test())
    assert report.verdict.decision == expected, report.verdict.reason
    if better > 0:
        assert report.objective["challenger"] < report.objective["champion"]
    assert abs(report.pods["challenger"] - report.pods["champion"]) < 0.2 * sum(
        report.pods.values()
    )


def test_file_start_status_promote(tmp_path):
    settings = tmp_path / "shim.yaml"
    settings.write_text(yaml.safe_dump({"agent_url": "http://champ:8080", "mode": "active"}))
    state = tmp_path / "ab.json"
    target = SettingsTarget.file(settings)
    start_test(target, ab_test(), state)
    s = yaml.safe_load(settings.read_text())
    assert s["ab_percent"] == 50.0 and s["ab_salt"] == SALT
    assert s["challenger_agent_url"] == "http://chal:8080" and s["agent_url"] == "http://champ:8080"
    with pytest.raises(ABError, match="already running"):
        start_test(target, ab_test(), state)
    report = status(observations(0.3), state)
    assert report.verdict.decision == "promote"
    stop_test(target, state, decision="promote", report=report)
    s = yaml.safe_load(settings.read_text())
    assert s["agent_url"] == "http://chal:8080" and s["ab_percent"] == 0.0
    assert s["challenger_agent_url"] == "" and s["mode"] == "active"
    assert not state.exists()


@pytest.mark.parametrize("better", [0.0, -0.3], ids=["equal", "worse"])
def test_promotion_refused_without_a_promoting_verdict(tmp_path, better):
    settings = tmp_path / "shim.yaml"
    settings.write_text(yaml.safe_dump({"agent_url": "http://champ:8080"}))
    state = tmp_path / "ab.json"
    target = SettingsTarget.file(settings)
    start_test(target, ab_test(), state)
    report = status(observations(better), state)
    with pytest.raises(ABError, match="refusing to promote"):
        stop_test(target, state, decision="promote", report=report)
    stop_test(target, state, decision="keep", report=report)
    s = yaml.safe_load(settings.read_text())
    assert s["agent_url"] == "http://champ:8080" and s["ab_percent"] == 0.0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"challenger": {}}, "at least one"),
        ({"challenger": {"agnt": "http://x"}}, "unknown model kind"),
        ({"percent": 100.0}, "percent"),
    ],
    ids=["no-url", "typo-kind", "all-pods"],
)
def test_bad_test_named(kw, match):
    with pytest.raises(Exception, match=match):
        ab_test(**kw)


def test_status_without_a_test(tmp_path):
    with pytest.raises(ABError, match="no A/B test running"):
        status(observations(0.0), tmp_path / "none.json")


def test_cluster_start_and_stop_exact_requests(api):
    shim = yaml.safe_dump({"agent_url": "http://champ:8080", "rollout_percent": 100})
    deployment = {
        "metadata": {"name": DEP, "namespace": NS},
        "spec": {"template": {"spec": {"containers": [
            {"name": "shim", "env": [{"name": "HYDATIS_SHIM_AB_PERCENT", "value": "0"},
                                     {"name": "HYDATIS_SHIM_MODE", "value": "active"}]},
            {"name": "sidecar"},
        ]}}},
    }  # fmt: skip
    cm_path = f"/api/v1/namespaces/{NS}/configmaps/{CM}"
    dep_path = f"/apis/apps/v1/namespaces/{NS}/deployments/{DEP}"
    rec = api(
        {
            ("GET", cm_path): (200, {"metadata": {"name": CM}, "data": {"shim.yaml": shim}}),
            ("GET", dep_path): (200, deployment),
            ("PATCH", cm_path): (200, {}),
            ("PATCH", dep_path): (200, {}),
        }
    )
    cluster = KubeCluster(connect(rec.url))
    target = SettingsTarget(SettingsTarget.cluster(cluster)._s, clock=lambda: NOW)
    import tempfile
    from pathlib import Path

    state = Path(tempfile.mkdtemp()) / "ab.json"
    start_test(target, ab_test(percent=20.0), state)
    writes = rec.writes()
    assert [(w.method, w.path) for w in writes] == [("PATCH", cm_path), ("PATCH", dep_path)]
    assert writes[0].content_type == SMP
    written = yaml.safe_load(writes[0].body["data"]["shim.yaml"])
    assert written["ab_percent"] == 20.0 and written["ab_salt"] == SALT
    assert written["challenger_agent_url"] == "http://chal:8080"
    assert written["agent_url"] == "http://champ:8080" and written["rollout_percent"] == 100
    assert writes[1].content_type == SMP
    assert writes[1].body == {
        "spec": {"template": {
            "metadata": {"annotations": {"hydatis.io/ab-changed-at": "2023-11-14T22:13:20Z"}},
            "spec": {"containers": [
                {"name": "shim", "env": [{"name": "HYDATIS_SHIM_AB_PERCENT", "value": "20"}]}
            ]},
        }}
    }  # fmt: skip
    rec.seen.clear()
    stop_test(target, state, decision="keep")
    writes = rec.writes()
    assert [(w.method, w.path) for w in writes] == [("PATCH", cm_path), ("PATCH", dep_path)]
    env = writes[1].body["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "HYDATIS_SHIM_AB_PERCENT", "value": "0"}]
    cluster.close()


def test_cluster_missing_configmap_named(api):
    rec = api({})
    cluster = KubeCluster(connect(rec.url))
    with pytest.raises(ABError, match=f"no ConfigMap {NS}/{CM}"):
        SettingsTarget.cluster(cluster).read()
    cluster.close()


def test_observations_from_a_dataset_and_the_cli(tmp_path, capsys):
    import pandas as pd

    obs = observations(0.3)
    ts = pd.to_datetime(obs.times, unit="s", utc=True)
    nm = pd.DataFrame(
        {
            "ts": np.repeat(ts, 2),
            "node": ["a", "b"] * obs.times.size,
            "cpu_util": obs.node_cpu.ravel(),
        }
    )
    pods = pd.DataFrame(
        {
            "uid": obs.uids,
            "node": np.array(["a", "b"])[obs.node_index],
            "start_ts": pd.to_datetime(obs.placed_at, unit="s", utc=True),
        }
    )
    data = tmp_path / "ds"
    data.mkdir()
    nm.to_parquet(data / "node_metrics.parquet")
    pods.to_parquet(data / "pods.parquet")
    back = observations_from_dataset(data)
    assert back.node_cpu.shape == obs.node_cpu.shape
    np.testing.assert_allclose(back.placed_at, obs.placed_at)

    parser = argparse.ArgumentParser()
    cli_ab.add_parser(parser.add_subparsers())
    settings = tmp_path / "shim.yaml"
    settings.write_text("agent_url: http://champ:8080\n")
    state = tmp_path / "ab.json"
    common = ["--state", str(state), "--settings-file", str(settings)]
    argv = ["ab", "start", *common, "--agent-url", "http://chal:8080", "--salt", SALT]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    # the state's start time is now; the observations are from 2023: rewrite it
    st = json.loads(state.read_text())
    st["test"]["started_at"] = NOW
    state.write_text(json.dumps(st))
    args = parser.parse_args(["ab", "status", "--state", str(state), "--observations", str(data)])
    capsys.readouterr()
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["verdict"]["decision"] == "promote"
    args = parser.parse_args(["ab", "stop", *common, "--observations", str(data)])
    assert args.func(args) == 0
    assert yaml.safe_load(settings.read_text())["agent_url"] == "http://chal:8080"
    args = parser.parse_args(["ab", "status", "--state", str(state), "--observations", str(data)])
    assert args.func(args) == 2
    assert "no A/B test running" in capsys.readouterr().err


def test_missing_dataset_table_named(tmp_path):
    with pytest.raises(Exception, match=r"node_metrics\.parquet"):
        observations_from_dataset(tmp_path)
