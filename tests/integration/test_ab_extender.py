"""An A/B test in the real extender process: the challenger's placement agent (a real
model server holding the champion's network negated, Q' = −Q) decides for the pods its
salted UID hash assigns it, configured through ``HYDATIS_SHIM_*`` variables as the
Deployment sets them; the per-arm series count exactly those pods."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import torch

from hydatis.models.placement_agent import PlacementAgent
from scheduler_shim.ab import assign_arm
from tests.model_fixtures import MODEL_NAMES, SERVER_MODULES, fit_tiny_models
from tests.servers import free_port, stop_process, wait_http_ready

ROOT = Path(__file__).resolve().parents[2]
SALT = "it-salt"


def negated(src: Path, out: Path) -> Path:
    agent = PlacementAgent.load(src)
    with torch.no_grad():
        for net in (agent.q_net_, agent.target_net_):
            net.body[-1].weight.mul_(-1.0)
            net.body[-1].bias.mul_(-1.0)
    return agent.save(out, optimizer=False)


def start(args: list[str], ready: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        wait_http_ready(ready, 90, proc=proc)
    except Exception:
        stop_process(proc)
        raise
    return proc


def agent_server(path: Path, procs: list) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = MODEL_NAMES["agent"]
    procs.append(
        start(
            ["-m", SERVER_MODULES["agent"], "--model_source", str(path), "--http_port",
             str(port), "--model_name", name],
            f"{url}/v2/models/{name}/ready",
        )
    )  # fmt: skip
    return url


def test_challenger_agent_decides_for_its_arm(tmp_path):
    from tests.integration.test_extender import pod, snapshot

    paths = fit_tiny_models(tmp_path)
    anti = negated(paths["agent"], tmp_path / "anti")
    procs: list[subprocess.Popen] = []
    try:
        champion = agent_server(paths["agent"], procs)
        challenger = agent_server(anti, procs)
        cfg = tmp_path / "shim.yaml"
        cfg.write_text(
            "weights: {load: 0.0, agent: 1.0, anomaly: 0.0}\nfilter_hot: false\n"
            "filter_anomalous: false\nagent_timeout_s: 2.0\ndeadline_s: 3.0\n"
            "stale_after_s: 600\n"
        )
        port = free_port()
        shim = f"http://127.0.0.1:{port}"
        env = {
            "HYDATIS_SHIM_AB_PERCENT": "50",
            "HYDATIS_SHIM_AB_SALT": SALT,
            "HYDATIS_SHIM_CHALLENGER_AGENT_URL": challenger,
        }
        args = ["-m", "scheduler_shim", "--config", str(cfg), "--port", str(port)]
        procs.append(start([*args, "--agent-url", champion], f"{shim}/healthz", env))
        _, body = snapshot()
        names = body["nodes"]
        uids = [f"uid-{i}" for i in range(30)]
        arms = [assign_arm(u, 50.0, SALT) for u in uids]
        assert 5 < arms.count("challenger") < 25
        with httpx.Client(timeout=10.0) as c:
            c.put(f"{shim}/v1/node-state", json=body).raise_for_status()
            scores = {}
            for uid in uids:
                args_ = {"Pod": pod(uid, cpu="10m", mem="16Mi"), "NodeNames": names}
                r = c.post(f"{shim}/prioritize", json=args_)
                r.raise_for_status()
                scores[uid] = {h["Host"]: h["Score"] for h in r.json()}
            text = c.get(f"{shim}/metrics").text
    finally:
        for p in procs:
            stop_process(p)
    # one arm's best nodes are the other's worst: the challenger's network is negated
    champ_worst: set[str] = set()
    for uid, arm in zip(uids, arms, strict=True):
        if arm == "champion":
            champ_worst |= {n for n, s in scores[uid].items() if s == 0}
    for uid, arm in zip(uids, arms, strict=True):
        top = {n for n, s in scores[uid].items() if s == 10}
        assert top, uid
        if arm == "challenger":
            assert top <= champ_worst, (uid, top)
        else:
            assert not top & champ_worst, (uid, top)
    for arm in ("champion", "challenger"):
        line = f'hydatis_extender_ab_decisions_total{{arm="{arm}",verb="prioritize"}}'
        assert f"{line} {float(arms.count(arm))}" in text
    assert "hydatis_extender_ab_challenger_ratio 0.5" in text


@pytest.mark.parametrize("value", ["150", "lots"], ids=["over-100", "not-a-number"])
def test_bad_ab_percent_variable_stops_the_extender_with_its_name(tmp_path, value):
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler_shim", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "HYDATIS_SHIM_AB_PERCENT": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "ab_percent" in (proc.stderr + proc.stdout)
