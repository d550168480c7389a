"""kube-scheduler's extender v1 JSON: parse ``ExtenderArgs``, build the answers.

The Go types (``k8s.io/kube-scheduler/extender/v1``) carry no JSON tags, so the wire
names are the Go field names — ``Pod``, ``Nodes``, ``NodeNames``; ``Nodes``,
``NodeNames``, ``FailedNodes``, ``FailedAndUnresolvableNodes``, ``Error``; ``Host``,
``Score`` — and Go's decoder matches names case-insensitively, so this parser does too
(at every level: ``pod.Spec.Containers`` is as good as ``pod.spec.containers``).

With ``nodeCacheCapable: false`` kube-scheduler sends whole ``v1.Node`` objects in
``Nodes.items`` and reads the kept ones back from ``Nodes`` (an answer with only
``NodeNames`` filters every node out); with ``true`` it sends and reads ``NodeNames``.
Anything malformed raises :class:`BadRequestError` naming the field, which the server maps to
400 — never a 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

from hydatis.errors import HydatisError

__all__ = [
    "DEFAULT_CPU_REQUEST_M",
    "DEFAULT_MEM_REQUEST_BYTES",
    "BadRequestError",
    "ExtenderArgs",
    "PodInfo",
    "filter_result",
    "parse_args",
    "parse_quantity",
    "priority_list",
]

#: kube-scheduler's non-zero defaults for a container without requests (scoring).
DEFAULT_CPU_REQUEST_M = 100.0
DEFAULT_MEM_REQUEST_BYTES = 200.0 * 1024 * 1024

_SUFFIX = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


class BadRequestError(HydatisError):
    """The request is not valid extender JSON; ``where`` names the field."""

    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason}")


def parse_quantity(value: Any, where: str) -> float:
    """A Kubernetes resource quantity (``"250m"``, ``"1.5"``, ``"128Mi"``, ``"1e3"``, or a
    JSON number) as a float in base units.

    Raises:
        BadRequestError: not a quantity, or negative.
    """
    if isinstance(value, bool):
        raise BadRequestError(where, f"expected a quantity, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value.strip())
        if match is None:
            raise BadRequestError(where, f"{value!r} is not a Kubernetes quantity")
        number = float(match.group(1))
        if match.group(2):
            number *= 10.0 ** int(match.group(2)[1:])
        else:
            number *= _SUFFIX[match.group(3) or ""]
    else:
        raise BadRequestError(where, f"expected a quantity, got {type(value).__name__}")
    if number < 0 or number != number:
        raise BadRequestError(where, f"{value!r} is negative or not a number")
    return number


def _get(obj: dict[str, Any], key: str) -> Any:
    """``obj[key]``, matching the key case-insensitively as Go's decoder does."""
    if key in obj:
        return obj[key]
    low = key.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return None


