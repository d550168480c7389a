"""Offline checks of every Kubernetes manifest under infra/.

Built-in kinds are validated against the Kubernetes 1.30 OpenAPI schemas
(``kubernetes_validate``, strict: no unknown fields). Kinds with no schema there are
checked field by field: the KubeSchedulerConfiguration embedded in its ConfigMap, the
KServe InferenceServices and Katib Experiments. Then the cross-references a cluster would
only reveal at run time: the extender URL against the shim's Service, the shim's settings
against the extender's keys and the InferenceServices' names, every Deployment against
the hardening rules. ``kubectl kustomize`` (when kubectl is on the PATH) builds the base,
each overlay (dev, staging, prod) and infra/prometheus, and the rendered objects go
through the same checks, plus, per overlay: replicas, resources, rollout share and log
level; high availability (leader election, anti-affinity, disruption budgets, model
server replicas); the prod overlay's TLS between scheduler and extender; the network
policy graph (default deny, then exactly the allowed edges); one ServiceAccount per
component; no secret values anywhere. RBAC: tests/unit/test_rbac.py.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from operations.manifests import (
    CLUSTER_SCOPED,
    CUSTOM_KINDS,
    NAMESPACE,
    custom_kind_problems,
    go_duration_seconds,
    pod_spec_problems,
    schema_problem,
    writable_path_problems,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BASE = INFRA / "base"
OVERLAYS = ("dev", "staging", "prod")
ISVC_FILE = BASE / "inferenceservices.yaml"

# Contract between the parts (scheduler side and shim settings).
SCHEDULER_NAME = "ml-scheduler"
SHIM_SERVICE, SHIM_PORT = "hydatis-shim", 8888
EXTENDER = {
    "urlPrefix": f"http://{SHIM_SERVICE}.{NAMESPACE}.svc:{SHIM_PORT}",
    "filterVerb": "filter",
    "prioritizeVerb": "prioritize",
    "weight": 5,
    "nodeCacheCapable": True,
    "ignorable": True,
    "httpTimeout": "500ms",
    "enableHTTPS": False,
}
SHIM_KEYS = {
    "host", "port", "source", "refresh_interval_s", "stale_after_s", "deadline_s",
    "model_timeout_s", "agent_timeout_s", "load_url", "anomaly_url", "agent_url", "weights",
    "target", "hot_threshold", "filter_anomalous", "mode", "rollout_percent", "redis_url",
    "reporting_interval_s",
}  # fmt: skip
MODEL_URL_KEYS = {
    "load_url": "hydatis-load-predictor",
    "anomaly_url": "hydatis-anomaly-detector",
    "agent_url": "hydatis-placement-agent",
}
IMAGE_REPOSITORY = "ghcr.io/hydatis/ml-scheduler"

# kubescheduler.config.k8s.io/v1 fields (the v1 config API reference).
KSC_FIELDS = {
    "apiVersion", "kind", "parallelism", "leaderElection", "clientConnection",
    "enableProfiling", "enableContentionProfiling", "percentageOfNodesToScore",
    "podInitialBackoffSeconds", "podMaxBackoffSeconds", "profiles", "extenders",
    "delayCacheUntilActive",
}  # fmt: skip
PROFILE_FIELDS = {"schedulerName", "percentageOfNodesToScore", "plugins", "pluginConfig"}
EXTENDER_FIELDS = {
    "urlPrefix", "filterVerb", "preemptVerb", "prioritizeVerb", "weight", "bindVerb",
    "enableHTTPS", "tlsConfig", "httpTimeout", "nodeCacheCapable", "managedResources",
    "ignorable",
}  # fmt: skip
LEADER_ELECTION_FIELDS = {
    "leaderElect", "leaseDuration", "renewDeadline", "retryPeriod", "resourceLock",
    "resourceName", "resourceNamespace",
}  # fmt: skip

# The one object that must live outside hydatis-system (the Role it binds is there).
KUBE_SYSTEM_OBJECTS = {
    ("RoleBinding", "hydatis-ml-scheduler-extension-apiserver-authentication-reader"),
}
FORBIDDEN_ROLES = {"cluster-admin", "admin", "edit"}


# --- loading -------------------------------------------------------------------------


def _docs(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _kustomization_files() -> list[Path]:
    return sorted(INFRA.rglob("kustomization.yaml"))


def _references() -> tuple[set[Path], set[Path], set[Path]]:
    """(resource files, resource directories, patch files) named by the kustomizations."""
    files: set[Path] = set()
    dirs: set[Path] = set()
    patches: set[Path] = set()
    for kfile in _kustomization_files():
        (k,) = _docs(kfile)
        for ref in k.get("resources", []):
            target = (kfile.parent / ref).resolve()
            (dirs if target.is_dir() or not target.suffix else files).add(target)
        for patch in k.get("patches", []):
            if "path" in patch:
                patches.add((kfile.parent / patch["path"]).resolve())
    return files, dirs, patches


RESOURCE_FILES, RESOURCE_DIRS, PATCH_FILES = _references()
YAML_FILES = sorted(p.resolve() for p in INFRA.rglob("*.y*ml"))
MANIFEST_FILES = sorted(p for p in RESOURCE_FILES if p.exists())
MANIFESTS = [(path, doc) for path in MANIFEST_FILES for doc in _docs(path)]


def _manifest_id(item: tuple[Path, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path.name}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def _find(kind: str, name: str, docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    pool = docs if docs is not None else [d for _, d in MANIFESTS]
    found = [d for d in pool if d.get("kind") == kind and d["metadata"].get("name") == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def _of_kind(kind: str, docs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    pool = docs if docs is not None else [d for _, d in MANIFESTS]
    return [d for d in pool if d.get("kind") == kind]


def _embedded(configmap: str, key: str) -> dict[str, Any]:
    data = _find("ConfigMap", configmap)["data"]
    assert key in data, f"ConfigMap {configmap} has no key {key!r}"
    parsed = yaml.safe_load(data[key])
    assert isinstance(parsed, dict), f"{configmap}/{key} is not a mapping"
    return parsed


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


# --- Go durations (metav1.Duration) ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("1m30s", 90.0), ("1.5s", 1.5), ("250us", 250e-6), ("0", 0.0)],
    ids=["millis", "compound", "fraction", "micros", "bare-zero"],
)
def test_go_duration_parses(text, seconds):
    assert go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["500", "", "5 s", "ms", "1d", 0.5, "500msx"],
    ids=["no-unit", "empty", "space", "no-number", "days-unit", "not-a-string", "trailing"],
)
def test_go_duration_rejects(text):
    with pytest.raises(ValueError):
        go_duration_seconds(text)


# --- files and kustomizations ------------------------------------------------------------


@pytest.mark.parametrize("path", YAML_FILES, ids=_rel)
def test_yaml_parses_and_every_doc_is_a_mapping(path):
    docs = _docs(path)
    assert docs, f"{_rel(path)} holds no document"
    for doc in docs:
        assert isinstance(doc, dict), f"{_rel(path)}: a document is not a mapping"
        assert doc.get("apiVersion") and doc.get("kind"), f"{_rel(path)}: apiVersion/kind"


@pytest.mark.parametrize("path", YAML_FILES, ids=_rel)
def test_every_yaml_is_used_by_a_kustomization(path):
    used = RESOURCE_FILES | PATCH_FILES | set(p.resolve() for p in _kustomization_files())
    assert path in used, f"{_rel(path)} is not a resource or patch of any kustomization"


def _all_references() -> list[tuple[Path, str]]:
    refs = []
    for kfile in _kustomization_files():
        (k,) = _docs(kfile)
        refs += [(kfile, r) for r in k.get("resources", [])]
        refs += [(kfile, p["path"]) for p in k.get("patches", []) if "path" in p]
    return refs


@pytest.mark.parametrize(
    ("kfile", "ref"), _all_references(), ids=lambda v: _rel(v) if isinstance(v, Path) else v
)
def test_kustomization_reference_exists(kfile, ref):
    target = (kfile.parent / ref).resolve()
    if target == ISVC_FILE and not target.exists():
        pytest.skip("infra/base/inferenceservices.yaml is written with serving/; not there yet")
    assert target.exists(), f"{_rel(kfile)} names {ref}, which does not exist"
    if target.is_dir():
        assert (target / "kustomization.yaml").exists(), f"{ref} is not a kustomization"


def test_base_kustomization_lists_the_inference_services_and_labels_everything():
    (k,) = _docs(BASE / "kustomization.yaml")
    assert "inferenceservices.yaml" in k["resources"]
    assert "namespace" not in k, "plain `namespace:` would move the kube-system RoleBinding"
    (ns,) = [yaml.safe_load(t) if isinstance(t, str) else t for t in k["transformers"]]
    assert ns["kind"] == "NamespaceTransformer"
    assert ns["metadata"]["namespace"] == NAMESPACE and ns["unsetOnly"] is True
    pairs = [entry["pairs"] for entry in k["labels"]]
    assert {"app.kubernetes.io/part-of": "hydatis-ml-scheduler"} in pairs


@pytest.mark.parametrize("path", sorted(PATCH_FILES), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_patch_targets_an_object_of_the_base(path):
    for doc in _docs(path):
        _find(doc["kind"], doc["metadata"]["name"])
        assert doc["metadata"].get("namespace", NAMESPACE) == NAMESPACE


# --- schemas ---------------------------------------------------------------------------


@pytest.mark.parametrize("item", MANIFESTS, ids=_manifest_id)
def test_builtin_kind_validates_against_kubernetes_schema(item):
    _, doc = item
    if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
        pytest.skip(f"{doc['kind']} has no built-in schema; checked field by field below")
    assert schema_problem(doc) is None


def test_schema_check_catches_an_unknown_field():
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dta": {}}
    assert "'dta' was unexpected" in schema_problem(doc)


@pytest.mark.parametrize("item", MANIFESTS, ids=_manifest_id)
def test_namespace(item):
    _, doc = item
    kind, meta = doc["kind"], doc["metadata"]
    if kind in CLUSTER_SCOPED:
        assert "namespace" not in meta, f"{kind} is cluster-scoped"
    elif (kind, meta["name"]) in KUBE_SYSTEM_OBJECTS:
        assert meta.get("namespace") == "kube-system"
    else:
        assert meta.get("namespace") == NAMESPACE


# --- the KubeSchedulerConfiguration ----------------------------------------------------


def _ksc() -> dict[str, Any]:
    return _embedded("ml-scheduler-config", "config.yaml")


def test_scheduler_config_is_v1_with_known_fields_only():
    ksc = _ksc()
    assert ksc["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert ksc["kind"] == "KubeSchedulerConfiguration"
    assert set(ksc) <= KSC_FIELDS, f"unknown fields: {set(ksc) - KSC_FIELDS}"
    assert set(ksc["leaderElection"]) <= LEADER_ELECTION_FIELDS


def test_scheduler_profile_is_ml_scheduler():
    (profile,) = _ksc()["profiles"]
    assert set(profile) <= PROFILE_FIELDS, f"unknown fields: {set(profile) - PROFILE_FIELDS}"
    assert profile["schedulerName"] == SCHEDULER_NAME != "default-scheduler"
    assert profile.get("percentageOfNodesToScore", 100) == 100


def test_scheduler_leader_election_uses_its_own_lease():
    le = _ksc()["leaderElection"]
    assert le["leaderElect"] is True
    assert le["resourceName"] == SCHEDULER_NAME
    assert le["resourceNamespace"] == NAMESPACE
    assert le.get("resourceLock", "leases") == "leases"
    role = _find("Role", "ml-scheduler-leader-election")
    named = [r for r in role["rules"] if r.get("resourceNames") == [SCHEDULER_NAME]]
    assert named and {"get", "update"} <= set(named[0]["verbs"])
    assert named[0]["resources"] == ["leases"]


def _extender() -> dict[str, Any]:
    extenders = _ksc()["extenders"]
    assert len(extenders) == 1, f"expected exactly one extender, got {len(extenders)}"
    return extenders[0]


def test_extender_has_known_fields_only():
    ext = _extender()
    assert set(ext) <= EXTENDER_FIELDS, f"unknown fields: {set(ext) - EXTENDER_FIELDS}"


@pytest.mark.parametrize(("field", "expected"), sorted(EXTENDER.items()), ids=sorted(EXTENDER))
def test_extender_field(field, expected):
    ext = _extender()
    assert field in ext, f"extender sets no {field}"
    assert ext[field] == expected and type(ext[field]) is type(expected)


def test_extender_weight_is_a_positive_int():
    weight = _extender()["weight"]
    assert isinstance(weight, int) and not isinstance(weight, bool) and weight > 0


def test_extender_timeout_is_a_duration_above_the_shim_deadline():
    timeout = go_duration_seconds(_extender()["httpTimeout"])
    deadline = _embedded("hydatis-shim-config", "shim.yaml")["deadline_s"]
    assert 0 < deadline < timeout <= 5


def test_extender_url_reaches_the_shim_service():
    url = urlsplit(_extender()["urlPrefix"])
    assert url.scheme == ("https" if _extender()["enableHTTPS"] else "http")
    name, namespace, svc = url.hostname.split(".")
    assert svc == "svc" and url.path in ("", "/")
    service = _find("Service", name)
    assert service["metadata"]["namespace"] == namespace == NAMESPACE
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == url.port]
    shim = _find("Deployment", SHIM_SERVICE)
    pod_labels = shim["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (container,) = shim["spec"]["template"]["spec"]["containers"]
    target = port["targetPort"]
    assert any(target in (p["containerPort"], p.get("name")) for p in container["ports"])


def test_scheduler_deployment_runs_this_config():
    dep = _find("Deployment", SCHEDULER_NAME)
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert re.fullmatch(r"registry\.k8s\.io/kube-scheduler:v1\.30\.\d+", container["image"])
    assert _ksc().get("enableProfiling") is False
    flags = dict(a.split("=", 1) for a in container["command"][1:] if "=" in a)
    config_path = Path(flags["--config"])
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "ml-scheduler-config"
    assert config_path.name in _find("ConfigMap", "ml-scheduler-config")["data"]
    assert pod["serviceAccountName"] == SCHEDULER_NAME
    assert pod.get("schedulerName", "default-scheduler") == "default-scheduler"
    assert dep["spec"]["replicas"] >= 2  # leader election keeps one active
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"], get["scheme"]) == ("/healthz", 10259, "HTTPS")


# --- the shim --------------------------------------------------------------------------


def _shim_config() -> dict[str, Any]:
    return _embedded("hydatis-shim-config", "shim.yaml")


def test_shim_config_keys_are_the_contract_keys():
    keys = set(_shim_config())
    assert keys == SHIM_KEYS, f"missing {SHIM_KEYS - keys}, unknown {keys - SHIM_KEYS}"


@pytest.mark.parametrize(
    ("key", "check"),
    [
        ("host", lambda v: v == "0.0.0.0"),
        ("port", lambda v: v == SHIM_PORT),
        ("source", lambda v: v == "feast"),
        ("mode", lambda v: v in ("active", "shadow")),
        ("rollout_percent", lambda v: 0 <= v <= 100),
        ("weights", lambda v: set(v) == {"load", "agent", "anomaly"} and min(v.values()) >= 0),
        ("target", lambda v: 0 < v < _shim_config()["hot_threshold"] <= 1),
        ("filter_anomalous", lambda v: isinstance(v, bool)),
        ("redis_url", lambda v: v is None),  # HYDATIS_SHIM_REDIS_URL, from a Secret
        ("deadline_s", lambda v: 0 < v <= 0.25),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_shim_config_value(key, check):
    assert check(_shim_config()[key]), f"{key}: {_shim_config()[key]!r}"


@pytest.mark.parametrize(("key", "model"), sorted(MODEL_URL_KEYS.items()), ids=MODEL_URL_KEYS)
def test_shim_model_url_is_the_inference_service(key, model):
    # KServe serves an InferenceService's predictor as Service "<name>-predictor", port 80.
    assert _shim_config()[key] == f"http://{model}-predictor.{NAMESPACE}.svc"


def test_shim_config_loads_with_the_shim_settings_class(tmp_path, monkeypatch):
    shim_config = pytest.importorskip("scheduler_shim.config")
    if not hasattr(shim_config, "load_config"):
        pytest.skip("scheduler_shim.config has no load_config yet")
    for var in [v for v in os.environ if v.startswith("HYDATIS_SHIM_")]:
        monkeypatch.delenv(var)
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "shim.yaml"
    path.write_text(_find("ConfigMap", "hydatis-shim-config")["data"]["shim.yaml"])
    cfg = shim_config.load_config(path)
    assert (cfg.host, cfg.port, cfg.source) == ("0.0.0.0", SHIM_PORT, "feast")
    assert cfg.redis_url is None
    # What the Deployment and the overlays set in the environment gets through the file.
    env = {"HYDATIS_SHIM_REDIS_URL": "redis://redis:6379/0", "HYDATIS_SHIM_MODE": "active"}
    env["HYDATIS_SHIM_ROLLOUT_PERCENT"] = "10"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = shim_config.load_config(path)
    assert (cfg.redis_url, cfg.mode, cfg.rollout_percent) == ("redis://redis:6379/0", "active", 10)


def test_shim_deployment_wiring():
    dep = _find("Deployment", SHIM_SERVICE)
    meta, pod = dep["spec"]["template"]["metadata"], dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    version = _pyproject()["project"]["version"]
    assert container["image"] == f"{IMAGE_REPOSITORY}:{version}"
    args = container["args"]
    assert args[0] == "shim" and args[args.index("--host") + 1] == "0.0.0.0"
    config_path = Path(args[args.index("--config") + 1])
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "hydatis-shim-config"
    assert config_path.name in _find("ConfigMap", "hydatis-shim-config")["data"]
    assert [p["containerPort"] for p in container["ports"]] == [SHIM_PORT]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    annotations = meta["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(SHIM_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    (redis,) = [e for e in container["env"] if e["name"] == "HYDATIS_SHIM_REDIS_URL"]
    assert redis["valueFrom"]["secretKeyRef"]["optional"] is True
    assert pod["serviceAccountName"] == SHIM_SERVICE
    assert dep["spec"]["replicas"] >= 2
    # The Feast registry the feast source reads: written by the init container, shared.
    (init,) = pod["initContainers"]
    assert init["image"] == container["image"]
    shared = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    mine = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (data,) = [n for n, p in shared.items() if p.endswith("/feature_repo/data")]
    assert mine[data] == shared[data]
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == data)


def test_shim_service_is_cluster_ip_on_8888():
    spec = _find("Service", SHIM_SERVICE)["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    assert [p["port"] for p in spec["ports"]] == [SHIM_PORT]


@pytest.mark.parametrize("name", [SHIM_SERVICE, SCHEDULER_NAME])
def test_pdb_selects_the_deployment(name):
    pdb = _find("PodDisruptionBudget", name)
    labels = _find("Deployment", name)["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < _find("Deployment", name)["spec"]["replicas"]


# --- RBAC ------------------------------------------------------------------------------

RULE_KINDS = ("Role", "ClusterRole")
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")


@pytest.mark.parametrize(
    "item", [m for m in MANIFESTS if m[1]["kind"] in RULE_KINDS], ids=_manifest_id
)
def test_role_has_no_wildcards(item):
    for rule in item[1]["rules"]:
        for field in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
            assert not any("*" in v for v in rule.get(field, [])), f"wildcard in {field}"


@pytest.mark.parametrize(
    "item", [m for m in MANIFESTS if m[1]["kind"] in BINDING_KINDS], ids=_manifest_id
)
def test_binding_grants_no_broad_role_to_a_known_account(item):
    doc = item[1]
    assert doc["roleRef"]["name"] not in FORBIDDEN_ROLES
    for subject in doc["subjects"]:
        assert subject["kind"] == "ServiceAccount"
        account = _find("ServiceAccount", subject["name"])
        assert account["metadata"]["namespace"] == subject["namespace"]


@pytest.mark.parametrize(
    ("account", "kind", "role", "namespace"),
    [
        (SCHEDULER_NAME, "ClusterRole", "system:kube-scheduler", None),
        (SCHEDULER_NAME, "ClusterRole", "system:volume-scheduler", None),
        (SCHEDULER_NAME, "Role", "extension-apiserver-authentication-reader", "kube-system"),
        (SCHEDULER_NAME, "Role", "ml-scheduler-leader-election", NAMESPACE),
    ],
    ids=["kube-scheduler", "volume-scheduler", "authn-reader", "leader-lease"],
)
def test_account_is_bound(account, kind, role, namespace):
    bindings = [
        d
        for _, d in MANIFESTS
        if d["kind"] in BINDING_KINDS
        and d["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}
        and any(s["name"] == account for s in d["subjects"])
    ]
    assert len(bindings) == 1, f"{account} is not bound to {kind} {role}"
    assert bindings[0]["metadata"].get("namespace") == namespace


# --- workload hardening ----------------------------------------------------------------


def deployment_problems(dep: dict[str, Any]) -> list[str]:
    """What keeps a Deployment from the project's hardening rules (empty: none): the
    rules ``hydatis validate`` applies, every container held to having probes."""
    where = dep["metadata"]["name"]
    return [str(p) for p in pod_spec_problems(where, dep["spec"]["template"]["spec"])]


@pytest.mark.parametrize(
    "item", [m for m in MANIFESTS if m[1]["kind"] == "Deployment"], ids=_manifest_id
)
def test_deployment_is_hardened(item):
    assert deployment_problems(item[1]) == []


def test_hardening_check_catches_a_bad_deployment():
    bad = {
        "metadata": {"name": "bad"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:latest"}]}}},
    }
    problems = "\n".join(deployment_problems(bad))
    for expected in ("requests.cpu", "livenessProbe", "runAsNonRoot", ":latest", "seccomp"):
        assert expected in problems


def _shim_settings() -> set[str]:
    """Every key the extender's settings class accepts (the ConfigMap sets a subset)."""
    from scheduler_shim.config import ShimConfig

    return set(ShimConfig.model_fields)


