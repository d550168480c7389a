"""Start retraining when drift persists: a configurable command, never an import.

By default the command is ``hydatis pipeline run retraining --dataset {dataset}
--features {features}`` (the retraining pipeline on this machine, which registers a new
model behind the registry's gates); on a cluster it can be anything that submits the
compiled pipeline. The command is split like a shell line but never run through a shell;
placeholders are filled per argument, so a path with spaces stays one argument.

It starts at most once per ``cooldown_s`` (measured on the monitored data's clock, so a
replay behaves as live monitoring would), runs detached by default with its output in a
log file, and every start is recorded in the drift state.
"""

from __future__ import annotations

import os
import shlex
import shutil
import string
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hydatis.errors import ConfigError
from monitoring.drift.detector import DriftState

__all__ = ["PLACEHOLDERS", "RetrainTrigger", "TriggerResult"]

#: the placeholders a retrain command may use.
PLACEHOLDERS = ("dataset", "features", "kinds")


@dataclass
class TriggerResult:
    """What happened when retraining was due.

    Attributes:
        started: the command started.
        argv: the command as run.
        reason: why it was (or was not) started.
        pid: its process id.
        log: where its output goes.
        returncode: its exit status, when waited for.
        error: why it could not start.
    """

    started: bool
    argv: list[str]
    reason: str
    pid: int | None = None
    log: str | None = None
    returncode: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


class RetrainTrigger:
    """Runs the retraining command for a persistent drift.

    Args:
        command: the command line with placeholders (see :data:`PLACEHOLDERS`); empty
            means retraining is off.
        placeholders: values for ``{dataset}`` and ``{features}``.
        log_path: where the command's output goes (default: discarded).
        cooldown_s: no second start within this long (data time) of the last one.
        cwd: the command's working directory.
        env: extra environment variables for it.

    Raises:
        ConfigError: the command is malformed or uses an unknown placeholder.
    """

    def __init__(
        self,
        command: str,
        *,
        placeholders: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
        cooldown_s: float = 0.0,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = command
        self.placeholders = dict(placeholders or {})
        self.log_path = Path(log_path) if log_path is not None else None
        self.cooldown_s = cooldown_s
        self.cwd = cwd
        self.env = dict(env or {})
        self._tokens = self._parse(command)

    @staticmethod
    def _parse(command: str) -> list[str]:
        try:
            tokens = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"retrain_command: cannot split {command!r}: {exc}") from exc
        for token in tokens:
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(token) if f is not None]
            except ValueError as exc:
                raise ConfigError(f"retrain_command: bad placeholder in {token!r}: {exc}") from exc
            unknown = [f for f in fields if f not in PLACEHOLDERS]
            if unknown:
                raise ConfigError(
                    f"retrain_command: unknown placeholder {{{unknown[0]}}} in {token!r}; "
                    f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
                )
        return tokens

    @property
    def enabled(self) -> bool:
        """Whether a command is configured."""
        return bool(self._tokens)

    def argv(self, kinds: Sequence[str]) -> list[str]:
        """The command for an alarm on ``kinds``, placeholders filled.

        Raises:
            ConfigError: a placeholder the command uses has no value.
        """
        values = {**self.placeholders, "kinds": ",".join(kinds)}
        out = []
        for token in self._tokens:
            try:
                out.append(token.format(**values))
            except KeyError as exc:
                raise ConfigError(
                    f"retrain_command uses {{{exc.args[0]}}} but no value was given for it"
                ) from exc
        if out and out[0] == "hydatis" and shutil.which("hydatis") is None:
            # the console script of this very environment, when its bin is not on PATH
            beside = Path(sys.executable).with_name("hydatis")
            if beside.exists():
                out[0] = str(beside)
        return out

    def due(self, state: DriftState, now: pd.Timestamp) -> tuple[bool, str]:
        """Whether an alarm calls for retraining now, and why (or why not)."""
        kinds = sorted(k for k, on in state.alarm.items() if on)
        if not kinds:
            return False, "no kind is in drift"
        if not self.enabled:
            return False, "retraining is off (no retrain_command)"
        last = state.last_retrain
        if last is not None and last.get("started"):
            since = (now - pd.Timestamp(last["at"])).total_seconds()
            if since < self.cooldown_s:
                return False, (
                    f"retraining started {since:.0f} s ago (cooldown {self.cooldown_s:.0f} s)"
                )
        return True, f"drift persisted in {', '.join(kinds)}"

    def fire(
        self,
        state: DriftState,
        now: pd.Timestamp,
        *,
        wait: bool = False,
        timeout_s: float | None = None,
    ) -> TriggerResult | None:
        """Start the command if :meth:`due`; record it in ``state``.

        Args:
            state: the drift state (its alarms decide; ``last_retrain`` is updated).
            now: the time of the check (the end of the last window checked).
            wait: wait for the command to finish (else it runs on, detached).
            timeout_s: with ``wait``, the longest wait (then the command is left running
                and the result has no return code).

        Returns:
            The result, or None when retraining is not due.
        """
        due, reason = self.due(state, now)
        if not due:
            return None
        kinds = sorted(k for k, on in state.alarm.items() if on)
        argv = self.argv(kinds)
        result = TriggerResult(False, argv, reason)
        env = {**os.environ, **self.env}
        log = None
        try:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log = self.log_path.open("ab")
                result.log = str(self.log_path)
            proc = subprocess.Popen(
                argv,
                stdout=log if log is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env=env,
                start_new_session=not wait,
            )
        except OSError as exc:
            result.error = f"cannot start {argv[0]!r}: {exc}"
        else:
            result.started, result.pid = True, proc.pid
            if wait:
                try:
                    result.returncode = proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    result.error = f"still running after {timeout_s} s"
        finally:
            if log is not None:
                log.close()
        state.last_retrain = {"at": pd.Timestamp(now).isoformat(), **result.to_dict()}
        return result
