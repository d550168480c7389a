"""The actions: cordon and drain a node, change the extender's mode or rollout, roll a
model back to the previous champion, start retraining.

Each takes ``dry_run`` and returns an :class:`Outcome`: in dry-run it reads what it needs
(the node list, the pods, the ConfigMap, the registry) and says exactly what it would
change, and changes nothing.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from monitoring.remediation.config import RemediationConfig
from monitoring.remediation.errors import KubeApiError, RegistryError
from monitoring.remediation.guards import PdbBudgets, blast_radius, evictable, pdb_blocks
from monitoring.remediation.kube import KubeCluster
from monitoring.remediation.metrics import RemediationMetrics

__all__ = [
    "EXTENDER_REASON_MARKERS",
    "SHIM_DEFAULT_MODE",
    "SHIM_DEFAULT_ROLLOUT",
    "CordonDrain",
    "ExtenderSettings",
    "ModelRollback",
    "Outcome",
    "Retrain",
    "extender_blocked_nodes",
]

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "hydatis.io/"
#: The extender's defaults for the two settings remediation changes (scheduler_shim's
#: ``ShimConfig``; a test checks they agree).
SHIM_DEFAULT_MODE = "active"
SHIM_DEFAULT_ROLLOUT = 100.0
_ENV = {"mode": "HYDATIS_SHIM_MODE", "rollout_percent": "HYDATIS_SHIM_ROLLOUT_PERCENT"}
#: Phrases of the extender's filter reasons (scheduler_shim.scoring.filter_reasons), as
#: kube-scheduler repeats them in a pending pod's PodScheduled condition.
EXTENDER_REASON_MARKERS = ("after placement exceeds", "node flagged anomalous")


@dataclass
class Outcome:
    """What one decision did.

    Attributes:
        action: the action kind.
        target: what it acted on (a node, ``configmap ns/name``, a model, a command).
        result: done, partial, dry_run, refused, noop, failed, ...
        reason: one line for people.
        details: what exactly (pods evicted, settings before/after, versions, pid).
    """

    action: str
    target: str
    result: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether it changed (or in dry-run would have changed) something."""
        return self.result in ("done", "partial", "dry_run")


