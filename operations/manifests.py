"""Render the deployment's manifests (``kubectl kustomize``) and check them offline.

What a cluster would only reveal at apply or run time, found before: every built-in
object against the Kubernetes OpenAPI schema of its kind (``kubernetes_validate``, strict:
an unknown field is an error), custom kinds field by field, namespaces, the workloads'
hardening (non-root, read-only root filesystem, no privilege escalation, capabilities
dropped, seccomp, resources, probes, pinned images), the KubeSchedulerConfiguration's
extender (verbs, a Go-duration timeout above the extender's own deadline, a URL that
reaches the extender's Service) and the extender's settings (parsed by its own settings
class, so an unknown key fails here, not in a crash-looping pod). Custom kinds (KServe
InferenceServices, Katib Experiments) are checked field by field, and a predictor's pod
is held to the same hardening rules as a Deployment's.

The same rules as the infrastructure's offline tests, in a module production code can
call: ``hydatis validate`` runs them on the overlay it is about to check live.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hydatis.errors import ConfigError, HydatisError

__all__ = [
    "CLUSTER_SCOPED",
    "CUSTOM_KINDS",
    "INFRA",
    "K8S_VERSION",
    "NAMESPACE",
    "ExtenderConfig",
    "ManifestError",
    "Problem",
    "check_manifests",
    "custom_kind_problems",
    "extender_config",
    "go_duration_seconds",
    "overlays",
    "pod_spec_problems",
    "render",
    "schema_problem",
    "writable_path_problems",
]

INFRA = Path(__file__).resolve().parent.parent / "infra"
K8S_VERSION = "1.30"
NAMESPACE = "hydatis-system"
SCHEDULER_CONFIGMAP, SCHEDULER_CONFIG_KEY = "ml-scheduler-config", "config.yaml"
SHIM_CONFIGMAP, SHIM_CONFIG_KEY = "hydatis-shim-config", "shim.yaml"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
ISVC = ("serving.kserve.io/v1beta1", "InferenceService")
EXPERIMENT = ("kubeflow.org/v1beta1", "Experiment")
#: Kinds with no built-in schema: ``(apiVersion, kind)``; see :func:`custom_kind_problems`.
CUSTOM_KINDS = frozenset({ISVC, EXPERIMENT})
KATIB_OBJECTIVE_TYPES = {"maximize", "minimize"}
KATIB_PARAMETER_TYPES = {"int", "double", "categorical", "discrete"}
#: Objects that belong in kube-system (the Role they bind lives there).
KUBE_SYSTEM_KINDS = {"RoleBinding"}
_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
    "h": 3600.0,
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class ManifestError(HydatisError):
    """The manifests could not be rendered (no kubectl, no such overlay, kustomize
    failed); the message names which and why."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rendered object.

    Attributes:
        where: ``Kind/name`` (and the container or field when it helps).
        what: what is wrong.
    """

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class ExtenderConfig:
    """The extender as kube-scheduler is configured to call it.

    Attributes:
        url_prefix: ``urlPrefix`` (the in-cluster Service URL).
        filter_verb, prioritize_verb: the verbs ('' when kube-scheduler does not call it).
        node_cache_capable: send ``NodeNames`` (true) or whole ``Nodes`` (false).
        http_timeout_s: ``httpTimeout`` in seconds.
        https: ``enableHTTPS``.
        scheduler_name: the profile's ``schedulerName`` (what a pod names).
    """

    url_prefix: str
    filter_verb: str
    prioritize_verb: str
    node_cache_capable: bool
    http_timeout_s: float
    https: bool
    scheduler_name: str


def go_duration_seconds(text: Any) -> float:
    """Seconds in a Go ``time.ParseDuration`` string (``"500ms"``, ``"1m30s"``).

    Raises:
        ValueError: not one (a bare number other than 0 has no unit, so it is not).
    """
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


# --------------------------------------------------------------------------- rendering


def overlays(infra: Path = INFRA) -> list[str]:
    """The overlay names under ``infra/overlays`` (each a folder with a kustomization)."""
    root = infra / "overlays"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "kustomization.yaml").is_file())


def render(
    target: str | Path, *, infra: Path = INFRA, kubectl: str | None = None, timeout_s: float = 120
) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` builds from an overlay name or a folder.

    Raises:
        ManifestError: kubectl is missing, the overlay does not exist, or the build failed
            (kustomize's own message included).
    """
    folder = Path(target)
    if not folder.is_dir():
        names = overlays(infra)
        if str(target) not in names:
            raise ManifestError(
                f"no overlay {str(target)!r} under {infra / 'overlays'} "
                f"(there are: {', '.join(names) or 'none'})"
            )
        folder = infra / "overlays" / str(target)
    exe = kubectl or shutil.which("kubectl")
    if exe is None:
        raise ManifestError("kubectl is not on the PATH: it renders the kustomize overlays")
    try:
        proc = subprocess.run(
            [exe, "kustomize", str(folder)], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired as exc:
        raise ManifestError(f"kubectl kustomize {folder} took over {timeout_s:g} s") from exc
    if proc.returncode != 0:
        raise ManifestError(f"kubectl kustomize {folder} failed:\n{proc.stderr.strip()}")
    try:
        return [d for d in yaml.safe_load_all(proc.stdout) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"kubectl kustomize {folder} printed invalid YAML: {exc}") from exc


# --------------------------------------------------------------------------- checks


def _where(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def schema_problem(doc: dict[str, Any], k8s_version: str = K8S_VERSION) -> str | None:
    """Why ``doc`` fails the Kubernetes schema of its kind (strict), or None.

    Raises:
        ManifestError: ``kubernetes-validate`` is not installed.
    """
    try:
        import kubernetes_validate
    except ImportError as exc:
        raise ManifestError(
            "the schema checks need the kubernetes-validate package (pip install "
            "kubernetes-validate)"
        ) from exc

    try:
        kubernetes_validate.validate(doc, k8s_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return f"{doc.get('apiVersion')} {doc.get('kind')} is neither built-in nor a known kind"
    except kubernetes_validate.ValidationError as exc:
        at = "/".join(str(p) for p in exc.path) or "top level"
        return f"{exc.message} (at {at})"
    return None


def pod_spec_problems(where: str, pod: dict[str, Any], *, probes: bool = True) -> list[Problem]:
    """What keeps a pod template from the hardening rules (``probes``: long-running
    containers must have liveness and readiness probes; a Job's need none)."""
    problems: list[Problem] = []
    pod_sc = pod.get("securityContext") or {}
    init = {c.get("name") for c in pod.get("initContainers") or []}
    for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        at = f"{where}/{c.get('name')}"
        sc = c.get("securityContext") or {}
        res = c.get("resources") or {}
        for kind, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
            if key not in (res.get(kind) or {}):
                problems.append(Problem(at, f"no {kind}.{key}"))
        if probes and c.get("name") not in init:
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    problems.append(Problem(at, f"no {probe}"))
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(Problem(at, "runAsNonRoot not set"))
        if sc.get("runAsUser", pod_sc.get("runAsUser")) in (0, None):
            problems.append(Problem(at, "no non-zero runAsUser"))
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(Problem(at, "allowPrivilegeEscalation not false"))
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(Problem(at, "root filesystem writable"))
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(Problem(at, "capabilities not dropped"))
        if caps.get("add"):
            problems.append(Problem(at, f"adds capabilities {caps['add']}"))
        if sc.get("privileged"):
            problems.append(Problem(at, "privileged"))
        image = str(c.get("image", ""))
        if "@sha256:" not in image and ":" not in image.rsplit("/", 1)[-1]:
            problems.append(Problem(at, f"image {image!r} has no tag"))
        if image.endswith(":latest"):
            problems.append(Problem(at, f"image {image} is :latest"))
    seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        problems.append(Problem(where, f"seccompProfile {seccomp}, not RuntimeDefault"))
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append(Problem(where, "shares a host namespace"))
    return problems + writable_path_problems(where, pod)


def writable_path_problems(where: str, pod: dict[str, Any]) -> list[Problem]:
    """Mounts a container may write must be an emptyDir, or a PersistentVolumeClaim where
    state is meant to outlive the pod (the retraining jobs' work directory); anything else
    is state kept where it should not be (the root filesystem is read-only). Secret and
    ConfigMap mounts must be read-only."""
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    problems: list[Problem] = []
    for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        for m in c.get("volumeMounts") or []:
            at = f"{where}/{c.get('name')}:{m.get('mountPath')}"
            volume = volumes.get(m.get("name"))
            if volume is None:
                problems.append(Problem(at, f"mounts volume {m.get('name')!r}, not declared"))
                continue
            if ("secret" in volume or "configMap" in volume) and m.get("readOnly") is not True:
                problems.append(Problem(at, "Secret/ConfigMap mount not readOnly"))
            if not m.get("readOnly") and not ({"emptyDir", "persistentVolumeClaim"} & set(volume)):
                problems.append(Problem(at, "writable and neither an emptyDir nor a claim"))
    return problems


def _isvc_problems(where: str, spec: dict[str, Any]) -> list[Problem]:
    predictor = spec.get("predictor")
    if not isinstance(predictor, dict):
        return [Problem(where, "spec.predictor missing")]
    problems: list[Problem] = []
    low, high = predictor.get("minReplicas"), predictor.get("maxReplicas")
    if not (isinstance(low, int) and low >= 2):
        problems.append(Problem(where, f"minReplicas {low!r} (need >= 2 for availability)"))
    if not (isinstance(high, int) and isinstance(low, int) and high >= low):
        problems.append(Problem(where, f"maxReplicas {high!r} below minReplicas"))
    if not predictor.get("containers"):
        problems.append(Problem(where, "no predictor container"))
    if not predictor.get("serviceAccountName"):
        problems.append(Problem(where, "no serviceAccountName (would run as 'default')"))
    return problems


def _experiment_problems(where: str, spec: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    objective = spec.get("objective") or {}
    if objective.get("type") not in KATIB_OBJECTIVE_TYPES:
        problems.append(Problem(where, f"objective.type {objective.get('type')!r}"))
    if not objective.get("objectiveMetricName"):
        problems.append(Problem(where, "no objective.objectiveMetricName"))
    if not (spec.get("algorithm") or {}).get("algorithmName"):
        problems.append(Problem(where, "no algorithm.algorithmName"))
    params = spec.get("parameters") or []
    if not params:
        problems.append(Problem(where, "no parameters"))
    for p in params:
        if p.get("parameterType") not in KATIB_PARAMETER_TYPES or "feasibleSpace" not in p:
            problems.append(Problem(where, f"parameter {p.get('name')!r} type or feasibleSpace"))
    template = spec.get("trialTemplate") or {}
    for key in ("primaryContainerName", "trialParameters", "trialSpec"):
        if key not in template:
            problems.append(Problem(where, f"trialTemplate.{key} missing"))
    counts = [spec.get(k) for k in ("parallelTrialCount", "maxTrialCount")]
    if not all(isinstance(c, int) and c > 0 for c in counts) or counts[0] > counts[1]:
        problems.append(Problem(where, f"parallelTrialCount/maxTrialCount {counts}"))
    return problems


def custom_kind_problems(doc: dict[str, Any]) -> list[Problem]:
    """Field checks of a kind with no built-in schema (:data:`CUSTOM_KINDS`); empty: it
    passes. An InferenceService needs a predictor of at least two replicas, with a
    container and its own ServiceAccount; a Katib Experiment an objective, an algorithm,
    typed parameters, a trial template and sane trial counts."""
    where = _where(doc)
    key = (doc.get("apiVersion"), doc.get("kind"))
    spec = doc.get("spec") or {}
    if key == ISVC:
        return _isvc_problems(where, spec)
    if key == EXPERIMENT:
        return _experiment_problems(where, spec)
    return [Problem(where, f"{key[0]} {key[1]} has no field checker")]


def _pod_template(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """(the pod spec of a workload, whether its containers must have probes)."""
    spec = doc.get("spec") or {}
    kind = doc.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        return (spec.get("template") or {}).get("spec"), True
    if kind == "Job":
        return (spec.get("template") or {}).get("spec"), False
    if kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        return (job.get("template") or {}).get("spec"), False
    if (doc.get("apiVersion"), kind) == ISVC:
        predictor = spec.get("predictor")
        return (predictor if isinstance(predictor, dict) else None), True
    return None, False


def _embedded(docs: list[dict[str, Any]], name: str, key: str) -> dict[str, Any] | None:
    for d in docs:
        if d.get("kind") == "ConfigMap" and (d.get("metadata") or {}).get("name") == name:
            text = (d.get("data") or {}).get(key)
            if text is None:
                return None
            parsed = yaml.safe_load(text)
            return parsed if isinstance(parsed, dict) else None
    return None


def extender_config(docs: list[dict[str, Any]]) -> ExtenderConfig:
    """The extender kube-scheduler calls, from the rendered scheduler ConfigMap.

    Raises:
        ConfigError: no such ConfigMap, not v1, or not exactly one extender and profile.
    """
    where = f"ConfigMap/{SCHEDULER_CONFIGMAP} key {SCHEDULER_CONFIG_KEY}"
    ksc = _embedded(docs, SCHEDULER_CONFIGMAP, SCHEDULER_CONFIG_KEY)
    if ksc is None:
        raise ConfigError(f"{where}: missing from the manifests")
    if ksc.get("apiVersion") != "kubescheduler.config.k8s.io/v1":
        raise ConfigError(f"{where}: apiVersion {ksc.get('apiVersion')!r}, not v1")
    extenders = ksc.get("extenders") or []
    profiles = ksc.get("profiles") or []
    if len(extenders) != 1 or len(profiles) != 1:
        raise ConfigError(
            f"{where}: expected one extender and one profile, got {len(extenders)} and "
            f"{len(profiles)}"
        )
    ext = extenders[0]
    try:
        timeout = go_duration_seconds(ext.get("httpTimeout", "30s"))
    except ValueError as exc:
        raise ConfigError(f"{where}: extenders[0].httpTimeout: {exc}") from exc
    return ExtenderConfig(
        url_prefix=str(ext.get("urlPrefix", "")).rstrip("/"),
        filter_verb=str(ext.get("filterVerb") or ""),
        prioritize_verb=str(ext.get("prioritizeVerb") or ""),
        node_cache_capable=bool(ext.get("nodeCacheCapable", False)),
        http_timeout_s=timeout,
        https=bool(ext.get("enableHTTPS", False)),
        scheduler_name=str(profiles[0].get("schedulerName", "default-scheduler")),
    )


def _extender_problems(docs: list[dict[str, Any]]) -> list[Problem]:
    where = f"ConfigMap/{SCHEDULER_CONFIGMAP}"
    try:
        ext = extender_config(docs)
    except ConfigError as exc:
        return [Problem(where, str(exc))]
    problems: list[Problem] = []
    if not ext.filter_verb or not ext.prioritize_verb:
        problems.append(Problem(where, "the extender needs both filterVerb and prioritizeVerb"))
    url = urlsplit(ext.url_prefix)
    if url.scheme != ("https" if ext.https else "http"):
        problems.append(Problem(where, f"urlPrefix {ext.url_prefix} vs enableHTTPS {ext.https}"))
    host = (url.hostname or "").split(".")
    services = [
        d
        for d in docs
        if d.get("kind") == "Service" and (d.get("metadata") or {}).get("name") == host[0]
    ]
    if not services:
        problems.append(Problem(where, f"urlPrefix names Service {host[0]!r}, not rendered"))
    elif url.port and not any(
        p.get("port") == url.port for p in (services[0].get("spec") or {}).get("ports", [])
    ):
        problems.append(Problem(where, f"Service {host[0]} has no port {url.port}"))
    shim = _embedded(docs, SHIM_CONFIGMAP, SHIM_CONFIG_KEY)
    if shim is None:
        problems.append(Problem(f"ConfigMap/{SHIM_CONFIGMAP}", f"no {SHIM_CONFIG_KEY}"))
        return problems
    from pydantic import ValidationError

    from hydatis.settings import validation_problems
    from scheduler_shim.config import ShimConfig

    try:
        deadline = ShimConfig(**shim).deadline_s
    except ValidationError as exc:
        problems.append(Problem(f"ConfigMap/{SHIM_CONFIGMAP}", validation_problems(exc)))
        return problems
    if not 0 < deadline < ext.http_timeout_s:
        problems.append(
            Problem(
                where,
                f"httpTimeout {ext.http_timeout_s:g} s must exceed the extender's "
                f"deadline_s {deadline:g} s",
            )
        )
    return problems


def check_manifests(docs: list[dict[str, Any]], k8s_version: str = K8S_VERSION) -> list[Problem]:
    """Every problem of a rendered deployment (empty: none)."""
    problems: list[Problem] = []
    if not docs:
        return [Problem("manifests", "nothing rendered")]
    for doc in docs:
        where = _where(doc)
        key = (doc.get("apiVersion"), doc.get("kind"))
        meta = doc.get("metadata") or {}
        if key in CUSTOM_KINDS:
            problems += custom_kind_problems(doc)
        else:
            why = schema_problem(doc, k8s_version)
            if why:
                problems.append(Problem(where, why))
        namespace = meta.get("namespace")
        if doc.get("kind") in CLUSTER_SCOPED:
            if namespace:
                problems.append(Problem(where, "cluster-scoped but names a namespace"))
        elif not (
            namespace == NAMESPACE
            or (namespace == "kube-system" and doc.get("kind") in KUBE_SYSTEM_KINDS)
        ):
            problems.append(Problem(where, f"namespace {namespace!r}, not {NAMESPACE}"))
        pod, probes = _pod_template(doc)
        if pod is not None:
            problems += pod_spec_problems(where, pod, probes=probes)
    if any(_where(d) == f"ConfigMap/{SCHEDULER_CONFIGMAP}" for d in docs):
        problems += _extender_problems(docs)
    return problems
