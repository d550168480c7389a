"""Emergency fallback from the ML scheduler to kube-scheduler's default, and back.

A pod's ``schedulerName`` cannot change once the pod exists, so falling back acts on
what decides new pods:

1. **The share.** The extender's ``rollout_percent`` goes to 0 %: every pod the ML
   scheduler places gets the extender's neutral answer (kube-scheduler's default plugins
   decide). The previous share is remembered beside the settings (the extender
   Deployment's annotation ``hydatis.io/fallback-previous-rollout-percent``).
2. **The templates**, only when the ML scheduler itself is down (its Deployment has no
   ready replica, or its leader-election Lease has not been renewed within its duration):
   every Deployment, StatefulSet and ReplicaSet not owned by a Deployment whose pod
   template says ``schedulerName: ml-scheduler`` is patched to ``default-scheduler``, the
   previous value kept in the workload's annotation
   ``hydatis.io/fallback-previous-scheduler``; then its pending pods that still name the
   ML scheduler are deleted, so the controller recreates them for the default
   scheduler. A Job's pod template is immutable, so Jobs are reported, never patched.

``off`` undoes both: templates back to the annotated value (annotations removed), the
share back to the remembered value. It refuses while the ML scheduler is still down
(unless forced), because restored templates would strand the new pods again.

Every call is a dry run unless ``dry_run=False``; each decision is one line in the audit
log (:class:`monitoring.remediation.audit.AuditLog`). Repeating ``on`` changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from monitoring.remediation.actions import Outcome
from monitoring.remediation.audit import AuditLog, AuditRecord
from monitoring.remediation.errors import KubeApiError
from monitoring.remediation.guards import selector_matches as pdb_selector_matches
from operations._fallback_kube import OpsCluster
from operations._rollout_share import ShareControl

__all__ = [
    "ANNOTATION_AT",
    "ANNOTATION_PREVIOUS_SCHEDULER",
    "MEMORY_PREVIOUS_SHARE",
    "MEMORY_SINCE",
    "Fallback",
    "FallbackConfig",
    "FallbackReport",
    "SchedulerHealth",
    "WorkloadRef",
    "selector_matches",
]

log = logging.getLogger(__name__)

ANNOTATION_PREVIOUS_SCHEDULER = "hydatis.io/fallback-previous-scheduler"
ANNOTATION_AT = "hydatis.io/fallback-at"
MEMORY_PREVIOUS_SHARE = "hydatis.io/fallback-previous-rollout-percent"
MEMORY_SINCE = "hydatis.io/fallback-since"
_PATCHABLE = ("Deployment", "StatefulSet", "ReplicaSet")


class FallbackConfig(BaseModel):
    """Where the ML scheduler runs and what it is called (infra/base defaults).

    Attributes:
        ml_scheduler_name: the profile's ``schedulerName``.
        default_scheduler_name: what templates fall back to.
        scheduler_namespace, scheduler_deployment: the ML scheduler's Deployment.
        lease_name: its leader-election Lease (same namespace).
        lease_stale_s: a Lease not renewed for this long (or its own
            ``leaseDurationSeconds`` if longer) means no leader is scheduling.
    """

    model_config = {"extra": "forbid"}

    ml_scheduler_name: str = "ml-scheduler"
    default_scheduler_name: str = "default-scheduler"
    scheduler_namespace: str = "hydatis-system"
    scheduler_deployment: str = "ml-scheduler"
    lease_name: str = "ml-scheduler"
    lease_stale_s: float = Field(30.0, gt=0)


@dataclass
class SchedulerHealth:
    """Whether the ML scheduler is scheduling (``up`` None: cannot tell)."""

    up: bool | None
    reason: str
    ready_replicas: int | None = None
    replicas: int | None = None
    lease_holder: str | None = None
    lease_age_s: float | None = None


@dataclass
class WorkloadRef:
    """One workload whose pod template uses (or used) the ML scheduler."""

    kind: str
    namespace: str
    name: str
    scheduler: str
    previous: str | None
    selector: dict[str, Any]
    owned_by_deployment: bool = False
    pending_ml_pods: list[str] = field(default_factory=list)

    @property
    def ident(self) -> str:
        """``Kind ns/name``."""
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass
class FallbackReport:
    """What one ``on``/``off`` decided, in order."""

    command: str
    dry_run: bool
    outcomes: list[Outcome]

    @property
    def changed(self) -> bool:
        """Whether anything changed (or, in a dry run, would)."""
        return any(o.changed for o in self.outcomes)

    @property
    def failed(self) -> bool:
        """Whether any step failed or was refused."""
        return any(o.result in ("failed", "refused", "partial") for o in self.outcomes)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A workload's ``LabelSelector`` (matchLabels, matchExpressions) against a pod's
    labels, matched as remediation matches disruption budgets, except that an empty
    selector matches nothing here: a workload always has one, so an empty one is no
    claim on any pod."""
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    return pdb_selector_matches(selector, labels)


