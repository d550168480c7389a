"""The simulator's ML scheduler as kube-scheduler's extender client: the JSON it sends
(both ``nodeCacheCapable`` modes, Go field names, quantities), the score arithmetic, and
what it does when the extender errs, times out or answers badly.

The extender here is a real HTTP server on loopback (``http.server`` in a thread) whose
answers each test sets, so the client's requests travel over real sockets.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from simulator.extender import (
    ExtenderCallError,
    ExtenderScheduler,
    cpu_quantity,
    memory_quantity,
    parse_filter_result,
    parse_priority_list,
)
from simulator.schedulers.default import DefaultScheduler
from simulator.types import ClusterView, PodSpec

GIB = 1024**3
Answer = tuple[int, Any, float]  # status, JSON body (bytes: sent raw), delay s


class FakeExtender:
    """An extender speaking HTTP on loopback; ``answers[path](body) -> Answer``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, Callable[[Any], Answer]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as kube-scheduler's client
            disable_nagle_algorithm = True  # headers and body go out without a 40 ms stall

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw) if raw else None
                fake.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "body": body,
                    }
                )
                status, answer, delay = fake.answers.get(self.path, _ok)(body)
                time.sleep(delay)
                out = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_POST = do_PUT = _serve  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


def _ok(body: Any) -> Answer:
    return 200, {}, 0.0


def keep_all(body: dict[str, Any]) -> Answer:
    """A filter that keeps every candidate, answering in the request's own mode."""
    if body["NodeNames"] is not None:
        return 200, {"NodeNames": body["NodeNames"], "FailedNodes": {}, "Error": ""}, 0.0
    return 200, {"Nodes": body["Nodes"], "NodeNames": None, "FailedNodes": {}}, 0.0


def scores_by_name(scores: dict[str, Any]) -> Callable[[Any], Answer]:
    def answer(body: dict[str, Any]) -> Answer:
        names = body["NodeNames"] or [n["metadata"]["name"] for n in body["Nodes"]["items"]]
        return 200, [{"Host": h, "Score": scores[h]} for h in names if h in scores], 0.0

    return answer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeExtender]:
    fake = FakeExtender()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def ext(server: FakeExtender) -> FakeExtender:
    server.requests.clear()
    server.answers = {"/filter": keep_all, "/prioritize": lambda b: (200, [], 0.0)}
    return server


def _view(n: int = 4) -> ClusterView:
    """Nodes of 32 cores / 128 GiB, node i holding i cores and 4 i GiB of requests."""
    view = ClusterView.empty(np.full(n, 32_000), np.full(n, 128 * GIB))
    for i in range(n):
        view.req_cpu[i] = view.nz_req_cpu[i] = 1000 * i
        view.req_mem[i] = view.nz_req_mem[i] = 4 * GIB * i
    return view


POD = PodSpec("web-7f9c-r0", 1500, 4 * GIB, 2000, None, priority=500, qos="Burstable")
NAMES = [f"n{i}" for i in range(4)]


def _scheduler(url: str, **kw: Any) -> ExtenderScheduler:
    sched = ExtenderScheduler(url=url, node_names=NAMES, push_state=False, **kw)
    sched.reset(0)
    return sched


# --------------------------------------------------------------------------- JSON sent


def test_cache_capable_request_sends_names_and_a_real_pod(ext: FakeExtender) -> None:
    ext.answers["/prioritize"] = scores_by_name({"n0": 1, "n1": 2, "n2": 3, "n3": 4})
    sched = _scheduler(ext.url)
    assert sched.select(POD, _view()) is not None
    (filt,) = ext.calls("/filter")
    (prio,) = ext.calls("/prioritize")
    assert filt["method"] == "POST" and filt["content_type"] == "application/json"
    body = filt["body"]
    assert list(body) == ["Pod", "Nodes", "NodeNames"]
    assert body["Nodes"] is None and body["NodeNames"] == NAMES
    pod = body["Pod"]
    assert pod["metadata"]["name"] == POD.name and pod["metadata"]["namespace"] == "default"
    assert pod["spec"]["schedulerName"] == "ml-scheduler" and pod["spec"]["priority"] == 500
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1500m", "memory": "4Gi"}, "limits": {"cpu": "2"}}
    assert prio["body"]["Pod"] == pod  # the same pod object, the same UID, both verbs


