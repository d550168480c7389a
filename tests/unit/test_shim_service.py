"""The extender's decisions, in-process: model servers are in-process fakes behind an
httpx transport (the integration test runs the real ones)."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import orjson
import pytest

from hydatis.features import feature_names
from scheduler_shim.config import load_config
from scheduler_shim.service import NEUTRAL_SCORE, Extender, rollout_bucket
from scheduler_shim.state import NodeRows

COLS = feature_names()
GIB = 2**30


class FakeModels:
    """Answers v2 infer for the three models from per-node tables keyed by row order."""

    def __init__(self, cpu, mem, anomaly, flag, q_of=None, delay_s=0.0, fail=()):
        self.cpu, self.mem, self.anomaly, self.flag = cpu, mem, anomaly, flag
        self.q_of = q_of or (lambda x: -x[:, 15])  # prefer the lowest projected CPU
        self.delay_s, self.fail = delay_s, set(fail)
        self.calls: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        model = request.url.path.split("/")[3]
        self.calls.append(model)
        if model in self.fail:
            return httpx.Response(503, text="down")
        size = request.headers.get("inference-header-content-length")
        if size is None:  # JSON tensor
            inp = orjson.loads(request.content)["inputs"][0]
            x = np.asarray(inp["data"], dtype=np.float64).reshape(inp["shape"])
        else:  # binary tensor extension: JSON header, then little-endian float32
            inp = orjson.loads(request.content[: int(size)])["inputs"][0]
            raw = request.content[int(size) :]
            assert len(raw) == inp["parameters"]["binary_data_size"]
            x = np.frombuffer(raw, dtype="<f4").reshape(inp["shape"]).astype(np.float64)
        if model == "hydatis-placement-agent":
            await asyncio.sleep(self.delay_s)
            outs = [("q_values", self.q_of(x))]
        elif model == "hydatis-load-predictor":
            outs = [("cpu_util_pred", self.cpu), ("mem_util_pred", self.mem)]
        else:
            outs = [("anomaly_score", self.anomaly), ("anomaly_flag", self.flag)]
        return httpx.Response(
            200,
            json={
                "model_name": model,
                "id": "1",
                "outputs": [
                    {
                        "name": k,
                        "shape": [len(v)],
                        "datatype": "FP32",
                        "data": [None if np.isnan(a) else float(a) for a in v],
                    }
                    for k, v in outs
                ],
            },
        )


def rows(n=4, t=1000.0, sample=990.0, cores=32.0):
    values = np.full((n, len(COLS)), 0.3)
    values[:, COLS.index("cpu_capacity_cores")] = cores
    values[:, COLS.index("mem_capacity_gib")] = 128.0
    values[:, COLS.index("pod_count")] = 10
    return NodeRows(t, [f"n{i}" for i in range(n)], COLS, values, np.full(n, sample))


def pod(cpu="2", mem="1Gi", uid="u1"):
    return {
        "metadata": {"name": "p", "namespace": "d", "uid": uid},
        "spec": {"containers": [{"resources": {"requests": {"cpu": cpu, "memory": mem}}}]},
    }


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def make(models: FakeModels, clock=None, **cfg):
    settings = dict(load_url="http://m", anomaly_url="http://m", agent_url="http://m")
    settings.update(cfg)
    client = httpx.AsyncClient(transport=httpx.MockTransport(models))
    ext = Extender(load_config(None, **settings), client=client, clock=clock or Clock())
    return ext


def run(coro):
    return asyncio.run(coro)


async def started(ext, r):
    await ext.start()
    await ext.refresh(r)
    return ext


def fallbacks(ext, reason):
    return ext.metrics.fallbacks.labels(reason)._value.get()


def default_models(n=4):
    return FakeModels(
        cpu=np.array([0.30, 0.84, 0.50, 0.20])[:n],
        mem=np.full(n, 0.3),
        anomaly=np.array([0.1, 0.1, 0.1, 0.9])[:n],
        flag=np.array([0, 0, 0, 1])[:n],
    )


def test_filter_drops_hot_and_anomalous_nodes_with_reasons():
    async def go():
        ext = await started(make(default_models(), filter_anomalous=True), rows())
        out = await ext.filter({"Pod": pod(cpu="2"), "NodeNames": ["n0", "n1", "n2", "n3"]})
        await ext.close()
        return out

    out = run(go())
    # n1: 0.84 + 2/32 = 0.90 > 0.85; n3 flagged anomalous
    assert out["NodeNames"] == ["n0", "n2"]
    assert set(out["FailedNodes"]) == {"n1", "n3"}
    assert "hot threshold" in out["FailedNodes"]["n1"]
    assert "anomalous" in out["FailedNodes"]["n3"]
    assert out["Error"] == "" and out["Nodes"] is None


def test_filter_never_empties_the_candidates():
    models = FakeModels(
        cpu=np.full(2, 0.95), mem=np.full(2, 0.3), anomaly=np.zeros(2), flag=np.zeros(2)
    )

    async def go():
        ext = await started(make(models), rows(2))
        out = await ext.filter({"Pod": pod(), "NodeNames": ["n0", "n1"]})
        return ext, out

    ext, out = run(go())
    assert out["NodeNames"] == ["n0", "n1"] and out["FailedNodes"] == {}
    assert fallbacks(ext, "filter_would_empty") == 1


def test_anomalous_nodes_come_back_before_hot_ones_when_nothing_would_pass():
    # n0 predicted hot, n1 and n2 flagged anomalous: every candidate fails both filters
    models = FakeModels(
        cpu=np.array([0.95, 0.4, 0.5]),
        mem=np.full(3, 0.3),
        anomaly=np.array([0.1, 0.9, 0.9]),
        flag=np.array([0, 1, 1]),
    )

    async def go():
        ext = await started(make(models, filter_anomalous=True), rows(3))
        out = await ext.filter({"Pod": pod(), "NodeNames": ["n0", "n1", "n2"]})
        return ext, out

    ext, out = run(go())
    assert out["NodeNames"] == ["n1", "n2"] and list(out["FailedNodes"]) == ["n0"]
    assert fallbacks(ext, "filter_relaxed_anomalous") == 1
    assert fallbacks(ext, "filter_would_empty") == 0


def test_by_default_anomalous_nodes_are_scored_down_not_filtered():
    async def go():
        ext = await started(make(default_models()), rows())
        names = ["n0", "n1", "n2", "n3"]
        return await ext.filter({"Pod": pod(cpu="2"), "NodeNames": names})

    out = run(go())
    assert list(out["FailedNodes"]) == ["n1"]  # predicted hot; the flagged n3 stays
    assert "n3" in out["NodeNames"]


def test_prioritize_prefers_the_cool_normal_node():
    async def go():
        ext = await started(make(default_models()), rows())
        # the flagged n3 has already failed the filter; prioritize sees the survivors
        return await ext.prioritize({"Pod": pod(), "NodeNames": ["n0", "n1", "n2"]})

    out = run(go())
    scores = {h["Host"]: h["Score"] for h in out}
    assert all(isinstance(s, int) and 0 <= s <= 10 for s in scores.values())
    assert scores["n0"] > scores["n2"] > scores["n1"]


def test_the_anomaly_part_lowers_an_otherwise_equal_node():
    models = FakeModels(
        cpu=np.array([0.4, 0.4]),
        mem=np.full(2, 0.3),
        anomaly=np.array([0.0, 1.0]),
        flag=np.zeros(2),
    )

    async def go():
        ext = await started(
            make(models, weights={"load": 0.6, "agent": 0.0, "anomaly": 0.4}), rows(2)
        )
        return await ext.prioritize({"Pod": pod(), "NodeNames": ["n0", "n1"]})

    scores = {h["Host"]: h["Score"] for h in run(go())}
    assert scores["n0"] > scores["n1"]


def test_lag_compensation_counts_own_placements_until_a_sample_covers_them():
    models = FakeModels(
        cpu=np.array([0.60, 0.62]), mem=np.full(2, 0.3), anomaly=np.zeros(2), flag=np.zeros(2)
    )

    async def go():
        ext = await started(make(models, reporting_interval_s=60), rows(2, cores=8))
        names = ["n0", "n1"]
        first = await ext.prioritize({"Pod": pod(cpu="1", uid="a"), "NodeNames": names})
        # n0 got pod a: 0.60 + 1/8 = 0.725 now > n1's 0.62 + 1/8: the next pod goes to n1
        second = await ext.prioritize({"Pod": pod(cpu="1", uid="b"), "NodeNames": names})
        held = len(ext.ledger)
        # a later sample (time 2000, well after the placements at ~1000) covers them
        await ext.refresh(rows(2, t=2100.0, sample=2000.0, cores=8))
        return first, second, held, len(ext.ledger)

    first, second, held, after = run(go())
    best = lambda out: max(out, key=lambda h: h["Score"])["Host"]  # noqa: E731
    assert best(first) == "n0"
    assert best(second) == "n1"
    assert held == 2 and after == 0


def test_retry_of_the_same_pod_replaces_its_placement():
    async def go():
        ext = await started(make(default_models()), rows())
        for _ in range(3):
            await ext.prioritize({"Pod": pod(uid="same"), "NodeNames": ["n0", "n2"]})
        return len(ext.ledger)

    assert run(go()) == 1


@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_stale_state_answers_neutrally_and_counts(verb):
    clock = Clock()

    async def go():
        ext = await started(make(default_models(), clock=clock, stale_after_s=60), rows())
        clock.t += 61
        body = {"Pod": pod(), "NodeNames": ["n0", "n1", "n2", "n3"]}
        out = await (ext.filter(body) if verb == "filter" else ext.prioritize(body))
        return ext, out

    ext, out = run(go())
    if verb == "filter":
        assert out["NodeNames"] == ["n0", "n1", "n2", "n3"] and out["FailedNodes"] == {}
    else:
        assert {h["Score"] for h in out} == {NEUTRAL_SCORE}
    assert fallbacks(ext, "stale_state") == 1
    assert not ext.ready()


def test_no_state_yet_is_neutral():
    async def go():
        ext = make(default_models())
        await ext.start()
        return ext, await ext.prioritize({"Pod": pod(), "NodeNames": ["n0"]})

    ext, out = run(go())
    assert out == [{"Host": "n0", "Score": NEUTRAL_SCORE}]
    assert fallbacks(ext, "no_state") == 1


def test_late_agent_gives_a_neutral_agent_part_inside_the_deadline():
    models = default_models()
    models.delay_s = 0.5

    async def go():
        ext = await started(make(models, agent_timeout_s=0.02, deadline_s=0.2), rows())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        out = await ext.prioritize({"Pod": pod(), "NodeNames": ["n0", "n2"]})
        return ext, out, loop.time() - t0

    ext, out, took = run(go())
    assert took < 0.2
    assert fallbacks(ext, "agent_failed") == 1
    # still scored on load and anomaly: n0 (0.30) beats n2 (0.50 + 2/32) on load
    scores = {h["Host"]: h["Score"] for h in out}
    assert scores["n0"] >= scores["n2"]


def test_deadline_bounds_the_answer_whatever_the_agent_does():
    models = default_models()
    models.delay_s = 1.0

    async def go():
        ext = await started(make(models, agent_timeout_s=5.0, deadline_s=0.05), rows())
        return ext, await ext.prioritize({"Pod": pod(), "NodeNames": ["n0", "n2"]})

    ext, out = run(go())
    assert {h["Score"] for h in out} == {NEUTRAL_SCORE}
    assert fallbacks(ext, "deadline") == 1


def test_failed_model_at_refresh_degrades_its_part_only():
    models = default_models()
    models.fail = {"hydatis-load-predictor"}

    async def go():
        ext = await started(make(models, filter_anomalous=True), rows())
        out = await ext.filter({"Pod": pod(), "NodeNames": ["n0", "n1", "n2", "n3"]})
        return ext, out

    ext, out = run(go())
    assert ext.snapshot.degraded == ("load",)
    assert fallbacks(ext, "refresh_load_failed") == 1
    assert set(out["FailedNodes"]) == {"n3"}  # no load prediction: only the anomaly filter


def test_unknown_nodes_get_neutral_parts_and_count_as_misses():
    async def go():
        ext = await started(make(default_models()), rows())
        out = await ext.filter({"Pod": pod(), "NodeNames": ["n0", "new-node"]})
        return ext, out

    ext, out = run(go())
    assert out["NodeNames"] == ["n0", "new-node"]
    assert ext.metrics.cache_lookups.labels("miss")._value.get() == 1
    assert ext.metrics.cache_lookups.labels("hit")._value.get() == 1


def test_shadow_mode_decides_but_answers_neutrally():
    models = default_models()

    async def go():
        ext = await started(make(models, mode="shadow"), rows())
        f = await ext.filter({"Pod": pod(), "NodeNames": ["n0", "n1", "n2", "n3"]})
        p = await ext.prioritize({"Pod": pod(), "NodeNames": ["n0", "n1", "n2", "n3"]})
        return ext, f, p

    ext, f, p = run(go())
    assert f["FailedNodes"] == {} and len(f["NodeNames"]) == 4
    assert {h["Score"] for h in p} == {NEUTRAL_SCORE}
    decided = ext.metrics.decisions
    assert decided.labels("filter", "shadow")._value.get() == 1
    assert decided.labels("prioritize", "shadow")._value.get() == 1
    assert "hydatis-placement-agent" in models.calls  # it did decide


@pytest.mark.parametrize("percent", [0.0, 10.0, 50.0, 100.0], ids=["off", "10", "50", "all"])
def test_rollout_share_follows_the_percentage_and_is_stable(percent):
    uids = [f"pod-{i}" for i in range(2000)]
    chosen = [u for u in uids if rollout_bucket(u) < percent]
    assert abs(len(chosen) / len(uids) - percent / 100) < 0.04
    # the bucket is a fixed function of the UID (SHA-256), the same in every replica and
    # release, so raising the percentage only adds pods: pinned values
    assert rollout_bucket("pod-0") == pytest.approx(47.683927, abs=1e-6)
    assert rollout_bucket("3f2b1c8e-uid") == pytest.approx(84.980744, abs=1e-6)

    async def go():
        ext = await started(make(default_models(), rollout_percent=percent), rows())
        for u in uids[:40]:
            await ext.prioritize({"Pod": pod(uid=u), "NodeNames": ["n0", "n1"]})
        return ext

    ext = run(go())
    active = ext.metrics.decisions.labels("prioritize", "active")._value.get()
    assert active == sum(rollout_bucket(u) < percent for u in uids[:40])


def test_node_objects_allocatable_override_state_capacity():
    models = FakeModels(
        cpu=np.array([0.5, 0.5]), mem=np.full(2, 0.3), anomaly=np.zeros(2), flag=np.zeros(2)
    )
    seen = {}

    def q_of(x):
        seen["req_cpu_after"] = x[:, 3].copy()
        return -x[:, 3]

    models.q_of = q_of

    async def go():
        ext = await started(make(models), rows(2))
        nodes = [
            {"metadata": {"name": "n0"}, "status": {"allocatable": {"cpu": "8"}}},
            {"metadata": {"name": "n1"}},
        ]
        return await ext.prioritize({"Pod": pod(cpu="2"), "Nodes": {"items": nodes}})

    run(go())
    # requested ratio 0.3 of 32 cores = 9.6 cores; n0's allocatable is 8 cores
    assert seen["req_cpu_after"][0] == pytest.approx((9600 + 2000) / 8000, rel=1e-4)
    assert seen["req_cpu_after"][1] == pytest.approx((9600 + 2000) / 32000, rel=1e-4)


def test_agent_call_started_at_filter_is_used_by_prioritize():
    models = default_models()

    async def go():
        ext = await started(make(models), rows())
        names = ["n0", "n1", "n2", "n3"]
        f = await ext.filter({"Pod": pod(uid="a"), "NodeNames": names})
        await ext.prioritize({"Pod": pod(uid="a"), "NodeNames": f["NodeNames"]})
        # a prioritize over other nodes than the filter kept does not reuse it
        await ext.filter({"Pod": pod(uid="b"), "NodeNames": names})
        await ext.prioritize({"Pod": pod(uid="b"), "NodeNames": names})
        return ext

    ext = run(go())
    assert ext.metrics.prefetch.labels("used")._value.get() == 1
    assert ext.metrics.prefetch.labels("stale")._value.get() == 1
    assert models.calls.count("hydatis-placement-agent") == 3


# --------------------------------------------------------------------------- metrics


def scrape(ext, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of ``ext``'s /metrics text whose name starts with ``prefix``."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    text = generate_latest(ext.metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name.startswith(prefix) and not s.name.endswith("_created")
    }


def by_node(samples, name):
    return {dict(k[1])["node"]: v for k, v in samples.items() if k[0] == name}


def test_node_series_follow_each_snapshot_and_drop_nodes_that_leave():
    first = default_models()
    second = FakeModels(
        cpu=np.array([0.25, np.nan, 0.55]),
        mem=np.array([0.4, 0.4, np.nan]),
        anomaly=np.array([0.9, 0.1, 0.2]),
        flag=np.array([1, 0, 0]),
    )

    async def go():
        ext = await started(make(first), rows(4))
        before = scrape(ext, "hydatis_extender_node_")
        ext._client = httpx.AsyncClient(transport=httpx.MockTransport(second))
        await ext.close()
        await ext.start()
        await ext.refresh(rows(3, t=1030.0))
        return before, scrape(ext, "hydatis_extender_node_")

    before, after = run(go())
    cpu = "hydatis_extender_node_predicted_cpu_ratio"
    mem = "hydatis_extender_node_predicted_memory_ratio"
    flag = "hydatis_extender_node_anomalous"
    assert by_node(before, cpu) == pytest.approx({"n0": 0.30, "n1": 0.84, "n2": 0.50, "n3": 0.20})
    assert by_node(before, mem) == pytest.approx({f"n{i}": 0.3 for i in range(4)})
    assert by_node(before, flag) == {"n0": 0.0, "n1": 0.0, "n2": 0.0, "n3": 1.0}
    assert before[("hydatis_extender_node_state_nodes", ())] == 4
    # n3 left the state; n1 has no CPU forecast now, n2 no memory forecast
    assert by_node(after, cpu) == pytest.approx({"n0": 0.25, "n2": 0.55})
    assert by_node(after, mem) == pytest.approx({"n0": 0.4, "n1": 0.4})
    assert by_node(after, flag) == {"n0": 1.0, "n1": 0.0, "n2": 0.0}
    assert after[("hydatis_extender_node_state_nodes", ())] == 3


def test_no_anomaly_score_means_no_anomalous_sample():
    models = default_models()
    models.fail = {"hydatis-anomaly-detector"}

    async def go():
        return scrape(await started(make(models), rows()), "hydatis_extender_node_anomalous")

    assert run(go()) == {}


def test_a_snapshot_shared_by_another_replica_sets_the_node_series():
    from scheduler_shim.shared import decode_snapshot, encode_snapshot

    async def go():
        producer = await started(make(default_models()), rows())
        blob = encode_snapshot(producer.snapshot)
        replica = make(default_models())
        await replica.start()
        replica.install(decode_snapshot(blob))
        return scrape(replica, "hydatis_extender_node_")

    got = run(go())
    assert by_node(got, "hydatis_extender_node_anomalous") == {
        "n0": 0.0,
        "n1": 0.0,
        "n2": 0.0,
        "n3": 1.0,
    }
    assert by_node(got, "hydatis_extender_node_predicted_cpu_ratio") == pytest.approx(
        {"n0": 0.30, "n1": 0.84, "n2": 0.50, "n3": 0.20}
    )


@pytest.mark.parametrize(
    ("mode", "percent"), [("active", 100.0), ("shadow", 100.0), ("active", 10.0)]
)
def test_rollout_share_and_mode_are_exported_as_configured(mode, percent):
    ext = make(default_models(), mode=mode, rollout_percent=percent)
    got = scrape(ext, "hydatis_extender_")
    assert got[("hydatis_extender_rollout_ratio", ())] == percent / 100
    assert got[("hydatis_extender_mode_info", (("mode", mode),))] == 1.0
    other = "shadow" if mode == "active" else "active"
    assert got[("hydatis_extender_mode_info", (("mode", other),))] == 0.0


def test_labelled_counters_exist_at_zero_from_the_start():
    async def go():
        ext = make(default_models())
        await ext.start()
        return scrape(ext, "hydatis_extender_")

    got = run(go())

    def values(name, label):
        return {dict(k[1])[label]: v for k, v in got.items() if k[0] == name}

    assert values("hydatis_extender_fallbacks_total", "reason") == {
        r: 0.0
        for r in (
            "no_state",
            "stale_state",
            "refresh_load_failed",
            "refresh_anomaly_failed",
            "agent_failed",
            "deadline",
            "unknown_node",
            "filter_would_empty",
            "filter_relaxed_anomalous",
            "internal_error",
            "redis_unavailable",
        )
    }
    assert values("hydatis_extender_filtered_nodes_total", "reason") == {
        "hot": 0.0,
        "anomalous": 0.0,
    }
    assert values("hydatis_extender_cache_lookups_total", "result") == {"hit": 0.0, "miss": 0.0}
    assert values("hydatis_extender_model_call_errors_total", "model") == {
        "hydatis-load-predictor": 0.0,
        "hydatis-anomaly-detector": 0.0,
        "hydatis-placement-agent": 0.0,
    }
    decisions = {
        tuple(dict(k[1]).values()): v
        for k, v in got.items()
        if k[0] == "hydatis_extender_decisions_total"
    }
    assert decisions == {
        (path, verb): 0.0
        for verb in ("filter", "prioritize")
        for path in ("active", "shadow", "rollout_skip")
    }


def live_rows(t: float, cpu: list[float], mem: list[float]):
    r = rows(len(cpu), t=t, sample=t - 10)
    r.values[:, COLS.index("cpu_util")] = cpu
    r.values[:, COLS.index("mem_util")] = mem
    return r


def test_live_accuracy_scores_the_forecasts_one_horizon_later():
    models = FakeModels(
        cpu=np.array([0.50, 0.20]),
        mem=np.array([0.40, 0.60]),
        anomaly=np.zeros(2),
        flag=np.zeros(2),
    )

    async def go():
        ext = await started(make(models, load_horizon_s=300), live_rows(1000, [0.1] * 2, [0.3] * 2))
        out = [scrape(ext, "hydatis_load_predictor_")]
        await ext.refresh(live_rows(1200, [0.9, 0.9], [0.9, 0.9]))  # before the horizon
        out.append(scrape(ext, "hydatis_load_predictor_"))
        await ext.refresh(live_rows(1300, [0.40, 0.25], [0.50, 0.50]))
        out.append(scrape(ext, "hydatis_load_predictor_"))
        return out

    first, early, matched = run(go())
    gates = {
        ("hydatis_load_predictor_accuracy_gate", (("resource", "cpu"),)): 0.89,
        ("hydatis_load_predictor_accuracy_gate", (("resource", "memory"),)): 0.86,
    }
    no_pairs = {
        ("hydatis_load_predictor_live_matched_pairs", (("resource", "cpu"),)): 0.0,
        ("hydatis_load_predictor_live_matched_pairs", (("resource", "memory"),)): 0.0,
    }
    assert first == {**gates, **no_pairs}  # no accuracy sample before a pair exists
    assert early == first
    acc = "hydatis_load_predictor_live_accuracy"
    pairs = "hydatis_load_predictor_live_matched_pairs"
    # the forecasts made at 1000 against the rows of 1300 (the first at or after 1300);
    # those made at 1200 are not due yet
    assert matched[(acc, (("resource", "cpu"),))] == pytest.approx(1 - 0.15 / 0.65, rel=1e-6)
    assert matched[(acc, (("resource", "memory"),))] == pytest.approx(0.8, rel=1e-6)
    assert matched[(pairs, (("resource", "cpu"),))] == 2
    assert matched[(pairs, (("resource", "memory"),))] == 2
