"""A replay with two schedulers, workloads, and an ML scheduler that can be down — what
``hydatis fallback`` needs to act on a simulated cluster through its production path.

:class:`SchedulerReplay` extends :class:`simulator.k8s_api.ReplayCluster`:

- each workload is a Deployment (default), StatefulSet, ReplicaSet or Job whose pod
  template names a scheduler; a pod takes its workload's template ``schedulerName`` when
  it is created (arrival, or a replacement after an eviction or a delete) and keeps it;
- the ML scheduler has a Deployment (``status.readyReplicas``) and a leader Lease
  (``spec.renewTime``) that follow ``ml_down``, the outages in replay seconds;
- the API also serves: lists of Deployments / StatefulSets / ReplicaSets / Jobs and
  ``GET``/``PATCH`` of one (a Job's template is immutable: 422, as the API server
  answers), ``DELETE`` of a pod (a pending pod is replaced at once by its controller from
  the current template), ``GET`` of the Lease, ``POST`` of a ConfigMap.

:class:`RoutedScheduler` is the engine's scheduler for such a replay: each pod goes to
the scheduler its ``schedulerName`` names; a pod whose scheduler is down (or unknown)
waits without an attempt (the engine's ``waits`` hook).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from operations.fallback import FallbackConfig
from simulator.engine import PENDING, RUNNING
from simulator.k8s_api import ApiError, ReplayCluster, _merge
from simulator.types import ClusterView, PodSpec, Scheduler

__all__ = ["RoutedScheduler", "SchedulerReplay"]

_GROUP = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
}
_PLURAL = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "replicasets": "ReplicaSet",
    "jobs": "Job",
}


def _iso_micro(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class SchedulerReplay(ReplayCluster):
    """The replay with workloads, schedulerName and an ML scheduler (module docstring).

    Args (beyond :class:`ReplayCluster`'s):
        kinds: workload -> its kind (default ``Deployment``).
        schedulers: workload -> its template's ``schedulerName`` (default: the default
            scheduler).
        ml_down: ``(start, end)`` replay seconds while the ML scheduler is down.
        names: the ML scheduler's object names.
    """

    kinds: Mapping[str, str] | None = None
    schedulers: Mapping[str, str] | None = None
    ml_down: list[tuple[float, float]] = field(default_factory=list)
    names: FallbackConfig = field(default_factory=FallbackConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        cfg, ns = self.names, self.namespace
        kinds, scheds = dict(self.kinds or {}), dict(self.schedulers or {})
        self.store: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
            k: {} for k in ("StatefulSet", "ReplicaSet", "Job")
        }
        sizes: dict[str, int] = {}
        for pod, owner in zip(self.workload.pods, self.owner_of, strict=True):
            if owner and owner != pod.name:
                sizes[owner] = sizes.get(owner, 0) + 1
        for name, size in sizes.items():
            kind = kinds.get(name, "Deployment")
            if kind not in _GROUP:
                raise ValueError(f"workload {name}: kind {kind!r} is not one of {list(_GROUP)}")
            obj = {
                "apiVersion": _GROUP[kind],
                "kind": kind,
                "metadata": {"name": name, "namespace": ns, "uid": f"{kind.lower()}-{name}"},
                "spec": {
                    "replicas": size,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {
                            "schedulerName": scheds.get(name, cfg.default_scheduler_name),
                            "containers": [{"name": "main"}],
                        },
                    },
                },
            }
            target = self.deployments if kind == "Deployment" else self.store[kind]
            target[(ns, name)] = obj
        self.kind_of = {name: kinds.get(name, "Deployment") for name in sizes}
        self.deployments[(cfg.scheduler_namespace, cfg.scheduler_deployment)] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": cfg.scheduler_deployment, "namespace": cfg.scheduler_namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": cfg.ml_scheduler_name}},
                "template": {"spec": {"containers": [{"name": "kube-scheduler"}]}},
            },
            "status": {"replicas": 2, "readyReplicas": 2},
        }
        self.lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": cfg.lease_name, "namespace": cfg.scheduler_namespace},
            "spec": {
                "holderIdentity": f"{cfg.scheduler_deployment}-0",
                "leaseDurationSeconds": 15,
                "acquireTime": _iso_micro(float(self.epoch)),
                "renewTime": _iso_micro(float(self.epoch)),
            },
        }
        self.pod_scheduler: list[str] = [
            self._template_scheduler(i) for i in range(len(self.owner_of))
        ]
        self.deleted = 0

    # ------------------------------------------------------------------ templates
    def _template(self, owner: str) -> dict[str, Any] | None:
        kind = self.kind_of.get(owner)
        if kind is None:
            return None
        store = self.deployments if kind == "Deployment" else self.store[kind]
        return store.get((self.namespace, owner))

    def _template_scheduler(self, i: int) -> str:
        owner = self.owner_of[i]
        obj = self._template(owner) if owner else None
        if obj is None:
            return self.names.default_scheduler_name
        spec = obj["spec"]["template"]["spec"]
        return spec.get("schedulerName") or self.names.default_scheduler_name

    def ml_up(self, t: float) -> bool:
        """Whether the ML scheduler runs at replay second ``t``."""
        return not any(lo <= t < hi for lo, hi in self.ml_down)

    # ------------------------------------------------------------------ engine hook
    def step(
        self, t: float, view: ClusterView, state: np.ndarray, pod_node: np.ndarray
    ) -> Iterable[int]:
        """Update the ML scheduler's Deployment and Lease, run the base hook (observers act
        here), then give the pods created this step their template's scheduler."""
        with self.lock:
            dep = self.deployments[
                (self.names.scheduler_namespace, self.names.scheduler_deployment)
            ]
            up = self.ml_up(t)
            dep["status"]["readyReplicas"] = 2 if up else 0
            if up:
                self.lease["spec"]["renewTime"] = _iso_micro(float(self.epoch) + t)
        evict = list(super().step(t, view, state, pod_node))
        with self.lock:
            for i in np.flatnonzero(self.created == t).tolist():
                self.pod_scheduler[i] = self._template_scheduler(i)
            for i in evict:
                self.pod_scheduler[i] = self._template_scheduler(i)
        return evict

    def pod_object(self, i: int) -> dict[str, Any]:
        """The base pod with its ``schedulerName`` and its real controller chain."""
        obj = super().pod_object(i)
        obj["spec"]["schedulerName"] = self.pod_scheduler[i]
        owner = self.owner_of[i]
        kind = self.kind_of.get(owner or "")
        if kind is not None:
            ref = obj["metadata"]["ownerReferences"][0]
            if kind == "Deployment":
                ref.update(kind="ReplicaSet", name=f"{owner}-rs", uid=f"rs-{owner}")
            else:
                ref.update(apiVersion=_GROUP[kind], kind=kind, uid=f"{kind.lower()}-{owner}")
        return obj

    # ------------------------------------------------------------------ extra routes
    def serve_extra(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any] | None:
        """The routes this replay adds (module docstring); None: not one of them."""
        if parts[:1] == ["apis"] and len(parts) == 4 and method == "GET":
            kind = _PLURAL.get(parts[3])
            if kind is not None and "/".join(parts[1:3]) == _GROUP[kind]:
                store = self.deployments if kind == "Deployment" else self.store[kind]
                items = [copy.deepcopy(o) for o in store.values() if o.get("kind", kind) == kind]
                return 200, {
                    "kind": f"{kind}List",
                    "apiVersion": _GROUP[kind],
                    "metadata": {},
                    "items": items,
                }
        if parts[:1] == ["apis"] and len(parts) == 7 and parts[3] == "namespaces":
            group, ns, plural, name = "/".join(parts[1:3]), parts[4], parts[5], parts[6]
            if plural == "leases" and group == "coordination.k8s.io/v1" and method == "GET":
                meta = self.lease["metadata"]
                if (ns, name) != (meta["namespace"], meta["name"]):
                    raise ApiError(
                        404, "NotFound", f'leases.coordination.k8s.io "{name}" not found'
                    )
                return 200, copy.deepcopy(self.lease)
            kind = _PLURAL.get(plural)
            if kind in self.store and group == _GROUP[kind]:
                obj = self.store[kind].get((ns, name))
                if obj is None:
                    raise ApiError(
                        404, "NotFound", f'{plural}.{group.split("/")[0]} "{name}" not found'
                    )
                if method == "PATCH":
                    if not isinstance(body, dict):
                        raise ApiError(400, "BadRequest", f"a {kind} patch must be a JSON object")
                    if kind == "Job" and "template" in (body.get("spec") or {}):
                        raise ApiError(
                            422,
                            "Invalid",
                            f'Job.batch "{name}" is invalid: spec.template: Invalid value: '
                            "field is immutable",
                        )
                    _merge(obj, body)
                elif method != "GET":
                    raise ApiError(405, "MethodNotAllowed", f"{method} on a {kind}")
                return 200, copy.deepcopy(obj)
        if (
            parts[:3] == ["api", "v1", "namespaces"]
            and len(parts) == 5
            and parts[4] == "configmaps"
        ):
            if method != "POST" or not isinstance(body, dict):
                return None
            name = (body.get("metadata") or {}).get("name")
            if (parts[3], name) in self.configmaps:
                raise ApiError(409, "AlreadyExists", f'configmaps "{name}" already exists')
            self.configmaps[(parts[3], name)] = body
            return 201, body
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 6 and parts[4] == "pods":
            if method != "DELETE":
                return None
            i = self.pod_index.get(parts[5])
            if parts[3] != self.namespace or i is None or self.state[i] not in (PENDING, RUNNING):
                raise ApiError(404, "NotFound", f'pods "{parts[5]}" not found')
            answer = self.pod_object(i)
            if self.state[i] == RUNNING:
                self.request_eviction(i)
            else:  # the controller makes a replacement from the current template now
                self.created[i] = self.t
                self.pod_scheduler[i] = self._template_scheduler(i)
            self.deleted += 1
            return 200, answer
        return None