def test_uid_is_stable_per_pod_and_distinct_between_pods(ext: FakeExtender) -> None:
    sched = _scheduler(ext.url)
    other = PodSpec("web-7f9c-r1", 1500, 4 * GIB)
    for pod in (POD, other, POD):
        sched.select(pod, _view())
    uids = [c["body"]["Pod"]["metadata"]["uid"] for c in ext.calls("/filter")]
    assert uids[0] == uids[2] != uids[1]


def test_not_cache_capable_sends_whole_nodes_with_quantities(ext: FakeExtender) -> None:
    sched = _scheduler(ext.url, node_cache_capable=False)
    view = _view()
    view.alloc_cpu[:] = 31_500
    view.alloc_mem[:] = 120 * GIB + 512 * 1024
    assert sched.select(POD, view) is not None
    body = ext.calls("/filter")[0]["body"]
    assert body["NodeNames"] is None
    items = body["Nodes"]["items"]
    assert [n["metadata"]["name"] for n in items] == NAMES
    status = items[0]["status"]
    assert status["capacity"] == {"cpu": "32", "memory": f"{128 * 1024 * 1024}Ki", "pods": "110"}
    assert status["allocatable"]["cpu"] == "31500m"
    assert status["allocatable"]["memory"] == f"{120 * 1024 * 1024 + 512}Ki"


@pytest.mark.parametrize(
    ("cache_capable", "answer", "kept"),
    [
        (True, {"NodeNames": ["n2", "n1"]}, {1, 2}),
        (True, {"Nodes": {"items": [{"metadata": {"name": "n3"}}]}}, {3}),  # no NodeNames
        (False, {"Nodes": {"items": [{"metadata": {"name": "n3"}}]}}, {3}),
        (False, {"NodeNames": ["n0", "n1"]}, set()),  # only names: every node filtered out
        (True, {"nodenames": ["n0"], "error": ""}, {0}),  # Go decodes names in any case
        (True, {}, set()),
        (True, {"NodeNames": []}, set()),
    ],
    ids=[
        "names",
        "cache-capable-reads-Nodes-without-names",
        "nodes",
        "names-only-in-nodes-mode-filters-all",
        "lower-case-fields",
        "empty-answer",
        "empty-names",
    ],
)
def test_kept_nodes_are_read_as_kube_scheduler_reads_them(
    ext: FakeExtender, cache_capable: bool, answer: dict, kept: set[int]
) -> None:
    ext.answers["/filter"] = lambda body: (200, answer, 0.0)
    sched = _scheduler(ext.url, node_cache_capable=cache_capable)
    chosen = sched.select(POD, _view())
    if not kept:
        assert chosen is None
    else:
        assert chosen in kept
    assert sched.counts["filter_errors"] == 0


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("scores", "weight", "added"),
    [
        ({"n0": 10, "n1": 0, "n2": 5, "n3": 7}, 5, [500, 0, 250, 350]),
        ({"n0": 10, "n1": 0, "n2": 5, "n3": 7}, 1, [100, 0, 50, 70]),
        ({"n0": 3}, 5, [150, 0, 0, 0]),  # unlisted nodes get nothing
        ({"n0": 12, "n1": -2}, 5, [600, -100, 0, 0]),  # unclamped, as upstream
        ({"n0": 4, "nX": 9}, 5, [200, 0, 0, 0]),  # a host that was not sent is ignored
        ({"n0": 7}, 0, [0, 0, 0, 0]),
    ],
    ids=["weights-5", "weight-1", "partial-list", "out-of-range-unclamped", "unknown-host", "w0"],
)
def test_prioritize_adds_score_times_weight_times_ten(
    ext: FakeExtender, scores: dict[str, int], weight: int, added: list[int]
) -> None:
    ext.answers["/prioritize"] = scores_by_name(scores)
    sched = _scheduler(ext.url, weight=weight)
    view = _view()
    nodes = np.arange(4)
    np.testing.assert_array_equal(sched.extender_scores(POD, view, nodes), added)
    plugin = DefaultScheduler().score(POD, view, nodes)
    np.testing.assert_array_equal(sched.score(POD, view, nodes), plugin + np.array(added))


def test_duplicate_host_entries_add_up(ext: FakeExtender) -> None:
    ext.answers["/prioritize"] = lambda b: (200, [{"Host": "n1", "Score": 2}] * 2, 0.0)
    sched = _scheduler(ext.url)
    np.testing.assert_array_equal(sched.extender_scores(POD, _view(), np.arange(4)), [0, 200, 0, 0])


