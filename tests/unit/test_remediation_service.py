"""The remediation service's HTTP face and decision core, in-process: bad payloads get 400
with the reason, repeated deliveries do nothing twice (also after a restart), the rate
limit holds, Prometheus unreachable gives a named 503 and a later retry, every decision is
audited, and /metrics counts actions by kind and result."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from hydatis.errors import ConfigError
from monitoring.remediation.app import build_app, build_remediator
from monitoring.remediation.config import RemediationConfig, load_config
from monitoring.remediation.errors import BadPayloadError
from monitoring.remediation.payload import parse_notification

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def alert(name: str, *, fingerprint: str = "fp1", status: str = "firing", **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": "warning", **labels},
        "annotations": {"summary": "s"},
        "startsAt": "2023-11-14T22:00:00.5Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict) -> dict:
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "hydatis-remediation",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


@pytest.fixture
def shim_file(tmp_path: Path) -> Path:
    path = tmp_path / "shim.yaml"
    path.write_text("source: push\nmode: active\nrollout_percent: 100\n")
    return path


def make(tmp_path: Path, clock: Clock | None = None, **settings: Any) -> tuple[TestClient, Any]:
    cfg = RemediationConfig(audit_log=tmp_path / "audit.jsonl", **settings)
    rem = build_remediator(cfg, clock=clock or Clock())
    return TestClient(build_app(cfg, remediator=rem)), rem


def audit(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "body: empty request body"),
        (b"{not json", "body: not valid JSON"),
        (b"[]", "body: expected a JSON object, got list"),
        (json.dumps({"version": "3", "alerts": []}).encode(), "version: expected Alertmanager"),
        (json.dumps({"version": "4"}).encode(), "alerts: missing or not a list"),
        (json.dumps({"version": "4", "alerts": []}).encode(), "alerts: empty"),
        (
            json.dumps({"alerts": [{"status": "firing"}]}).encode(),
            "alerts[0].labels.alertname: missing",
        ),
        (
            json.dumps({"alerts": [{**alert("X"), "status": "pending"}]}).encode(),
            "alerts[0].status: expected 'firing' or 'resolved'",
        ),
        (
            json.dumps({"alerts": [alert("X"), {**alert("Y"), "startsAt": "yesterday"}]}).encode(),
            "alerts[1].startsAt: not an RFC 3339 time",
        ),
        (
            json.dumps({"alerts": [{**alert("X"), "labels": {"alertname": "X", "n": 3}}]}).encode(),
            "alerts[0].labels.n: expected a string",
        ),
    ],
    ids=[
        "empty",
        "not-json",
        "not-an-object",
        "wrong-version",
        "no-alerts",
        "zero-alerts",
        "no-alertname",
        "bad-status",
        "bad-time-in-second-alert",
        "label-not-a-string",
    ],
)
def test_malformed_payload_is_400_with_the_reason(tmp_path: Path, body: bytes, reason: str) -> None:
    client, _ = make(tmp_path)
    with client:
        resp = client.post("/v1/alerts", content=body)
        assert resp.status_code == 400
        assert resp.json()["error"].startswith(reason)
        assert client.get("/healthz").status_code == 200
        assert 'hydatis_remediation_webhook_requests_total{code="400"} 1.0' in (
            client.get("/metrics").text
        )
    assert not (tmp_path / "audit.jsonl").exists()  # nothing half-handled


def test_nanosecond_times_and_a_missing_fingerprint_parse() -> None:
    raw = alert("HydatisNodeCPUHot", node="n1")
    raw.pop("fingerprint")
    raw["startsAt"] = "2023-11-14T22:00:00.123456789+02:00"
    got = parse_notification({"alerts": [raw]}).alerts[0]
    assert got.starts_at == pytest.approx(1_699_992_000.123456)
    assert len(got.fingerprint) == 16
    with pytest.raises(BadPayloadError, match=r"alerts\[0\]\.fingerprint"):
        parse_notification({"alerts": [{**raw, "fingerprint": 7}]})


def test_repeated_delivery_acts_once_also_after_a_restart(tmp_path: Path, shim_file: Path) -> None:
    settings = {"extender_target": "file", "extender_config_file": shim_file, "dry_run": False}
    body = notification(alert("HydatisExtenderFallbackHigh"))
    client, _ = make(tmp_path, **settings)
    with client:
        first = client.post("/v1/alerts", json=body).json()["decisions"][0]
        again = client.post("/v1/alerts", json=body).json()["decisions"][0]
    assert (first["action"], first["result"]) == ("rollout_lower", "done")
    assert again["result"] == "duplicate"
    assert yaml.safe_load(shim_file.read_text())["rollout_percent"] == 50.0
    client, _ = make(tmp_path, **settings)  # a restarted service reads its audit log
    with client:
        third = client.post("/v1/alerts", json=body).json()["decisions"][0]
    assert third["result"] == "duplicate"
    assert yaml.safe_load(shim_file.read_text())["rollout_percent"] == 50.0
    records = audit(tmp_path)
    assert [r["result"] for r in records] == ["done", "duplicate", "duplicate"]
    assert records[0]["reason"] == "set rollout_percent 100.0 -> 50.0"
    assert records[0]["details"]["after"] == {"mode": "active", "rollout_percent": 50.0}
    # a new incident of the same alert (a later startsAt) is a new decision
    later = notification(
        {**alert("HydatisExtenderFallbackHigh"), "startsAt": "2023-11-15T01:00:00Z"}
    )
    client, _ = make(tmp_path, **settings)
    with client:
        fourth = client.post("/v1/alerts", json=later).json()["decisions"][0]
    assert fourth["result"] == "done"
    assert yaml.safe_load(shim_file.read_text())["rollout_percent"] == 25.0


def test_dry_run_is_the_default_and_changes_nothing(tmp_path: Path, shim_file: Path) -> None:
    client, _ = make(tmp_path, extender_target="file", extender_config_file=shim_file)
    before = shim_file.read_text()
    with client:
        decision = client.post(
            "/v1/alerts", json=notification(alert("HydatisModelServerDown", model="m"))
        ).json()["decisions"][0]
        metrics = client.get("/metrics").text
    assert (decision["action"], decision["result"]) == ("extender_fallback", "dry_run")
    assert decision["reason"] == "would set mode active -> shadow"
    assert shim_file.read_text() == before
    assert audit(tmp_path)[0]["dry_run"] is True
    assert "hydatis_remediation_dry_run 1.0" in metrics
    assert (
        'hydatis_remediation_actions_total{action="extender_fallback",result="dry_run"} 1.0'
        in metrics
    )


@pytest.mark.parametrize(
    ("raw", "action", "result", "reason"),
    [
        (
            alert("SomebodyElsesAlert"),
            "none",
            "ignored",
            "SomebodyElsesAlert is not a HYDATIS alert",
        ),
        (alert("HydatisExtenderDown"), "notify", "noop", "no automatic action: see the runbook"),
        (alert("HydatisNodeCPUHot"), "cordon_drain", "refused", "the alert has no 'node' label"),
        (
            alert("HydatisNodeCPUHot", node="n1"),
            "cordon_drain",
            "refused",
            "no Kubernetes API configured",
        ),
        (
            alert("HydatisNodeCPUHot", node="n1", status="resolved"),
            "cordon_drain",
            "resolved",
            "the alert resolved; nothing to undo automatically",
        ),
        (
            alert("HydatisExtenderFallbackHigh"),
            "rollout_lower",
            "refused",
            "no Kubernetes API configured",
        ),
        (
            alert("HydatisDriftDetected", kind="data"),
            "retrain",
            "dry_run",
            "would run: hydatis pipeline run training",
        ),
    ],
    ids=[
        "not-ours",
        "notify-only",
        "missing-node-label",
        "no-cluster",
        "resolved",
        "extender-without-cluster",
        "retrain-dry-run",
    ],
)
def test_decision_table(tmp_path: Path, raw: dict, action: str, result: str, reason: str) -> None:
    client, _ = make(tmp_path)
    with client:
        decision = client.post("/v1/alerts", json=notification(raw)).json()["decisions"][0]
    assert (decision["action"], decision["result"], decision["reason"]) == (action, result, reason)
    record = audit(tmp_path)[0]
    assert record["alert"] == raw["labels"]["alertname"]
    assert record["labels"] == raw["labels"]
    assert {"time", "key", "target", "details", "status"} <= set(record)


def test_rate_limit_defers_then_allows(tmp_path: Path, shim_file: Path) -> None:
    clock = Clock()
    client, _ = make(
        tmp_path,
        clock,
        extender_target="file",
        extender_config_file=shim_file,
        dry_run=False,
        rate_limit_actions=2,
        rate_limit_window_s=600,
    )
    with client:

        def send(fp: str) -> dict:
            body = notification(alert("HydatisModelLatencyHigh", model=fp, fingerprint=fp))
            return client.post("/v1/alerts", json=body).json()["decisions"][0]

        assert [send(f"m{i}")["result"] for i in range(3)] == ["done", "done", "rate_limited"]
        assert "next in 600 s" in send("m2")["reason"]  # not marked handled: tried again
        clock.t += 601
        assert send("m2")["result"] == "done"
    assert yaml.safe_load(shim_file.read_text())["rollout_percent"] == 12.0


def test_prometheus_unreachable_is_a_named_503_and_retried(tmp_path: Path) -> None:
    client, rem = make(
        tmp_path,
        prometheus_url="http://127.0.0.1:9",
        prometheus_retries=1,
        prometheus_timeout_s=1,
    )
    rem.prometheus.backoff_s = 0.01
    body = notification(alert("HydatisNodeAnomalous", node="n1"))
    with client:
        for _ in range(2):  # nothing marked handled: the next delivery tries again
            resp = client.post("/v1/alerts", json=body)
            assert resp.status_code == 503
            assert resp.headers["Retry-After"] == "30"
            assert resp.json()["error"].startswith("PrometheusUnavailable: Prometheus at")
        assert client.get("/healthz").json() == {"status": "ok"}
        metrics = client.get("/metrics").text
    assert 'hydatis_remediation_errors_total{error="PrometheusUnavailable"} 2.0' in metrics
    assert [r["result"] for r in audit(tmp_path)] == ["error", "error"]


def test_audit_endpoint_returns_the_latest_records(tmp_path: Path) -> None:
    client, _ = make(tmp_path)
    with client:
        for i in range(3):
            client.post("/v1/alerts", json=notification(alert("Other", fingerprint=f"f{i}")))
        records = client.get("/v1/audit", params={"limit": 2}).json()["records"]
        assert client.get("/v1/audit", params={"limit": "x"}).status_code == 400
    assert [r["key"].split("/")[0] for r in records] == ["f1", "f2"]


def test_retrain_respects_its_interval(tmp_path: Path) -> None:
    clock = Clock()
    marker = tmp_path / "ran"
    cmd = ["python", "-c", f"open({str(marker)!r}, 'a').write('x')"]
    client, rem = make(tmp_path, clock, dry_run=False, retrain_command=cmd)
    with client:
        first = client.post(
            "/v1/alerts", json=notification(alert("HydatisDriftDetected", kind="data"))
        ).json()["decisions"][0]
        rem.retrain.process.wait(timeout=30)
        second = client.post(
            "/v1/alerts",
            json=notification(alert("HydatisDriftDetected", kind="target", fingerprint="f2")),
        ).json()["decisions"][0]
    assert first["result"] == "done" and "started (pid" in first["reason"]
    assert second["result"] == "noop" and "at most once every 6.0 h" in second["reason"]
    assert marker.read_text() == "x"
    # the interval survives a restart (read back from the audit log)
    client, rem = make(tmp_path, clock, dry_run=False, retrain_command=cmd)
    with client:
        third = client.post(
            "/v1/alerts",
            json=notification(alert("HydatisDriftDetected", kind="prediction", fingerprint="f3")),
        ).json()["decisions"][0]
    assert third["result"] == "noop"


def test_retrain_command_missing_is_failed_not_final(tmp_path: Path) -> None:
    client, _ = make(tmp_path, dry_run=False, retrain_command=["no-such-hydatis-command"])
    body = notification(alert("HydatisDriftDetected", kind="data"))
    with client:
        results = [client.post("/v1/alerts", json=body).json()["decisions"][0] for _ in range(2)]
    assert [d["result"] for d in results] == ["failed", "failed"]
    assert "cannot start no-such-hydatis-command" in results[0]["reason"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kube_api": "cluster"}, "kube_api: Value error, must be 'incluster'"),
        ({"max_cordoned_share": 2}, "max_cordoned_share: Input should be less than or equal to 1"),
        ({"retrain_command": []}, "retrain_command: Value error, must be a non-empty list"),
        ({"dryrun": True}, "dryrun: Extra inputs are not permitted"),
    ],
    ids=["bad-kube-api", "share-above-one", "empty-command", "typo-key"],
)
def test_config_errors_name_the_key(tmp_path: Path, settings: dict, message: str) -> None:
    path = tmp_path / "remediation.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: {message}")