@pytest.mark.parametrize("path", sorted(PATCH_FILES), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_patch_env_overrides_are_shim_settings(path):
    for doc in _docs(path):
        for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for env in c.get("env", []):
                if env["name"].startswith("HYDATIS_SHIM_"):
                    key = env["name"].removeprefix("HYDATIS_SHIM_").lower()
                    assert key in _shim_settings(), f"{env['name']} sets no shim setting"
                    assert isinstance(env["value"], str)


# --- the InferenceServices (written with serving/) -------------------------------------


def _inference_services() -> list[dict[str, Any]]:
    if not ISVC_FILE.exists():
        pytest.skip("infra/base/inferenceservices.yaml is written with serving/; not there yet")
    return _docs(ISVC_FILE)


def test_inference_services_are_the_three_models():
    names = sorted(d["metadata"]["name"] for d in _inference_services())
    assert names == sorted(MODEL_URL_KEYS.values())


@pytest.mark.parametrize("name", sorted(MODEL_URL_KEYS.values()))
def test_inference_service_fields(name):
    (isvc,) = [d for d in _inference_services() if d["metadata"]["name"] == name]
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["namespace"] == NAMESPACE
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] == 2
    assert predictor["maxReplicas"] == 10
    containers = predictor.get("containers", [])
    assert containers, "the predictor names no container"
    for c in containers:
        image = c.get("image", "")
        assert image and not image.endswith(":latest"), f"container image {image!r}"
        assert ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, f"untagged {image}"


