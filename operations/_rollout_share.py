"""Set the extender's ML scheduling share (``rollout_percent``) to a given value, and keep
a small memory beside it (fallback's previous share).

Built on remediation's :class:`~monitoring.remediation.actions.ExtenderSettings`, which
knows where the settings live (a ConfigMap key plus the Deployment's
``HYDATIS_SHIM_*`` variables, or a local file) and how a change reaches the running
extender (the ConfigMap patched, then the Deployment rolled). Remediation only lowers the
share by a factor; operations needs to set it to an exact step and back.

The memory: on a cluster, annotations on the extender's Deployment (``metadata``, so
they never roll the pods); locally, a JSON file beside the settings file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from monitoring.remediation.actions import (
    ExtenderSettings,
    Outcome,
    _atomic_write,
    _effective,
    _RefusedError,
)

__all__ = ["ShareControl", "ShareRefusedError"]

ShareRefusedError = _RefusedError


class ShareControl(ExtenderSettings):
    """:class:`ExtenderSettings` plus an exact ``rollout_percent`` and a memory."""

    def _memory_file(self) -> Path:
        return Path(f"{self.config.extender_config_file}.operations.json")

    def memory(self) -> dict[str, str]:
        """The annotations (cluster) or JSON (file) kept beside the settings."""
        c = self.config
        if c.extender_target == "file":
            path = self._memory_file()
            return json.loads(path.read_text()) if path.is_file() else {}
        if self.cluster is None:
            raise _RefusedError("no Kubernetes API configured")
        dep = self.cluster.read_deployment(c.extender_namespace, c.extender_deployment)
        if dep is None:
            return {}
        return dict((dep.get("metadata") or {}).get("annotations") or {})

    def set_rollout(
        self,
        percent: float,
        *,
        action: str,
        dry_run: bool,
        remember: dict[str, str | None] | None = None,
    ) -> Outcome:
        """Set ``rollout_percent`` to ``percent`` (0..100) and store ``remember`` in the
        memory (a None value removes the key), in one change.

        Returns:
            an :class:`Outcome`: ``noop`` when the share already is ``percent`` and the
            memory holds ``remember``; ``dry_run`` with what would change; ``refused``
            when the settings cannot be read; else ``done``.
        """
        if not 0.0 <= float(percent) <= 100.0:
            raise ValueError(f"rollout_percent must be within 0..100, got {percent}")
        try:
            settings, deployment = self._read()
            memory = self.memory()
        except _RefusedError as exc:
            return Outcome(action, self.target, "refused", str(exc))
        before = _effective(settings, deployment)
        after = {**before, "rollout_percent": float(percent)}
        remember = dict(remember or {})
        memory_changes = {k: v for k, v in remember.items() if memory.get(k) != v}
        details: dict[str, Any] = {"before": before, "after": after}
        if memory_changes:
            details["memory"] = memory_changes
        share_changes = after != before
        if not share_changes and not memory_changes:
            return Outcome(action, self.target, "noop", f"share already {percent:g} %", details)
        what = (
            f"rollout_percent {before['rollout_percent']:g} -> {after['rollout_percent']:g}"
            if share_changes
            else f"rollout_percent stays {percent:g}"
        )
        if dry_run:
            return Outcome(action, self.target, "dry_run", f"would set {what}", details)
        c = self.config
        if c.extender_target == "file":
            if share_changes:
                text = yaml.safe_dump({**settings, **after}, sort_keys=False)
                _atomic_write(Path(c.extender_config_file), text)
                details["apply"] = "restart the extender: it reads its settings file at start"
            kept = {**memory, **remember}
            kept = {k: v for k, v in kept.items() if v is not None}
            _atomic_write(self._memory_file(), json.dumps(kept, indent=2, sort_keys=True))
            return Outcome(action, self.target, "done", f"set {what}", details)
        if share_changes:
            text = yaml.safe_dump({**settings, **after}, sort_keys=False)
            self.cluster.patch_configmap(
                c.extender_namespace, c.extender_configmap, {c.extender_config_key: text}
            )
        if deployment is None:
            details["apply"] = "no Deployment found: the extender reads the ConfigMap at start"
            if memory_changes:
                return Outcome(
                    action, self.target, "partial", f"set {what}; nowhere to keep the memory"
                )
        else:
            patch: dict[str, Any] = self._rollout_patch(deployment, after) if share_changes else {}
            if memory_changes:
                patch["metadata"] = {"annotations": memory_changes}
            self.cluster.patch_deployment(c.extender_namespace, c.extender_deployment, patch)
            if share_changes:
                details["apply"] = f"deployment {c.extender_deployment} rolled"
        return Outcome(action, self.target, "done", f"set {what}", details)
