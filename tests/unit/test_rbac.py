"""Least privilege, checked both ways: every permission the manifests grant is in the
table below with the code (or the documented need) behind it, and every Kubernetes API
call the code makes is in the table.

What the code calls is not written by hand: the test reads each component's modules,
finds every method used on a ``kubernetes.client`` API object (``CoreV1Api``,
``AppsV1Api``, ``PolicyV1Api``, ``CustomObjectsApi``, ...), and turns the method into the
RBAC triple (API group, resource, verb) from the request the client itself sends (the
path and HTTP method in the client's source: ``GET .../nodes`` → list, ``GET .../nodes/
{name}`` → get, ``POST`` → create, ``PUT`` → update, ``PATCH`` → patch).

The second scheduler's needs are kube-scheduler's documented ones: the upstream
"Configure Multiple Schedulers" bindings (``system:kube-scheduler``, which includes
events and lease ``create``, ``system:volume-scheduler``, and
``extension-apiserver-authentication-reader`` in kube-system), plus get/update on its own
leader lease (``system:kube-scheduler`` names only the lease ``kube-scheduler``).

Fails on: a grant no row needs, a row the manifests do not grant, a code call no row
covers, a row whose code call is gone, a wildcard, a binding to a role not in the table.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
NAMESPACE = "hydatis-system"
CLUSTER = "<cluster>"


class Need(NamedTuple):
    """One permission a component needs, and why."""

    account: str  # the ServiceAccount (in hydatis-system)
    scope: str  # a namespace, or CLUSTER
    group: str
    resource: str
    verb: str
    names: tuple[str, ...]  # resourceNames it is narrowed to (empty: any)
    why: str  # the code call or the documented need


# Every permission granted to a HYDATIS identity. `why` is either "<module>:<client
# method>" (checked against the code) or a documented need (starts with "doc:").
NEEDS = [
    # --- ml-scheduler: kube-scheduler's own leader lease (name from the KSC) --------------
    Need("ml-scheduler", NAMESPACE, "coordination.k8s.io", "leases", "get", ("ml-scheduler",),
         "doc: leader election reads its lease (KubeSchedulerConfiguration "
         "leaderElection.resourceName)"),
    Need("ml-scheduler", NAMESPACE, "coordination.k8s.io", "leases", "update", ("ml-scheduler",),
         "doc: leader election renews its lease"),
    # --- hydatis-remediation: monitoring/remediation/kube.py ------------------------------
    Need("hydatis-remediation", CLUSTER, "", "nodes", "list", (),
         "monitoring.remediation.kube:CoreV1Api.list_node"),
    Need("hydatis-remediation", CLUSTER, "", "nodes", "get", (),
         "monitoring.remediation.kube:CoreV1Api.read_node"),
    Need("hydatis-remediation", CLUSTER, "", "nodes", "patch", (),
         "monitoring.remediation.kube:CoreV1Api.patch_node"),
    Need("hydatis-remediation", CLUSTER, "", "pods", "list", (),
         "monitoring.remediation.kube:CoreV1Api.list_pod_for_all_namespaces"),
    Need("hydatis-remediation", CLUSTER, "", "pods/eviction", "create", (),
         "monitoring.remediation.kube:CoreV1Api.create_namespaced_pod_eviction"),
    Need("hydatis-remediation", CLUSTER, "policy", "poddisruptionbudgets", "list", (),
         "monitoring.remediation.kube:PolicyV1Api.list_pod_disruption_budget_for_all_namespaces"),
    Need("hydatis-remediation", NAMESPACE, "", "configmaps", "get", ("hydatis-shim-config",),
         "monitoring.remediation.kube:CoreV1Api.read_namespaced_config_map"),
    Need("hydatis-remediation", NAMESPACE, "", "configmaps", "patch", ("hydatis-shim-config",),
         "monitoring.remediation.kube:CoreV1Api.patch_namespaced_config_map"),
    Need("hydatis-remediation", NAMESPACE, "apps", "deployments", "get", ("hydatis-shim",),
         "monitoring.remediation.kube:AppsV1Api.read_namespaced_deployment"),
    Need("hydatis-remediation", NAMESPACE, "apps", "deployments", "patch", ("hydatis-shim",),
         "monitoring.remediation.kube:AppsV1Api.patch_namespaced_deployment"),
    # --- hydatis-pipeline: the deploy step, components/deploy/core.py ---------------------
    Need("hydatis-pipeline", NAMESPACE, "serving.kserve.io", "inferenceservices", "get", (),
         "components.deploy.core:CustomObjectsApi.get_namespaced_custom_object"),
    Need("hydatis-pipeline", NAMESPACE, "serving.kserve.io", "inferenceservices", "create", (),
         "components.deploy.core:CustomObjectsApi.create_namespaced_custom_object"),
    Need("hydatis-pipeline", NAMESPACE, "serving.kserve.io", "inferenceservices", "update", (),
         "components.deploy.core:CustomObjectsApi.replace_namespaced_custom_object"),
]  # fmt: skip

# Roles this project does not define, bound as the upstream documentation says.
BUILTIN_BINDINGS = {
    ("ml-scheduler", "ClusterRole", "system:kube-scheduler", None):
        "doc: Configure Multiple Schedulers (nodes, pods, bindings, events, lease create...)",
    ("ml-scheduler", "ClusterRole", "system:volume-scheduler", None):
        "doc: Configure Multiple Schedulers (volume binding)",
    ("ml-scheduler", "Role", "extension-apiserver-authentication-reader", "kube-system"):
        "doc: kube-scheduler reads the client CA to authenticate requests to /metrics",
}  # fmt: skip

# The modules each identity's code lives in (their API calls are collected).
COMPONENT_CODE = {
    "hydatis-remediation": ["monitoring/remediation"],
    "hydatis-pipeline": ["components", "pipelines"],
    "hydatis-shim": ["scheduler_shim"],
    "hydatis-model-server": ["serving"],
}


# --- what the manifests grant -----------------------------------------------------------


def _infra_docs() -> list[dict[str, Any]]:
    """Every object in infra/ (kustomize patches do not touch RBAC, so the files are what
    a build applies); infra/retraining/ is included when it is there."""
    docs = []
    for path in sorted(INFRA.rglob("*.y*ml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    return docs


DOCS = _infra_docs()
ROLE_KINDS = {"Role", "ClusterRole"}
BINDING_KINDS = {"RoleBinding", "ClusterRoleBinding"}


def _roles() -> dict[tuple[str, str, str | None], dict[str, Any]]:
    return {
        (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")): d
        for d in DOCS
        if d.get("kind") in ROLE_KINDS and "rules" in d
    }


def granted() -> tuple[set[Need], set[tuple[str, str, str, str | None]]]:
    """(permissions from this project's roles, bindings to roles it does not define)."""
    roles = _roles()
    perms: set[Need] = set()
    builtin: set[tuple[str, str, str, str | None]] = set()
    for binding in (d for d in DOCS if d.get("kind") in BINDING_KINDS):
        ref = binding["roleRef"]
        ns = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        key = (ref["kind"], ref["name"], ns if ref["kind"] == "Role" else None)
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount", f"{binding['metadata']['name']}"
            assert subject["namespace"] == NAMESPACE
            account = subject["name"]
            if key not in roles:
                builtin.add((account, ref["kind"], ref["name"], ns))
                continue
            scope = ns or CLUSTER
            for rule in roles[key]["rules"]:
                for group in rule.get("apiGroups", []):
                    for resource in rule.get("resources", []):
                        for verb in rule["verbs"]:
                            names = tuple(rule.get("resourceNames", ()))
                            perms.add(Need(account, scope, group, resource, verb, names, ""))
    return perms, builtin


def _key(n: Need) -> tuple:
    return n[:6]


def test_every_grant_is_needed_and_every_need_granted():
    perms, _ = granted()
    have = {_key(p) for p in perms}
    want = {_key(n) for n in NEEDS}
    assert have - want == set(), "granted, but no row of the table needs it"
    assert want - have == set(), "needed, but not granted"


def test_bindings_to_roles_defined_elsewhere_are_the_documented_ones():
    _, builtin = granted()
    assert builtin == set(BUILTIN_BINDINGS), "bound to a role the table does not name"


@pytest.mark.parametrize(
    "role", sorted(_roles().values(), key=lambda d: d["metadata"]["name"]),
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)  # fmt: skip
def test_no_wildcards_and_no_unbound_role(role):
    for rule in role["rules"]:
        for field in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
            assert not any("*" in v for v in rule.get(field, [])), f"wildcard in {field}"
        assert "nonResourceURLs" not in rule
    bound = [
        d for d in DOCS
        if d.get("kind") in BINDING_KINDS and d["roleRef"]["name"] == role["metadata"]["name"]
    ]  # fmt: skip
    assert bound, "a role nobody is bound to"


def test_leader_lease_name_is_the_scheduler_configuration_s():
    (cm,) = [d for d in DOCS if d.get("kind") == "ConfigMap" and d["metadata"]["name"] ==
             "ml-scheduler-config" and "config.yaml" in d.get("data", {})
             and "tlsConfig" not in d["data"]["config.yaml"]]  # fmt: skip
    le = yaml.safe_load(cm["data"]["config.yaml"])["leaderElection"]
    lease_rows = [n for n in NEEDS if n.resource == "leases"]
    assert {(n.scope, n.names) for n in lease_rows} == {
        (le["resourceNamespace"], (le["resourceName"],))
    }


# --- what the code calls ------------------------------------------------------------------


def _client_classes() -> dict[str, type]:
    import kubernetes.client

    return {
        name: cls
        for name, cls in vars(kubernetes.client).items()
        if inspect.isclass(cls) and name.endswith("Api") and name != "ApiClient"
    }


_CALL_API = re.compile(r"call_api\(\s*'([^']+)',\s*'([A-Z]+)'")


def rbac_of(cls: type, method: str, module: Any) -> tuple[str, str, str]:
    """(API group, resource, verb) of a ``kubernetes.client`` API method, from the request
    the client sends (its source names the path and the HTTP method)."""
    source = inspect.getsource(getattr(cls, f"{method}_with_http_info"))
    path, http = _CALL_API.search(source).groups()
    if "{group}" in path:  # CustomObjectsApi: the module names its group and plural
        path = path.replace("{group}", module.GROUP).replace("{version}", module.VERSION)
        path = path.replace("{plural}", module.PLURAL)
    parts = [p for p in path.strip("/").split("/") if p]
    if parts[0] == "api":  # /api/v1/...
        group, rest = "", parts[2:]
    else:  # /apis/<group>/<version>/...
        group, rest = parts[1], parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource, named = rest[0], len(rest) > 1 and rest[1] == "{name}"
    if len(rest) > 2:  # a subresource: pods/{name}/eviction
        resource = f"{resource}/{rest[2]}"
    verb = {
        "GET": "get" if named else "list",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }[http]
    return group, resource, verb


@pytest.mark.parametrize(
    ("cls", "method", "expected"),
    [
        ("CoreV1Api", "list_node", ("", "nodes", "list")),
        ("CoreV1Api", "read_node", ("", "nodes", "get")),
        ("CoreV1Api", "create_namespaced_pod_eviction", ("", "pods/eviction", "create")),
        ("AppsV1Api", "patch_namespaced_deployment", ("apps", "deployments", "patch")),
        ("CoreV1Api", "delete_namespaced_pod", ("", "pods", "delete")),
        (
            "CoordinationV1Api",
            "replace_namespaced_lease",
            ("coordination.k8s.io", "leases", "update"),
        ),
    ],
    ids=["list", "get", "subresource", "patch-apps", "delete", "replace-is-update"],
)
def test_rbac_of_reads_the_clients_request(cls, method, expected):
    assert rbac_of(_client_classes()[cls], method, None) == expected


def _modules(folders: list[str]) -> Iterator[tuple[str, Path]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            yield ".".join(rel.parts), path


def api_calls(source: str) -> set[tuple[str, str]]:
    """(API class, method) for every method used on a ``kubernetes.client`` API object in
    ``source``: objects bound to a name or ``self.<attr>`` from ``<X>Api(...)`` or
    ``kubernetes.client.<X>Api(...)``; methods called or passed on."""
    classes = _client_classes()
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # "api" or "self.core" -> class name

    def target_name(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return f"{node.value.id}.{node.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            cls = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if cls in classes:
                for target in node.targets:
                    if (name := target_name(target)) is not None:
                        bound[name] = cls
    calls = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (name := target_name(node.value)) in bound:
            cls = bound[name]
            if callable(getattr(classes[cls], node.attr, None)) and not node.attr.startswith("_"):
                calls.add((cls, node.attr))
    return calls


def test_api_call_finder_sees_bound_objects_and_passed_methods():
    source = (
        "import kubernetes\nfrom kubernetes.client import AppsV1Api\n"
        "class C:\n    def __init__(self, c):\n"
        "        self.core = kubernetes.client.CoreV1Api(c)\n"
        "    def f(self):\n        run(self.core.list_node)\n"
        "        api = AppsV1Api(None)\n        api.read_namespaced_deployment('x', 'y')\n"
        "        self.other.list_node()\n"
    )
    assert api_calls(source) == {
        ("CoreV1Api", "list_node"),
        ("AppsV1Api", "read_namespaced_deployment"),
    }


def code_needs() -> dict[str, set[tuple[str, str, str, str]]]:
    """Account -> {(group, resource, verb, "<module>:<Class>.<method>")} from its code."""
    classes = _client_classes()
    out: dict[str, set[tuple[str, str, str, str]]] = {}
    for account, folders in COMPONENT_CODE.items():
        found = set()
        for module_name, path in _modules(folders):
            calls = api_calls(path.read_text())
            if not calls:
                continue
            module = importlib.import_module(module_name)
            for cls, method in calls:
                group, resource, verb = rbac_of(classes[cls], method, module)
                found.add((group, resource, verb, f"{module_name}:{cls}.{method}"))
        out[account] = found
    return out


def test_every_code_call_has_a_row_and_every_row_a_code_call():
    derived = {
        (account, g, r, v, where)
        for account, calls in code_needs().items()
        for g, r, v, where in calls
    }
    table = {
        (n.account, n.group, n.resource, n.verb, n.why)
        for n in NEEDS
        if not n.why.startswith("doc:")
    }
    assert derived - table == set(), "the code calls the API where no row allows it"
    assert table - derived == set(), "a row whose code call is gone"


@pytest.mark.parametrize("account", ["hydatis-shim", "hydatis-model-server"])
def test_components_without_api_calls_hold_no_role(account):
    assert code_needs()[account] == set()
    perms, builtin = granted()
    assert not [p for p in perms if p.account == account]
    assert not [b for b in builtin if b[0] == account]


def test_every_row_names_where_the_need_comes_from():
    for need in NEEDS:
        assert need.why.startswith("doc: ") or re.fullmatch(r"[\w.]+:\w+Api\.\w+", need.why)
