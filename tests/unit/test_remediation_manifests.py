"""The remediation service's cluster manifests (infra/prometheus/remediation.yaml) agree with
the code: its settings load, RBAC grants exactly the API calls monitoring/remediation/kube.py
makes, and the Deployment runs the service on the port its Service and NetworkPolicy name.
(Schemas and hardening: tests/unit/test_infra_manifests.py covers every manifest in infra/.)"""

from __future__ import annotations

from pathlib import Path

import yaml

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


def test_rbac_grants_exactly_the_calls_made() -> None:
    cluster = {
        (tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"])
        for r in find("ClusterRole")["rules"]
    }
    assert cluster == {
        (("",), ("nodes",)): {"get", "list", "patch"},
        (("",), ("pods",)): {"get", "list"},
        (("",), ("pods/eviction",)): {"create"},
        (("policy",), ("poddisruptionbudgets",)): {"get", "list"},
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
    policy = find("NetworkPolicy")
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": port}]}]
    from monitoring.alerts.render import DEFAULT_WEBHOOK_URL

    assert (
        f"http://{svc['metadata']['name']}.hydatis-system.svc:{port}/v1/alerts"
        == DEFAULT_WEBHOOK_URL
    )
