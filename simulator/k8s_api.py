"""The replay as a Kubernetes API server on loopback, so remediation acts on a simulated
cluster through its production code path (the ``kubernetes`` client).

:class:`ReplayCluster` holds the replay's state as the API shows it and is the engine's
cluster-control hook (``simulate(..., control=cluster)``): once per step it takes the
engine's arrays, runs its observers (e.g. a benchmark that evaluates alert conditions and
calls the remediation webhook), then applies what the API was asked to do: a cordon sets
the node's ``max_pods`` to 0 in the schedulers' view (the fit filter then rejects it, as
kube-scheduler's NodeUnschedulable filter does), and evictions are returned to the engine,
which takes the pods off their nodes and queues them again (a controller recreating them).

:class:`ReplayApiServer` serves it over HTTP/1.1 (keep-alive) on 127.0.0.1, the calls
remediation makes and no others:

====================================================== =====================================
``GET /api/v1/nodes``, ``GET /api/v1/nodes/{n}``       nodes (labels, ``spec.unschedulable``,
                                                        capacity, Ready)
``PATCH /api/v1/nodes/{n}``                             merge ``spec.unschedulable`` and
                                                        ``metadata.annotations``/``labels``
``GET /api/v1/pods`` (``fieldSelector`` ``spec.nodeName``, pods alive in the replay: owner
``status.phase``), ``GET /api/v1/namespaces/{ns}/pods``  references, requests, phase, and for
``[/{p}]``                                              a pending pod kube-scheduler's
                                                        PodScheduled message
``POST /api/v1/namespaces/{ns}/pods/{p}/eviction``      evict at the end of this step
``GET /apis/policy/v1[/namespaces/{ns}]/poddisruption`` the replay's PDBs (none by default)
``budgets``
``GET``/``PATCH`` ConfigMaps and ``apps/v1`` Deployments what the replay was given (the
                                                        extender's settings)
``GET /metrics``                                        the replay's current node and pod
                                                        values under node_exporter /
                                                        kube-state-metrics names
====================================================== =====================================

Every request is recorded (method, path, query, content type, body) for tests.
Simulated time ``t`` is shown as ``epoch + t`` (unix seconds).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from simulator.engine import PENDING, RUNNING
from simulator.types import ClusterView
from simulator.workload import Workload

__all__ = [
    "EXTENDER_REJECT_REASON",
    "ApiError",
    "RecordedRequest",
    "ReplayApiServer",
    "ReplayCluster",
    "extender_configmap",
    "extender_deployment",
]

log = logging.getLogger(__name__)

#: How a pending pod's message names nodes an extender filtered (the extender's wording,
#: scheduler_shim.scoring.filter_reasons; remediation recognises it).
EXTENDER_REJECT_REASON = "predicted CPU utilisation after placement exceeds the hot threshold"
OWNER_KIND = "ReplicaSet"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the API server answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class ApiError(Exception):
    """An API answer other than 2xx."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        self.code, self.reason, self.message = code, reason, message
        super().__init__(message)