# --- kustomize builds ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Each kustomization built by ``kubectl kustomize``: {"base"|overlay: [docs]}.

    Built from a copy of infra/; while inferenceservices.yaml is not written yet the
    copy's base leaves it out, so the rest still gets built and checked.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on the PATH: the kustomize builds are not checked")
    tree = tmp_path_factory.mktemp("infra") / "infra"
    shutil.copytree(INFRA, tree)
    if not ISVC_FILE.exists():
        kfile = tree / "base" / "kustomization.yaml"
        (k,) = _docs(kfile)
        k["resources"].remove("inferenceservices.yaml")
        kfile.write_text(yaml.safe_dump(k, sort_keys=False))
    out = {}
    builds = [("base", tree / "base")] + [(o, tree / "overlays" / o) for o in OVERLAYS]
    builds.append(("prometheus", tree / "prometheus"))
    for name, folder in builds:
        proc = subprocess.run(
            [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"kubectl kustomize {name} failed:\n{proc.stderr}"
        out[name] = [d for d in yaml.safe_load_all(proc.stdout) if d is not None]
    return out


@pytest.mark.parametrize("build", ["base", *OVERLAYS, "prometheus"])
def test_kustomize_build_is_valid_and_hardened(rendered, build):
    docs = rendered[build]
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "NetworkPolicy"}
    for doc in docs:
        meta = doc["metadata"]
        assert meta["labels"]["app.kubernetes.io/part-of"] == "hydatis-ml-scheduler"
        if doc["kind"] in CLUSTER_SCOPED:
            pass
        elif (doc["kind"], meta["name"]) in KUBE_SYSTEM_OBJECTS:
            assert meta["namespace"] == "kube-system"
        else:
            assert meta["namespace"] == NAMESPACE, f"{doc['kind']}/{meta['name']}"
        if (doc["apiVersion"], doc["kind"]) not in CUSTOM_KINDS:
            assert schema_problem(doc) is None
        else:
            assert custom_kind_problems(doc) == [], f"{doc['kind']}/{meta['name']}"
        if doc["kind"] == "Deployment":
            assert deployment_problems(doc) == []
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
    if ISVC_FILE.exists() and build != "prometheus":
        assert len(_of_kind("InferenceService", docs)) == len(MODEL_URL_KEYS)


# --- custom kinds, field by field --------------------------------------------------------

KATIB_DIR = ROOT / "katib" / "manifests"


@pytest.mark.parametrize("path", sorted(KATIB_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_katib_experiment_passes_the_field_checks(path):
    for doc in _docs(path):
        assert custom_kind_problems(doc) == []


@pytest.mark.parametrize(
    ("kind", "break_it", "expected"),
    [
        ("Experiment", lambda d: d["spec"]["objective"].update(type="best"), "objective.type"),
        ("Experiment", lambda d: d["spec"].pop("trialTemplate"), "trialTemplate"),
        ("InferenceService", lambda d: d["spec"]["predictor"].update(minReplicas=1), "minReplicas"),
        ("InferenceService", lambda d: d["spec"]["predictor"].pop("containers"), "container"),
    ],
    ids=["katib-objective", "katib-no-template", "isvc-one-replica", "isvc-no-container"],
)
def test_custom_kind_checks_catch(rendered, kind, break_it, expected):
    if kind == "Experiment":
        doc = _docs(sorted(KATIB_DIR.glob("*.yaml"))[0])[0]
    else:
        doc = copy.deepcopy(_of_kind("InferenceService", rendered["prod"])[0])
    break_it(doc)
    assert expected in "\n".join(str(p) for p in custom_kind_problems(doc))


# --- overlays: size, rollout, log level -------------------------------------------------

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti)?$")


def cpu_cores(q: str | int | float) -> float:
    """Cores in a CPU quantity ("250m", "1", 2)."""
    m = _CPU.match(str(q))
    assert m, f"not a CPU quantity: {q!r}"
    return float(m[1]) / (1000 if m[2] else 1)


def mem_bytes(q: str | int) -> int:
    """Bytes in a memory quantity ("512Mi", "2Gi")."""
    m = _MEM.match(str(q))
    assert m, f"not a memory quantity: {q!r}"
    return int(m[1]) * {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[m[2]]


def test_quantity_parsers():
    assert (cpu_cores("250m"), cpu_cores("2"), cpu_cores(1)) == (0.25, 2.0, 1.0)
    assert (mem_bytes("512Mi"), mem_bytes("1Gi")) == (512 * 2**20, 2**30)


def _container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (c,) = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return c


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# overlay: scheduler replicas, shim replicas, mode, rollout %, shim log level, --v
OVERLAY_TABLE = {
    "dev": (2, 1, "active", "100", "debug", "--v=4"),
    "staging": (2, 2, "active", "50", "info", "--v=3"),
    "prod": (3, 3, "active", "10", "info", "--v=2"),
}


@pytest.mark.parametrize("build", OVERLAYS)
def test_overlay_replicas_rollout_and_log_level(rendered, build):
    sched_n, shim_n, mode, percent, level, verbosity = OVERLAY_TABLE[build]
    docs = rendered[build]
    shim = _find("Deployment", SHIM_SERVICE, docs)
    sched = _find("Deployment", SCHEDULER_NAME, docs)
    assert (sched["spec"]["replicas"], shim["spec"]["replicas"]) == (sched_n, shim_n)
    env = _env(_container(shim, "shim"))
    assert (env["HYDATIS_SHIM_MODE"], env["HYDATIS_SHIM_ROLLOUT_PERCENT"]) == (mode, percent)
    assert env["HYDATIS_LOG_LEVEL"] == level
    assert "HYDATIS_SHIM_REDIS_URL" in env  # the patch adds to the base's env
    command = _container(sched, "kube-scheduler")["command"]
    assert [a for a in command if a.startswith("--v=")] == [verbosity]


@pytest.mark.parametrize(
    ("build", "check"),
    [
        ("dev", lambda share: share == 100),
        ("staging", lambda share: 10 <= share <= 50),
        ("prod", lambda share: share == 10),
    ],
    ids=["dev-everything", "staging-10-to-50", "prod-starts-at-10"],
)
def test_overlay_rollout_share_is_its_stage(rendered, build, check):
    env = _env(_container(_find("Deployment", SHIM_SERVICE, rendered[build]), "shim"))
    share = float(env["HYDATIS_SHIM_ROLLOUT_PERCENT"])
    if env["HYDATIS_SHIM_MODE"] == "shadow":
        share = 0.0
    assert check(share), f"{build}: {env['HYDATIS_SHIM_MODE']} {share} %"


def test_log_level_is_one_the_extender_accepts(rendered):
    from scheduler_shim.server import add_arguments

    for build in OVERLAYS:
        env = _env(_container(_find("Deployment", SHIM_SERVICE, rendered[build]), "shim"))
        argv = ["--log-level", env["HYDATIS_LOG_LEVEL"]]
        assert add_arguments(argparse.ArgumentParser()).parse_args(argv).log_level


@pytest.mark.parametrize("deployment", [(SHIM_SERVICE, "shim"), (SCHEDULER_NAME, "kube-scheduler")])
def test_overlay_resources_grow_from_dev_to_prod(rendered, deployment):
    name, container = deployment
    sizes = []
    for build in OVERLAYS:
        res = _container(_find("Deployment", name, rendered[build]), container)["resources"]
        sizes.append(
            (
                cpu_cores(res["requests"]["cpu"]),
                mem_bytes(res["requests"]["memory"]),
                mem_bytes(res["limits"]["memory"]),
            )
        )
    for smaller, larger in itertools.pairwise(sizes):
        assert all(a <= b for a, b in zip(smaller, larger, strict=True)), sizes
    assert sizes[0] != sizes[-1]
    for _, request, limit in sizes:
        assert request <= limit


# --- high availability ------------------------------------------------------------------

HOST, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"


def _ksc_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(_find("ConfigMap", "ml-scheduler-config", docs)["data"]["config.yaml"])


def _anti_affinity(dep: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(required, preferred) topology keys of the Deployment's anti-affinity to itself."""
    pod = dep["spec"]["template"]
    own = pod["metadata"]["labels"]
    anti = pod["spec"].get("affinity", {}).get("podAntiAffinity", {})
    required = {
        t["topologyKey"]
        for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        if t["labelSelector"]["matchLabels"].items() <= own.items()
    }
    preferred = {
        t["podAffinityTerm"]["topologyKey"]
        for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
        if t["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= own.items()
    }
    return required, preferred


@pytest.mark.parametrize("build", ["base", *OVERLAYS])
def test_scheduler_is_highly_available(rendered, build):
    docs = rendered[build]
    dep = _find("Deployment", SCHEDULER_NAME, docs)
    assert 2 <= dep["spec"]["replicas"] <= 3
    if build == "prod":
        assert dep["spec"]["replicas"] == 3
    le = _ksc_of(docs)["leaderElection"]
    assert le["leaderElect"] is True and le.get("resourceLock", "leases") == "leases"
    assert (le["resourceNamespace"], le["resourceName"]) == (NAMESPACE, SCHEDULER_NAME)
    role = _find("Role", "ml-scheduler-leader-election", docs)
    assert role["metadata"]["namespace"] == le["resourceNamespace"]
    (rule,) = role["rules"]
    assert rule["resourceNames"] == [le["resourceName"]]
    assert rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"]


@pytest.mark.parametrize("build", ["base", *OVERLAYS])
@pytest.mark.parametrize("name", [SCHEDULER_NAME, SHIM_SERVICE])
def test_replicas_spread_over_nodes_and_zones(rendered, build, name):
    dep = _find("Deployment", name, rendered[build])
    required, preferred = _anti_affinity(dep)
    assert {HOST, ZONE} <= preferred | required
    if build == "prod":
        assert HOST in required, "prod: two replicas must never share a node"
    spread = dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert any(c["topologyKey"] == ZONE for c in spread)


@pytest.mark.parametrize("build", ["base", *OVERLAYS])
def test_every_replicated_workload_has_a_disruption_budget(rendered, build):
    docs = rendered[build]
    pdbs = _of_kind("PodDisruptionBudget", docs)
    for dep in _of_kind("Deployment", docs):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        (pdb,) = [p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        replicas = dep["spec"]["replicas"]
        if "minAvailable" in pdb["spec"]:
            assert 1 <= pdb["spec"]["minAvailable"] < replicas, dep["metadata"]["name"]
        else:
            assert pdb["spec"]["maxUnavailable"] >= 1
    for isvc in _of_kind("InferenceService", docs):
        # KServe labels the predictor's pods with the InferenceService's name.
        selector = {"serving.kserve.io/inferenceservice": isvc["metadata"]["name"]}
        (pdb,) = [p for p in pdbs if p["spec"]["selector"]["matchLabels"] == selector]
        assert pdb["spec"]["minAvailable"] < isvc["spec"]["predictor"]["minReplicas"]


@pytest.mark.parametrize("build", ["staging", "prod"])
def test_extender_runs_several_stateless_replicas(rendered, build):
    docs = rendered[build]
    dep = _find("Deployment", SHIM_SERVICE, docs)
    assert dep["spec"]["replicas"] >= 2
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    service = _find("Service", SHIM_SERVICE, docs)
    assert (
        service["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    )
    assert "sessionAffinity" not in service["spec"] or service["spec"]["sessionAffinity"] == "None"
    pod = dep["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        assert "persistentVolumeClaim" not in volume, "the extender keeps no state of its own"
    redis = _env(_container(dep, "shim"))["HYDATIS_SHIM_REDIS_URL"]
    assert redis["secretKeyRef"]["optional"] is True  # sharing through Redis is optional


@pytest.mark.parametrize("build", ["base", *OVERLAYS])
def test_model_servers_run_at_least_two_replicas(rendered, build):
    isvcs = _of_kind("InferenceService", rendered[build])
    assert len(isvcs) == len(MODEL_URL_KEYS)
    for isvc in isvcs:
        assert isvc["spec"]["predictor"]["minReplicas"] >= 2


# --- TLS between the scheduler and the extender (prod) ----------------------------------

TLS_SECRET = "hydatis-shim-tls"


def _secret_mount(pod: dict[str, Any], container: dict[str, Any], path: str) -> dict[str, Any]:
    """The Secret volume mounted over ``path`` in ``container`` (the file's key checked)."""
    file = PurePosixPath(path)
    (mount,) = [
        m for m in container["volumeMounts"] if PurePosixPath(m["mountPath"]) == file.parent
    ]
    assert mount.get("readOnly") is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert file.name in [i["path"] for i in secret["items"]]
    return secret


def test_prod_scheduler_calls_the_extender_over_verified_tls(rendered):
    base, prod = _ksc_of(rendered["base"]), _ksc_of(rendered["prod"])
    (ext,) = prod["extenders"]
    assert ext["enableHTTPS"] is True and urlsplit(ext["urlPrefix"]).scheme == "https"
    tls = ext["tlsConfig"]
    assert tls["insecure"] is False and tls.get("caFile")
    host = urlsplit(ext["urlPrefix"]).hostname
    assert tls["serverName"] == host == f"{SHIM_SERVICE}.{NAMESPACE}.svc"
    # Nothing else differs from the base's configuration.
    stripped = copy.deepcopy(prod)
    (e,) = stripped["extenders"]
    e.pop("tlsConfig")
    e["enableHTTPS"] = False
    e["urlPrefix"] = e["urlPrefix"].replace("https://", "http://", 1)
    assert stripped == base
    # The CA file is there: only ca.crt of the extender's Secret, never its key.
    dep = _find("Deployment", SCHEDULER_NAME, rendered["prod"])
    pod = dep["spec"]["template"]["spec"]
    secret = _secret_mount(pod, _container(dep, "kube-scheduler"), tls["caFile"])
    assert secret["secretName"] == TLS_SECRET
    assert [i["key"] for i in secret["items"]] == ["ca.crt"]


def test_prod_extender_serves_https_with_the_mounted_certificate(rendered):
    dep = _find("Deployment", SHIM_SERVICE, rendered["prod"])
    pod = dep["spec"]["template"]["spec"]
    shim = _container(dep, "shim")
    env = _env(shim)
    for key in ("HYDATIS_SHIM_TLS_CERT_FILE", "HYDATIS_SHIM_TLS_KEY_FILE"):
        assert _secret_mount(pod, shim, env[key])["secretName"] == TLS_SECRET
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert shim[probe]["httpGet"]["scheme"] == "HTTPS", probe
    assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scheme"] == "https"


@pytest.mark.parametrize("build", ["base", "dev", "staging"])
def test_other_builds_stay_on_plain_http(rendered, build):
    (ext,) = _ksc_of(rendered[build])["extenders"]
    assert ext["enableHTTPS"] is False and "tlsConfig" not in ext
    env = _env(_container(_find("Deployment", SHIM_SERVICE, rendered[build]), "shim"))
    assert not {"HYDATIS_SHIM_TLS_CERT_FILE", "HYDATIS_SHIM_TLS_KEY_FILE"} & set(env)


# --- network policy: default deny, then exactly the allowed edges -----------------------

# Every pod the policies may name: (component, namespace, pod labels).
MODELS = sorted(MODEL_URL_KEYS.values())
UNIVERSE = [
    ("scheduler", NAMESPACE, {"app.kubernetes.io/name": "ml-scheduler",
                              "app.kubernetes.io/component": "scheduler"}),
    ("shim", NAMESPACE, {"app.kubernetes.io/name": "hydatis-shim",
                         "app.kubernetes.io/component": "extender"}),
    ("remediation", NAMESPACE, {"app.kubernetes.io/name": "hydatis-remediation",
                                "app.kubernetes.io/component": "remediation"}),
    *[(m, NAMESPACE, {"serving.kserve.io/inferenceservice": m}) for m in MODELS],
    ("redis", NAMESPACE, {"app.kubernetes.io/name": "redis"}),
    ("other-pod", NAMESPACE, {"app.kubernetes.io/name": "something-else"}),
    ("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
    ("alertmanager", "monitoring", {"app.kubernetes.io/name": "alertmanager"}),
    ("mlflow", "mlflow", {"app.kubernetes.io/name": "mlflow"}),
    ("kube-dns", "kube-system", {"k8s-app": "kube-dns"}),
    ("stranger", "default", {"app": "stranger"}),
]  # fmt: skip
OURS = ["scheduler", "shim", "remediation", *MODELS]
API = "ipBlock:0.0.0.0/0"
DNS = {(c, "kube-dns", proto, 53) for c in OURS for proto in ("UDP", "TCP")}
ALLOWED_EDGES = DNS | {
    ("scheduler", "shim", "TCP", 8888),
    ("prometheus", "shim", "TCP", 8888),
    ("prometheus", "scheduler", "TCP", 10259),
    ("scheduler", API, "TCP", 443),
    ("scheduler", API, "TCP", 6443),
    ("shim", "redis", "TCP", 6379),
    ("shim", "prometheus", "TCP", 9090),
    *[("shim", m, "TCP", 8080) for m in MODELS],
    *[("prometheus", m, "TCP", 8080) for m in MODELS],
    ("alertmanager", "remediation", "TCP", 9095),
    ("prometheus", "remediation", "TCP", 9095),
    ("remediation", API, "TCP", 443),
    ("remediation", API, "TCP", 6443),
    ("remediation", "prometheus", "TCP", 9090),
    ("remediation", "mlflow", "TCP", 5000),
}


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector matches ``labels`` (None: matches nothing)."""
    if selector is None:
        return False
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        op, key, values = expr["operator"], expr["key"], expr.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _peers(peer: dict[str, Any], policy_ns: str) -> list[str]:
    if "ipBlock" in peer:
        return [f"ipBlock:{peer['ipBlock']['cidr']}"]
    ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector", {})
    found = []
    for name, ns, labels in UNIVERSE:
        ns_ok = (
            ns == policy_ns
            if ns_sel is None
            else _selects(ns_sel, {"kubernetes.io/metadata.name": ns})
        )
        if ns_ok and _selects(pod_sel, labels):
            found.append(name)
    return found or [f"nothing-known:{peer}"]


def network_edges(docs: list[dict[str, Any]]) -> set[tuple[str, str, str, int | str]]:
    """Every (source, destination, protocol, port) the NetworkPolicies allow between the
    pods of UNIVERSE (an unnamed peer or port shows up as such, and fails the table)."""
    edges = set()
    for policy in _of_kind("NetworkPolicy", docs):
        spec, ns = policy["spec"], policy["metadata"]["namespace"]
        selected = [
            n for n, pns, labels in UNIVERSE if pns == ns and _selects(spec["podSelector"], labels)
        ]
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction, []):
                key = "from" if direction == "ingress" else "to"
                peers = [
                    p
                    for peer in rule.get(key, [{"any": 1}])
                    for p in (_peers(peer, ns) if "any" not in peer else ["anywhere"])
                ]
                ports = [
                    (p.get("protocol", "TCP"), p.get("port", "any"))
                    for p in rule.get("ports", [{}])
                ]
                for me in selected:
                    for other in peers:
                        for proto, port in ports:
                            src, dst = (other, me) if direction == "ingress" else (me, other)
                            edges.add((src, dst, proto, port))
    return edges


def _with_remediation(rendered: dict, build: str) -> list[dict[str, Any]]:
    return rendered[build] + rendered["prometheus"]


@pytest.mark.parametrize("build", OVERLAYS)
def test_network_policies_allow_exactly_the_named_edges(rendered, build):
    edges = network_edges(_with_remediation(rendered, build))
    ours = {e for e in edges if e[0] in OURS or e[1] in OURS}
    assert ours - ALLOWED_EDGES == set(), "allowed but not in the table"
    assert ALLOWED_EDGES - ours == set(), "in the table but not allowed"
    # Any other pod of the namespace may resolve names, and nothing more.
    others = {e for e in edges if "stranger" in e or "other-pod" in e}
    assert others == {("other-pod", "kube-dns", proto, 53) for proto in ("UDP", "TCP")}


@pytest.mark.parametrize("build", OVERLAYS)
def test_default_deny_covers_every_pod(rendered, build):
    policies = _of_kind("NetworkPolicy", _with_remediation(rendered, build))
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1, "one default-deny policy for the namespace"
    for name in OURS:
        (labels,) = [lab for n, _, lab in UNIVERSE if n == name]
        own = [
            p
            for p in policies
            if p["spec"]["podSelector"] and _selects(p["spec"]["podSelector"], labels)
        ]
        assert own, f"{name}: no policy of its own"
        for rule in (r for p in own for d in ("ingress", "egress") for r in p["spec"].get(d, [])):
            assert rule.get("ports"), f"{name}: a rule opens every port"
            assert rule.get("from", rule.get("to")), f"{name}: a rule admits any peer"


def test_edge_check_catches_an_open_rule(rendered):
    docs = copy.deepcopy(_with_remediation(rendered, "prod"))
    policy = _find("NetworkPolicy", "hydatis-shim", docs)
    policy["spec"]["ingress"].append({"ports": [{"protocol": "TCP", "port": 8888}]})
    edges = network_edges(docs)
    assert ("anywhere", "shim", "TCP", 8888) in edges
    assert {e for e in edges if e[0] in OURS or e[1] in OURS} - ALLOWED_EDGES


# --- one identity per component --------------------------------------------------------

# component -> (ServiceAccount, needs an API token)
IDENTITIES = {
    "scheduler": ("ml-scheduler", True),
    "extender": ("hydatis-shim", False),
    "remediation": ("hydatis-remediation", True),
    "model-server": ("hydatis-model-server", False),
    "pipeline": ("hydatis-pipeline", True),
}


def _pod_identities(docs: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Workload name -> (its ServiceAccount, its pod spec)."""
    out = {}
    for dep in _of_kind("Deployment", docs):
        pod = dep["spec"]["template"]["spec"]
        out[dep["metadata"]["name"]] = (pod.get("serviceAccountName", "default"), pod)
    for isvc in _of_kind("InferenceService", docs):
        pod = isvc["spec"]["predictor"]
        out[isvc["metadata"]["name"]] = (pod.get("serviceAccountName", "default"), pod)
    return out


@pytest.mark.parametrize("build", OVERLAYS)
def test_each_component_runs_as_its_own_service_account(rendered, build):
    docs = _with_remediation(rendered, build)
    accounts = {d["metadata"]["name"]: d for d in _of_kind("ServiceAccount", docs)}
    assert {sa for sa, _ in IDENTITIES.values()} <= set(accounts)
    expected = {
        SCHEDULER_NAME: "ml-scheduler",
        SHIM_SERVICE: "hydatis-shim",
        "hydatis-remediation": "hydatis-remediation",
        **{m: "hydatis-model-server" for m in MODELS},
    }
    found = {name: sa for name, (sa, _) in _pod_identities(docs).items()}
    assert found == expected
    for sa, needs_token in IDENTITIES.values():
        mounts = accounts[sa].get("automountServiceAccountToken", True)
        pods = [pod for s, pod in _pod_identities(docs).values() if s == sa]
        effective = [pod.get("automountServiceAccountToken", mounts) for pod in pods] or [mounts]
        assert all(e is needs_token for e in effective), f"{sa}: token mounted {effective}"


# --- hardening of every pod, writable paths ---------------------------------------------


def test_writable_path_check_catches_a_writable_config_mount():
    pod = {
        "containers": [{"name": "c", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/x"}]}],
        "volumes": [{"name": "cfg", "configMap": {"name": "x"}}],
    }
    problems = "\n".join(str(p) for p in writable_path_problems("p", pod))
    assert "not readOnly" in problems and "neither an emptyDir nor a claim" in problems


def test_writable_path_check_accepts_empty_dirs_and_claims_only():
    pod = {
        "containers": [
            {
                "name": "c",
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "work", "mountPath": "/var/lib/hydatis"},
                    {"name": "host", "mountPath": "/host"},
                ],
            }
        ],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "work", "persistentVolumeClaim": {"claimName": "w"}},
            {"name": "host", "hostPath": {"path": "/"}},
        ],
    }
    problems = [str(p) for p in writable_path_problems("p", pod)]
    assert len(problems) == 1 and "/host" in problems[0]


@pytest.mark.parametrize("build", OVERLAYS)
def test_every_pod_is_hardened_and_writes_only_to_empty_dirs(rendered, build):
    for name, (_, pod) in _pod_identities(_with_remediation(rendered, build)).items():
        # the hardening rules, writable paths included
        assert [str(p) for p in pod_spec_problems(name, pod)] == []
        for c in pod.get("initContainers", []) + pod["containers"]:
            sc = c["securityContext"]
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")


# --- no secret values in any manifest ---------------------------------------------------

SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|api[_-]?key|access[_-]?key|credential|private[_-]?key)",
    re.IGNORECASE,
)
# Keys that name where a secret is, never a secret itself.
REFERENCE_KEYS = {
    "secretName", "secretKeyRef", "secretRef", "credentials_file", "webhook_token_file",
    "automountServiceAccountToken", "serviceAccountToken", "tls_cert_file", "tls_key_file",
}  # fmt: skip
SECRET_TEXT = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),  # user:password@ in a URL
    re.compile(r"(?i)authorization:\s*(bearer|basic)\s+\S+"),
    re.compile(r"(?i)\b(credentials|bearer_token|password):\s*['\"]?[^\s'\"/][^\s'\"]*"),
]


def _is_reference(value: str) -> bool:
    return value.startswith("/") or value in ("", "null")


def secret_findings(docs: list[dict[str, Any]]) -> list[str]:
    """Secret-looking values in rendered manifests: Secret objects, secret-named keys or
    env variables holding a literal, private keys, credentials in URLs, inline tokens
    (in the YAML and in files embedded in ConfigMaps)."""
    findings = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            name = node.get("name")
            if (
                isinstance(name, str)
                and SECRET_KEY.search(name)
                and isinstance(node.get("value"), str)
                and not _is_reference(node["value"])
            ):
                findings.append(f"{where}: {name} holds a literal value")
            for key, value in node.items():
                if (
                    isinstance(key, str)
                    and key not in REFERENCE_KEYS
                    and SECRET_KEY.search(key)
                    and isinstance(value, str)
                    and not _is_reference(value)
                ):
                    findings.append(f"{where}.{key}: a secret-like key holds a literal value")
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")
        elif isinstance(node, str):
            for pattern in SECRET_TEXT:
                if pattern.search(node):
                    findings.append(f"{where}: matches {pattern.pattern}")
            if "\n" in node:  # an embedded file: walk it as YAML too
                try:
                    embedded = yaml.safe_load(node)
                except yaml.YAMLError:
                    embedded = None
                if isinstance(embedded, dict | list):
                    walk(embedded, f"{where}(embedded)")

    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Secret":
            findings.append(f"{where}: a Secret object in the manifests")
        walk(doc, where)
    return findings


@pytest.mark.parametrize("build", ["base", *OVERLAYS, "prometheus"])
def test_no_secret_values_in_rendered_manifests(rendered, build):
    assert secret_findings(rendered[build]) == []


@pytest.mark.parametrize(
    "planted",
    [
        {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"url": "x"}},
        {
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"app.yaml": "db:\n  password: hunter2\n"},
        },
        {
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"url": "redis://u:pw@redis:6379/0"},
        },
        {
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"key.pem": "-----BEGIN RSA PRIVATE KEY-----\nx"},
        },
        {
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"env": [{"name": "API_TOKEN", "value": "abc"}]},
        },
        {
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"am.yml": "authorization:\n  credentials: abc\n"},
        },
    ],
    ids=[
        "secret-object",
        "embedded-password",
        "url-userinfo",
        "private-key",
        "env-token",
        "inline-credentials",
    ],
)
def test_secret_check_catches(planted):
    assert secret_findings([planted]) != []
