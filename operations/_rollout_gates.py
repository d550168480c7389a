"""The rollout's gates: typed thresholds with their defaults (one place), the evidence a
window gives, and the pure decision advance / hold / rollback.

Each window compares the pods the models placed (the rollout's cohort: pods whose UID
hash falls under the share, :func:`scheduler_shim.service.rollout_bucket`) with the pods
the default plugins placed in the same window (the rest):

========================= ============================================ ===============
gate                      passes when                                  default
========================= ============================================ ===============
``hot_share``             ML pods' share of pod-time on hot nodes      +0.02
                          (CPU > ``hot_threshold``) <= default's + x
``availability``          ML availability >= default's - x             0.005
``pending``               ML p95 pending <= default's × r + slack      × 1.5 + 30 s
``decision_latency``      extender decision p99 <= budget              0.25 s
``fallback_rate``         neutral answers / decided calls <= x         0.05
========================= ============================================ ===============

A cohort with fewer than ``min_pods`` placements in the window gives no verdict on the
gates that compare (``skipped``); at 100 % there is no default cohort, so only the
absolute gates (latency, fallback rate) watch. Any failed gate rolls back; all evaluated
gates passing with enough ML pods advances; anything else holds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

__all__ = [
    "HOT_THRESHOLD",
    "CohortStats",
    "Evidence",
    "GateConfig",
    "GateResult",
    "Verdict",
    "evaluate",
]

#: The evaluation's hot threshold (simulator.metrics.HOT_THRESHOLD; a test checks).
HOT_THRESHOLD = 0.85


class GateConfig(BaseModel):
    """The rollout plan and its gates (defaults here and nowhere else).

    Attributes:
        steps: the shares, increasing, in (0, 100].
        window_s: one evaluation window.
        min_pods: placements a cohort needs in a window for the comparing gates.
        hot_threshold: node CPU utilisation counted as hot.
        max_hot_share_excess: ML hot share may exceed the default's by this much.
        max_availability_drop: ML availability may fall below the default's by this.
        max_pending_p95_ratio, pending_slack_s: ML p95 pending <= default's × ratio + slack.
        max_decision_p99_s: the extender's decision-latency p99 budget.
        max_fallback_rate: the extender's neutral (fallback) answers per decided call.
        pending_grace_s: a pod pending longer than this is impacted (availability).
    """

    model_config = {"extra": "forbid"}

    steps: list[float] = Field(default_factory=lambda: [10.0, 50.0, 100.0])
    window_s: float = Field(1800.0, gt=0)
    min_pods: int = Field(30, ge=1)
    hot_threshold: float = Field(HOT_THRESHOLD, gt=0, le=1)
    max_hot_share_excess: float = Field(0.02, ge=0, le=1)
    max_availability_drop: float = Field(0.005, ge=0, le=1)
    max_pending_p95_ratio: float = Field(1.5, ge=1)
    pending_slack_s: float = Field(30.0, ge=0)
    max_decision_p99_s: float = Field(0.25, gt=0)
    max_fallback_rate: float = Field(0.05, ge=0, le=1)
    pending_grace_s: float = Field(60.0, ge=0)

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[float]) -> list[float]:
        if not steps:
            raise ValueError("steps: at least one share")
        for a, b in itertools.pairwise(steps):
            if not b > a:
                raise ValueError(f"steps must increase: {a} then {b}")
        if not (steps[0] > 0 and steps[-1] <= 100):
            raise ValueError(f"steps must lie in (0, 100], got {steps}")
        return [float(s) for s in steps]


@dataclass
class CohortStats:
    """One cohort's figures over a window (placements in it; NaN: nothing to measure)."""

    pods: int = 0
    hot_share: float = math.nan
    availability: float = math.nan
    pending_p95_s: float = math.nan