class RoutedScheduler(Scheduler):
    """Each pod to the scheduler its ``schedulerName`` names (module docstring).

    Args:
        cluster: the replay (pods' scheduler names, the ML scheduler's outages).
        schedulers: scheduler name -> the policy that runs under it.
    """

    name = "routed"

    def __init__(self, cluster: SchedulerReplay, schedulers: Mapping[str, Scheduler]) -> None:
        self.cluster = cluster
        self.schedulers = dict(schedulers)
        self.placed: dict[str, int] = dict.fromkeys(self.schedulers, 0)

    def _unique(self) -> list[Scheduler]:
        seen: dict[int, Scheduler] = {}
        for s in self.schedulers.values():
            seen.setdefault(id(s), s)
        return list(seen.values())

    def reset(self, seed: int) -> None:
        """Reset every scheduler with ``seed``."""
        super().reset(seed)
        for s in self._unique():
            s.reset(seed)
        self.placed = dict.fromkeys(self.schedulers, 0)

    def on_step(self, view: ClusterView) -> None:
        """Forward the step to schedulers that watch it (the extender's state feed runs
        whether or not kube-scheduler is up: it is a separate Deployment)."""
        for s in self._unique():
            hook = getattr(s, "on_step", None)
            if hook is not None:
                hook(view)

    def scheduler_of(self, pod: PodSpec) -> str:
        """The ``schedulerName`` of ``pod``'s current instance."""
        return self.cluster.pod_scheduler[self.cluster.pod_index[pod.name]]

    def waits(self, pod: PodSpec) -> bool:
        """A pod waits while no scheduler of its name runs."""
        name = self.scheduler_of(pod)
        if name not in self.schedulers:
            return True
        return name == self.cluster.names.ml_scheduler_name and not self.cluster.ml_up(
            self.cluster.t
        )

    def select(self, pod: PodSpec, view: ClusterView) -> int | None:
        """The node the pod's own scheduler picks."""
        name = self.scheduler_of(pod)
        node = self.schedulers[name].select(pod, view)
        if node is not None:
            self.placed[name] += 1
        return node

    def close(self) -> None:
        """Close every scheduler."""
        for s in self._unique():
            s.close()
