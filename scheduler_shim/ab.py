"""Model A/B tests inside the extender: a challenger set of model servers beside the
champion, pods split between the two arms by a salted hash of their UID.

The split is a second, independent hash: the rollout's bucket is the SHA-256 of the bare
UID (:func:`scheduler_shim.service.rollout_bucket`), the arm's is the SHA-256 of
``salt + ":" + uid``, so the challenger's share is the same slice of every rollout stage
rather than the pods the rollout happened to admit first. The same pod always lands in
the same arm, on every replica, and anyone who knows the salt and the share (the
``hydatis ab status`` analysis) can tell a pod's arm from its UID alone.

What differs between arms is only which model servers answer: the challenger's agent is
called per pod instead of the champion's; its load predictor and anomaly detector (if
set) score the nodes at each refresh beside the champion's, and a challenger pod reads a
view of the snapshot with their outputs. Everything else — thresholds, weights, the
ledger of recent placements — is shared, so the arms differ by their models alone. A
replica that installs a snapshot another replica refreshed (Redis sharing) has no
challenger view for it; its challenger pods then read the champion's node outputs (the
agent still differs), counted as ``view_missing``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from scheduler_shim.models import ModelCallError, ModelClient, open_clients

__all__ = [
    "ARMS",
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_SALT",
    "ABArms",
    "ABMetrics",
    "ab_bucket",
    "assign_arm",
]

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
ARMS = (CHAMPION, CHALLENGER)
#: The default salt of the arm hash (differs from the rollout's unsalted hash).
DEFAULT_SALT = "hydatis-ab"
_FALLBACKS = ("view_missing", "refresh_load_failed", "refresh_anomaly_failed")


def ab_bucket(uid: str, salt: str = DEFAULT_SALT) -> float:
    """A stable position in [0, 100) for a pod UID: the first 8 bytes of
    ``SHA-256(salt + ":" + uid)``."""
    digest = hashlib.sha256(f"{salt}:{uid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def assign_arm(uid: str, percent: float, salt: str = DEFAULT_SALT) -> str:
    """The arm of a pod: ``challenger`` for a bucket below ``percent``, else ``champion``."""
    return CHALLENGER if ab_bucket(uid, salt) < percent else CHAMPION


class ABMetrics:
    """The A/B test's Prometheus series, registered in the extender's registry.

    ``hydatis_extender_ab_decisions_total{arm,verb}``: calls decided per arm;
    ``hydatis_extender_ab_challenger_ratio``: the configured challenger share (0 when no
    test runs); ``hydatis_extender_ab_fallbacks_total{reason}``: challenger parts that
    fell back to the champion's (``view_missing``) or failed at refresh.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "hydatis_extender_ab_decisions_total",
            "Calls decided in an A/B test, by arm (champion, challenger) and verb.",
            ["arm", "verb"],
            registry=registry,
        )
        self.challenger_ratio = Gauge(
            "hydatis_extender_ab_challenger_ratio",
            "The share of pods (by a salted hash of the UID) the challenger models decide "
            "for (ab_percent / 100; 0 when no A/B test runs).",
            registry=registry,
        )
        self.fallbacks = Counter(
            "hydatis_extender_ab_fallbacks_total",
            "Challenger parts that fell back to the champion's outputs, by reason.",
            ["reason"],
            registry=registry,
        )
        for arm in ARMS:
            for verb in ("filter", "prioritize"):
                self.decisions.labels(arm, verb)
        for reason in _FALLBACKS:
            self.fallbacks.labels(reason)


PosterFactory = Callable[[str], Any]