def test_extender_outweighs_plugins_and_the_best_total_wins(ext: FakeExtender) -> None:
    view = _view()
    view.req_cpu[3] = view.nz_req_cpu[3] = 28_000  # n3 nearly full: the plugins dislike it
    view.req_mem[3] = view.nz_req_mem[3] = 110 * GIB
    plugin = DefaultScheduler().score(POD, view, np.arange(4))
    assert int(np.argmax(plugin)) == 0 and 50 < plugin[0] - plugin[3] < 500
    ext.answers["/prioritize"] = scores_by_name({"n3": 10})  # +500 at weight 5
    assert _scheduler(ext.url).select(POD, view) == 3
    ext.answers["/prioritize"] = scores_by_name({"n3": 5})  # +50 at weight 1
    assert _scheduler(ext.url, weight=1).select(POD, view) == 0


def test_one_node_left_is_chosen_without_prioritize(ext: FakeExtender) -> None:
    ext.answers["/filter"] = lambda body: (200, {"NodeNames": ["n2"]}, 0.0)
    assert _scheduler(ext.url).select(POD, _view()) == 2
    assert ext.calls("/prioritize") == []


def test_only_fitting_candidates_are_sent(ext: FakeExtender) -> None:
    view = _view()
    view.req_cpu[1] = 31_000  # n1 cannot fit 1.5 cores
    _scheduler(ext.url).select(POD, view)
    assert ext.calls("/filter")[0]["body"]["NodeNames"] == ["n0", "n2", "n3"]
    view.req_cpu[:] = 31_000
    assert _scheduler(ext.url).select(POD, view) is None
    assert len(ext.calls("/filter")) == 1  # no candidate: no call


# --------------------------------------------------------------------------- errors


def _slow(body: Any) -> Answer:
    return 200, {"NodeNames": ["n3"]}, 0.3


FILTER_FAILURES = {
    "timeout": _slow,
    "http-500": lambda b: (500, {"error": "boom"}, 0.0),
    "http-404": lambda b: (404, b"not found", 0.0),
    "not-json": lambda b: (200, b"<html>", 0.0),
    "not-an-object": lambda b: (200, ["n0"], 0.0),
    "error-field": lambda b: (200, {"NodeNames": ["n0"], "Error": "model down"}, 0.0),
    "unknown-node": lambda b: (200, {"NodeNames": ["n0", "nX"]}, 0.0),
}


@pytest.mark.parametrize("kind", list(FILTER_FAILURES))
@pytest.mark.parametrize("ignorable", [True, False], ids=["ignorable", "not-ignorable"])
def test_filter_errors_fail_the_pod_unless_ignorable(
    ext: FakeExtender, kind: str, ignorable: bool
) -> None:
    ext.answers["/filter"] = FILTER_FAILURES[kind]
    ext.answers["/prioritize"] = scores_by_name({"n0": 0, "n1": 0, "n2": 0, "n3": 10})
    sched = _scheduler(ext.url, ignorable=ignorable, http_timeout_s=0.1)
    chosen = sched.select(POD, _view())
    assert sched.counts["filter_errors"] == 1
    if ignorable:  # scheduling goes on without the extender's filter
        assert chosen == 3 and sched.counts["filter_errors_ignored"] == 1
    else:
        assert chosen is None and sched.counts["failed_cycles"] == 1
    expected = {"timeout": "timeout", "http-500": "http_status", "http-404": "http_status"}
    expected |= {"error-field": "error_field", "unknown-node": "unknown_node"}
    assert sched.counts[f"filter_error_{expected.get(kind, 'decode')}"] == 1


@pytest.mark.parametrize(
    "answer",
    [
        (500, [], 0.0),
        (200, [], 0.3),
        (200, [{"Host": "n3", "Score": 7.0}], 0.0),
        (200, [{"Host": "n3", "Score": "7"}], 0.0),
        (200, [{"Host": "n3", "Score": True}], 0.0),
        (200, {"Host": "n3", "Score": 7}, 0.0),
        (200, b"[{", 0.0),
    ],
    ids=["http-500", "timeout", "float-score", "string-score", "bool-score", "object", "cut"],
)
def test_prioritize_errors_add_nothing(ext: FakeExtender, answer: Answer) -> None:
    ext.answers["/prioritize"] = lambda body: answer
    sched = _scheduler(ext.url, http_timeout_s=0.1)
    view = _view()
    plugin = DefaultScheduler().score(POD, view, np.arange(4))
    assert sched.select(POD, view) == int(np.argmax(plugin))
    assert sched.counts["prioritize_errors"] == 1