@dataclass
class Evidence:
    """What one window showed."""

    start: float
    end: float
    percent: float
    ml: CohortStats = field(default_factory=CohortStats)
    default: CohortStats = field(default_factory=CohortStats)
    decision_p99_s: float = math.nan
    fallback_rate: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """Plain values (NaN as None) for JSON."""
        return _clean(asdict(self))


@dataclass
class GateResult:
    """One gate's outcome: ``pass``, ``fail`` or ``skipped`` (no verdict)."""

    gate: str
    status: Literal["pass", "fail", "skipped"]
    value: float
    limit: float
    detail: str


@dataclass
class Verdict:
    """The window's decision and why."""

    decision: Literal["advance", "hold", "rollback"]
    reason: str
    gates: list[GateResult]

    @property
    def failed(self) -> list[str]:
        """Names of the failed gates."""
        return [g.gate for g in self.gates if g.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return _clean(asdict(self))


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def _gate(name: str, value: float, limit: float, ok: bool, detail: str) -> GateResult:
    if math.isnan(value) or math.isnan(limit):
        return GateResult(name, "skipped", value, limit, f"no data: {detail}")
    return GateResult(name, "pass" if ok else "fail", value, limit, detail)


def evaluate(ev: Evidence, cfg: GateConfig) -> Verdict:
    """Decide one window (see the module docstring)."""
    gates: list[GateResult] = []
    ml, dflt = ev.ml, ev.default
    enough_ml, enough_dflt = ml.pods >= cfg.min_pods, dflt.pods >= cfg.min_pods
    compare = enough_ml and enough_dflt
    if compare:
        lim = dflt.hot_share + cfg.max_hot_share_excess
        gates.append(
            _gate(
                "hot_share",
                ml.hot_share,
                lim,
                ml.hot_share <= lim,
                f"ML {ml.hot_share:.3f} vs default {dflt.hot_share:.3f} "
                f"(+{cfg.max_hot_share_excess})",
            )
        )
        lim = dflt.availability - cfg.max_availability_drop
        gates.append(
            _gate(
                "availability",
                ml.availability,
                lim,
                ml.availability >= lim,
                f"ML {ml.availability:.4f} vs default {dflt.availability:.4f} "
                f"(-{cfg.max_availability_drop})",
            )
        )
        lim = dflt.pending_p95_s * cfg.max_pending_p95_ratio + cfg.pending_slack_s
        gates.append(
            _gate(
                "pending",
                ml.pending_p95_s,
                lim,
                ml.pending_p95_s <= lim,
                f"ML p95 {ml.pending_p95_s:.0f} s vs default {dflt.pending_p95_s:.0f} s",
            )
        )
    else:
        why = (
            f"ML {ml.pods} / default {dflt.pods} placements in the window, "
            f"{cfg.min_pods} needed each"
        )
        for name in ("hot_share", "availability", "pending"):
            gates.append(GateResult(name, "skipped", math.nan, math.nan, why))
    gates.append(
        _gate(
            "decision_latency",
            ev.decision_p99_s,
            cfg.max_decision_p99_s,
            ev.decision_p99_s <= cfg.max_decision_p99_s,
            f"p99 {ev.decision_p99_s * 1000:.1f} ms",
        )
    )
    gates.append(
        _gate(
            "fallback_rate",
            ev.fallback_rate,
            cfg.max_fallback_rate,
            ev.fallback_rate <= cfg.max_fallback_rate,
            f"{ev.fallback_rate:.3f} of decided calls",
        )
    )
    failed = [g for g in gates if g.status == "fail"]
    if failed:
        reason = "; ".join(f"{g.gate} failed: {g.detail} (limit {g.limit:.4g})" for g in failed)
        return Verdict("rollback", reason, gates)
    if not enough_ml:
        return Verdict("hold", f"not enough ML-placed pods: {ml.pods} < {cfg.min_pods}", gates)
    if not compare and ev.percent < 100:
        return Verdict(
            "hold", f"not enough default-placed pods: {dflt.pods} < {cfg.min_pods}", gates
        )
    return Verdict("advance", "every evaluated gate passed", gates)
