"""The audit log: one JSON line per decision, appended and flushed before the webhook
answers, so what the service did (or would have done, in dry-run) is on disk even if it
dies right after.

Each line: ``time`` (unix s), ``alert``, ``status``, ``key`` (fingerprint/startsAt/status),
``labels``, ``action``, ``target``, ``reason``, ``dry_run``, ``result``, ``details``.

The log is also the service's memory of handled deliveries: :meth:`AuditLog.handled_keys`
reads back the keys whose result is final, so a restarted service still recognises an
Alertmanager repeat.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FINAL_RESULTS", "AuditLog", "AuditRecord"]

log = logging.getLogger(__name__)

#: Results after which a repeated delivery must not act again. ``rate_limited``,
#: ``error``, ``failed`` and ``partial`` (some pods not evicted yet) are not final: the
#: next delivery of the same alert tries again.
FINAL_RESULTS = frozenset({"done", "dry_run", "refused", "noop", "ignored", "stale", "resolved"})


@dataclass
class AuditRecord:
    """One decision."""

    time: float
    alert: str
    status: str
    key: str
    action: str
    target: str
    reason: str
    dry_run: bool
    result: str
    labels: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class AuditLog:
    """Append-only JSONL file (thread-safe within the process)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: AuditRecord) -> None:
        """Write one line and flush it to disk."""
        line = json.dumps(asdict(record), sort_keys=True, default=str)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, oldest first (a torn last line is skipped with a warning)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    log.warning("audit log %s line %d is not JSON; skipped", self.path, n)

    def handled_keys(self) -> set[str]:
        """Keys of deliveries whose result is final."""
        return {r["key"] for r in self.records() if r.get("result") in FINAL_RESULTS}