def _mapping(value: Any, where: str, *, optional: bool = True) -> dict[str, Any] | None:
    if value is None:
        if optional:
            return None
        raise BadRequestError(where, "is missing")
    if not isinstance(value, dict):
        raise BadRequestError(where, f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequestError(where, f"expected an array, got {type(value).__name__}")
    return value


@dataclass
class PodInfo:
    """What scoring needs of the pod.

    Attributes:
        name, namespace, uid: identity (the UID keys rollout and lag compensation).
        cpu_m, mem_bytes: effective requests as kube-scheduler computes them — the larger
            of the containers' sum and the largest init container, plus overhead; a
            container without a request counts kube-scheduler's non-zero default.
    """

    name: str
    namespace: str
    uid: str
    cpu_m: float
    mem_bytes: float


@dataclass
class ExtenderArgs:
    """A parsed request.

    Attributes:
        pod: the pod.
        node_names: candidate node names, in request order.
        node_objects: the ``v1.Node`` objects when sent (``nodeCacheCapable: false``),
            else None; answers echo the kept ones.
        allocatable: per node name, allocatable ``(cpu_m, mem_bytes, pods)`` read from
            the node objects (empty in ``NodeNames`` mode).
    """

    pod: PodInfo
    node_names: list[str]
    node_objects: list[dict[str, Any]] | None = None
    allocatable: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def _container_requests(containers: list[Any] | None, where: str) -> list[tuple[float, float]]:
    out = []
    for i, c in enumerate(containers or []):
        cw = f"{where}[{i}]"
        c = _mapping(c, cw, optional=False)
        resources = _mapping(_get(c, "resources"), f"{cw}.resources") or {}
        req = _mapping(_get(resources, "requests"), f"{cw}.resources.requests") or {}
        cpu, mem = _get(req, "cpu"), _get(req, "memory")
        out.append(
            (
                DEFAULT_CPU_REQUEST_M
                if cpu is None
                else parse_quantity(cpu, f"{cw}.resources.requests.cpu") * 1000.0,
                DEFAULT_MEM_REQUEST_BYTES
                if mem is None
                else parse_quantity(mem, f"{cw}.resources.requests.memory"),
            )
        )
    return out


def _pod(raw: Any) -> PodInfo:
    pod = _mapping(raw, "Pod", optional=False)
    meta = _mapping(_get(pod, "metadata"), "Pod.metadata") or {}
    spec = _mapping(_get(pod, "spec"), "Pod.spec") or {}
    name = _get(meta, "name")
    if name is not None and not isinstance(name, str):
        raise BadRequestError("Pod.metadata.name", "expected a string")
    main = _container_requests(
        _list(_get(spec, "containers"), "Pod.spec.containers"), "Pod.spec.containers"
    )
    init = _container_requests(
        _list(_get(spec, "initContainers"), "Pod.spec.initContainers"), "Pod.spec.initContainers"
    )
    cpu = sum(c for c, _ in main) if main else DEFAULT_CPU_REQUEST_M
    mem = sum(m for _, m in main) if main else DEFAULT_MEM_REQUEST_BYTES
    if init:
        cpu = max(cpu, max(c for c, _ in init))
        mem = max(mem, max(m for _, m in init))
    overhead = _mapping(_get(spec, "overhead"), "Pod.spec.overhead") or {}
    if _get(overhead, "cpu") is not None:
        cpu += parse_quantity(_get(overhead, "cpu"), "Pod.spec.overhead.cpu") * 1000.0
    if _get(overhead, "memory") is not None:
        mem += parse_quantity(_get(overhead, "memory"), "Pod.spec.overhead.memory")
    namespace = _get(meta, "namespace") or "default"
    uid = _get(meta, "uid") or f"{namespace}/{name or ''}"
    return PodInfo(str(name or ""), str(namespace), str(uid), float(cpu), float(mem))


def _node_objects(raw: Any) -> tuple[list[dict[str, Any]], list[str], dict[str, tuple]]:
    nodes = _mapping(raw, "Nodes", optional=False)
    items = _list(_get(nodes, "items"), "Nodes.items") or []
    names: list[str] = []
    alloc: dict[str, tuple[float, float, float]] = {}
    for i, item in enumerate(items):
        where = f"Nodes.items[{i}]"
        item = _mapping(item, where, optional=False)
        meta = _mapping(_get(item, "metadata"), f"{where}.metadata", optional=False)
        name = _get(meta, "name")
        if not isinstance(name, str) or not name:
            raise BadRequestError(f"{where}.metadata.name", "missing or not a string")
        names.append(name)
        status = _mapping(_get(item, "status"), f"{where}.status") or {}
        a = _mapping(_get(status, "allocatable"), f"{where}.status.allocatable") or {}
        if a:
            cpu, mem, pods = _get(a, "cpu"), _get(a, "memory"), _get(a, "pods")
            alloc[name] = (
                float("nan") if cpu is None else parse_quantity(cpu, f"{where}.cpu") * 1000.0,
                float("nan") if mem is None else parse_quantity(mem, f"{where}.memory"),
                float("nan") if pods is None else parse_quantity(pods, f"{where}.pods"),
            )
    return items, names, alloc


def parse_args(body: Any) -> ExtenderArgs:
    """Parse a decoded ``ExtenderArgs`` body.

    Raises:
        BadRequestError: not an object, no pod, malformed quantities or node lists.
    """
    body = _mapping(body, "body", optional=False)
    pod = _pod(_get(body, "Pod"))
    raw_nodes = _get(body, "Nodes")
    if raw_nodes is not None:
        items, names, alloc = _node_objects(raw_nodes)
        return ExtenderArgs(pod, names, items, alloc)
    names = _list(_get(body, "NodeNames"), "NodeNames") or []
    if set(map(type, names)) - {str}:  # C-speed check; find the culprit only on error
        i = next(i for i, n in enumerate(names) if not isinstance(n, str))
        raise BadRequestError(
            f"NodeNames[{i}]", f"expected a string, got {type(names[i]).__name__}"
        )
    return ExtenderArgs(pod, list(names))


def filter_result(
    args: ExtenderArgs, keep: list[bool], failed: dict[str, str], error: str = ""
) -> dict[str, Any]:
    """An ``ExtenderFilterResult`` keeping ``args``' nodes where ``keep`` is true, in the
    mode the request came in (objects echoed back, or names)."""
    result: dict[str, Any] = {
        "Nodes": None,
        "NodeNames": None,
        "FailedNodes": failed,
        "FailedAndUnresolvableNodes": {},
        "Error": error,
    }
    if args.node_objects is not None:
        result["Nodes"] = {"items": list(compress(args.node_objects, keep))}
    else:
        result["NodeNames"] = list(compress(args.node_names, keep))
    return result


def priority_list(names: list[str], scores: list[int]) -> list[dict[str, Any]]:
    """A ``HostPriorityList``: integer scores, as Go's decoder insists."""
    if len(names) != len(scores):
        raise ValueError(f"{len(names)} hosts but {len(scores)} scores")
    return [{"Host": n, "Score": int(s)} for n, s in zip(names, scores)]  # noqa: B905