@dataclass
class ReplayCluster:
    """The replay's cluster as the Kubernetes API shows it (see the module docstring).

    Args:
        workload: the compiled workload being replayed.
        owners: pod name -> controller (workload) name; a pod with no owner (or owning
            itself) is a bare pod, which a drain never evicts.
        namespace: the namespace of every pod.
        epoch: unix seconds of simulated second 0 (default: the workload's ``t0``).
        pools: node name -> pool (default: one pool, no label).
        pool_label: the node label that names the pool.
        pdbs: PodDisruptionBudget objects to serve (default none).
        configmaps, deployments: objects keyed by ``(namespace, name)``.
    """

    workload: Workload
    owners: Mapping[str, str] | None = None
    namespace: str = "default"
    epoch: float | None = None
    pools: Mapping[str, str] | None = None
    pool_label: str = "hydatis.io/node-pool"
    pdbs: list[dict[str, Any]] = field(default_factory=list)
    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        w = self.workload
        n, p = w.n_nodes, w.n_pods
        if self.epoch is None:
            self.epoch = float(w.t0.timestamp())
        self.lock = threading.RLock()
        self.node_index = {name: i for i, name in enumerate(w.node_names)}
        self.pod_index = {spec.name: i for i, spec in enumerate(w.pods)}
        owners = dict(self.owners or {})
        self.owner_of = [owners.get(s.name) for s in w.pods]
        self.unschedulable = np.zeros(n, dtype=bool)
        self.node_annotations: list[dict[str, str]] = [{} for _ in range(n)]
        self.node_labels: list[dict[str, str]] = [
            {"kubernetes.io/hostname": name} for name in w.node_names
        ]
        for i, name in enumerate(w.node_names):
            if self.pools and name in self.pools:
                self.node_labels[i][self.pool_label] = self.pools[name]
        self.created = np.full(p, np.nan)  # creation time of each pod's current instance
        self.t = 0.0
        self.view: ClusterView | None = None
        self.state = np.zeros(p, dtype=np.int8)
        self.pod_node = np.full(p, -1, dtype=np.int64)
        self._was_alive = np.zeros(p, dtype=bool)
        self._prev_state = np.zeros(p, dtype=np.int8)
        self._max_pods0: np.ndarray | None = None
        self._evict: list[int] = []
        self.api_evictions = 0
        self.observers: list[Callable[[ReplayCluster, float], None]] = []
        #: Nodes a (simulated) extender rejects for pod ``i`` beyond the fit filter, or
        #: None; pending pods' messages report them with :data:`EXTENDER_REJECT_REASON`.
        self.extender_filter: Callable[[int], np.ndarray | None] | None = None
        self.requests: list[RecordedRequest] = []

    # ------------------------------------------------------------------ engine hook
    def step(
        self, t: float, view: ClusterView, state: np.ndarray, pod_node: np.ndarray
    ) -> Iterable[int]:
        """The engine's cluster-control hook (see :class:`simulator.engine.ClusterControl`)."""
        with self.lock:
            self.t, self.view, self.state, self.pod_node = t, view, state, pod_node
            if self._max_pods0 is None:
                self._max_pods0 = view.max_pods.copy()
            alive = (state == PENDING) | (state == RUNNING)
            # a pod that just arrived, or was queued again after the kubelet evicted it,
            # is a new pod (its controller made a replacement)
            requeued = (state == PENDING) & (self._prev_state == RUNNING)
            self.created[alive & (~self._was_alive | requeued)] = t
            self._was_alive = alive
            self._prev_state = state.copy()
        for observe in list(self.observers):
            observe(self, t)
        with self.lock:
            view.max_pods[:] = np.where(self.unschedulable, 0, self._max_pods0)
            evict, self._evict = self._evict, []
            for i in evict:
                self.created[i] = t  # its controller creates a replacement now
                self._prev_state[i] = PENDING
            self.api_evictions += len(evict)
        return evict

    # ------------------------------------------------------------------ reading state
    def now(self) -> float:
        """The replay's current time as unix seconds."""
        return float(self.epoch) + self.t

    def node_cpu(self) -> np.ndarray:
        """Each node's CPU utilisation as the metrics pipeline shows it now (its 5-minute
        average, lagged like a scrape), NaN before the first sample."""
        if self.view is None:
            return np.full(self.workload.n_nodes, np.nan)
        return np.asarray(self.view.metrics.cpu_avg_5m, dtype=float)

    def node_mem(self) -> np.ndarray:
        """Each node's memory utilisation as the metrics pipeline shows it now."""
        if self.view is None:
            return np.full(self.workload.n_nodes, np.nan)
        return np.asarray(self.view.metrics.mem_used, dtype=float) / self.workload.cap_mem

    def pods_on(self, node: int) -> np.ndarray:
        """Indices of the pods running on node index ``node``."""
        return np.flatnonzero((self.state == RUNNING) & (self.pod_node == node))

    # ------------------------------------------------------------------ actions (locked)
    def set_unschedulable(self, node: int, value: bool) -> None:
        """Cordon (True) or uncordon a node; the schedulers see it at this step's end."""
        with self.lock:
            self.unschedulable[node] = value

    def request_eviction(self, pod: int) -> None:
        """Queue a running pod's eviction (applied when this step's hook returns).

        Raises:
            ApiError: the pod is not running (404) or already being evicted (409).
        """
        with self.lock:
            if self.state[pod] != RUNNING:
                raise ApiError(
                    404, "NotFound", f"pod {self.workload.pods[pod].name} is not running"
                )
            if pod in self._evict:
                raise ApiError(409, "Conflict", "the pod is already being evicted")
            self._evict.append(pod)

    # ------------------------------------------------------------------ API objects
    def node_object(self, i: int) -> dict[str, Any]:
        """A ``v1`` Node."""
        w = self.workload
        cap = {
            "cpu": f"{int(w.cap_cpu[i])}m",
            "memory": f"{int(w.cap_mem[i]) // 1024}Ki",
            "pods": str(int(self._max_pods0[i]) if self._max_pods0 is not None else 110),
        }
        spec: dict[str, Any] = {}
        if self.unschedulable[i]:
            spec["unschedulable"] = True
            spec["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
        meta: dict[str, Any] = {
            "name": w.node_names[i],
            "uid": f"node-{i}",
            "labels": dict(self.node_labels[i]),
        }
        if self.node_annotations[i]:
            meta["annotations"] = dict(self.node_annotations[i])
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": meta,
            "spec": spec,
            "status": {
                "capacity": cap,
                "allocatable": dict(cap),
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }

    def _pending_message(self, i: int) -> str:
        """kube-scheduler's FitError message for pending pod ``i`` (why no node fits)."""
        view = self.view
        w = self.workload
        n = w.n_nodes
        if view is None:
            return f"0/{n} nodes are available."
        spec = w.pods[i]
        counts: dict[str, int] = {}
        maxp = self._max_pods0 if self._max_pods0 is not None else view.max_pods
        unsched = self.unschedulable
        too_many = ~unsched & (view.pod_count >= maxp)
        rest = ~unsched & ~too_many
        cpu_short = rest & bool(spec.cpu_req) & (view.alloc_cpu < view.req_cpu + spec.cpu_req)
        mem_short = rest & bool(spec.mem_req) & (view.alloc_mem < view.req_mem + spec.mem_req)
        fits = rest & ~cpu_short & ~mem_short
        rejected = np.zeros(n, dtype=bool)
        if self.extender_filter is not None:
            mask = self.extender_filter(i)
            if mask is not None:
                rejected = fits & mask
        for label, mask in (
            ("node(s) were unschedulable", unsched),
            ("Too many pods", too_many),
            ("Insufficient cpu", cpu_short),
            ("Insufficient memory", mem_short & ~cpu_short),
            (EXTENDER_REJECT_REASON, rejected),
        ):
            if mask.any():
                counts[label] = int(mask.sum())
        if not counts:
            return f"0/{n} nodes are available: the pod has not been scheduled yet."
        parts = ", ".join(f"{c} {r}" for r, c in sorted(counts.items()))
        return (
            f"0/{n} nodes are available: {parts}. preemption: 0/{n} nodes are available: "
            f"{n} Preemption is not helpful for scheduling."
        )

    def pod_object(self, i: int) -> dict[str, Any]:
        """A ``v1`` Pod (the replay's pod ``i`` in its current state)."""
        w = self.workload
        spec = w.pods[i]
        owner = self.owner_of[i]
        meta: dict[str, Any] = {
            "name": spec.name,
            "namespace": self.namespace,
            "uid": f"pod-{i}",
            "labels": {"app": owner or spec.name},
            "creationTimestamp": _iso(self.epoch + float(np.nan_to_num(self.created[i]))),
        }
        if owner and owner != spec.name:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": OWNER_KIND,
                    "name": owner,
                    "uid": f"rs-{owner}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        if i in self._evict:
            meta["deletionTimestamp"] = _iso(self.now())
        requests = {}
        if spec.cpu_request is not None:
            requests["cpu"] = f"{spec.cpu_request}m"
        if spec.mem_request is not None:
            requests["memory"] = str(spec.mem_request)
        pod_spec: dict[str, Any] = {
            "schedulerName": "default-scheduler",
            "priority": int(spec.priority),
            "containers": [{"name": "main", "resources": {"requests": requests}}],
        }
        running = self.state[i] == RUNNING
        if running:
            pod_spec["nodeName"] = w.node_names[int(self.pod_node[i])]
            status = {
                "phase": "Running",
                "qosClass": spec.qos,
                "conditions": [{"type": "PodScheduled", "status": "True"}],
            }
        else:
            status = {
                "phase": "Pending",
                "qosClass": spec.qos,
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": self._pending_message(i),
                        "lastTransitionTime": meta["creationTimestamp"],
                    }
                ],
            }
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": pod_spec,
            "status": status,
        }

    def alive_pods(self) -> np.ndarray:
        """Indices of the pods pending or running now."""
        return np.flatnonzero((self.state == PENDING) | (self.state == RUNNING))

    # ------------------------------------------------------------------ /metrics
    def metrics_text(self, now: float, shift: float) -> str:
        """The current values in the Prometheus text format, under node_exporter and
        kube-state-metrics names. Counters (``node_cpu_seconds_total``) are integrated
        by the caller's clock: ``now`` is wall time, ``shift`` maps replay time to it."""
        with self.lock:
            cpu = np.nan_to_num(self.node_cpu(), nan=0.0)
            mem = np.nan_to_num(self.node_mem(), nan=0.0)
            names = self.workload.node_names
            lines = ["# TYPE node_cpu_seconds_total counter"]
            idle = self._idle_counter(now, cpu)
            lines += [
                f'node_cpu_seconds_total{{node="{n}",cpu="0",mode="idle"}} {idle[i]:.6f}'
                for i, n in enumerate(names)
            ]
            cap_mem = self.workload.cap_mem.astype(float)
            lines.append("# TYPE node_memory_MemTotal_bytes gauge")
            lines += [
                f'node_memory_MemTotal_bytes{{node="{n}"}} {cap_mem[i]:.0f}'
                for i, n in enumerate(names)
            ]
            lines.append("# TYPE node_memory_MemAvailable_bytes gauge")
            lines += [
                f'node_memory_MemAvailable_bytes{{node="{n}"}} {(1 - mem[i]) * cap_mem[i]:.0f}'
                for i, n in enumerate(names)
            ]
            lines.append("# TYPE kube_node_spec_unschedulable gauge")
            lines += [
                f'kube_node_spec_unschedulable{{node="{n}"}} {int(self.unschedulable[i])}'
                for i, n in enumerate(names)
            ]
            alive = self.alive_pods()
            lines.append("# TYPE kube_pod_status_phase gauge")
            for i in alive.tolist():
                pod = self.workload.pods[i].name
                pending = int(self.state[i] == PENDING)
                for phase, value in (("Pending", pending), ("Running", 1 - pending)):
                    lines.append(
                        f'kube_pod_status_phase{{namespace="{self.namespace}",pod="{pod}",'
                        f'phase="{phase}"}} {value}'
                    )
            lines.append("# TYPE kube_pod_created gauge")
            for i in alive.tolist():
                pod = self.workload.pods[i].name
                created = shift + float(np.nan_to_num(self.created[i]))
                lines.append(
                    f'kube_pod_created{{namespace="{self.namespace}",pod="{pod}"}} {created:.0f}'
                )
        return "\n".join(lines) + "\n"

    def _idle_counter(self, now: float, cpu: np.ndarray) -> np.ndarray:
        last = getattr(self, "_idle_at", None)
        if last is None:
            self._idle = np.zeros(cpu.size)
        else:
            self._idle = self._idle + (1.0 - cpu) * max(now - last, 0.0)
        self._idle_at = now
        return self._idle