def test_timeouts_are_bounded_by_http_timeout(ext: FakeExtender) -> None:
    ext.answers["/filter"] = _slow
    sched = _scheduler(ext.url, http_timeout_s=0.05)
    t0 = time.perf_counter()
    sched.select(POD, _view())
    assert time.perf_counter() - t0 < 0.25
    stats = sched.stats()
    assert stats["filter_error_timeout"] == 1 and stats["extender_p50_ms"] >= 50


def test_connection_refused_is_a_transport_error() -> None:
    sched = _scheduler("http://127.0.0.1:9", ignorable=False)  # discard port: nothing listens
    assert sched.select(POD, _view()) is None
    assert sched.counts["filter_error_transport"] == 1


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, []),
        ([], []),
        ([{"Host": "a", "Score": 3}], [("a", 3)]),
        ([{"host": "a", "score": 3}], [("a", 3)]),
        ([{"Host": "a"}], [("a", 0)]),
        ([{"Host": "a", "Score": None}], [("a", 0)]),
        ([{"Score": 4}], [("", 4)]),
    ],
    ids=["null", "empty", "exact", "lower-case", "no-score", "null-score", "no-host"],
)
def test_priority_list_decodes_as_go(body: Any, expected: list[tuple[str, int]]) -> None:
    assert parse_priority_list(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        [{"Host": "a", "Score": 7.0}],
        [{"Host": "a", "Score": 2**63}],
        [{"Host": 3, "Score": 1}],
        ["a"],
        {"a": 1},
    ],
    ids=["float", "int64-overflow", "host-not-string", "item-not-object", "not-array"],
)
def test_priority_list_refuses_what_go_refuses(body: Any) -> None:
    with pytest.raises(ExtenderCallError, match="decode"):
        parse_priority_list(body)


def test_exact_field_name_wins_over_case_insensitive_match() -> None:
    body = {"nodenames": ["a"], "NodeNames": ["b"]}
    assert parse_filter_result(body, ["a", "b"], node_cache_capable=True) == ["b"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(32_000, "32"), (1500, "1500m"), (100, "100m"), (0, "0")],
)
def test_cpu_quantity(value: int, text: str) -> None:
    assert cpu_quantity(value) == text


@pytest.mark.parametrize(
    ("value", "kwargs", "text"),
    [
        (4 * GIB, {}, "4Gi"),
        (1536 * 1024**2, {}, "1536Mi"),
        (200 * 1024**2, {}, "200Mi"),
        (1000, {}, "1000"),
        (128 * GIB, {"unit": "Ki"}, "134217728Ki"),
        (1001, {"unit": "Ki"}, "1001"),
    ],
    ids=["Gi", "Mi", "default-request", "bytes", "node-Ki", "odd-bytes"],
)
def test_memory_quantity(value: int, kwargs: dict, text: str) -> None:
    assert memory_quantity(value, **kwargs) == text


# --------------------------------------------------------------------------- node state


def _workload():
    from simulator.workload import compile_workload
    from tests.factories import make_dataset

    pods = [
        {"start": 30.0 * k, "end": 30.0 * k + 400.0, "cpu": 1.0 + (k % 3), "mem": 2.0}
        for k in range(24)
    ]
    ds = make_dataset([(16.0, 64.0)] * 4, pods, horizon_s=900.0)
    return ds, compile_workload(ds)


