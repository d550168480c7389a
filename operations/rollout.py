"""Progressive rollout of the ML scheduler: 10 → 50 → 100 % of pods (configurable),
advanced only while the pods the models place do as well as the pods the default
plugins place in the same window, rolled back one step on a breach.

The share is the extender's ``rollout_percent`` (set through
:class:`operations._rollout_share.ShareControl`, i.e. remediation's ``ExtenderSettings``:
the ConfigMap key and the Deployment's variables, or a local settings file). The
rollout's own memory — the step, whether it is halted and why, the last verdicts — is a
JSON document in a ConfigMap (``hydatis-system/hydatis-rollout``, key ``state.json``) on a
cluster, or a JSON file locally.

- ``advance``: to the next step (clears a halt: an operator's decision).
- ``rollback``: one step back (below the first step: 0 %).
- ``step`` (one window): evaluate the gates (:mod:`operations._rollout_gates`) on the
  window's evidence (:mod:`operations._rollout_evidence`); a failed gate rolls back one
  step and halts the rollout, saying which gate failed; a pass advances unless halted or
  at the last step; otherwise it holds.

Nothing changes while fallback is on (the share is fallback's). Every call is a dry run
unless ``dry_run=False``; each decision is audited.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitoring.remediation.actions import Outcome
from monitoring.remediation.audit import AuditLog, AuditRecord
from operations._fallback_kube import OpsCluster
from operations._rollout_evidence import PrometheusEvidence, ReplayEvidence
from operations._rollout_gates import Evidence, GateConfig, Verdict, evaluate
from operations._rollout_share import ShareControl
from operations.fallback import MEMORY_PREVIOUS_SHARE

__all__ = [
    "ConfigMapStore",
    "Evidence",
    "FileStore",
    "GateConfig",
    "PrometheusEvidence",
    "ReplayEvidence",
    "Rollout",
    "RolloutState",
    "StateError",
    "Verdict",
    "evaluate",
]

log = logging.getLogger(__name__)
STATE_KEY = "state.json"
_HISTORY = 50


class StateError(Exception):
    """The rollout's stored state cannot be read (names where and what)."""


