"""The ML scheduler in the simulator: kube-scheduler's default profile plus an HTTP
extender, called over real HTTP with kube-scheduler's exact JSON.

Per pod, as kube-scheduler v1.30 does it (``schedule_one.go``, ``extender.go``):

1. **filter**: NodeResourcesFit with kube-scheduler's candidate sampling
   (``numFeasibleNodesToFind``, rotating start), then ``POST {url}/filter`` with
   ``ExtenderArgs`` — ``{"Pod": v1.Pod, "Nodes": null, "NodeNames": [...]}`` when the
   extender is ``nodeCacheCapable``, else ``{"Pod": ..., "Nodes": {"items": [v1.Node]},
   "NodeNames": null}``. The kept nodes are read from the answer's ``NodeNames``
   (cache-capable, when present) or ``Nodes.items``; an answer with neither keeps none.
   A failed call (transport error, timeout, non-200, undecodable JSON, a non-empty
   ``Error``, a kept node that was not a candidate) fails the pod's cycle unless the
   extender is ``ignorable``, in which case scheduling goes on without it.
2. One node left: it is chosen (no scoring), as upstream.
3. **score**: the default plugins (NodeResourcesFit LeastAllocated +
   BalancedAllocation, :class:`~simulator.schedulers.default.DefaultScheduler`), plus,
   from ``POST {url}/prioritize``, ``Score × weight × 10`` per listed host
   (``MaxNodeScore / MaxExtenderPriority = 100 / 10``), unclamped. A prioritize error
   (including a ``Score`` that is not an integer — ``7.0`` does not decode into Go's
   int64) adds nothing.
4. The best total wins, ties broken uniformly at random (seeded).

Field names decode case-insensitively (Go's ``encoding/json``), preferring an exact match.
``httpTimeout`` is a total per call, as Go's ``http.Client.Timeout``: an answer arriving
later counts as a timeout.

The extender's node state comes from the simulator, the cluster stand-in: every
``refresh_interval_s`` of simulated time the scheduler's lagged view of the node samples
and the pods' requests become one feature row per node
(:class:`~simulator.node_state.NodeStateFeed`), pushed with ``PUT {url}/v1/node-state``;
the shim answers once its models have scored the snapshot, so the next ``/filter`` sees it.
The push happens in :meth:`ExtenderScheduler.on_step`, which :meth:`select` calls first
(an engine may call it once per step itself); its cost is kept out of the decision
latency the scheduler records (``stats()``), though an engine timing ``select`` as a
whole sees it.
"""

from __future__ import annotations

import http.client
import logging
import socket
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from hydatis.errors import ConfigError
from simulator.node_state import DEFAULT_FEATURE_STEP_S, NodeStateFeed, encode_json
from simulator.schedulers.default import DefaultScheduler
from simulator.types import ClusterView, FrameworkScheduler, PodSpec

__all__ = [
    "DEFAULT_HTTP_TIMEOUT_S",
    "DEFAULT_PUSH_TIMEOUT_S",
    "DEFAULT_REFRESH_INTERVAL_S",
    "DEFAULT_WEIGHT",
    "EXTENDER_SCORE_SCALE",
    "SCHEDULER_NAME",
    "ExtenderCallError",
    "ExtenderScheduler",
    "cpu_quantity",
    "memory_quantity",
    "node_object",
    "parse_filter_result",
    "parse_priority_list",
    "pod_object",
]

log = logging.getLogger(__name__)

DEFAULT_WEIGHT = 5  # the profile's extender weight (infra's KubeSchedulerConfiguration)
DEFAULT_HTTP_TIMEOUT_S = 0.5  # httpTimeout "500ms"
DEFAULT_REFRESH_INTERVAL_S = 60.0  # simulated seconds between node-state pushes
DEFAULT_PUSH_TIMEOUT_S = 30.0  # a push waits for the models to score 1,500 nodes
#: framework.MaxNodeScore / extenderv1.MaxExtenderPriority.
EXTENDER_SCORE_SCALE = 100 // 10
SCHEDULER_NAME = "ml-scheduler"
_INT64 = (-(2**63), 2**63 - 1)
_BINARY = tuple(
    (s, 2 ** (10 * k))
    for k, s in ((6, "Ei"), (5, "Pi"), (4, "Ti"), (3, "Gi"), (2, "Mi"), (1, "Ki"))
)
_KI = (("Ki", 2**10),)
_UID_NAMESPACE = uuid.UUID("6f1d3c1e-8a51-4f0e-9b7c-2f6f4e1d9a10")


