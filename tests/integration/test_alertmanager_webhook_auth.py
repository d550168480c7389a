"""Alertmanager authenticates to the remediation webhook with the deployed configuration:
a real Alertmanager runs the ``alertmanager.yml`` of infra/prometheus/
alertmanager-auth-patch.yaml (only the webhook URL pointed at loopback and the
``credentials_file`` at a token file made here), the remediation service runs as its own
process with ``webhook_token_file`` naming the same file, and an alert posted to
Alertmanager's API reaches the service and is decided on.

An Alertmanager with the rendered configuration but no ``http_config`` (what the
configuration was before) delivers too, and is refused: the service counts a 401 and
its audit log never sees that alert.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.servers import free_port, running_process

BINARY = "prometheus-alertmanager"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which(BINARY) is None,
        reason="needs prometheus-alertmanager on PATH (Debian: apt-get install "
        "prometheus-alertmanager)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
PATCH = ROOT / "infra" / "prometheus" / "alertmanager-auth-patch.yaml"
TOKEN = "integration-token-5f1c2a"


def deployed_config() -> dict:
    (doc,) = [d for d in yaml.safe_load_all(PATCH.read_text()) if d]
    return yaml.safe_load(doc["data"]["alertmanager.yml"])


def loopback_config(webhook_url: str, credentials_file: Path | None) -> dict:
    """The deployed configuration, pointed at loopback, with fast grouping."""
    cfg = copy.deepcopy(deployed_config())
    cfg["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    (receiver,) = [r for r in cfg["receivers"] if r.get("webhook_configs")]
    (webhook,) = receiver["webhook_configs"]
    webhook["url"] = webhook_url
    if credentials_file is None:
        del webhook["http_config"]
    else:
        webhook["http_config"]["authorization"]["credentials_file"] = str(credentials_file)
    return cfg


def _webhook_count(metrics_text: str, code: str) -> float:
    prefix = f'hydatis_remediation_webhook_requests_total{{code="{code}"}} '
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def _wait(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _post_alert(am_url: str, name: str) -> None:
    alert = {
        "labels": {"alertname": name, "severity": "warning", "node": "node-1"},
        "annotations": {"summary": "auth test"},
    }
    resp = httpx.post(f"{am_url}/api/v2/alerts", json=[alert], timeout=5.0)
    assert resp.status_code == 200, resp.text


def _alertmanager(tmp: Path, name: str, cfg: dict):
    port = free_port()
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    argv = [
        BINARY,
        f"--config.file={path}",
        f"--storage.path={tmp / name}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    url = f"http://127.0.0.1:{port}"
    return running_process(
        argv, ready_url=f"{url}/-/ready", url=url, port=port, log=tmp / f"{name}.log"
    )


def test_alertmanager_sends_the_token_from_its_credentials_file(tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    audit = tmp_path / "audit.jsonl"
    settings = tmp_path / "remediation.yaml"
    settings.write_text(f"webhook_token_file: {token_file}\ndry_run: true\n")
    rem_port = free_port()
    rem_url = f"http://127.0.0.1:{rem_port}"
    remediation = [
        sys.executable,
        "-m",
        "monitoring.remediation",
        "--config",
        str(settings),
        "--port",
        str(rem_port),
        "--audit-log",
        str(audit),
    ]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    webhook = f"{rem_url}/v1/alerts"
    with (
        running_process(
            remediation,
            ready_url=f"{rem_url}/readyz",
            url=rem_url,
            port=rem_port,
            log=tmp_path / "remediation.log",
            timeout=60,
        ),
        _alertmanager(tmp_path, "am-token", loopback_config(webhook, token_file)) as with_token,
        _alertmanager(tmp_path, "am-none", loopback_config(webhook, None)) as without_token,
    ):
        # Without the token first: the delivery is refused and nothing is decided.
        _post_alert(without_token.url, "HydatisAuthNoToken")
        _wait(
            lambda: _webhook_count(httpx.get(f"{rem_url}/metrics").text, "401") >= 1,
            "the token-less delivery to be refused",
        )
        # With the token: delivered, decided, audited.
        _post_alert(with_token.url, "HydatisAuthWithToken")
        _wait(
            lambda: _webhook_count(httpx.get(f"{rem_url}/metrics").text, "200") >= 1,
            "the authenticated delivery to be accepted",
        )
        records = httpx.get(
            f"{rem_url}/v1/audit", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()["records"]
        alerts = {r["alert"] for r in records}
        assert "HydatisAuthWithToken" in alerts
        assert "HydatisAuthNoToken" not in alerts
        assert httpx.get(f"{rem_url}/v1/audit").status_code == 401
    assert TOKEN not in (tmp_path / "remediation.log").read_text()