# ---------------------------------------------------------------------------- HTTP layer
def _merge(dst: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """JSON merge patch (RFC 7386), lists merged by ``name`` as a strategic merge patch
    does for containers and env."""
    for key, value in patch.items():
        if value is None:
            dst.pop(key, None)
        elif isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        elif (
            isinstance(value, list)
            and isinstance(dst.get(key), list)
            and all(isinstance(v, dict) and "name" in v for v in value + dst[key])
        ):
            by_name = {item["name"]: item for item in dst[key]}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    dst[key].append(item)
        else:
            dst[key] = value


class _Api:
    """Routes one request to the cluster; returns (status, JSON body)."""

    def __init__(self, cluster: ReplayCluster) -> None:
        self.c = cluster

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any):
        parts = [p for p in path.split("/") if p]
        c = self.c
        with c.lock:
            extra = getattr(c, "serve_extra", None)  # routes a ReplayCluster subclass adds
            # a route hook of the replay API (not Django's QuerySet.extra)
            answer = extra(method, parts, query, body) if extra is not None else None  # nosec B610 route hook
            if answer is not None:
                return answer
            if parts == ["version"]:
                return 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-hydatis-replay"}
            if parts[:2] == ["api", "v1"]:
                return self._core(method, parts[2:], query, body)
            pdbs = parts[-1:] == ["poddisruptionbudgets"]
            if parts[:3] == ["apis", "policy", "v1"] and method == "GET" and pdbs:
                ns = parts[4] if len(parts) == 6 and parts[3] == "namespaces" else None
                items = [
                    p for p in c.pdbs if ns is None or p.get("metadata", {}).get("namespace") == ns
                ]
                return 200, {
                    "kind": "PodDisruptionBudgetList",
                    "apiVersion": "policy/v1",
                    "metadata": {},
                    "items": items,
                }
            if (
                parts[:3] == ["apis", "apps", "v1"]
                and len(parts) == 7
                and parts[5] == "deployments"
            ):
                return self._stored(c.deployments, "Deployment", method, parts[4], parts[6], body)
        raise ApiError(404, "NotFound", f"the replay's API does not serve {method} {path}")

    def _core(self, method: str, parts: list[str], query: dict[str, list[str]], body: Any):
        c = self.c
        if parts == ["nodes"] and method == "GET":
            items = [c.node_object(i) for i in range(c.workload.n_nodes)]
            return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items}
        if len(parts) == 2 and parts[0] == "nodes":
            i = c.node_index.get(parts[1])
            if i is None:
                raise ApiError(404, "NotFound", f'nodes "{parts[1]}" not found')
            if method == "PATCH":
                self._patch_node(i, body)
            elif method != "GET":
                raise ApiError(405, "MethodNotAllowed", f"{method} on a node")
            return 200, c.node_object(i)
        if parts == ["pods"] and method == "GET":
            return 200, self._pod_list(None, query)
        if len(parts) >= 3 and parts[0] == "namespaces":
            ns = parts[1]
            if parts[2:] == ["pods"] and method == "GET":
                return 200, self._pod_list(ns, query)
            if len(parts) >= 4 and parts[2] == "pods":
                i = self._pod(ns, parts[3])
                if len(parts) == 4 and method == "GET":
                    return 200, c.pod_object(i)
                if parts[4:] == ["eviction"] and method == "POST":
                    c.request_eviction(i)
                    return 201, body if isinstance(body, dict) else {}
            if len(parts) == 4 and parts[2] == "configmaps":
                return self._stored(c.configmaps, "ConfigMap", method, ns, parts[3], body)
        raise ApiError(
            404, "NotFound", f"the replay's API does not serve {method} /api/v1/{'/'.join(parts)}"
        )

    def _pod(self, ns: str, name: str) -> int:
        i = self.c.pod_index.get(name)
        if ns != self.c.namespace or i is None or self.c.state[i] not in (PENDING, RUNNING):
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        return i

    def _pod_list(self, ns: str | None, query: dict[str, list[str]]) -> dict[str, Any]:
        c = self.c
        idx = c.alive_pods()
        if ns is not None and ns != c.namespace:
            idx = idx[:0]
        for selector in query.get("fieldSelector", []):
            for term in filter(None, selector.split(",")):
                key, _, value = term.partition("=")
                if key == "spec.nodeName":
                    node = c.node_index.get(value, -2)
                    idx = idx[c.pod_node[idx] == node]
                elif key == "status.phase":
                    want = {"Pending": PENDING, "Running": RUNNING}.get(value, -1)
                    idx = idx[c.state[idx] == want]
                else:
                    raise ApiError(400, "BadRequest", f'field label not supported: "{key}"')
        items = [c.pod_object(i) for i in idx.tolist()]
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}

    def _patch_node(self, i: int, body: Any) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "a node patch must be a JSON object")
        c = self.c
        spec = body.get("spec") or {}
        if "unschedulable" in spec:
            c.set_unschedulable(i, bool(spec["unschedulable"]))
        meta = body.get("metadata") or {}
        for key, store in (("annotations", c.node_annotations), ("labels", c.node_labels)):
            for k, v in (meta.get(key) or {}).items():
                if v is None:
                    store[i].pop(k, None)
                else:
                    store[i][k] = str(v)

    def _stored(self, store: dict, kind: str, method: str, ns: str, name: str, body: Any):
        obj = store.get((ns, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{kind.lower()}s "{name}" not found')
        if method == "PATCH":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", f"a {kind} patch must be a JSON object")
            _merge(obj, body)
        elif method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} on a {kind}")
        return 200, obj


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that takes a client hanging up as normal."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.exception("replay api: error answering %s", client_address)


class ReplayApiServer:
    """The HTTP server in front of a :class:`ReplayCluster` (a context manager).

    Args:
        cluster: the replay.
        host, port: where to listen (port 0: the OS picks; see :attr:`url`).
        record: keep every request in ``cluster.requests``.
        clock: wall time for ``/metrics`` counters.
    """

    def __init__(
        self,
        cluster: ReplayCluster,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        record: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster, self.host, self.port, self.record, self.clock = (
            cluster,
            host,
            port,
            record,
            clock,
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._shift = 0.0

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> ReplayApiServer:
        """Start serving in a background thread."""
        api = _Api(self.cluster)
        owner = self
        self._shift = self.clock() - self.cluster.t

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("replay api: " + fmt, *args)

            def _answer(self, code: int, payload: Any, ctype: str = "application/json") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _do(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                ctype = self.headers.get("Content-Type", "")
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    self._answer(400, _status(400, "BadRequest", "the body is not JSON"))
                    return
                query = parse_qs(url.query)
                if owner.record:
                    with owner.cluster.lock:
                        owner.cluster.requests.append(
                            RecordedRequest(self.command, url.path, query, ctype, body)
                        )
                if url.path == "/metrics" and self.command == "GET":
                    text = owner.cluster.metrics_text(
                        owner.clock(), owner._shift + owner.cluster.epoch
                    )
                    self._answer(200, text.encode(), "text/plain; version=0.0.4")
                    return
                try:
                    code, payload = api.handle(self.command, url.path, query, body)
                except ApiError as exc:
                    code, payload = exc.code, _status(exc.code, exc.reason, exc.message)
                self._answer(code, payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _do  # noqa: N815

        self._server = _Server((self.host, self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="replay-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ReplayApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def extender_deployment(namespace: str = "hydatis-system", name: str = "hydatis-shim") -> dict:
    """A minimal extender Deployment for the replay's API (what remediation reads)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {"containers": [{"name": "shim", "env": []}]},
            },
        },
    }


def extender_configmap(
    settings: Mapping[str, Any],
    namespace: str = "hydatis-system",
    name: str = "hydatis-shim-config",
    key: str = "shim.yaml",
) -> dict:
    """The extender's settings ConfigMap for the replay's API."""
    import yaml

    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {key: yaml.safe_dump(dict(settings), sort_keys=False)},
    }