class ExtenderCallError(Exception):
    """One failed extender call; ``kind`` is what went wrong (the stats key):
    ``timeout``, ``transport``, ``http_status``, ``decode``, ``error_field`` or
    ``unknown_node``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


# --------------------------------------------------------------------------- objects


def cpu_quantity(millicores: int) -> str:
    """A CPU quantity as Kubernetes writes it: whole cores (``"32"``) or ``"1500m"``."""
    m = int(millicores)
    return str(m // 1000) if m % 1000 == 0 else f"{m}m"


def memory_quantity(n_bytes: int, *, unit: str | None = None) -> str:
    """A memory quantity: the largest binary suffix that divides it exactly (``"4Gi"``,
    ``"1536Mi"``), plain bytes otherwise; ``unit="Ki"`` forces kibibytes as kubelet
    reports node capacity (``"263842740Ki"``) when the bytes allow it."""
    b = int(n_bytes)
    suffixes = _KI if unit == "Ki" else _BINARY
    for suffix, factor in suffixes:
        if b and b % factor == 0:
            return f"{b // factor}{suffix}"
    return str(b)


def pod_object(pod: PodSpec, *, namespace: str = "default") -> dict[str, Any]:
    """The ``v1.Pod`` kube-scheduler sends for ``pod``: identity (a UID stable per pod
    instance: derived from its name), one container with the requests and limits that are
    set, the ``ml-scheduler`` profile, priority, Pending with its QoS class. Empty maps
    are left out, as Go's ``omitempty`` does."""
    resources: dict[str, dict[str, str]] = {}
    for key, cpu, mem in (
        ("requests", pod.cpu_request, pod.mem_request),
        ("limits", pod.cpu_limit, pod.mem_limit),
    ):
        values = {}
        if cpu is not None:
            values["cpu"] = cpu_quantity(cpu)
        if mem is not None:
            values["memory"] = memory_quantity(mem)
        if values:
            resources[key] = values
    container: dict[str, Any] = {"name": "main", "image": "registry.k8s.io/pause:3.9"}
    if resources:
        container["resources"] = resources
    return {
        "metadata": {
            "name": pod.name,
            "namespace": namespace,
            "uid": str(uuid.uuid5(_UID_NAMESPACE, f"{namespace}/{pod.name}")),
        },
        "spec": {
            "containers": [container],
            "schedulerName": SCHEDULER_NAME,
            "priority": int(pod.priority),
        },
        "status": {"phase": "Pending", "qosClass": pod.qos},
    }


def node_object(
    name: str, cap_cpu_m: int, cap_mem: int, alloc_cpu_m: int, alloc_mem: int, max_pods: int
) -> dict[str, Any]:
    """The ``v1.Node`` kube-scheduler sends with ``nodeCacheCapable: false``: name,
    capacity and allocatable (CPU, memory in Ki as kubelet reports it, pods)."""
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {
                "cpu": cpu_quantity(cap_cpu_m),
                "memory": memory_quantity(cap_mem, unit="Ki"),
                "pods": str(int(max_pods)),
            },
            "allocatable": {
                "cpu": cpu_quantity(alloc_cpu_m),
                "memory": memory_quantity(alloc_mem, unit="Ki"),
                "pods": str(int(max_pods)),
            },
        },
    }


# --------------------------------------------------------------------------- answers


def _field(obj: dict[str, Any], name: str) -> Any:
    """Go's decoding of a struct field: the exact key, else a case-insensitive match."""
    if name in obj:
        return obj[name]
    folded = name.casefold()
    for key, value in obj.items():
        if isinstance(key, str) and key.casefold() == folded:
            return value
    return None