class Fallback:
    """Fallback ``on``/``off``/``status`` (see the module docstring).

    Args:
        cluster: the Kubernetes API (None: only a file-based share can be changed).
        share: the extender's share setter (its own cluster handle and settings).
        config: names of the ML scheduler's objects.
        audit: where each decision is recorded (None: not recorded).
        clock: unix seconds (a replay passes its own clock).
    """

    def __init__(
        self,
        cluster: OpsCluster | None,
        share: ShareControl,
        config: FallbackConfig | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster, self.share = cluster, share
        self.config = config or FallbackConfig()
        self.audit, self.clock = audit, clock

    # ------------------------------------------------------------------ reading
    def health(self) -> SchedulerHealth:
        """The ML scheduler's Deployment readiness and Lease freshness."""
        c = self.config
        if self.cluster is None:
            return SchedulerHealth(None, "no Kubernetes API configured")
        dep = self.cluster.read_deployment(c.scheduler_namespace, c.scheduler_deployment)
        lease = self.cluster.read_lease(c.scheduler_namespace, c.lease_name)
        ready = replicas = None
        if dep is not None:
            status = dep.get("status") or {}
            ready = int(status.get("readyReplicas") or 0)
            replicas = int((dep.get("spec") or {}).get("replicas", 1) or 0)
        holder = age = None
        stale = False
        if lease is not None:
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            renewed = _parse_time(spec.get("renewTime") or spec.get("acquireTime"))
            if renewed is not None:
                age = max(self.clock() - renewed, 0.0)
                limit = max(c.lease_stale_s, float(spec.get("leaseDurationSeconds") or 0))
                stale = age > limit
        where = f"{c.scheduler_namespace}/{c.scheduler_deployment}"
        if dep is None and lease is None:
            return SchedulerHealth(None, f"no Deployment or Lease {where}")
        if ready == 0:
            why = f"Deployment {where} has 0/{replicas} ready replicas"
            return SchedulerHealth(False, why, ready, replicas, holder, age)
        if stale:
            why = f"Lease {c.lease_name} not renewed for {age:.0f} s"
            return SchedulerHealth(False, why, ready, replicas, holder, age)
        why = f"{ready}/{replicas} ready" if dep is not None else "Lease fresh"
        if age is not None:
            why += f", lease renewed {age:.0f} s ago"
        return SchedulerHealth(True, why, ready, replicas, holder, age)

    def workloads(self, *, with_pods: bool = True) -> list[WorkloadRef]:
        """Workloads whose template names the ML scheduler or carries our annotation,
        with their pending pods that still name the ML scheduler."""
        c = self.config
        if self.cluster is None:
            return []
        found: list[WorkloadRef] = []
        for kind in (*_PATCHABLE, "Job"):
            for obj in self.cluster.list_workloads(kind):
                meta = obj.get("metadata") or {}
                spec = obj.get("spec") or {}
                tmpl = (spec.get("template") or {}).get("spec") or {}
                sched = tmpl.get("schedulerName") or c.default_scheduler_name
                previous = (meta.get("annotations") or {}).get(ANNOTATION_PREVIOUS_SCHEDULER)
                if sched != c.ml_scheduler_name and previous is None:
                    continue
                owners = meta.get("ownerReferences") or []
                found.append(
                    WorkloadRef(
                        kind=kind,
                        namespace=meta.get("namespace", "default"),
                        name=meta.get("name", ""),
                        scheduler=sched,
                        previous=previous,
                        selector=spec.get("selector") or {},
                        owned_by_deployment=any(
                            o.get("kind") == "Deployment" and o.get("controller") for o in owners
                        ),
                    )
                )
        if with_pods and found:
            self._attach_pending(found)
        return found

    def _attach_pending(self, refs: Iterable[WorkloadRef]) -> None:
        pending = self.cluster.pending_pods()
        for pod in pending:
            meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
            if spec.get("nodeName") or meta.get("deletionTimestamp"):
                continue
            if spec.get("schedulerName") != self.config.ml_scheduler_name:
                continue
            labels = meta.get("labels") or {}
            for ref in refs:
                if ref.namespace == meta.get("namespace") and selector_matches(
                    ref.selector, labels
                ):
                    ref.pending_ml_pods.append(meta.get("name", ""))
                    break

    def status(self) -> dict[str, Any]:
        """The share, whether fallback is on, the ML scheduler's health, the workloads."""
        try:
            current = self.share.current()
            memory = self.share.memory()
            share_error = None
        except Exception as exc:  # a missing ConfigMap is a status, not a crash
            current, memory, share_error = {}, {}, str(exc)
        health = self.health()
        refs = self.workloads()
        return {
            "share": current,
            "share_error": share_error,
            "fallback_on": MEMORY_PREVIOUS_SHARE in memory
            or any(r.previous is not None for r in refs),
            "previous_share": memory.get(MEMORY_PREVIOUS_SHARE),
            "since": memory.get(MEMORY_SINCE),
            "scheduler": health.__dict__,
            "workloads": [
                {
                    "kind": r.kind,
                    "namespace": r.namespace,
                    "name": r.name,
                    "scheduler": r.scheduler,
                    "previous": r.previous,
                    "pending_ml_pods": len(r.pending_ml_pods),
                    "owned_by_deployment": r.owned_by_deployment,
                }
                for r in refs
            ],
        }

    # ------------------------------------------------------------------ acting
    def on(self, *, dry_run: bool = True, force_templates: bool = False) -> FallbackReport:
        """Share to 0 %; templates to the default scheduler when the ML scheduler is down
        (or ``force_templates``)."""
        outcomes = [self._share_off(dry_run)]
        health = self.health()
        if self.cluster is None:
            outcomes.append(Outcome("fallback_templates", "workloads", "refused", health.reason))
        elif health.up is False or force_templates:
            why = "forced" if health.up is not False else health.reason
            outcomes += self._templates_to_default(why, dry_run)
        else:
            state = "up" if health.up else "of unknown health"
            outcomes.append(
                Outcome(
                    "fallback_templates",
                    "workloads",
                    "noop",
                    f"the ML scheduler is {state} ({health.reason}): its pods get neutral "
                    "scores; templates unchanged",
                    {"scheduler": health.__dict__},
                )
            )
        return self._report("on", dry_run, outcomes)

    def off(self, *, dry_run: bool = True, force: bool = False) -> FallbackReport:
        """Templates back to their annotated scheduler, then the share back."""
        health = self.health()
        if health.up is False and not force:
            out = Outcome(
                "fallback_off",
                "workloads",
                "refused",
                f"the ML scheduler is still down ({health.reason}): restored templates "
                "would leave new pods pending (use --force to restore anyway)",
            )
            return self._report("off", dry_run, [out])
        outcomes = self._templates_back(dry_run) if self.cluster is not None else []
        outcomes.append(self._share_back(dry_run))
        return self._report("off", dry_run, outcomes)

    def _share_off(self, dry_run: bool) -> Outcome:
        try:
            memory = self.share.memory()
            before = self.share.current()
        except Exception as exc:
            return Outcome("fallback_share", self.share.target, "refused", str(exc))
        remember: dict[str, str | None] = {}
        if MEMORY_PREVIOUS_SHARE not in memory:  # a repeated `on` keeps the first value
            remember = {
                MEMORY_PREVIOUS_SHARE: f"{before['rollout_percent']:g}",
                MEMORY_SINCE: _iso(self.clock()),
            }
        return self.share.set_rollout(
            0.0, action="fallback_share", dry_run=dry_run, remember=remember
        )

    def _share_back(self, dry_run: bool) -> Outcome:
        try:
            memory = self.share.memory()
        except Exception as exc:
            return Outcome("fallback_share_restore", self.share.target, "refused", str(exc))
        prev = memory.get(MEMORY_PREVIOUS_SHARE)
        if prev is None:
            return Outcome(
                "fallback_share_restore",
                self.share.target,
                "noop",
                "no share remembered: fallback was not on",
            )
        return self.share.set_rollout(
            float(prev),
            action="fallback_share_restore",
            dry_run=dry_run,
            remember={MEMORY_PREVIOUS_SHARE: None, MEMORY_SINCE: None},
        )

    def _templates_to_default(self, why: str, dry_run: bool) -> list[Outcome]:
        c = self.config
        outcomes: list[Outcome] = []
        refs = self.workloads()
        for ref in refs:
            if ref.kind == "ReplicaSet" and ref.owned_by_deployment:
                continue  # its Deployment is patched; the Deployment owns the template
            if ref.kind == "Job":
                if ref.scheduler == c.ml_scheduler_name:
                    outcomes.append(
                        Outcome(
                            "fallback_template",
                            ref.ident,
                            "refused",
                            "a Job's pod template is immutable: its "
                            f"{len(ref.pending_ml_pods)} pending pod(s) wait for the ML "
                            "scheduler (recreate the Job with the default scheduler)",
                        )
                    )
                continue
            details: dict[str, Any] = {"pending_ml_pods": list(ref.pending_ml_pods)}
            if ref.scheduler == c.ml_scheduler_name:
                patch = {
                    "metadata": {
                        "annotations": {
                            ANNOTATION_PREVIOUS_SCHEDULER: ref.scheduler,
                            ANNOTATION_AT: _iso(self.clock()),
                        }
                    },
                    "spec": {"template": {"spec": {"schedulerName": c.default_scheduler_name}}},
                }
                details["patch"] = patch
                if not dry_run:
                    try:
                        self.cluster.patch_workload(ref.kind, ref.namespace, ref.name, patch)
                    except KubeApiError as exc:
                        outcomes.append(
                            Outcome("fallback_template", ref.ident, "failed", str(exc), details)
                        )
                        continue
                what = f"schedulerName {ref.scheduler} -> {c.default_scheduler_name} ({why})"
            elif not ref.pending_ml_pods:
                outcomes.append(
                    Outcome(
                        "fallback_template",
                        ref.ident,
                        "noop",
                        f"already on {ref.scheduler}",
                        details,
                    )
                )
                continue
            else:
                what = f"already on {ref.scheduler}"
            deleted = self._delete_pending(ref, dry_run)
            details["pods"] = deleted
            result = "dry_run" if dry_run else "done"
            if any(r == "failed" for r in deleted.values()):
                result = "partial"
            verb = "would delete" if dry_run else "deleted"
            outcomes.append(
                Outcome(
                    "fallback_template",
                    ref.ident,
                    result,
                    f"{what}; {verb} {len(deleted)} pending pod(s) for recreation",
                    details,
                )
            )
        if not outcomes:
            outcomes.append(
                Outcome(
                    "fallback_template",
                    "workloads",
                    "noop",
                    f"no workload template uses {c.ml_scheduler_name}",
                )
            )
        return outcomes

    def _delete_pending(self, ref: WorkloadRef, dry_run: bool) -> dict[str, str]:
        results: dict[str, str] = {}
        for pod in ref.pending_ml_pods:
            if dry_run:
                results[pod] = "dry_run"
                continue
            try:
                results[pod] = self.cluster.delete_pod(ref.namespace, pod)
            except KubeApiError as exc:
                log.warning("deleting pending pod %s/%s failed: %s", ref.namespace, pod, exc)
                results[pod] = "failed"
        return results

    def _templates_back(self, dry_run: bool) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for ref in self.workloads(with_pods=False):
            if ref.previous is None:
                continue
            patch = {
                "metadata": {
                    "annotations": {ANNOTATION_PREVIOUS_SCHEDULER: None, ANNOTATION_AT: None}
                },
                "spec": {"template": {"spec": {"schedulerName": ref.previous}}},
            }
            details = {"patch": patch}
            if dry_run:
                outcomes.append(
                    Outcome(
                        "fallback_template_restore",
                        ref.ident,
                        "dry_run",
                        f"would set schedulerName {ref.scheduler} -> {ref.previous}",
                        details,
                    )
                )
                continue
            try:
                self.cluster.patch_workload(ref.kind, ref.namespace, ref.name, patch)
            except KubeApiError as exc:
                outcomes.append(
                    Outcome("fallback_template_restore", ref.ident, "failed", str(exc), details)
                )
                continue
            outcomes.append(
                Outcome(
                    "fallback_template_restore",
                    ref.ident,
                    "done",
                    f"schedulerName {ref.scheduler} -> {ref.previous}",
                    details,
                )
            )
        return outcomes

    def _report(self, command: str, dry_run: bool, outcomes: list[Outcome]) -> FallbackReport:
        if self.audit is not None:
            now = self.clock()
            for o in outcomes:
                self.audit.append(
                    AuditRecord(
                        time=now,
                        alert="operator",
                        status=f"fallback {command}",
                        key=f"fallback:{command}:{now:.3f}:{o.action}:{o.target}",
                        action=o.action,
                        target=o.target,
                        reason=o.reason,
                        dry_run=dry_run,
                        result=o.result,
                        labels={"command": f"hydatis fallback {command}"},
                        details=o.details,
                    )
                )
        for o in outcomes:
            log.info("fallback %s: %s %s: %s (%s)", command, o.action, o.target, o.result, o.reason)
        return FallbackReport(command, dry_run, outcomes)
