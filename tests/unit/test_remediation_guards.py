"""The safety rails as pure functions, table-driven: the blast radius, which pods a drain
may evict, label selectors, PodDisruptionBudget budgets, the rate limiter."""

from __future__ import annotations

import pytest

from monitoring.remediation.guards import (
    PdbBudgets,
    RateLimiter,
    blast_radius,
    evictable,
    pdb_blocks,
    selector_matches,
)


def nodes(n: int, cordoned: int = 0, pool: str | None = None) -> list[dict]:
    out = []
    for i in range(n):
        labels = {"hydatis.io/node-pool": pool} if pool else {}
        spec = {"unschedulable": True} if i >= n - cordoned else {}
        out.append({"metadata": {"name": f"{pool or 'n'}{i}", "labels": labels}, "spec": spec})
    return out


@pytest.mark.parametrize(
    ("fleet", "name", "share", "allowed", "cap"),
    [
        (nodes(20), "n0", 0.1, True, 2),
        (nodes(20, cordoned=1), "n0", 0.1, True, 2),
        (nodes(20, cordoned=2), "n0", 0.1, False, 2),
        (nodes(9), "n0", 0.1, False, 0),
        (nodes(2, pool="gpu") + nodes(20), "gpu0", 0.5, True, 1),
        (nodes(2, cordoned=1, pool="gpu") + nodes(20), "gpu0", 1.0, False, 2),
        (nodes(1), "n0", 1.0, False, 1),
        (nodes(3), "ghost", 0.5, False, 0),
    ],
    ids=[
        "under-cap",
        "one-below-cap",
        "at-cap",
        "pool-smaller-than-one-over-share",
        "other-pool-counted-apart",
        "last-schedulable-of-pool",
        "single-node-cluster",
        "unknown-node",
    ],
)
def test_blast_radius(fleet, name, share, allowed, cap) -> None:
    verdict = blast_radius(name, fleet, pool_label="hydatis.io/node-pool", max_share=share)
    assert (verdict.allowed, verdict.cap) == (allowed, cap)
    assert bool(verdict.reason) == (not allowed)


def _pod(**meta) -> dict:
    status = meta.pop("status", {"phase": "Running"})
    meta.setdefault("namespace", "default")
    meta.setdefault("ownerReferences", [{"kind": "ReplicaSet", "controller": True}])
    return {"metadata": meta, "status": status}


@pytest.mark.parametrize(
    ("pod", "why"),
    [
        (_pod(), None),
        (_pod(ownerReferences=[{"kind": "StatefulSet", "controller": True}]), None),
        (_pod(ownerReferences=[]), "not owned by a controller"),
        (_pod(ownerReferences=[{"kind": "ReplicaSet", "controller": False}]), "not owned"),
        (_pod(ownerReferences=[{"kind": "DaemonSet", "controller": True}]), "owned by a Daemon"),
        (_pod(annotations={"kubernetes.io/config.mirror": "x"}), "mirror (static) pod"),
        (_pod(namespace="kube-system"), "namespace kube-system is protected"),
        (_pod(deletionTimestamp="2024-01-01T00:00:00Z"), "already terminating"),
        (_pod(status={"phase": "Failed"}), "already finished (Failed)"),
    ],
    ids=[
        "replicaset",
        "statefulset",
        "bare",
        "owner-not-controller",
        "daemonset",
        "mirror",
        "protected-namespace",
        "terminating",
        "finished",
    ],
)
def test_evictable(pod: dict, why: str | None) -> None:
    got = evictable(pod, ["kube-system"])
    assert (got is None) if why is None else got.startswith(why)


@pytest.mark.parametrize(
    ("selector", "labels", "match"),
    [
        ({}, {"a": "1"}, True),
        (None, {"a": "1"}, False),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["2"]}]},
            {"a": "2"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["2"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
    ],
    ids=[
        "empty-matches-all",
        "null-matches-none",
        "labels",
        "labels-differ",
        "in",
        "not-in",
        "not-in-missing-key",
        "exists",
        "does-not-exist",
    ],
)
def test_selector_matches(selector, labels, match) -> None:
    assert selector_matches(selector, labels) is match


def test_pdb_budget_is_charged_per_planned_eviction() -> None:
    budgets = PdbBudgets.from_list(
        [
            {
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}},
                "status": {"disruptionsAllowed": 2},
            },
            {
                "metadata": {"name": "other-ns", "namespace": "prod"},
                "spec": {"selector": {}},
                "status": {"disruptionsAllowed": 0},
            },
        ]
    )
    web = {"metadata": {"namespace": "default", "labels": {"app": "web"}}}
    assert [pdb_blocks(web, budgets) for _ in range(3)] == [
        None,
        None,
        "PodDisruptionBudget web allows no more disruptions",
    ]
    free = {"metadata": {"namespace": "default", "labels": {"app": "api"}}}
    assert pdb_blocks(free, budgets) is None
    prod = {"metadata": {"namespace": "prod", "labels": {}}}
    assert pdb_blocks(prod, budgets) == "PodDisruptionBudget other-ns allows no more disruptions"


def test_rate_limiter_slides() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 60.0, lambda: now[0])
    for _ in range(2):
        assert limiter.allow()
        limiter.take()
        now[0] += 10
    assert not limiter.allow()
    assert limiter.retry_after_s() == pytest.approx(40.0)
    now[0] = 60.0
    assert limiter.allow()
    assert RateLimiter(0, 60.0, lambda: 0.0).allow() is False
