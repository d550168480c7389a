"""A/B arms inside the extender: the salted split, the challenger's agent and load
predictor deciding for its pods only, the per-arm series."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from prometheus_client import generate_latest

from scheduler_shim.ab import ab_bucket, assign_arm
from scheduler_shim.config import load_config
from scheduler_shim.service import Extender, rollout_bucket
from tests.unit.test_shim_service import Clock, FakeModels, pod, rows

N = 4


def models(q_best: int, cpu=(0.3, 0.3, 0.3, 0.3)) -> FakeModels:
    """An agent whose Q prefers node ``q_best``, a load predictor giving ``cpu``."""

    def q_of(x):
        q = np.zeros(x.shape[0])
        q[q_best] = 1.0
        return q

    return FakeModels(
        cpu=np.array(cpu), mem=np.full(N, 0.3), anomaly=np.zeros(N), flag=np.zeros(N), q_of=q_of
    )


def make(champion: FakeModels, challenger: FakeModels, **cfg) -> Extender:
    async def route(request: httpx.Request) -> httpx.Response:
        return await (challenger if request.url.host == "c" else champion)(request)

    # the agent alone decides unless a test says otherwise (the arms differ by it)
    settings = dict(load_url="http://m", anomaly_url="http://m", agent_url="http://m",
                    weights={"load": 0.0, "agent": 1.0, "anomaly": 0.0})  # fmt: skip
    settings.update(cfg)
    client = httpx.AsyncClient(transport=httpx.MockTransport(route))
    return Extender(load_config(None, **settings), client=client, clock=Clock())


def body(uid: str) -> dict:
    # a small pod: the ledger's recent placements barely move a node's forecast
    return {"Pod": pod(cpu="10m", uid=uid), "NodeNames": [f"n{i}" for i in range(N)]}


async def best_nodes(ext: Extender, uids: list[str]) -> list[str]:
    await ext.start()
    await ext.refresh(rows(N))
    out = []
    for uid in uids:
        await ext.filter(body(uid))
        answer = await ext.prioritize(body(uid))
        out.append(max(answer, key=lambda h: h["Score"])["Host"])
    await ext.close()
    return out


UIDS = [f"pod-{i}" for i in range(200)]


def test_bucket_is_salted_and_independent_of_the_rollout():
    a = np.array([ab_bucket(u) for u in UIDS])
    r = np.array([rollout_bucket(u) for u in UIDS])
    assert not np.allclose(a, r)
    assert abs(np.corrcoef(a, r)[0, 1]) < 0.2
    assert [ab_bucket(u, "other") for u in UIDS[:5]] != a[:5].tolist()


@pytest.mark.parametrize(
    ("percent", "lo", "hi"),
    [(0.0, 0, 0), (50.0, 0.4, 0.6), (100.0, 1.0, 1.0)],
    ids=["no-test", "half", "all"],
)
def test_share_of_challenger_pods(percent, lo, hi):
    share = np.mean([assign_arm(u, percent) == "challenger" for u in UIDS])
    assert lo <= share <= hi


def test_challenger_agent_decides_only_for_its_pods():
    ext = make(models(q_best=0), models(q_best=2), ab_percent=50, challenger_agent_url="http://c")
    best = asyncio.run(best_nodes(ext, UIDS[:40]))
    for uid, node in zip(UIDS[:40], best, strict=True):
        assert node == ("n2" if assign_arm(uid, 50) == "challenger" else "n0"), uid
    arms = [assign_arm(u, 50) for u in UIDS[:40]]
    m = ext.ab.metrics.decisions
    assert m.labels("challenger", "prioritize")._value.get() == arms.count("challenger")
    assert m.labels("champion", "prioritize")._value.get() == arms.count("champion")
    text = generate_latest(ext.metrics.registry).decode()
    assert 'hydatis_extender_ab_decisions_total{arm="challenger",verb="filter"}' in text
    assert "hydatis_extender_ab_challenger_ratio 0.5" in text


def test_challenger_load_predictor_gives_its_pods_another_view():
    """Same agent, different load forecasts: the challenger's pods see its forecast (node
    n1 nearly hot, so scored down), the champion's pods the champion's (n3 nearly hot)."""
    flat = dict(weights={"load": 1.0, "agent": 0.0, "anomaly": 0.0})
    champ = models(0, cpu=(0.3, 0.1, 0.3, 0.8))
    chal = models(0, cpu=(0.3, 0.8, 0.3, 0.1))
    ext = make(champ, chal, ab_percent=50, challenger_load_url="http://c", **flat)
    best = asyncio.run(best_nodes(ext, UIDS[:20]))
    for uid, node in zip(UIDS[:20], best, strict=True):
        assert node == ("n3" if assign_arm(uid, 50) == "challenger" else "n1"), uid


def test_no_challenger_url_means_no_test():
    ext = make(models(0), models(2), ab_percent=50)
    best = asyncio.run(best_nodes(ext, UIDS[:10]))
    assert set(best) == {"n0"}
    assert ext.ab.metrics.decisions.labels("challenger", "prioritize")._value.get() == 0
    assert not ext.ab.enabled


def test_rollout_skipped_pods_are_in_neither_arm():
    ext = make(
        models(0), models(2), ab_percent=50, challenger_agent_url="http://c", rollout_percent=0
    )
    asyncio.run(best_nodes(ext, UIDS[:10]))
    m = ext.ab.metrics.decisions
    assert m.labels("challenger", "prioritize")._value.get() == 0
    assert m.labels("champion", "prioritize")._value.get() == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [("ab_percent", 101), ("ab_percent", -1), ("ab_salt", "")],
    ids=["percent-over-100", "percent-negative", "empty-salt"],
)
def test_bad_ab_settings_named(key, value):
    from hydatis.errors import ConfigError

    with pytest.raises(ConfigError, match=key):
        load_config(None, **{key: value})
