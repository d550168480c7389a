"""Offline checks of every Kubernetes manifest under infra/.

Built-in kinds are validated against the Kubernetes 1.30 OpenAPI schemas
(``kubernetes_validate``, strict: no unknown fields). Kinds with no schema there are
checked field by field: the KubeSchedulerConfiguration embedded in its ConfigMap and the
KServe InferenceServices. Then the cross-references a cluster would only reveal at run
time: the extender URL against the shim's Service, the shim's settings against the
extender's keys and the InferenceServices' names, RBAC against least privilege, every
Deployment against the hardening rules. ``kubectl kustomize`` (when kubectl is on the
PATH) builds the base and each overlay, and the rendered objects go through the same
checks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BASE = INFRA / "base"
OVERLAYS = ("dev", "prod")
K8S_VERSION = "1.30"
NAMESPACE = "hydatis-system"
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

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
CUSTOM_KINDS = {("serving.kserve.io/v1beta1", "InferenceService")}
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

_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
    "h": 3600.0,
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration_seconds(text: str) -> float:
    """Seconds in a Go ``time.ParseDuration`` string ("500ms", "1m30s"); ValueError if
    it is not one (a bare number other than 0 has no unit, so it is not)."""
    if not isinstance(text, str):
        raise ValueError(f"a duration is a string, got {text!r}")
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ValueError(f"not a Go duration: {text!r}")
    total = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    return -total if text.startswith("-") else total


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


def schema_error(doc: dict[str, Any]) -> str | None:
    """Why ``doc`` fails the Kubernetes schema of its kind (strict), or None if it passes."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return f"{doc['apiVersion']} {doc['kind']} is neither built-in nor a known custom kind"
    except kubernetes_validate.ValidationError as exc:
        at = "/".join(str(p) for p in exc.path) or "top level"
        return f"{doc['kind']}/{doc['metadata'].get('name')}: {exc.message} (at {at})"
    return None


@pytest.mark.parametrize("item", MANIFESTS, ids=_manifest_id)
def test_builtin_kind_validates_against_kubernetes_schema(item):
    _, doc = item
    if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
        pytest.skip(f"{doc['kind']} has no built-in schema; checked field by field below")
    assert schema_error(doc) is None


def test_schema_check_catches_an_unknown_field():
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dta": {}}
    assert "'dta' was unexpected" in schema_error(doc)


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


@pytest.mark.parametrize(
    ("policy", "deployment", "port"),
    [
        ("hydatis-shim-ingress", SHIM_SERVICE, SHIM_PORT),
        ("ml-scheduler-ingress", SCHEDULER_NAME, 10259),
    ],
    ids=["shim-8888", "scheduler-10259"],
)
def test_network_policy_admits_one_port(policy, deployment, port):
    spec = _find("NetworkPolicy", policy)["spec"]
    labels = _find("Deployment", deployment)["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= labels.items()
    assert spec["policyTypes"] == ["Ingress"]
    ports = [p for rule in spec["ingress"] for p in rule["ports"]]
    assert ports == [{"protocol": "TCP", "port": port}]


def test_every_deployment_has_a_network_policy():
    covered = [p["spec"]["podSelector"]["matchLabels"] for p in _of_kind("NetworkPolicy")]
    for dep in _of_kind("Deployment"):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert any(sel.items() <= labels.items() for sel in covered), dep["metadata"]["name"]


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
        (SHIM_SERVICE, "ClusterRole", "hydatis-shim-node-reader", None),
    ],
    ids=["kube-scheduler", "volume-scheduler", "authn-reader", "leader-lease", "shim-reader"],
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


def test_shim_may_only_read_nodes_and_pods():
    role = _find("ClusterRole", "hydatis-shim-node-reader")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    allowed = {("", r, v) for r in ("nodes", "pods") for v in ("get", "list", "watch")}
    assert granted == allowed


# --- workload hardening ----------------------------------------------------------------