def test_simulation_pushes_lagged_node_state_every_interval(ext: FakeExtender) -> None:
    from hydatis.features import feature_names
    from simulator.engine import SimConfig, simulate
    from simulator.node_state import scheduler_context

    ds, workload = _workload()
    ctx = scheduler_context(ds)
    ext.answers["/v1/node-state"] = lambda body: (200, {"nodes": len(body["nodes"])}, 0.0)
    sched = ExtenderScheduler(url=ext.url, refresh_interval_s=60.0, **ctx)
    result = simulate(workload, sched, seed=0, config=SimConfig(horizon_s=900.0))
    assert result.placements == 24
    pushes = ext.calls("/v1/node-state")
    assert pushes and all(p["method"] == "PUT" for p in pushes)
    times = [p["body"]["time"] - ctx["epoch_s"] for p in pushes]
    assert all(b - a >= 60.0 for a, b in itertools.pairwise(times))
    body = pushes[-1]["body"]
    assert body["columns"] == feature_names() and body["nodes"] == ctx["node_names"]
    assert len(body["values"]) == 4 and all(len(row) == 75 for row in body["values"])
    assert body["alloc_cpu_m"] == [16_000] * 4 and body["max_pods"] == [110] * 4
    # the samples are the ones the scheduler sees: a minute old (metrics lag)
    assert all(body["time"] - s >= 60.0 for s in body["sample_time"])
    row = dict(zip(body["columns"], body["values"][0], strict=True))
    assert row["cpu_capacity_cores"] == 16.0 and row["metric_age_s"] >= 60.0
    assert row["pod_count"] >= 0 and row["cpu_requested_ratio"] is not None
    assert sched.counts["pushes"] == len(pushes) and sched.counts["push_errors"] == 0


def test_feed_rows_carry_exact_requests_and_recent_bindings() -> None:
    from hydatis.features import feature_names
    from simulator.node_state import NodeStateFeed

    view = _view(2)
    view.now = 600.0
    m = view.metrics
    m.updated_at[:] = 540.0
    m.window_end = 540.0
    m.cpu_used[:] = [8_000.0, 16_000.0]
    m.mem_used[:] = [32.0 * GIB, 64.0 * GIB]
    view.bindings.append(500.0, 0, POD)  # before the sample: already in it
    view.bindings.append(570.0, 1, POD)  # after: the metrics do not show it yet
    view.pod_count[:] = [3, 5]
    view.lim_cpu[:] = [4_000, 0]  # limits unset count 0, as in the offline features
    view.lim_mem[:] = [8 * GIB, 0]
    feed = NodeStateFeed(["a", "b"], view.cap_cpu, view.cap_mem, epoch_s=1_704_067_200.0)
    row = dict(zip(feature_names(), feed.rows(view).T, strict=True))
    np.testing.assert_allclose(row["cpu_util"], [0.25, 0.5])
    np.testing.assert_allclose(row["mem_util"], [0.25, 0.5])
    np.testing.assert_allclose(row["cpu_requested_ratio"], [0.0, 1 / 32])
    np.testing.assert_allclose(row["pod_count"], [3, 5])
    np.testing.assert_allclose(row["pods_bound_since_sample"], [0, 1])
    np.testing.assert_allclose(row["metric_age_s"], [60.0, 60.0])
    np.testing.assert_allclose(row["cpu_limit_ratio"], [0.125, 0.0])
    np.testing.assert_allclose(row["mem_limit_ratio"], [0.0625, 0.0])
    assert not feed.observe(view)  # the same sample is not appended twice
    payload = feed.payload(view)
    assert payload["time"] == 1_704_067_800.0
    np.testing.assert_allclose(payload["sample_time"], [1_704_067_740.0] * 2)


def test_push_errors_are_counted_and_scheduling_goes_on(ext: FakeExtender) -> None:
    from simulator.engine import SimConfig, simulate

    ds, workload = _workload()
    ext.answers["/v1/node-state"] = lambda body: (503, {"error": "models loading"}, 0.0)
    sched = ExtenderScheduler(url=ext.url, node_names=ds.nodes["node"].tolist())
    result = simulate(workload, sched, seed=0, config=SimConfig(horizon_s=900.0))
    assert result.placements == 24
    assert sched.counts["push_errors"] >= 1 and sched.counts["pushes"] == 0


def test_view_sums_pod_limits_as_pods_come_and_go() -> None:
    from simulator.types import ClusterView, PodSpec

    view = ClusterView.empty(np.array([8_000, 8_000]), np.array([16 * GIB, 16 * GIB]))
    limited = PodSpec("a", 500, GIB, 2_000, 2 * GIB, 0, "Burstable")
    unlimited = PodSpec("b", 500, GIB, None, None, 0, "Burstable")
    view.bind(limited, 1)
    view.bind(unlimited, 1)
    assert view.lim_cpu.tolist() == [0, 2_000] and view.lim_mem.tolist() == [0, 2 * GIB]
    view.unbind(limited, 1)
    assert view.lim_cpu.tolist() == [0, 0] and view.lim_mem.tolist() == [0, 0]
