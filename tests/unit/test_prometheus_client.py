"""The Prometheus client (chunking, retries, typed errors), the queries file, and
extraction (resume, quality gate) against an in-process fake served by httpx.MockTransport."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import numpy as np
import pandas as pd
import pytest

from components.extract import DataQualityError, extract, quality_report
from hydatis.dataset import load_dataset
from hydatis.errors import ConfigError, HydatisError
from hydatis.prometheus import (
    MAX_POINTS,
    PrometheusClient,
    PrometheusError,
    PrometheusQueryError,
    PrometheusUnavailableError,
    load_queries,
)

URL = "http://prom.test"


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def _matrix(series: list[tuple[dict, list[tuple[float, str]]]]) -> httpx.Response:
    result = [{"metric": m, "values": [[t, v] for t, v in vals]} for m, vals in series]
    return httpx.Response(
        200, json={"status": "success", "data": {"resultType": "matrix", "result": result}}
    )


def _grid_handler(calls: list[dict]):
    """Answers any range query with one series ``{node="a"}`` whose value is the time."""

    def handler(request: httpx.Request) -> httpx.Response:
        f = _form(request)
        calls.append(f)
        start, end, step = float(f["start"]), float(f["end"]), float(f["step"])
        n = round((end - start) / step) + 1
        assert n <= MAX_POINTS
        return _matrix(
            [({"node": "a"}, [(start + i * step, str(start + i * step)) for i in range(n)])]
        )

    return handler


def _client(handler, **kw) -> tuple[PrometheusClient, list[float]]:
    sleeps: list[float] = []
    client = PrometheusClient(
        URL, transport=httpx.MockTransport(handler), sleep=sleeps.append, **kw
    )
    return client, sleeps


@pytest.mark.parametrize(
    ("points", "requests"),
    [(1, 1), (MAX_POINTS, 1), (MAX_POINTS + 1, 2), (30 * 2880 + 1, 8)],
    ids=["one-point", "exactly-the-limit", "one-over-the-limit", "thirty-days-at-30s"],
)
def test_query_range_splits_into_windows_of_at_most_11000_points(points, requests):
    calls: list[dict] = []
    client, _ = _client(_grid_handler(calls))
    start = 1_700_000_000.0
    series = client.query_range("up", start, start + (points - 1) * 30, 30)
    assert len(calls) == requests
    assert len(series) == 1
    ts = series[0].timestamps
    assert ts.size == points  # no point lost, none twice
    np.testing.assert_array_equal(ts, start + 30 * np.arange(points))
    np.testing.assert_array_equal(series[0].values, ts)


def test_values_are_floats_and_nan_stays_nan():
    def handler(request):
        return _matrix([({"pod": "p"}, [(1, "1.5"), (2, "NaN"), (3, "+Inf"), (4, "-2e-3")])])

    client, _ = _client(handler)
    (s,) = client.query_range("x", 1, 4, 1)
    assert s.labels == {"pod": "p"}
    assert s.values[0] == 1.5 and np.isnan(s.values[1]) and np.isposinf(s.values[2])
    assert s.values[3] == pytest.approx(-0.002)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, text="overloaded"),
        httpx.Response(500, json={"status": "error", "errorType": "internal", "error": "boom"}),
        httpx.Response(429, text="slow down"),
        "connect",
    ],
    ids=["503", "500-json", "429", "connection-refused"],
)
def test_transient_failures_are_retried_with_exponential_backoff(failure):
    tries = {"n": 0}

    def handler(request):
        tries["n"] += 1
        if tries["n"] <= 3:
            if failure == "connect":
                raise httpx.ConnectError("refused", request=request)
            return failure
        return _matrix([({"node": "a"}, [(1, "1")])])

    client, sleeps = _client(handler, backoff_s=0.5)
    assert len(client.query_range("up", 1, 1, 1)) == 1
    assert tries["n"] == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_retry_after_is_honoured():
    tries = {"n": 0}

    def handler(request):
        tries["n"] += 1
        if tries["n"] == 1:
            return httpx.Response(429, headers={"Retry-After": "7"})
        return _matrix([])

    client, sleeps = _client(handler, backoff_s=0.5)
    assert client.query_range("up", 1, 1, 1) == []
    assert sleeps == [7.0]


def test_retries_run_out_with_a_typed_error():
    client, sleeps = _client(lambda r: httpx.Response(502, text="bad gateway"), max_retries=2)
    with pytest.raises(PrometheusUnavailableError, match=r"after 3 tries.*HTTP 502") as err:
        client.query_range("up", 1, 2, 1)
    assert err.value.query == "up" and err.value.status == 502
    assert isinstance(err.value, PrometheusError) and isinstance(err.value, HydatisError)
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 422, 404], ids=["bad-query", "unprocessable", "404"])
def test_client_errors_are_not_retried_and_name_the_query(status):
    tries = {"n": 0}

    def handler(request):
        tries["n"] += 1
        return httpx.Response(
            status,
            json={"status": "error", "errorType": "bad_data", "error": "parse error at char 4"},
        )

    client, sleeps = _client(handler)
    with pytest.raises(PrometheusQueryError, match=r"'rate\(up'.*parse error at char 4"):
        client.query_range("rate(up", 1, 2, 1)
    assert tries["n"] == 1 and sleeps == []


def test_constructor_does_no_io_and_bad_ranges_are_rejected():
    def handler(request):
        raise AssertionError("no request expected")

    client, _ = _client(handler)
    with pytest.raises(PrometheusQueryError, match="before start"):
        client.query_range("up", 10, 5, 1)
    with pytest.raises(PrometheusQueryError, match="step"):
        client.query_range("up", 1, 5, 0)


def test_times_accept_datetimes_and_iso_strings():
    calls: list[dict] = []
    client, _ = _client(_grid_handler(calls))
    client.query_range("up", "2024-01-01T00:00:00Z", pd.Timestamp("2024-01-01 00:01", tz="UTC"), 30)
    assert float(calls[0]["start"]) == pd.Timestamp("2024-01-01", tz="UTC").timestamp()
    assert float(calls[0]["end"]) - float(calls[0]["start"]) == 60


# -- the queries file ---------------------------------------------------------------------
def test_default_queries_file_has_one_query_per_column():
    qs = load_queries()
    assert qs.node_label == "node" and qs.pod_label == "pod"
    assert "node_cpu_seconds_total" in qs.section("node_metrics")["cpu_util"].query
    assert set(qs.section("pod_usage")) == {"cpu_used", "mem_used"}
    assert qs.section("pods")["info"].labels["workload"] == "created_by_name"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["node_metrics"].pop("cpu_util"), "'node_metrics.cpu_util' is missing"),
        (lambda d: d.pop("pod_usage"), "section 'pod_usage'"),
        (lambda d: d["nodes"]["mem_gib"].update(query=""), "'nodes.mem_gib.query'"),
        (lambda d: d["nodes"]["mem_gib"].update(step_s=-1), "'nodes.mem_gib.step_s'"),
        (lambda d: d["pods"].update(bogus="x"), "unknown keys in 'pods'"),
        (lambda d: d["pods"]["info"]["labels"].update(color="c"), "'pods.info.labels'"),
        (lambda d: d["node_metrics"]["cpu_util"].update(optional=True), "required"),
    ],
    ids=["missing-column", "missing-section", "empty-query", "negative-step", "unknown-key",
         "unknown-label-column", "required-marked-optional"],
)  # fmt: skip
def test_bad_queries_file_names_the_key(tmp_path, edit, message):
    import yaml

    raw = yaml.safe_load(load_queries().path.read_text())
    edit(raw)
    path = tmp_path / "q.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_queries(path)


def test_unreadable_queries_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_queries(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("a: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_queries(tmp_path / "bad.yaml")


# -- extraction against a fake ------------------------------------------------------------
T0 = 1_704_067_200.0  # 2024-01-01
STEP = 30.0


class FakePrometheus:
    """Answers the default queries for nodes n0 (complete) and n1 (``n1_share`` of the
    points), pod p0 on n0 for the first hour; counts requests."""

    def __init__(self, n1_share: float = 1.0) -> None:
        self.queries = {q.query: q.key for q in load_queries().all()}
        self.n1_share = n1_share
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        f = _form(request)
        key = self.queries[f["query"]]
        start, end, step = float(f["start"]), float(f["end"]), float(f["step"])
        t = start + step * np.arange(round((end - start) / step) + 1)
        series: list[tuple[dict, list]] = []

        def add(labels: dict, times: np.ndarray, values) -> None:
            vals = np.broadcast_to(np.asarray(values, dtype=float), times.shape)
            series.append(
                (labels, [(float(a), repr(float(b))) for a, b in zip(times, vals, strict=True)])
            )

        section, column = key.split(".")
        if section == "node_metrics" and column in ("cpu_util", "mem_util"):
            add({"node": "n0"}, t, 0.25)
            keep = (t - T0) < self.n1_share * 86400 if self.n1_share < 1 else t == t
            add({"node": "n1"}, t[keep], np.where(t[keep] == T0 + 600, np.nan, 0.5))
        elif section == "nodes":
            value = 4.0 if column == "cpu_cores" else 16.0
            add({"node": "n0"}, t, value)
            add({"node": "n1"}, t, value)
        elif key == "pods.info":
            alive = t < T0 + 3600
            add({"pod": "p0", "node": "n0", "created_by_name": "web", "priority": "7"},
                t[alive], t[alive])  # fmt: skip
        elif key in ("pods.cpu_request", "pods.mem_request"):
            alive = t < T0 + 3600 + step
            add({"pod": "p0"}, t[alive], 0.5)
        elif section == "pod_usage":
            alive = t < T0 + 3600 + 300
            add({"pod": "p0"}, t[alive], 0.2)
        return _matrix(series)


def test_extract_writes_dataset_report_and_resumes_from_chunks(tmp_path):
    fake = FakePrometheus()
    client = PrometheusClient(URL, transport=httpx.MockTransport(fake))
    seen: list[tuple[int, int, str]] = []
    ds = extract(URL, start=T0, end=T0 + 86400, out_dir=tmp_path, client=client,
                 chunk_s=6 * 3600, progress=lambda d, n, w: seen.append((d, n, w)))  # fmt: skip
    n_queries = len(load_queries().all())
    assert fake.requests == n_queries * 5  # 4 chunks of 6 h + the final point
    assert seen[-1][:2] == (n_queries * 5, n_queries * 5)
    loaded = load_dataset(tmp_path)
    assert sorted(loaded.nodes["node"]) == ["n0", "n1"]
    pod = loaded.pods.iloc[0]
    assert (pod["pod"], pod["node"], pod["workload"], pod["priority"]) == ("p0", "n0", "web", 7)
    assert pod["start_ts"] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert pod["end_ts"] == pd.Timestamp(T0 + 3600, unit="s", tz="UTC")
    assert pod["cpu_request"] == 0.5
    # Usage is trimmed to the pod's life.
    assert loaded.pod_usage["ts"].max() < pod["end_ts"]
    report = json.loads((tmp_path / "quality.json").read_text())
    n1 = next(e for e in report["nodes"] if e["node"] == "n1")
    assert n1["series"]["cpu_util"]["nan"] == 1 and n1["series"]["cpu_util"]["gaps"] == 1
    assert report["passed"] and (tmp_path / "quality.html").is_file()
    assert len(ds.node_metrics) == 2 * 2881 - 1

    # An interrupted run: drop two chunk files; the rerun fetches exactly those.
    chunks = sorted((tmp_path / "_chunks").glob("*/*.parquet"))
    chunks[0].unlink()
    chunks[7].unlink()
    fake.requests = 0
    again = extract(URL, start=T0, end=T0 + 86400, out_dir=tmp_path, client=client,
                    chunk_s=6 * 3600)  # fmt: skip
    assert fake.requests == 2
    pd.testing.assert_frame_equal(again.node_metrics, ds.node_metrics)


def test_extract_fails_naming_the_worst_node_and_series(tmp_path):
    client = PrometheusClient(URL, transport=httpx.MockTransport(FakePrometheus(n1_share=0.8)))
    with pytest.raises(
        DataQualityError, match=r"79\.9% for node 'n1' series 'cpu_util'.*95\.0%"
    ) as err:
        extract(URL, start=T0, end=T0 + 86400, out_dir=tmp_path, client=client)
    assert err.value.node == "n1" and err.value.completeness == pytest.approx(0.8, abs=1e-3)
    assert (tmp_path / "quality.json").is_file()
    assert not (tmp_path / "nodes.parquet").exists()
    # A lower threshold lets the same data through.
    extract(URL, start=T0, end=T0 + 86400, out_dir=tmp_path, client=client, min_completeness=0.5)


@pytest.mark.parametrize(
    ("ts", "values", "completeness", "gaps", "nan"),
    [
        ([0, 30, 60, 90], [1, 1, 1, 1], 1.0, 0, 0),
        ([0, 90], [1, 1], 0.5, 1, 0),
        ([0, 30, 60, 90], [1, np.nan, 1, np.nan], 0.5, 2, 2),
        ([], [], 0.0, 1, 0),
    ],
    ids=["complete", "one-gap", "nan-metric", "empty-node"],
)
def test_quality_report_counts(ts, values, completeness, gaps, nan):
    frame = pd.DataFrame(
        {"ts": np.asarray(ts, float), "node": "a", "value": np.asarray(values, float)}
    )
    rep = quality_report({"cpu_util": frame}, nodes=["a"], start=0, end=90, step_s=30)
    s = rep["nodes"][0]["series"]["cpu_util"]
    assert (s["completeness"], s["gaps"], s["nan"]) == (completeness, gaps, nan)
    assert rep["passed"] == (completeness >= 0.95)
