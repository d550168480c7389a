"""What kube-scheduler would send the extender, and whether the answers would serve it.

Built from the live nodes: an ``ExtenderArgs`` (v1 JSON, the Go field names) with a probe
pod and either whole ``Nodes`` or ``NodeNames`` as the scheduler's ``nodeCacheCapable``
says; kube-scheduler then prioritizes only the nodes the filter kept, and so does this.
The checks are the ones kube-scheduler's own code path implies: a filter answer that
loses a node, names one never sent or sets ``Error`` fails the pod's cycle; a priority
outside 0..10 or a missing host is a broken contract.
"""

from __future__ import annotations

import uuid
from typing import Any

__all__ = [
    "PROBE_POD_NAME",
    "check_filter",
    "check_prioritize",
    "extender_args",
    "probe_pod",
    "schedulable_nodes",
]

PROBE_POD_NAME = "hydatis-validate-probe"
MAX_SCORE = 10


def probe_pod(scheduler_name: str, namespace: str = "default") -> dict[str, Any]:
    """A small pod naming the ML scheduler (never created: it exists only in the request)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PROBE_POD_NAME, "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": {
            "schedulerName": scheduler_name,
            "containers": [
                {
                    "name": "probe",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ],
        },
    }


def _ready(node: dict[str, Any]) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def schedulable_nodes(
    nodes: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(the nodes kube-scheduler would hand the extender, name → why the others are not):
    cordoned and not-Ready nodes are filtered by kube-scheduler before any extender."""
    kept: list[dict[str, Any]] = []
    left: dict[str, str] = {}
    for node in nodes:
        name = (node.get("metadata") or {}).get("name", "?")
        if (node.get("spec") or {}).get("unschedulable"):
            left[name] = "cordoned"
        elif not _ready(node):
            left[name] = "not Ready"
        else:
            kept.append(node)
    return kept, left


def extender_args(
    pod: dict[str, Any], nodes: list[dict[str, Any]], *, node_cache_capable: bool
) -> dict[str, Any]:
    """The ``ExtenderArgs`` body kube-scheduler sends."""
    if node_cache_capable:
        return {"Pod": pod, "Nodes": None, "NodeNames": [n["metadata"]["name"] for n in nodes]}
    return {"Pod": pod, "Nodes": {"items": nodes}, "NodeNames": None}


def _field(obj: dict[str, Any], key: str) -> Any:
    """``obj[key]`` case-insensitively, as Go's decoder (and kube-scheduler) reads it."""
    if key in obj:
        return obj[key]
    low = key.lower()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == low), None)


def check_filter(
    sent: list[str], answer: Any, *, node_cache_capable: bool
) -> tuple[list[str], dict[str, str], list[str]]:
    """Check an ``ExtenderFilterResult``.

    Returns:
        (kept node names in answer order, failed name → reason, problems).
    """
    if not isinstance(answer, dict):
        return [], {}, [f"the filter answer is not an object: {type(answer).__name__}"]
    problems: list[str] = []
    error = _field(answer, "Error")
    if error:
        problems.append(f"the filter answered Error {error!r}")
    if node_cache_capable:
        kept = list(_field(answer, "NodeNames") or [])
    else:
        items = (_field(answer, "Nodes") or {}).get("items") or []
        kept = [(i.get("metadata") or {}).get("name") for i in items]
    failed = dict(_field(answer, "FailedNodes") or {})
    unresolvable = dict(_field(answer, "FailedAndUnresolvableNodes") or {})
    seen: dict[str, int] = {}
    for name in [*kept, *failed, *unresolvable]:
        seen[name] = seen.get(name, 0) + 1
    if twice := sorted(n for n, c in seen.items() if c > 1):
        problems.append(f"nodes both kept and failed, or twice: {', '.join(twice)}")
    if unknown := sorted(set(seen) - set(sent)):
        problems.append(f"nodes never sent: {', '.join(map(str, unknown))}")
    if lost := [n for n in sent if n not in seen]:
        problems.append(f"nodes neither kept nor failed: {', '.join(lost)}")
    failed.update(unresolvable)
    return kept, {str(k): str(v) for k, v in failed.items()}, problems


def check_prioritize(sent: list[str], answer: Any) -> tuple[dict[str, int], list[str]]:
    """Check a ``HostPriorityList`` for the nodes sent.

    Returns:
        (host → score, problems).
    """
    if not isinstance(answer, list):
        return {}, [f"the prioritize answer is not a list: {type(answer).__name__}"]
    scores: dict[str, int] = {}
    problems: list[str] = []
    for i, entry in enumerate(answer):
        host = _field(entry, "Host") if isinstance(entry, dict) else None
        score = _field(entry, "Score") if isinstance(entry, dict) else None
        if not isinstance(host, str):
            problems.append(f"entry {i} has no Host")
            continue
        if host in scores:
            problems.append(f"{host} scored twice")
        if isinstance(score, bool) or not isinstance(score, int):
            problems.append(f"{host}: score {score!r} is not an integer")
        elif not 0 <= score <= MAX_SCORE:
            problems.append(f"{host}: score {score} outside 0..{MAX_SCORE}")
        else:
            scores[host] = score
    if unknown := sorted(set(scores) - set(sent)):
        problems.append(f"hosts never sent: {', '.join(unknown)}")
    if missing := [n for n in sent if n not in scores and not any(n in p for p in problems)]:
        problems.append(f"hosts without a score: {', '.join(missing)}")
    return scores, problems
