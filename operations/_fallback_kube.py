"""The Kubernetes API calls fallback and rollout make beyond remediation's, through the
official ``kubernetes`` client (:class:`~monitoring.remediation.kube.KubeCluster` extended,
so timeouts, paging and error wrapping are the same).

Reads return plain dicts; writes are the client's typed calls, so the requests are what
``kubectl patch`` / ``kubectl delete pod`` / ``kubectl create configmap`` send:

- ``GET`` lists of Deployments, StatefulSets, ReplicaSets (``apps/v1``) and Jobs
  (``batch/v1``) in every namespace, and ``PATCH`` of one (strategic merge patch);
- ``DELETE /api/v1/namespaces/{ns}/pods/{pod}``;
- ``GET /apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}`` (leader election);
- ``POST /api/v1/namespaces/{ns}/configmaps`` (a state ConfigMap made the first time).
"""

from __future__ import annotations

from typing import Any

from monitoring.remediation.errors import KubeApiError
from monitoring.remediation.kube import KubeCluster, connect

__all__ = ["WORKLOAD_KINDS", "OpsCluster", "connect"]

#: Workload kinds whose pod template fallback rewrites, with their API group path.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "Job")


class OpsCluster(KubeCluster):
    """The cluster as the operations commands see it (see the module docstring)."""

    def __init__(self, api_client: Any, timeout_s: float = 10.0) -> None:
        super().__init__(api_client, timeout_s)
        k = self._k.client
        self.batch = k.BatchV1Api(api_client)
        self.coordination = k.CoordinationV1Api(api_client)

    # -------------------------------------------------------------- workloads
    def _kind_calls(self, kind: str) -> tuple[Any, Any]:
        calls = {
            "Deployment": (
                self.apps.list_deployment_for_all_namespaces,
                self.apps.patch_namespaced_deployment,
            ),
            "StatefulSet": (
                self.apps.list_stateful_set_for_all_namespaces,
                self.apps.patch_namespaced_stateful_set,
            ),
            "ReplicaSet": (
                self.apps.list_replica_set_for_all_namespaces,
                self.apps.patch_namespaced_replica_set,
            ),
            "Job": (self.batch.list_job_for_all_namespaces, self.batch.patch_namespaced_job),
        }
        if kind not in calls:
            raise KubeApiError(f"no workload kind {kind!r} (one of {', '.join(WORKLOAD_KINDS)})")
        return calls[kind]

    def list_workloads(self, kind: str) -> list[dict[str, Any]]:
        """Every object of ``kind`` (one of :data:`WORKLOAD_KINDS`) in every namespace."""
        lister, _ = self._kind_calls(kind)
        items = self._list(f"list {kind}s", lister)
        for item in items:  # list items carry no kind; callers need it
            item.setdefault("kind", kind)
        return items

    def patch_workload(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Strategic-merge-patch one workload."""
        _, patcher = self._kind_calls(kind)
        self._call(
            f"patch {kind} {namespace}/{name}",
            patcher,
            name,
            namespace,
            body,
            _preload_content=False,
        )

    # -------------------------------------------------------------- pods, leases, state
    def delete_pod(self, namespace: str, name: str) -> str:
        """Delete a pod (its controller makes a replacement); ``deleted`` or ``gone``."""
        try:
            self._call(
                f"delete pod {namespace}/{name}",
                self.core.delete_namespaced_pod,
                name,
                namespace,
                _preload_content=False,
            )
        except KubeApiError as exc:
            if exc.status == 404:
                return "gone"
            raise
        return "deleted"

    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A ``coordination.k8s.io/v1`` Lease, or None."""
        return self._maybe(
            f"get lease {namespace}/{name}",
            lambda n, **kw: self.coordination.read_namespaced_lease(n, namespace, **kw),
            name,
        )

    def create_configmap(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Create a ConfigMap holding ``data``."""
        body = self._k.client.V1ConfigMap(
            api_version="v1",
            kind="ConfigMap",
            metadata=self._k.client.V1ObjectMeta(
                name=name,
                namespace=namespace,
                labels={"app.kubernetes.io/part-of": "hydatis"},
            ),
            data=data,
        )
        self._call(
            f"create configmap {namespace}/{name}",
            self.core.create_namespaced_config_map,
            namespace,
            body,
            _preload_content=False,
        )


def open_cluster(kube_api: str, timeout_s: float = 10.0) -> OpsCluster:
    """An :class:`OpsCluster` for ``kube_api`` (``incluster``, ``kubeconfig`` or a URL)."""
    return OpsCluster(connect(kube_api), timeout_s)


__all__ += ["open_cluster"]