def parse_filter_result(
    body: Any, candidates: Sequence[str], *, node_cache_capable: bool
) -> list[str]:
    """The node names an ``ExtenderFilterResult`` keeps, as kube-scheduler reads it.

    Args:
        body: the decoded JSON answer.
        candidates: the names that were sent.
        node_cache_capable: the extender's mode.

    Returns:
        The kept names, in the answer's order: ``NodeNames`` when cache-capable and
        present, else ``Nodes.items[*].metadata.name``, else none.

    Raises:
        ExtenderCallError: ``Error`` is set (``error_field``), the answer does not
            decode into the Go type (``decode``), or it keeps a node that was not sent
            (``unknown_node``).
    """
    if not isinstance(body, dict):
        raise ExtenderCallError("decode", f"filter answer is {type(body).__name__}, not an object")
    error = _field(body, "Error")
    if error is not None and not isinstance(error, str):
        raise ExtenderCallError("decode", "Error is not a string")
    if error:
        raise ExtenderCallError("error_field", error)
    names = _field(body, "NodeNames")
    nodes = _field(body, "Nodes")
    if names is not None and (not isinstance(names, list) or set(map(type, names)) - {str}):
        raise ExtenderCallError("decode", "NodeNames is not an array of strings")
    if node_cache_capable and names is not None:
        kept = names
    elif nodes is not None:
        if not isinstance(nodes, dict):
            raise ExtenderCallError("decode", "Nodes is not an object")
        items = _field(nodes, "items") or []
        if not isinstance(items, list):
            raise ExtenderCallError("decode", "Nodes.items is not an array")
        kept = []
        for item in items:
            meta = _field(item, "metadata") if isinstance(item, dict) else None
            name = _field(meta, "name") if isinstance(meta, dict) else None
            if not isinstance(name, str):
                raise ExtenderCallError("decode", "a node in Nodes.items has no metadata.name")
            kept.append(name)
    else:
        return []
    known = set(candidates)
    for name in kept:
        if name not in known:
            raise ExtenderCallError(
                "unknown_node", f"extender claims a filtered node {name!r} it was not sent"
            )
    return list(kept)


def parse_priority_list(body: Any) -> list[tuple[str, int]]:
    """``(Host, Score)`` pairs of a ``HostPriorityList``, decoded as Go decodes it.

    ``null`` is an empty list; a missing ``Host`` is ``""`` and a missing or null
    ``Score`` is 0 (Go's zero values); a ``Score`` that is not an integer (``7.0``,
    ``"7"``, ``true``) or is outside int64 does not decode.

    Raises:
        ExtenderCallError: ``decode`` for anything Go would refuse.
    """
    if body is None:
        return []
    if not isinstance(body, list):
        raise ExtenderCallError("decode", "prioritize answer is not an array")
    try:  # the common exact-case answer, checked in bulk; anything else goes the long way
        hosts = [item["Host"] for item in body]
        scores = [item["Score"] for item in body]
    except (KeyError, TypeError):
        pass
    else:
        if (
            set(map(type, hosts)) <= {str}
            and set(map(type, scores)) <= {int}
            and (not scores or (_INT64[0] <= min(scores) and max(scores) <= _INT64[1]))
        ):
            return list(zip(hosts, scores, strict=True))
    out = []
    for item in body:
        if not isinstance(item, dict):
            raise ExtenderCallError("decode", "a HostPriority is not an object")
        host = _field(item, "Host")
        score = _field(item, "Score")
        if host is None:
            host = ""
        if score is None:
            score = 0
        if not isinstance(host, str):
            raise ExtenderCallError("decode", f"Host {host!r} is not a string")
        if isinstance(score, bool) or not isinstance(score, int):
            raise ExtenderCallError("decode", f"Score {score!r} of {host!r} is not an integer")
        if not _INT64[0] <= score <= _INT64[1]:
            raise ExtenderCallError("decode", f"Score {score} of {host!r} overflows int64")
        out.append((host, score))
    return out


def _loads(content: bytes) -> Any:
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson comes with the serving stack
        import json

        return json.loads(content)
    return orjson.loads(content)