def _now_iso(clock: Callable[[], float]) -> str:
    return datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_id(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


# ---------------------------------------------------------------------- cordon and drain
class CordonDrain:
    """Cordon a node and evict the pods a controller will recreate elsewhere.

    Order of checks: the node exists; the blast radius (unless the node is cordoned
    already); then each pod: evictable at all (:func:`~guards.evictable`), its PDBs'
    remaining budgets (:func:`~guards.pdb_blocks`), the per-action cap. The API server's
    own PDB check answers 429, recorded as ``blocked_by_pdb``.
    """

    def __init__(
        self,
        cluster: KubeCluster | None,
        config: RemediationConfig,
        metrics: RemediationMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster, self.config, self.metrics, self.clock = cluster, config, metrics, clock

    def run(self, node: str, why: str, *, dry_run: bool) -> Outcome:
        """Cordon ``node`` and drain it (``why``: the alert, for the node's annotation)."""
        if self.cluster is None:
            return Outcome("cordon_drain", node, "refused", "no Kubernetes API configured")
        me = self.cluster.get_node(node)
        if me is None:
            return Outcome("cordon_drain", node, "refused", f"no node named {node}")
        already = bool((me.get("spec") or {}).get("unschedulable"))
        details: dict[str, Any] = {"already_cordoned": already}
        if not already:
            verdict = blast_radius(
                node,
                self.cluster.list_nodes(),
                pool_label=self.config.pool_label,
                max_share=self.config.max_cordoned_share,
            )
            details["pool"] = {
                "name": verdict.pool,
                "size": verdict.pool_size,
                "cordoned": verdict.cordoned,
                "cap": verdict.cap,
            }
            if not verdict.allowed:
                return Outcome("cordon_drain", node, "refused", verdict.reason, details)
        pods = self.cluster.pods_on_node(node)
        plan, skipped = self._plan(pods)
        details["evict"] = [_pod_id(p) for p in plan]
        details["skipped"] = skipped
        if not already and not plan and not pods:
            reason_tail = "no pods on it"
        else:
            reason_tail = f"{len(plan)} evictable pod(s), {len(skipped)} kept"
        if dry_run:
            self.metrics.evictions.labels("dry_run").inc(len(plan))
            verb = "would evict" if already else "would cordon and evict"
            return Outcome("cordon_drain", node, "dry_run", f"{verb}: {reason_tail}", details)
        if not already:
            self.cluster.cordon(
                node,
                {
                    f"{ANNOTATION_PREFIX}cordoned-by": "hydatis-remediation",
                    f"{ANNOTATION_PREFIX}cordoned-at": _now_iso(self.clock),
                    f"{ANNOTATION_PREFIX}cordon-reason": why[:250],
                },
            )
        results: dict[str, str] = {}
        for pod in plan:
            meta = pod["metadata"]
            try:
                res = self.cluster.evict(meta["namespace"], meta["name"])
            except KubeApiError as exc:
                log.warning("eviction of %s failed: %s", _pod_id(pod), exc)
                res = "failed"
            results[_pod_id(pod)] = res
            self.metrics.evictions.labels(res).inc()
        details["evictions"] = results
        failed = [p for p, r in results.items() if r in ("failed", "blocked_by_pdb")]
        result = "partial" if failed else "done"
        verb = "evicted" if already else "cordoned; evicted"
        done = sum(r == "evicted" for r in results.values())
        reason = f"{verb} {done} of {len(plan)} pod(s)"
        if failed:
            reason += f"; {len(failed)} not evicted (PDB or API error): a later delivery retries"
        return Outcome("cordon_drain", node, result, reason, details)

    def _plan(self, pods: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict]]:
        plan: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        candidates = []
        for pod in pods:
            why = evictable(pod, self.config.protected_namespaces)
            if why is None:
                candidates.append(pod)
            else:
                skipped.append({"pod": _pod_id(pod), "why": why})
        budgets = PdbBudgets.from_list(self.cluster.list_pdbs()) if candidates else PdbBudgets()
        for pod in candidates:
            why = pdb_blocks(pod, budgets)
            if why is not None:
                skipped.append({"pod": _pod_id(pod), "why": why})
            elif len(plan) >= self.config.max_evictions_per_action:
                skipped.append({"pod": _pod_id(pod), "why": "over the per-action eviction cap"})
            else:
                plan.append(pod)
        return plan, skipped


# ---------------------------------------------------------------------- the extender
def extender_blocked_nodes(message: str) -> tuple[int, int]:
    """From kube-scheduler's FitError message ("0/N nodes are available: 3 Insufficient
    cpu, 5 <extender reason>. preemption: ..."): (nodes failed by the extender, nodes in
    the message). The extender only sees nodes every other filter passed, so a pod with
    any node failed by the extender would fit that node without it."""
    text = message.split("are available:", 1)[-1]
    text = text.split(". preemption:", 1)[0].strip().rstrip(".")
    blocked = total = 0
    for item in re.split(r",\s+(?=\d+\s)", text):
        m = re.match(r"\s*(\d+)\s+(.*)", item)
        if not m:
            continue
        count = int(m.group(1))
        total += count
        if any(marker in m.group(2) for marker in EXTENDER_REASON_MARKERS):
            blocked += count
    return blocked, total


class ExtenderSettings:
    """Read and change the extender's ``mode`` and ``rollout_percent``.

    On a cluster (``extender_target: configmap``) the settings YAML lives in a ConfigMap
    key; the extender reads it at start, and ``HYDATIS_SHIM_<KEY>`` variables on its
    Deployment override it (the prod overlay sets the rollout stage that way). A change
    therefore patches the ConfigMap, then the Deployment: the same variables where they
    are set, and a pod-template annotation that rolls the pods so they read the new
    values. Locally (``file``) it rewrites the settings file.
    """

    def __init__(
        self,
        cluster: KubeCluster | None,
        config: RemediationConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster, self.config, self.clock = cluster, config, clock

    @property
    def target(self) -> str:
        """Where the settings live, for the audit."""
        c = self.config
        if c.extender_target == "file":
            return f"file {c.extender_config_file}"
        return f"configmap {c.extender_namespace}/{c.extender_configmap}"

    # -- reading
    def _read(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(settings from the file or ConfigMap, the Deployment or None)."""
        c = self.config
        if c.extender_target == "file":
            if c.extender_config_file is None:
                raise _RefusedError("extender_config_file is not set")
            path = Path(c.extender_config_file)
            if not path.is_file():
                raise _RefusedError(f"no extender settings file at {path}")
            return _settings(path.read_text(), str(path)), None
        if self.cluster is None:
            raise _RefusedError("no Kubernetes API configured")
        cm = self.cluster.read_configmap(c.extender_namespace, c.extender_configmap)
        if cm is None:
            raise _RefusedError(f"no ConfigMap {c.extender_namespace}/{c.extender_configmap}")
        text = (cm.get("data") or {}).get(c.extender_config_key)
        if text is None:
            raise _RefusedError(
                f"ConfigMap {c.extender_configmap} has no key {c.extender_config_key}"
            )
        deployment = self.cluster.read_deployment(c.extender_namespace, c.extender_deployment)
        return _settings(text, f"configmap key {c.extender_config_key}"), deployment

    def current(self) -> dict[str, Any]:
        """The effective mode and rollout (Deployment variables over the settings)."""
        settings, deployment = self._read()
        return _effective(settings, deployment)

    # -- changing
    def change(self, action: str, *, dry_run: bool) -> Outcome:
        """``extender_fallback`` (mode shadow) or ``rollout_lower`` (rollout × factor)."""
        try:
            settings, deployment = self._read()
        except _RefusedError as exc:
            return Outcome(action, self.target, "refused", str(exc))
        before = _effective(settings, deployment)
        after = dict(before)
        if action == "extender_fallback":
            after["mode"] = "shadow"
        else:
            after["rollout_percent"] = float(
                int(before["rollout_percent"] * self.config.rollout_factor)
            )
        details = {"before": before, "after": after}
        if after == before:
            what = "already in shadow mode" if action == "extender_fallback" else "rollout at 0 %"
            return Outcome(action, self.target, "noop", what, details)
        reason = ", ".join(f"{k} {before[k]} -> {after[k]}" for k in after if after[k] != before[k])
        if dry_run:
            return Outcome(action, self.target, "dry_run", f"would set {reason}", details)
        new_settings = {**settings, **after}
        text = yaml.safe_dump(new_settings, sort_keys=False)
        c = self.config
        if c.extender_target == "file":
            _atomic_write(Path(c.extender_config_file), text)
            details["apply"] = "restart the extender: it reads its settings file at start"
            return Outcome(action, self.target, "done", f"set {reason}", details)
        self.cluster.patch_configmap(
            c.extender_namespace, c.extender_configmap, {c.extender_config_key: text}
        )
        if deployment is None:
            details["apply"] = "no Deployment found: the extender reads the ConfigMap at start"
        else:
            self.cluster.patch_deployment(
                c.extender_namespace, c.extender_deployment, self._rollout_patch(deployment, after)
            )
            details["apply"] = f"deployment {c.extender_deployment} rolled"
        return Outcome(action, self.target, "done", f"set {reason}", details)

    def _rollout_patch(self, deployment: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        template: dict[str, Any] = {
            "metadata": {"annotations": {f"{ANNOTATION_PREFIX}remediated-at": _now_iso(self.clock)}}
        }
        containers = []
        for ctr in (
            ((deployment.get("spec") or {}).get("template") or {})
            .get("spec", {})
            .get("containers", [])
        ):
            names = {e.get("name") for e in ctr.get("env") or []}
            env = [
                {"name": var, "value": _env_value(after[key])}
                for key, var in _ENV.items()
                if var in names
            ]
            if env:
                containers.append({"name": ctr["name"], "env": env})
        if containers:
            template["spec"] = {"containers": containers}
        return {"spec": {"template": template}}


class _RefusedError(Exception):
    """An action cannot proceed for a reason people must fix (recorded as refused)."""


def _settings(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise _RefusedError(f"the extender's settings ({where}) are not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise _RefusedError(f"the extender's settings ({where}) are not a mapping")
    return data


def _effective(settings: dict[str, Any], deployment: dict[str, Any] | None) -> dict[str, Any]:
    mode = settings.get("mode") or SHIM_DEFAULT_MODE
    rollout = settings.get("rollout_percent")
    rollout = SHIM_DEFAULT_ROLLOUT if rollout is None else float(rollout)
    if deployment is not None:
        spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        for ctr in spec.get("containers") or []:
            for e in ctr.get("env") or []:
                if e.get("name") == _ENV["mode"] and e.get("value"):
                    mode = e["value"]
                if e.get("name") == _ENV["rollout_percent"] and e.get("value"):
                    rollout = float(e["value"])
    return {"mode": str(mode), "rollout_percent": float(rollout)}


def _env_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------- models
class ModelRollback:
    """Move a model's ``champion`` alias back to the previous champion.

    The previous champion is the newest version older than the current champion that
    passed its gate when registered (tag ``gate=passed``) and was never rolled back. The
    version moved away from gets ``rolled_back`` (why and when), so it is never chosen
    again. Serving picks the champion up when it (re)loads ``models:/<name>@champion``.
    """

    def __init__(self, config: RemediationConfig, clock: Callable[[], float] = time.time):
        self.config, self.clock = config, clock

    def run(self, model: str, why: str, *, dry_run: bool) -> Outcome:
        """Roll ``model`` (a registered model name) back."""
        try:
            from mlflow.exceptions import MlflowException
            from mlflow.tracking import MlflowClient
        except ImportError as exc:  # pragma: no cover - mlflow is a project dependency
            raise RegistryError(f"mlflow is not installed: {exc}") from exc
        uri = self.config.tracking_uri()
        client = MlflowClient(uri, uri)
        try:
            try:
                champion = client.get_model_version_by_alias(model, "champion")
            except MlflowException:
                return Outcome("model_rollback", model, "refused", f"{model} has no champion")
            versions = client.search_model_versions(f"name='{model}'")
        except MlflowException as exc:
            raise RegistryError(f"registry {uri}: {exc}") from exc
        current = int(champion.version)
        earlier = [
            v
            for v in versions
            if int(v.version) < current
            and (v.tags or {}).get("gate") == "passed"
            and "rolled_back" not in (v.tags or {})
        ]
        if not earlier:
            return Outcome(
                "model_rollback",
                model,
                "refused",
                f"no version of {model} before {current} passed its gate: nothing to roll back to",
                {"champion": str(current)},
            )
        previous = max(earlier, key=lambda v: int(v.version))
        details = {"from_version": str(current), "to_version": str(previous.version)}
        if dry_run:
            return Outcome(
                "model_rollback",
                model,
                "dry_run",
                f"would move champion from version {current} to {previous.version}",
                details,
            )
        try:
            client.set_registered_model_alias(model, "champion", str(previous.version))
            client.set_model_version_tag(
                model, str(current), "rolled_back", f"{_now_iso(self.clock)}: {why}"[:5000]
            )
        except MlflowException as exc:
            raise RegistryError(f"registry {uri}: {exc}") from exc
        return Outcome(
            "model_rollback",
            model,
            "done",
            f"champion moved from version {current} to {previous.version}",
            details,
        )


# ---------------------------------------------------------------------- retraining
class Retrain:
    """Start the retraining command, at most once per ``retrain_min_interval_s`` and never
    while the previous one still runs. The command runs detached; its output goes to
    ``retrain_log``; the model it trains reaches serving only through the registry's
    gate."""

    def __init__(self, config: RemediationConfig, clock: Callable[[], float] = time.time):
        self.config, self.clock = config, clock
        self.last_start: float | None = None
        self.process: subprocess.Popen | None = None

    def run(self, why: str, *, dry_run: bool) -> Outcome:
        """Start retraining (``why``: for the audit and the log)."""
        cmd = list(self.config.retrain_command)
        target = " ".join(cmd)
        if self.process is not None and self.process.poll() is None:
            return Outcome(
                "retrain", target, "noop", f"retraining (pid {self.process.pid}) still runs"
            )
        now = self.clock()
        if (
            self.last_start is not None
            and now - self.last_start < self.config.retrain_min_interval_s
        ):
            ago = now - self.last_start
            return Outcome(
                "retrain",
                target,
                "noop",
                f"retraining started {ago / 60:.0f} min ago (at most once every "
                f"{self.config.retrain_min_interval_s / 3600:.1f} h)",
            )
        if dry_run:
            return Outcome("retrain", target, "dry_run", f"would run: {target}")
        log_path = Path(self.config.retrain_log)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_path.open("ab") as out:
                out.write(f"\n=== {_now_iso(self.clock)} {why}: {target}\n".encode())
                out.flush()
                self.process = subprocess.Popen(
                    cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        except OSError as exc:
            return Outcome("retrain", target, "failed", f"cannot start {cmd[0]}: {exc}")
        self.last_start = now
        return Outcome(
            "retrain",
            target,
            "done",
            f"started (pid {self.process.pid}), output in {log_path}",
            {"pid": self.process.pid, "log": str(log_path)},
        )