@dataclass
class RolloutState:
    """The rollout's memory.

    Attributes:
        index: the current step (-1: before the first, share 0 %).
        halted: a breach rolled back; ``step`` no longer advances until ``advance``.
        halt_reason: which gate failed, and its figures.
        history: the latest changes and verdicts, newest last.
    """

    index: int = -1
    halted: bool = False
    halt_reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str, where: str) -> RolloutState:
        """Parse a stored state; StateError names ``where`` when it is not one."""
        try:
            data = json.loads(text)
            return cls(
                index=int(data.get("index", -1)),
                halted=bool(data.get("halted", False)),
                halt_reason=str(data.get("halt_reason", "")),
                history=list(data.get("history") or []),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise StateError(f"the rollout state in {where} is not valid: {exc}") from exc

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(asdict(self), indent=1, sort_keys=True, default=str)


class FileStore:
    """The state as a local JSON file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def where(self) -> str:
        """For messages and the audit."""
        return f"file {self.path}"

    def load(self) -> RolloutState:
        """The stored state (a fresh one when there is none)."""
        if not self.path.is_file():
            return RolloutState()
        return RolloutState.from_json(self.path.read_text(), str(self.path))

    def save(self, state: RolloutState) -> None:
        """Write it (atomically)."""
        from monitoring.remediation.actions import _atomic_write

        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path, state.to_json())


class ConfigMapStore:
    """The state in a ConfigMap key (created the first time it is saved)."""

    def __init__(
        self, cluster: OpsCluster, namespace: str = "hydatis-system", name: str = "hydatis-rollout"
    ) -> None:
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self._exists: bool | None = None

    @property
    def where(self) -> str:
        """For messages and the audit."""
        return f"configmap {self.namespace}/{self.name}"

    def load(self) -> RolloutState:
        """The stored state (a fresh one when the ConfigMap or key is absent)."""
        cm = self.cluster.read_configmap(self.namespace, self.name)
        self._exists = cm is not None
        text = ((cm or {}).get("data") or {}).get(STATE_KEY)
        return RolloutState() if text is None else RolloutState.from_json(text, self.where)

    def save(self, state: RolloutState) -> None:
        """PATCH the key, or POST the ConfigMap when it does not exist yet."""
        if self._exists is None:
            self._exists = self.cluster.read_configmap(self.namespace, self.name) is not None
        data = {STATE_KEY: state.to_json()}
        if self._exists:
            self.cluster.patch_configmap(self.namespace, self.name, data)
        else:
            self.cluster.create_configmap(self.namespace, self.name, data)
            self._exists = True


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Rollout:
    """The rollout controller (see the module docstring).

    Args:
        share: sets the extender's share.
        store: :class:`ConfigMapStore` or :class:`FileStore`.
        config: steps, window and gates.
        audit: where decisions are recorded (None: not recorded).
        clock: unix seconds (a replay passes its own).
    """

    def __init__(
        self,
        share: ShareControl,
        store: FileStore | ConfigMapStore,
        config: GateConfig | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.share, self.store = share, store
        self.config = config or GateConfig()
        self.audit, self.clock = audit, clock

    def percent_of(self, index: int) -> float:
        """The share at step ``index`` (-1: 0 %)."""
        return 0.0 if index < 0 else self.config.steps[index]

    def status(self) -> dict[str, Any]:
        """The step, the share in force, halt, the last verdicts."""
        state = self.store.load()
        try:
            current: dict[str, Any] | None = self.share.current()
            memory = self.share.memory()
        except Exception as exc:
            current, memory = None, {"error": str(exc)}
        steps = self.config.steps
        nxt = steps[state.index + 1] if state.index + 1 < len(steps) else None
        planned = self.percent_of(state.index)
        return {
            "steps": steps,
            "index": state.index,
            "planned_percent": planned,
            "share": current,
            "in_sync": current is not None and current["rollout_percent"] == planned,
            "fallback_on": MEMORY_PREVIOUS_SHARE in memory,
            "next_percent": nxt,
            "halted": state.halted,
            "halt_reason": state.halt_reason,
            "history": state.history[-10:],
            "state": self.store.where,
        }

    # ------------------------------------------------------------------ changes
    def _move(
        self,
        state: RolloutState,
        index: int,
        action: str,
        why: str,
        *,
        dry_run: bool,
        verdict: Verdict | None = None,
    ) -> Outcome:
        memory = self.share.memory()
        if MEMORY_PREVIOUS_SHARE in memory:
            return self._record(
                Outcome(action, self.share.target, "refused", "fallback is on: the share is its"),
                state,
                dry_run,
                verdict,
            )
        before = self.percent_of(state.index)
        after = self.percent_of(index)
        out = self.share.set_rollout(after, action=action, dry_run=dry_run)
        out.details.update(step_from=state.index, step_to=index)
        if out.result in ("done", "noop"):
            out.reason = f"{before:g} % -> {after:g} %: {why}" + (
                "" if out.result == "done" else " (share already there)"
            )
            state.index = index
        elif out.result == "dry_run":
            out.reason = f"would move {before:g} % -> {after:g} %: {why}"
        return self._record(out, state, dry_run, verdict)

    def advance(self, *, dry_run: bool = True, why: str = "operator") -> Outcome:
        """One step forward (clears a halt)."""
        state = self.store.load()
        if state.index + 1 >= len(self.config.steps):
            return self._record(
                Outcome("rollout_advance", self.share.target, "noop", "at the last step"),
                state,
                dry_run,
            )
        if not dry_run:
            state.halted, state.halt_reason = False, ""
        return self._move(state, state.index + 1, "rollout_advance", why, dry_run=dry_run)

    def rollback(self, *, dry_run: bool = True, why: str = "operator") -> Outcome:
        """One step back (to 0 % below the first step)."""
        state = self.store.load()
        if state.index < 0:
            return self._record(
                Outcome("rollout_rollback", self.share.target, "noop", "already at 0 %"),
                state,
                dry_run,
            )
        return self._move(state, state.index - 1, "rollout_rollback", why, dry_run=dry_run)

    def step(self, evidence: Evidence, *, dry_run: bool = True) -> tuple[Verdict, Outcome]:
        """Decide one window and act on it."""
        verdict = evaluate(evidence, self.config)
        state = self.store.load()
        tag = f"window {_iso(evidence.start)}..{_iso(evidence.end)} at {evidence.percent:g} %"
        if verdict.decision == "rollback":
            if state.index < 0:
                out = Outcome(
                    "rollout_hold", self.share.target, "noop", "at 0 %: nothing to roll back"
                )
                return verdict, self._record(out, state, dry_run, verdict)
            if not dry_run:
                state.halted = True
                state.halt_reason = f"{tag}: {verdict.reason}"
            out = self._move(
                state,
                state.index - 1,
                "rollout_rollback",
                verdict.reason,
                dry_run=dry_run,
                verdict=verdict,
            )
            return verdict, out
        if verdict.decision == "advance" and not state.halted:
            if state.index + 1 < len(self.config.steps):
                out = self._move(
                    state,
                    state.index + 1,
                    "rollout_advance",
                    f"{tag}: {verdict.reason}",
                    dry_run=dry_run,
                    verdict=verdict,
                )
                return verdict, out
            reason = "at the last step; gates pass"
        elif verdict.decision == "advance":
            reason = f"gates pass but the rollout is halted ({state.halt_reason})"
        else:
            reason = verdict.reason
        out = Outcome("rollout_hold", self.share.target, "noop", f"{tag}: {reason}")
        return verdict, self._record(out, state, dry_run, verdict)

    def _record(
        self,
        out: Outcome,
        state: RolloutState,
        dry_run: bool,
        verdict: Verdict | None = None,
    ) -> Outcome:
        now = self.clock()
        entry = {
            "time": _iso(now),
            "action": out.action,
            "result": out.result,
            "reason": out.reason,
            "percent": self.percent_of(state.index),
        }
        if verdict is not None:
            entry["gates"] = [
                {"gate": g.gate, "status": g.status, "detail": g.detail} for g in verdict.gates
            ]
            out.details["verdict"] = verdict.to_dict()
        if not dry_run:
            state.history = [*state.history, entry][-_HISTORY:]
            self.store.save(state)
        if self.audit is not None:
            self.audit.append(
                AuditRecord(
                    time=now,
                    alert="rollout",
                    status=out.action,
                    key=f"rollout:{now:.3f}:{out.action}",
                    action=out.action,
                    target=out.target,
                    reason=out.reason,
                    dry_run=dry_run,
                    result=out.result,
                    labels={"state": self.store.where},
                    details=out.details,
                )
            )
        log.info("rollout %s: %s (%s)", out.action, out.result, out.reason)
        return out