class _Connection:
    """One keep-alive HTTP/1.1 connection (``http.client``: headers and body leave in one
    write, with ``TCP_NODELAY``), reopened after any error."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            self._conn.connect()
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._conn.request(
                "POST", self.prefix + path, body, {"Content-Type": "application/json"}
            )
            resp = self._conn.getresponse()
            return resp.status, resp.read()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --------------------------------------------------------------------------- scheduler


class ExtenderScheduler(FrameworkScheduler):
    """kube-scheduler's default profile plus an HTTP extender (the ML scheduler).

    Args:
        url: the extender's base URL (``urlPrefix``), e.g. ``http://127.0.0.1:8888``.
        weight: the extender's weight (prioritize adds ``Score × weight × 10``).
        node_cache_capable: send and read ``NodeNames`` (True) or whole nodes (False).
        ignorable: a filter error skips the extender instead of failing the pod.
        http_timeout_s: ``httpTimeout`` of each filter / prioritize call (total).
        filter_verb, prioritize_verb: the paths under ``url`` ("" disables a verb).
        node_names: the nodes' names in the simulator's order (default ``node-0000``,
            ...); :func:`simulator.node_state.scheduler_context` gives the dataset's.
        epoch_s: wall-clock time of simulated time 0 (node-state and time features).
        push_state: push node state to ``{url}/v1/node-state`` (the shim's ``push``
            source); False when the extender gets its state elsewhere.
        refresh_interval_s: simulated seconds between pushes.
        feature_step_s: the feature grid step (the simulator's metrics interval).
        push_timeout_s: timeout of a push (the shim scores every node before answering).
        namespace: the pods' namespace.
        percentage_of_nodes_to_score, cpu_weight, mem_weight, fit_weight,
        balanced_weight: the default profile's settings
            (:class:`~simulator.schedulers.default.DefaultScheduler`).
        transport: an httpx transport (tests; default: a real connection pool).
    """

    name = "ml"

    def __init__(
        self,
        *,
        url: str,
        weight: int = DEFAULT_WEIGHT,
        node_cache_capable: bool = True,
        ignorable: bool = True,
        http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
        filter_verb: str = "filter",
        prioritize_verb: str = "prioritize",
        node_names: Sequence[str] | None = None,
        epoch_s: float = 0.0,
        push_state: bool = True,
        refresh_interval_s: float = DEFAULT_REFRESH_INTERVAL_S,
        feature_step_s: float = DEFAULT_FEATURE_STEP_S,
        push_timeout_s: float = DEFAULT_PUSH_TIMEOUT_S,
        namespace: str = "default",
        percentage_of_nodes_to_score: int = 0,
        cpu_weight: int = 1,
        mem_weight: int = 1,
        fit_weight: int = 1,
        balanced_weight: int = 1,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url:
            raise ConfigError("the ml scheduler needs the extender's url")
        if not http_timeout_s > 0 or not refresh_interval_s > 0 or not push_timeout_s > 0:
            raise ConfigError("http_timeout_s, refresh_interval_s and push_timeout_s must be > 0")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ConfigError(f"extender weight must be a non-negative integer, got {weight!r}")
        self.url = url.rstrip("/")
        self.weight = weight
        self.node_cache_capable = node_cache_capable
        self.ignorable = ignorable
        self.http_timeout_s = http_timeout_s
        self.filter_verb = filter_verb
        self.prioritize_verb = prioritize_verb
        self.node_names = list(node_names) if node_names is not None else None
        self.epoch_s = epoch_s
        self.push_state = push_state
        self.refresh_interval_s = refresh_interval_s
        self.feature_step_s = feature_step_s
        self.push_timeout_s = push_timeout_s
        self.namespace = namespace
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.plugins = DefaultScheduler(
            cpu_weight=cpu_weight,
            mem_weight=mem_weight,
            fit_weight=fit_weight,
            balanced_weight=balanced_weight,
            percentage_of_nodes_to_score=percentage_of_nodes_to_score,
        )
        self.transport = transport
        self._client: httpx.Client | None = None
        self._clear()

    # ------------------------------------------------------------------ run state

    def reset(self, seed: int) -> None:
        """Start a run: reseed, reopen the HTTP client, forget the node-state feed."""
        super().reset(seed)
        self.close()
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.http_timeout_s), transport=self.transport
        )
        # the per-pod verbs go over one lean keep-alive connection (httpx's per-request
        # overhead was a third of a decision); tests that pass a transport keep httpx
        self._conn = _Connection(self.url, self.http_timeout_s) if self.transport is None else None
        self._clear()

    def _clear(self) -> None:
        self._feed: NodeStateFeed | None = None
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._node_objects: list[dict[str, Any]] | None = None
        self._last_push = -np.inf
        self.counts: Counter[str] = Counter()
        self.decision_s: list[float] = []  # per decision, without node-state pushes
        self.extender_s: list[float] = []  # per decision, the extender calls' share
        self.push_s: list[float] = []  # per push: features + request + shim's refresh
        self.feature_s: list[float] = []  # per push: the feature rows alone

    def close(self) -> None:
        """Close the HTTP client (the engine calls this at the end of a run)."""
        conn, self._conn = getattr(self, "_conn", None), None
        if conn is not None:
            conn.close()
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()
            if getattr(self, "counts", None):
                log.info("ml scheduler run: %s", self.stats())

    def repoint(self, url: str) -> None:
        """Use the extender at ``url`` from the next call on and push node state at the
        next step: its Deployment rolled and the new pod (fresh state) answers there."""
        self.url = url.rstrip("/")
        if getattr(self, "_conn", None) is not None:
            self._conn.close()
            self._conn = _Connection(self.url, self.http_timeout_s)
        self._last_push = -np.inf

    def _bind_cluster(self, view: ClusterView) -> None:
        n = view.n_nodes
        names = self.node_names or [f"node-{i:04d}" for i in range(n)]
        if len(names) != n:
            raise ConfigError(f"ml scheduler: {len(names)} node names for a {n}-node cluster")
        self._names = list(names)
        self._index = {name: i for i, name in enumerate(self._names)}
        self._feed = NodeStateFeed(
            self._names,
            view.cap_cpu,
            view.cap_mem,
            epoch_s=self.epoch_s,
            step_s=self.feature_step_s,
        )

    # ------------------------------------------------------------------ node state

    def on_step(self, view: ClusterView) -> None:
        """Take in the view's new samples and push node state when an interval has
        passed (simulated time). Cheap when nothing is due."""
        if self._feed is None:
            self._bind_cluster(view)
        feed = self._feed
        got = feed.observe(view)
        if not self.push_state or view.now - self._last_push < self.refresh_interval_s:
            return
        if not got and not np.isfinite(feed.sample_time_s()).any():
            return  # nothing seen yet: a snapshot of NaN rows would only mislead
        self._last_push = view.now
        t0 = time.perf_counter()
        body = feed.payload(view)
        t1 = time.perf_counter()
        try:
            resp = self._client.put(
                f"{self.url}/v1/node-state",
                content=encode_json(body),
                headers={"Content-Type": "application/json"},
                timeout=self.push_timeout_s,
            )
            if resp.status_code != 200:
                raise ExtenderCallError("http_status", f"HTTP {resp.status_code}: {resp.text}")
            self.counts["pushes"] += 1
        except (httpx.HTTPError, ExtenderCallError) as exc:
            self.counts["push_errors"] += 1
            if self.counts["push_errors"] <= 3:
                log.warning("node-state push to %s failed: %s", self.url, exc)
        self.feature_s.append(t1 - t0)
        self.push_s.append(time.perf_counter() - t0)

    # ------------------------------------------------------------------ HTTP

    def _call(self, verb: str, args: dict[str, Any]) -> Any:
        t0 = time.perf_counter()
        if self._conn is not None:
            try:
                status, content = self._conn.post(f"/{verb}", encode_json(args))
            except TimeoutError as exc:
                raise ExtenderCallError("timeout", f"{verb}: {exc!r}") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise ExtenderCallError("transport", f"{verb}: {exc!r}") from exc
        else:
            try:
                resp = self._client.post(
                    f"{self.url}/{verb}",
                    content=encode_json(args),
                    headers={"Content-Type": "application/json"},
                )
            except httpx.TimeoutException as exc:
                raise ExtenderCallError("timeout", f"{verb}: {exc!r}") from exc
            except httpx.HTTPError as exc:
                raise ExtenderCallError("transport", f"{verb}: {exc!r}") from exc
            status, content = resp.status_code, resp.content
        if time.perf_counter() - t0 > self.http_timeout_s:
            raise ExtenderCallError("timeout", f"{verb}: answered after {self.http_timeout_s} s")
        if status != 200:
            raise ExtenderCallError(
                "http_status",
                f"failed {verb} with extender at URL {self.url}, code {status}",
            )
        try:
            return _loads(content)
        except ValueError as exc:
            raise ExtenderCallError("decode", f"{verb}: {exc}") from exc

    def _args(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> dict[str, Any]:
        if self._feed is None:
            self._bind_cluster(view)
        names = [self._names[i] for i in nodes.tolist()]
        if self.node_cache_capable:
            pod_json = pod_object(pod, namespace=self.namespace)
            return {"Pod": pod_json, "Nodes": None, "NodeNames": names}
        if self._node_objects is None:
            self._node_objects = [
                node_object(name, *values)
                for name, values in zip(
                    self._names,
                    zip(
                        view.cap_cpu.tolist(),
                        view.cap_mem.tolist(),
                        view.alloc_cpu.tolist(),
                        view.alloc_mem.tolist(),
                        view.max_pods.tolist(),
                        strict=True,
                    ),
                    strict=True,
                )
            ]
        items = [self._node_objects[i] for i in nodes.tolist()]
        pod_json = pod_object(pod, namespace=self.namespace)
        return {"Pod": pod_json, "Nodes": {"items": items}, "NodeNames": None}

    def extender_filter(
        self, pod: PodSpec, view: ClusterView, nodes: np.ndarray
    ) -> np.ndarray | None:
        """The candidates the extender keeps (node indices), None when a filter error is
        ignored (the candidates stand as they are).

        Raises:
            ExtenderCallError: the call failed and the extender is not ignorable.
        """
        if not self.filter_verb:
            return nodes
        self.counts["filter_calls"] += 1
        try:
            body = self._call(self.filter_verb, self._args(pod, view, nodes))
            sent = [self._names[i] for i in nodes.tolist()]
            kept = parse_filter_result(body, sent, node_cache_capable=self.node_cache_capable)
        except ExtenderCallError as exc:
            self.counts["filter_errors"] += 1
            self.counts[f"filter_error_{exc.kind}"] += 1
            if self.ignorable:
                self.counts["filter_errors_ignored"] += 1
                return None
            raise
        return np.fromiter((self._index[name] for name in kept), dtype=np.int64, count=len(kept))

    def extender_scores(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        """What prioritize adds to each candidate: ``Σ Score × weight × 10`` over the
        answer's entries for it (0 everywhere on an error)."""
        add = np.zeros(nodes.size, dtype=np.int64)
        if not self.prioritize_verb:
            return add
        self.counts["prioritize_calls"] += 1
        try:
            pairs = parse_priority_list(
                self._call(self.prioritize_verb, self._args(pod, view, nodes))
            )
        except ExtenderCallError as exc:
            self.counts["prioritize_errors"] += 1
            self.counts[f"prioritize_error_{exc.kind}"] += 1
            return add
        pos = {self._names[i]: k for k, i in enumerate(nodes.tolist())}
        for host, score in pairs:
            k = pos.get(host)
            if k is not None:
                add[k] += score * self.weight * EXTENDER_SCORE_SCALE
        return add

    # ------------------------------------------------------------------ decision

    def score(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        """The default plugins' total, then the extender's share added."""
        total = np.asarray(self.plugins.score(pod, view, nodes), dtype=np.int64)
        return total + self.extender_scores(pod, view, nodes)

    def select(self, pod: PodSpec, view: ClusterView) -> int | None:
        self.on_step(view)
        t0 = time.perf_counter()
        self.counts["decisions"] += 1
        ext = 0.0
        try:
            nodes = self.candidates(pod, view)
            if nodes.size == 0:
                return None
            e0 = time.perf_counter()
            try:
                kept = self.extender_filter(pod, view, nodes)
            except ExtenderCallError as exc:
                self.counts["failed_cycles"] += 1
                log.debug("pod %s: extender filter failed: %s", pod.name, exc)
                return None
            finally:
                ext += time.perf_counter() - e0
            if kept is not None:
                nodes = kept
            if nodes.size == 0:
                return None
            if nodes.size == 1:
                return int(nodes[0])
            plugin = np.asarray(self.plugins.score(pod, view, nodes), dtype=np.int64)
            e0 = time.perf_counter()
            scores = plugin + self.extender_scores(pod, view, nodes)
            ext += time.perf_counter() - e0
            best = np.flatnonzero(scores == scores.max())
            pick = best[0] if best.size == 1 else best[self.rng.integers(best.size)]
            return int(nodes[pick])
        finally:
            self.decision_s.append(time.perf_counter() - t0)
            self.extender_s.append(ext)

    # ------------------------------------------------------------------ figures

    def stats(self) -> dict[str, Any]:
        """The run's extender figures: call and error counts, decision and extender
        latency (p50 / p99, ms, pushes excluded), push and feature-row cost (mean / max,
        ms)."""

        def pct(values: list[float], q: float) -> float:
            return float(np.percentile(values, q) * 1e3) if values else float("nan")

        def mean(values: list[float]) -> float:
            return float(np.mean(values) * 1e3) if values else float("nan")

        counts = getattr(self, "counts", Counter())
        return {
            **dict(sorted(counts.items())),
            "decision_p50_ms": pct(self.decision_s, 50),
            "decision_p99_ms": pct(self.decision_s, 99),
            "extender_p50_ms": pct(self.extender_s, 50),
            "extender_p99_ms": pct(self.extender_s, 99),
            "push_mean_ms": mean(self.push_s),
            "push_max_ms": float(max(self.push_s) * 1e3) if self.push_s else float("nan"),
            "features_mean_ms": mean(self.feature_s),
        }
