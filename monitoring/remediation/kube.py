"""The few Kubernetes API calls remediation makes, through the official ``kubernetes``
client.

Reads return the API's JSON as plain dicts (``_preload_content=False``): the drain logic
reads a handful of fields, and plain dicts keep it tolerant of fields the client's models
do not know and fast on long lists. Writes go through the client's typed calls, so the
requests are exactly what ``kubectl cordon`` / ``kubectl drain`` send:

- ``PATCH /api/v1/nodes/{name}`` (strategic merge patch: ``spec.unschedulable``);
- ``POST /api/v1/namespaces/{ns}/pods/{pod}/eviction`` (``policy/v1`` Eviction: the API
  server refuses with 429 when a PodDisruptionBudget forbids it);
- ``PATCH`` of the extender's ConfigMap and Deployment.

Answers to writes are not decoded (nothing in them is needed). Every call has a timeout;
failures become :class:`KubeApiError` (with the status).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from monitoring.remediation.errors import KubeApiError

__all__ = ["KubeCluster", "connect"]

log = logging.getLogger(__name__)
_PAGE = 500


def connect(kube_api: str):
    """An ``ApiClient`` for ``kube_api`` (``incluster``, ``kubeconfig`` or a URL).

    Raises:
        KubeApiError: no in-cluster service account, or no usable kubeconfig.
    """
    import kubernetes

    cfg = kubernetes.client.Configuration()
    try:
        if kube_api == "incluster":
            kubernetes.config.load_incluster_config(client_configuration=cfg)
        elif kube_api == "kubeconfig":
            kubernetes.config.load_kube_config(client_configuration=cfg)
        else:
            cfg.host = kube_api
    except kubernetes.config.ConfigException as exc:
        raise KubeApiError(f"cannot configure the Kubernetes client ({kube_api}): {exc}") from exc
    return kubernetes.client.ApiClient(cfg)


class KubeCluster:
    """The cluster as remediation sees it.

    Args:
        api_client: a ``kubernetes.client.ApiClient`` (see :func:`connect`).
        timeout_s: timeout of each request.
    """

    def __init__(self, api_client: Any, timeout_s: float = 10.0) -> None:
        import kubernetes

        self._k = kubernetes
        self.api_client = api_client
        self.timeout_s = timeout_s
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.policy = kubernetes.client.PolicyV1Api(api_client)
        self.apps = kubernetes.client.AppsV1Api(api_client)

    def close(self) -> None:
        """Release the client's connection pool."""
        self.api_client.close()

    # -------------------------------------------------------------- plumbing
    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import urllib3

        try:
            return fn(*args, _request_timeout=self.timeout_s, **kwargs)
        except self._k.client.ApiException as exc:
            reason = _status_message(exc)
            raise KubeApiError(f"{what}: HTTP {exc.status} {reason}", status=exc.status) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeApiError(f"{what}: Kubernetes API unreachable: {exc}") from exc

    def _json(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        resp = self._call(what, fn, *args, _preload_content=False, **kwargs)
        try:
            return json.loads(resp.data)
        except ValueError as exc:
            raise KubeApiError(f"{what}: the API answered something that is not JSON") from exc

    def _list(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page_args = dict(kwargs, limit=_PAGE)
            if token:
                page_args["_continue"] = token
            page = self._json(what, fn, **page_args)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def _maybe(self, what: str, fn: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
        try:
            return self._json(what, fn, *args)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    # -------------------------------------------------------------- nodes and pods
    def list_nodes(self) -> list[dict[str, Any]]:
        """Every node."""
        return self._list("list nodes", self.core.list_node)

    def get_node(self, name: str) -> dict[str, Any] | None:
        """One node, or None when there is none of that name."""
        return self._maybe(f"get node {name}", self.core.read_node, name)

    def cordon(self, name: str, annotations: dict[str, str]) -> None:
        """Mark the node unschedulable (as ``kubectl cordon``) and say why."""
        body = {"spec": {"unschedulable": True}, "metadata": {"annotations": annotations}}
        self._call(f"cordon node {name}", self.core.patch_node, name, body, _preload_content=False)

    def pods_on_node(self, name: str) -> list[dict[str, Any]]:
        """The pods bound to a node (every namespace)."""
        return self._list(
            f"list pods on {name}",
            self.core.list_pod_for_all_namespaces,
            field_selector=f"spec.nodeName={name}",
        )

    def pending_pods(self) -> list[dict[str, Any]]:
        """Pods in phase Pending (every namespace)."""
        return self._list(
            "list pending pods",
            self.core.list_pod_for_all_namespaces,
            field_selector="status.phase=Pending",
        )

    def list_pdbs(self) -> list[dict[str, Any]]:
        """Every PodDisruptionBudget (policy/v1)."""
        return self._list(
            "list PodDisruptionBudgets", self.policy.list_pod_disruption_budget_for_all_namespaces
        )

    def evict(self, namespace: str, name: str) -> str:
        """Ask the Eviction API to evict a pod.

        Returns:
            ``evicted``; ``blocked_by_pdb`` when the API server refuses because a
            PodDisruptionBudget forbids it (429); ``gone`` when the pod no longer exists.
        """
        body = self._k.client.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=self._k.client.V1ObjectMeta(name=name, namespace=namespace),
        )
        try:
            self._call(
                f"evict pod {namespace}/{name}",
                self.core.create_namespaced_pod_eviction,
                name,
                namespace,
                body,
                _preload_content=False,
            )
        except KubeApiError as exc:
            if exc.status == 429:
                return "blocked_by_pdb"
            if exc.status == 404:
                return "gone"
            raise
        return "evicted"

    # -------------------------------------------------------------- the extender's objects
    def read_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A ConfigMap, or None."""
        return self._maybe(
            f"get configmap {namespace}/{name}",
            lambda n, **kw: self.core.read_namespaced_config_map(n, namespace, **kw),
            name,
        )

    def patch_configmap(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Set keys of a ConfigMap's ``data``."""
        self._call(
            f"patch configmap {namespace}/{name}",
            self.core.patch_namespaced_config_map,
            name,
            namespace,
            {"data": data},
            _preload_content=False,
        )

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Deployment, or None."""
        return self._maybe(
            f"get deployment {namespace}/{name}",
            lambda n, **kw: self.apps.read_namespaced_deployment(n, namespace, **kw),
            name,
        )

    def patch_deployment(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Strategic-merge-patch a Deployment."""
        self._call(
            f"patch deployment {namespace}/{name}",
            self.apps.patch_namespaced_deployment,
            name,
            namespace,
            body,
            _preload_content=False,
        )


def _status_message(exc: Any) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason or "")
    except (ValueError, TypeError):
        return str(exc.reason or "")