class ABArms:
    """Which arm a pod is in, the challenger's model clients and its snapshot view.

    Args:
        config: the extender's settings (``ab_percent``, ``ab_salt``, ``challenger_*``).
        registry: where the A/B series go (the extender's registry).
    """

    def __init__(self, config: Any, registry: CollectorRegistry) -> None:
        self.config = config
        self.metrics = ABMetrics(registry)
        self.agent_client: ModelClient | None = None
        self.load_client: ModelClient | None = None
        self.anomaly_client: ModelClient | None = None
        self._view: Any = None
        self.counts: dict[str, int] = dict.fromkeys(ARMS, 0)

    @property
    def enabled(self) -> bool:
        """Whether a test runs: a positive share and at least one challenger server."""
        c = self.config
        return c.ab_percent > 0 and bool(
            c.challenger_agent_url or c.challenger_load_url or c.challenger_anomaly_url
        )

    def start(self, poster: PosterFactory, observe: Callable[[str, float, bool], None]) -> None:
        """Open the challenger's clients (``poster(url)`` gives a request function, as the
        extender's own clients get)."""
        c = self.config
        self.metrics.challenger_ratio.set(c.ab_percent / 100.0 if self.enabled else 0.0)
        if not self.enabled:
            return
        self.load_client, self.anomaly_client, self.agent_client = open_clients(
            poster,
            c,
            observe,
            load_url=c.challenger_load_url,
            anomaly_url=c.challenger_anomaly_url,
            agent_url=c.challenger_agent_url,
        )
        log.info(
            "A/B test: %.1f%% of pods to the challenger (agent=%s load=%s anomaly=%s)",
            c.ab_percent,
            c.challenger_agent_url or "champion's",
            c.challenger_load_url or "champion's",
            c.challenger_anomaly_url or "champion's",
        )

    def arm(self, uid: str) -> str:
        """The pod's arm (always ``champion`` when no test runs)."""
        if not self.enabled:
            return CHAMPION
        return assign_arm(uid, self.config.ab_percent, self.config.ab_salt)

    def agent_for(self, uid: str, champion: ModelClient | None) -> ModelClient | None:
        """The placement agent's client for this pod's arm."""
        if self.agent_client is not None and self.arm(uid) == CHALLENGER:
            return self.agent_client
        return champion

    def view(self, uid: str, snap: Any, verb: str) -> Any:
        """Count the decision under the pod's arm and give the snapshot that arm reads."""
        if not self.enabled:
            return snap
        arm = self.arm(uid)
        self.metrics.decisions.labels(arm, verb).inc()
        if verb == "prioritize":
            self.counts[arm] += 1
        if arm == CHAMPION or (self.load_client is None and self.anomaly_client is None):
            return snap
        view = self._view
        if view is None or view.version != snap.version:
            self.metrics.fallbacks.labels("view_missing").inc()
            return snap
        return view

    async def refresh(self, snap: Any, rows: Any) -> None:
        """Score the refreshed nodes with the challenger's load / anomaly models and keep
        the challenger's view of ``snap`` (a failed model keeps the champion's outputs)."""
        if not self.enabled or (self.load_client is None and self.anomaly_client is None):
            return
        n = len(rows.names)
        calls: dict[str, Any] = {}
        if self.load_client is not None and n:
            calls["load"] = self.load_client.infer(rows.values, rows.columns)
        if self.anomaly_client is not None and n:
            calls["anomaly"] = self.anomaly_client.infer(rows.values, rows.columns)
        results = await asyncio.gather(*calls.values(), return_exceptions=True)
        changes: dict[str, np.ndarray] = {}
        for kind, res in zip(calls, results, strict=True):
            try:
                if isinstance(res, BaseException):
                    raise ModelCallError(f"challenger {kind}", str(res))
                if kind == "load":
                    changes["pred_cpu"] = np.asarray(res["cpu_util_pred"], dtype=np.float64)
                    changes["pred_mem"] = np.asarray(res["mem_util_pred"], dtype=np.float64)
                else:
                    changes["anomaly_score"] = np.asarray(res["anomaly_score"], dtype=np.float64)
                    flag = np.asarray(res.get("anomaly_flag", np.zeros(n)))
                    changes["anomaly_flag"] = flag > 0.5
            except (ModelCallError, KeyError) as exc:
                self.metrics.fallbacks.labels(f"refresh_{kind}_failed").inc()
                log.warning("A/B challenger %s failed at refresh: %s", kind, exc)
        self._view = replace(snap, **changes)