def deployment_problems(dep: dict[str, Any]) -> list[str]:
    """What keeps a Deployment from the project's hardening rules (empty: none)."""
    problems = []
    pod = dep["spec"]["template"]["spec"]
    pod_sc = pod.get("securityContext", {})
    init = [c["name"] for c in pod.get("initContainers", [])]
    for c in pod.get("initContainers", []) + pod["containers"]:
        where = f"{dep['metadata']['name']}/{c['name']}"
        sc = c.get("securityContext", {})
        res = c.get("resources", {})
        for kind, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
            if key not in res.get(kind, {}):
                problems.append(f"{where}: no {kind}.{key}")
        for probe in ("livenessProbe", "readinessProbe"):
            if probe not in c and c["name"] not in init:  # init containers take none
                problems.append(f"{where}: no {probe}")
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot not set")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) in (0, None):
            problems.append(f"{where}: no non-zero runAsUser")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: root filesystem writable")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{where}: capabilities not dropped")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        image = c["image"]
        if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1]):
            problems.append(f"{where}: image {image} has no tag")
        if image.endswith(":latest"):
            problems.append(f"{where}: image {image} is :latest")
    seccomp = pod_sc.get("seccompProfile", {}).get("type")
    if seccomp != "RuntimeDefault":
        problems.append(f"{dep['metadata']['name']}: seccompProfile {seccomp}")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append(f"{dep['metadata']['name']}: shares a host namespace")
    return problems


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


@pytest.mark.parametrize("path", sorted(PATCH_FILES), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_patch_env_overrides_are_shim_settings(path):
    for doc in _docs(path):
        for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for env in c.get("env", []):
                if env["name"].startswith("HYDATIS_SHIM_"):
                    key = env["name"].removeprefix("HYDATIS_SHIM_").lower()
                    assert key in SHIM_KEYS, f"{env['name']} sets no shim setting"
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
    for name, folder in [("base", tree / "base")] + [(o, tree / "overlays" / o) for o in OVERLAYS]:
        proc = subprocess.run(
            [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"kubectl kustomize {name} failed:\n{proc.stderr}"
        out[name] = [d for d in yaml.safe_load_all(proc.stdout) if d is not None]
    return out


@pytest.mark.parametrize("build", ["base", *OVERLAYS])
def test_kustomize_build_is_valid_and_hardened(rendered, build):
    docs = rendered[build]
    assert {d["kind"] for d in docs} >= {"Namespace", "Deployment", "Service", "ConfigMap"}
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
            assert schema_error(doc) is None
        if doc["kind"] == "Deployment":
            assert deployment_problems(doc) == []
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
    if ISVC_FILE.exists():
        assert len(_of_kind("InferenceService", docs)) == len(MODEL_URL_KEYS)


@pytest.mark.parametrize(
    ("build", "shim_replicas", "scheduler_replicas", "mode", "percent"),
    [("base", 2, 2, None, None), ("dev", 1, 1, "active", "100"), ("prod", 3, 2, "shadow", "100")],
    ids=["base-shadow-by-file", "dev-active-everywhere", "prod-starts-in-shadow"],
)
def test_kustomize_build_rollout(rendered, build, shim_replicas, scheduler_replicas, mode, percent):
    docs = rendered[build]
    shim = _find("Deployment", SHIM_SERVICE, docs)
    assert shim["spec"]["replicas"] == shim_replicas
    assert _find("Deployment", SCHEDULER_NAME, docs)["spec"]["replicas"] == scheduler_replicas
    (container,) = shim["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env.get("HYDATIS_SHIM_MODE") == mode
    assert env.get("HYDATIS_SHIM_ROLLOUT_PERCENT") == percent
    assert "HYDATIS_SHIM_REDIS_URL" in env  # the patch adds to the base's env
    for pdb in _of_kind("PodDisruptionBudget", docs):
        replicas = _find("Deployment", pdb["metadata"]["name"], docs)["spec"]["replicas"]
        if "minAvailable" in pdb["spec"]:
            assert pdb["spec"]["minAvailable"] < replicas, "a drain could never evict"
