"""The remediation service's cluster manifests (infra/prometheus/remediation.yaml) agree with
the code: its settings load, RBAC grants exactly the API calls monitoring/remediation/kube.py
makes, and the Deployment runs the service on the port its Service and NetworkPolicy name.
Alertmanager's configuration with the webhook's bearer token
(infra/prometheus/alertmanager-auth-patch.yaml) is the render plus ``http_config`` only,
reads the Secret the Deployment mounts, and passes ``amtool check-config``.
(Schemas and hardening: tests/unit/test_infra_manifests.py covers every manifest in infra/.)"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

from monitoring.alerts.render import alertmanager_config
from monitoring.remediation.config import DEFAULT_PORT, load_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    d for d in yaml.safe_load_all((ROOT / "infra/prometheus/remediation.yaml").read_text()) if d
]


def find(kind: str, name: str | None = None) -> dict:
    hits = [d for d in DOCS if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(hits) == 1, f"{kind} {name}: {len(hits)} found"
    return hits[0]


def test_settings_load_and_are_safe(tmp_path: Path) -> None:
    text = find("ConfigMap", "hydatis-remediation-config")["data"]["remediation.yaml"]
    path = tmp_path / "remediation.yaml"
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.dry_run is True
    assert cfg.kube_api == "incluster"
    assert cfg.port == DEFAULT_PORT
    assert "kube-system" in cfg.protected_namespaces
    # The webhook is authenticated, with a token from a mounted Secret (no value here).
    assert cfg.webhook_token is None and cfg.webhook_token_file is not None
    dep = find("Deployment")["spec"]["template"]["spec"]
    (ctr,) = dep["containers"]
    token = PurePosixPath(str(cfg.webhook_token_file))
    (mount,) = [m for m in ctr["volumeMounts"] if PurePosixPath(m["mountPath"]) == token.parent]
    assert mount["readOnly"] is True
    (volume,) = [v for v in dep["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == TOKEN_SECRET
    assert volume["secret"]["items"] == [{"key": "token", "path": token.name}]


def test_rbac_grants_exactly_the_calls_made() -> None:
    cluster = {
        (tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"])
        for r in find("ClusterRole")["rules"]
    }
    assert cluster == {
        (("",), ("nodes",)): {"get", "list", "patch"},
        (("",), ("pods",)): {"list"},
        (("",), ("pods/eviction",)): {"create"},
        (("policy",), ("poddisruptionbudgets",)): {"list"},
    }
    role = find("Role")["rules"]
    assert {(r["resources"][0], tuple(r["resourceNames"])) for r in role} == {
        ("configmaps", ("hydatis-shim-config",)),
        ("deployments", ("hydatis-shim",)),
    }
    assert all(set(r["verbs"]) == {"get", "patch"} for r in role)
    for binding in (find("ClusterRoleBinding"), find("RoleBinding")):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "hydatis-remediation", "namespace": "hydatis-system"}
        ]


def test_deployment_service_and_policy_agree() -> None:
    dep = find("Deployment")
    spec = dep["spec"]["template"]["spec"]
    (ctr,) = spec["containers"]
    assert ctr["command"][:3] == ["python", "-m", "monitoring.remediation"]
    assert spec["serviceAccountName"] == "hydatis-remediation"
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    port = ctr["ports"][0]["containerPort"]
    assert port == DEFAULT_PORT
    svc = find("Service")
    assert svc["spec"]["ports"][0]["port"] == port
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    policy = find("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= svc["spec"]["selector"].items() | {
        ("app.kubernetes.io/component", "remediation")
    }
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": port}]
    sources = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in ingress["from"]}
    assert sources == {"alertmanager", "prometheus"}
    from monitoring.alerts.render import DEFAULT_WEBHOOK_URL

    assert (
        f"http://{svc['metadata']['name']}.hydatis-system.svc:{port}/v1/alerts"
        == DEFAULT_WEBHOOK_URL
    )


TOKEN_SECRET = "hydatis-remediation-webhook-token"
PATCH = ROOT / "infra/prometheus/alertmanager-auth-patch.yaml"


def _patched_alertmanager() -> dict:
    (doc,) = [d for d in yaml.safe_load_all(PATCH.read_text()) if d]
    assert (doc["kind"], doc["metadata"]["name"]) == ("ConfigMap", "hydatis-alertmanager-config")
    return yaml.safe_load(doc["data"]["alertmanager.yml"])


def test_alertmanager_patch_is_the_render_plus_the_webhook_token() -> None:
    patched = _patched_alertmanager()
    expected = copy.deepcopy(alertmanager_config())
    (receiver,) = [r for r in expected["receivers"] if r.get("webhook_configs")]
    (webhook,) = receiver["webhook_configs"]
    webhook["http_config"] = {
        "authorization": {
            "type": "Bearer",
            "credentials_file": f"/etc/alertmanager/secrets/{TOKEN_SECRET}/token",
        }
    }
    assert patched == expected, "regenerate the patch from monitoring/alerts/render.py"


def test_alertmanager_token_is_never_inline() -> None:
    text = PATCH.read_text()
    assert "credentials:" not in text and "bearer_token:" not in text


def test_kustomization_applies_the_patch() -> None:
    (k,) = yaml.safe_load_all((ROOT / "infra/prometheus/kustomization.yaml").read_text())
    assert {"path": PATCH.name} in k["patches"]


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not on PATH")
def test_amtool_accepts_the_patched_configuration(tmp_path: Path) -> None:
    cfg = _patched_alertmanager()
    token = tmp_path / "token"
    token.write_text("t")
    (receiver,) = [r for r in cfg["receivers"] if r.get("webhook_configs")]
    receiver["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"] = str(token)
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        ["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
