"""The remediation webhook's bearer token, on the real Starlette app in-process: which
requests get through, what a refusal looks like, the token from the environment or from
a (rotating) file, and the settings that are refused. Alertmanager sending the token from
its ``credentials_file``: tests/integration/test_alertmanager_webhook_auth.py."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from hydatis.errors import ConfigError
from monitoring.remediation.app import build_app, build_remediator, expected_token
from monitoring.remediation.config import RemediationConfig, load_config
from tests.unit.test_remediation_service import alert, notification

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "s3cr3t-token-0123456789abcdef"
ONE_ALERT = notification(alert("Other"))  # an alert remediation takes no action on


def client_for(tmp_path: Path, **settings: Any) -> TestClient:
    cfg = RemediationConfig(audit_log=tmp_path / "audit.jsonl", **settings)
    return TestClient(build_app(cfg, remediator=build_remediator(cfg)))


def audit_lines(tmp_path: Path) -> int:
    path = tmp_path / "audit.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(params=["env", "file"])
def token_settings(request, tmp_path) -> dict[str, Any]:
    """The same token given both ways the service reads it."""
    if request.param == "env":
        return {"webhook_token": TOKEN}
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")  # as `kubectl create secret --from-file` often leaves it
    return {"webhook_token_file": path}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": TOKEN}, 401),
        ({"Authorization": f"Basic {TOKEN}"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, 401),
        ({"Authorization": f"Bearer {TOKEN}x"}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        ({"Authorization": f"bearer {TOKEN}"}, 200),
    ],
    ids=[
        "no-header",
        "no-scheme",
        "basic-scheme",
        "empty-bearer",
        "wrong-token",
        "prefix-of-token",
        "token-plus-suffix",
        "right-token",
        "scheme-case-insensitive",
    ],
)
def test_webhook_needs_the_bearer_token(tmp_path, token_settings, headers, status):
    with client_for(tmp_path, **token_settings) as client:
        resp = client.post("/v1/alerts", json=ONE_ALERT, headers=headers)
        assert resp.status_code == status, resp.text
        if status == 401:
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert TOKEN not in resp.text
            assert audit_lines(tmp_path) == 0, "a refused request reached the decisions"
        else:
            assert resp.json()["decisions"] and audit_lines(tmp_path) == 1


def test_audit_records_are_behind_the_token_too(tmp_path, token_settings):
    with client_for(tmp_path, **token_settings) as client:
        assert client.get("/v1/audit").status_code == 401
        ok = client.get("/v1/audit", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json() == {"records": []}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_and_metrics_stay_open(tmp_path, token_settings, path):
    with client_for(tmp_path, **token_settings) as client:
        assert client.get(path).status_code == 200


def test_refusals_are_counted_and_never_echo_the_token(tmp_path, caplog):
    with client_for(tmp_path, webhook_token=TOKEN) as client:
        for _ in range(3):
            client.post("/v1/alerts", json=ONE_ALERT, headers={"Authorization": "Bearer x"})
        metrics = client.get("/metrics").text
    assert 'hydatis_remediation_webhook_requests_total{code="401"} 3.0' in metrics
    assert TOKEN not in caplog.text


def test_without_a_token_the_webhook_is_open(tmp_path):
    with client_for(tmp_path) as client:
        assert client.post("/v1/alerts", json=ONE_ALERT).status_code == 200


def test_a_rotated_token_file_takes_effect_without_a_restart(tmp_path):
    path = tmp_path / "token"
    path.write_text("old-token")
    with client_for(tmp_path, webhook_token_file=path) as client:
        old = {"Authorization": "Bearer old-token"}
        assert client.post("/v1/alerts", json=ONE_ALERT, headers=old).status_code == 200
        path.write_text("new-token")
        assert client.post("/v1/alerts", json=ONE_ALERT, headers=old).status_code == 401
        new = {"Authorization": "Bearer new-token"}
        assert client.post("/v1/alerts", json=ONE_ALERT, headers=new).status_code == 200


def test_a_token_file_gone_after_start_answers_503(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    with client_for(tmp_path, webhook_token_file=path) as client:
        path.unlink()
        resp = client.post(
            "/v1/alerts", json=ONE_ALERT, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert resp.status_code == 503 and TOKEN not in resp.text


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "cannot be read"), ("  \n", "is empty")],
    ids=["missing", "blank"],
)
def test_an_unusable_token_file_stops_the_start(tmp_path, content, reason):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=f"webhook_token_file: .*token {reason}"):
        expected_token(RemediationConfig(webhook_token_file=path))
    with pytest.raises(ConfigError, match="webhook_token_file"):  # noqa: SIM117
        with client_for(tmp_path, webhook_token_file=path):
            pass


def test_token_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDATIS_REMEDIATION_WEBHOOK_TOKEN", TOKEN)
    cfg = load_config()
    assert expected_token(cfg) == TOKEN.encode()
    assert TOKEN not in repr(cfg), "the token would be printed with the settings"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"webhook_token": TOKEN, "webhook_token_file": "/x"}, "not both"),
        ({"webhook_token": "  "}, "webhook_token is empty"),
    ],
    ids=["both-sources", "blank-token"],
)
def test_bad_token_settings_are_refused(tmp_path, settings, message):
    path = tmp_path / "remediation.yaml"
    path.write_text("".join(f"{k}: '{v}'\n" for k, v in settings.items()))
    with pytest.raises(ConfigError, match=message):
        load_config(path)
