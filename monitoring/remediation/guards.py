"""The safety rails, as small pure pieces: the rate limiter, the blast-radius check and
the choice of which pods a drain may evict.

Kept apart from the Kubernetes calls so each rule is tested table-driven, on plain dicts
shaped like the API's objects.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BlastRadius",
    "RateLimiter",
    "blast_radius",
    "evictable",
    "pdb_blocks",
    "selector_matches",
]

DEFAULT_POOL = "default"


class RateLimiter:
    """At most ``limit`` actions in any window of ``window_s`` seconds (sliding window).

    ``clock`` gives the time (the service's clock: wall time, or a replay's time).
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._times: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()

    def allow(self) -> bool:
        """Whether one more action fits now (does not take it)."""
        now = self.clock()
        self._trim(now)
        return len(self._times) < self.limit

    def take(self) -> None:
        """Count one action now."""
        self._times.append(self.clock())

    def retry_after_s(self) -> float:
        """Seconds until the next action fits (0 when one fits now)."""
        now = self.clock()
        self._trim(now)
        if len(self._times) < self.limit or not self._times:
            return 0.0
        return max(self._times[0] + self.window_s - now, 0.0)


@dataclass(frozen=True)
class BlastRadius:
    """The verdict on cordoning one node.

    Attributes:
        allowed: whether the cordon stays within the caps.
        pool: the node's pool.
        pool_size: nodes in the pool.
        cordoned: nodes of the pool already cordoned.
        cap: the most nodes of the pool that may be cordoned.
        reason: why not (empty when allowed).
    """

    allowed: bool
    pool: str
    pool_size: int
    cordoned: int
    cap: int
    reason: str = ""


def _pool(node: Mapping[str, Any], label: str) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return str(labels.get(label) or DEFAULT_POOL)


def _cordoned(node: Mapping[str, Any]) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def blast_radius(
    name: str, nodes: Iterable[Mapping[str, Any]], *, pool_label: str, max_share: float
) -> BlastRadius:
    """May node ``name`` be cordoned?

    Never more than ``floor(max_share · pool size)`` nodes of a pool cordoned (so a pool
    smaller than ``1 / max_share`` is never cordoned automatically), and never the pool's
    last schedulable node.
    """
    nodes = list(nodes)
    me = next((n for n in nodes if (n.get("metadata") or {}).get("name") == name), None)
    if me is None:
        return BlastRadius(False, DEFAULT_POOL, 0, 0, 0, f"node {name} is not in the node list")
    pool = _pool(me, pool_label)
    members = [n for n in nodes if _pool(n, pool_label) == pool]
    cordoned = sum(_cordoned(n) for n in members)
    cap = math.floor(max_share * len(members) + 1e-9)
    schedulable = len(members) - cordoned
    if schedulable <= 1:
        return BlastRadius(
            False,
            pool,
            len(members),
            cordoned,
            cap,
            f"{name} is the last schedulable node of pool {pool}",
        )
    if cordoned + 1 > cap:
        return BlastRadius(
            False,
            pool,
            len(members),
            cordoned,
            cap,
            f"cordoning {name} would make {cordoned + 1} of {len(members)} nodes of pool "
            f"{pool} cordoned; the cap is {cap} ({max_share:.0%} of the pool)",
        )
    return BlastRadius(True, pool, len(members), cordoned, cap)


def evictable(pod: Mapping[str, Any], protected_namespaces: Iterable[str] = ()) -> str | None:
    """Why ``pod`` must not be evicted, or None when it may.

    A drain moves only pods a controller will recreate elsewhere: owned by a controller
    that is not a DaemonSet (its pods belong to the node), not mirror pods (the kubelet's
    static pods), not finished or already terminating, not in a protected namespace.
    """
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("namespace") in set(protected_namespaces):
        return f"namespace {meta.get('namespace')} is protected"
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return "mirror (static) pod"
    if meta.get("deletionTimestamp"):
        return "already terminating"
    if status.get("phase") in ("Succeeded", "Failed"):
        return f"already finished ({status.get('phase')})"
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
    if not owners:
        return "not owned by a controller (nothing would recreate it)"
    if owners[0].get("kind") == "DaemonSet":
        return "owned by a DaemonSet (its pods belong to the node)"
    return None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A ``LabelSelector`` (matchLabels + matchExpressions) against ``labels``.

    An empty selector matches every pod (policy/v1 semantics for PDBs); a null one none.
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass
class _Budget:
    name: str
    allowed: int


@dataclass
class PdbBudgets:
    """Disruptions each PDB still allows while one drain plans its evictions."""

    budgets: list[tuple[str, Mapping[str, Any] | None, _Budget]] = field(default_factory=list)

    @classmethod
    def from_list(cls, pdbs: Iterable[Mapping[str, Any]]) -> PdbBudgets:
        """From the API's PodDisruptionBudget objects (``status.disruptionsAllowed``)."""
        out = cls()
        for pdb in pdbs:
            meta = pdb.get("metadata") or {}
            allowed = int((pdb.get("status") or {}).get("disruptionsAllowed") or 0)
            out.budgets.append(
                (
                    str(meta.get("namespace") or ""),
                    (pdb.get("spec") or {}).get("selector"),
                    _Budget(str(meta.get("name")), allowed),
                )
            )
        return out


def pdb_blocks(pod: Mapping[str, Any], budgets: PdbBudgets) -> str | None:
    """Why a PDB forbids evicting ``pod`` now, or None; on None, the pod's PDBs are
    charged one disruption (so one drain never plans past a budget)."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    mine = [
        b
        for ns, sel, b in budgets.budgets
        if ns == meta.get("namespace") and selector_matches(sel, labels)
    ]
    for b in mine:
        if b.allowed <= 0:
            return f"PodDisruptionBudget {b.name} allows no more disruptions"
    for b in mine:
        b.allowed -= 1
    return None
